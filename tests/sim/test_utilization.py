"""Utilization triggers in the simulator read a utilization series: a replayed one (the
bundled GenAI duty cycle, or any series) or, by default, the share of local GPUs allocated."""

from __future__ import annotations

from burstd.sim.cluster import parse_spec
from burstd.sim.compare import Setup, run_one
from burstd.sim.duty import load_duty_cycle
from burstd.sim.engine import SimConfig
from tests.sim.helpers import rules, trace_csv

RULES = """
version: 1
loop: {interval: 10s, batch_idle: 1s, batch_max: 10s}
targets:
  cloud:
    provider: terraform
    gpu_model: A
    gpus_per_unit: 2
    max_units: 2
    price_per_gpu_hour: 1
    time_to_ready: 1m
    ready_deadline: 10m
rules:
  - name: inference
    triggers:
      - utilization: {query: "avg(DCGM_FI_DEV_GPU_UTIL)", above: 80, for: 3m}
    burst: {ladder: [cloud], min_gpus: 2}
    release: {idle_for: 2m, validation: 30s}
    cooldown: {scale_up: 0s, scale_down: 0s}
"""


def test_a_replayed_rush_bursts_once_after_its_window_and_is_given_back() -> None:
    # 10 minutes quiet, 10 minutes at 90 %, then quiet; a light job keeps the run going.
    series = (10.0,) * 10 + (90.0,) * 10 + (10.0,) * 40
    trace = trace_csv("submit,duration,gpus\n0,3600,1\n")
    config = SimConfig(utilization=series, utilization_step=60.0)
    setup = Setup(trace=trace, nodes=parse_spec("1x1:A"), ruleset=rules(RULES), config=config)
    run = run_one(setup, "burstd", setup.ruleset)
    [unit] = run.outcome.units
    start = run.outcome.start
    # The rush starts at 600 s; the trigger needs it to last 3 minutes (first pass at or
    # after 780 s on the 10 s grid).
    assert 780 <= unit.created_at - start <= 790
    # Kept while the rush lasts (min_gpus, though idle past idle_for), given back once it has
    # ended (1200 s): cordoned at the next pass, drained after the 30 s validation.
    assert unit.ended_at is not None
    assert 1200 + 30 < unit.ended_at - start <= 1200 + 30 + 30


def test_allocation_is_the_default_series() -> None:
    # One job fills the single local GPU: allocation is 100 % for an hour.
    trace = trace_csv("submit,duration,gpus\n0,3600,1\n")
    setup = Setup(trace=trace, nodes=parse_spec("1x1:A"), ruleset=rules(RULES), config=SimConfig())
    run = run_one(setup, "burstd", setup.ruleset)
    assert len(run.outcome.units) == 1
    assert run.outcome.units[0].created_at - run.outcome.start <= 190


def test_the_bundled_duty_cycle_is_a_day_of_percentages() -> None:
    duty = load_duty_cycle()
    mean = duty.mean()
    assert duty.step_s == 57.0
    assert len(mean) == 1441
    assert all(0.0 <= v <= 100.0 for v in mean)
    assert len(duty.values) == 8

"""Small builders for simulator tests: traces, rules and runs in a line each."""

from __future__ import annotations

import io
import math
from typing import Any

from burstd.rules.loader import parse_rules
from burstd.rules.types import RuleSet
from burstd.sim.cluster import NodeSpec, parse_spec
from burstd.sim.compare import PolicyRun, Setup, run_one
from burstd.sim.engine import Checker, SimConfig, Simulation
from burstd.sim.sweep import Variant, parse_sweep, variants
from burstd.sim.synthetic import generate, parse_synthetic
from burstd.sim.trace import Trace, read_generic_csv


def trace_csv(text: str, source: str = "t.csv") -> Trace:
    """A generic CSV trace from text (a header line first)."""
    return read_generic_csv(io.StringIO(text.strip() + "\n"), source)


def rules(text: str) -> RuleSet:
    return parse_rules(text, "test.yaml")


ONE_TARGET = """
version: 1
loop: {{interval: 10s, batch_idle: 1s, batch_max: 10s}}
targets:
  cloud:
    provider: terraform
    gpu_model: A
    gpus_per_unit: {gpus}
    max_units: {max_units}
    price_per_gpu_hour: {price}
    time_to_ready: {ttr}
    ready_deadline: {deadline}
    backoff: 1m
    simulation:
      failure_probability: {fail}
      ready_spread: {spread}
      capacity_units: {capacity}
      billing_minimum: {minimum}
rules:
  - name: all
    triggers:
      - pending: {{gpus: 1, for: {wait}}}
    burst: {{ladder: [cloud]}}
    release: {{idle_for: {idle}, validation: 1m{drain}}}
    cooldown: {{scale_up: 0s, scale_down: 0s}}
"""


def one_target(**kw: Any) -> RuleSet:
    values: dict[str, Any] = {
        "gpus": 2,
        "max_units": 4,
        "price": 1.0,
        "ttr": "5m",
        "deadline": "15m",
        "fail": 0.0,
        "spread": 0.0,
        "capacity": "null",
        "minimum": "60s",
        "wait": "0s",
        "idle": "10m",
        "drain": "",
    }
    values.update(kw)
    return rules(ONE_TARGET.format(**values))


def run(
    trace: Trace,
    nodes: str | list[NodeSpec],
    ruleset: RuleSet | None,
    *,
    seed: int = 0,
    exact: bool = False,
    checker: Checker | None = None,
) -> PolicyRun:
    specs = parse_spec(nodes) if isinstance(nodes, str) else nodes
    base = ruleset if ruleset is not None else one_target()
    setup = Setup(trace=trace, nodes=specs, ruleset=base, config=SimConfig(seed=seed, exact=exact))
    return run_one(setup, "burstd" if ruleset is not None else "no-burst", ruleset, checker=checker)


def small_sweep() -> tuple[Setup, list[Variant]]:
    """A sweep of four pending waits over 400 synthetic pods on 8 GPUs, whose runs differ, for
    comparing the ways a sweep runs (serial, processes, Ray)."""
    text = ONE_TARGET.format(
        gpus=4,
        max_units=4,
        price=2.0,
        ttr="2m",
        deadline="10m",
        fail=0.1,
        spread=0.3,
        capacity="null",
        minimum="60s",
        wait="1m",
        idle="5m",
        drain="",
    )
    trace = generate(parse_synthetic("synthetic:pods=400,load=1.6,seed=2,median=10m"), 8)
    sweeps = [parse_sweep("rules[0].triggers[0].pending.for=0s,1m,5m,20m")]
    chosen = list(variants(text, "t.yaml", sweeps))
    setup = Setup(
        trace=trace, nodes=parse_spec("2x4:A"), ruleset=chosen[0].ruleset, config=SimConfig(seed=3)
    )
    return setup, chosen


def no_wait_while_room(sim: Simulation) -> None:
    """The invariant: no pending pod (that can ever run) fits on a schedulable node now."""
    seen: set[tuple[int, int, frozenset[str]]] = set()
    for pod in sim.sched.pending_pods():
        key = (pod.gpus, pod.milli, pod.models)
        if key in seen:
            continue
        seen.add(key)
        for node in sim.sched.schedulable_nodes():
            assert not node.fits(pod.gpus, pod.milli, pod.models), (
                f"pod {pod.index} ({pod.gpus} GPU, {pod.milli} milli) waits at "
                f"{sim.now - sim.epoch:.0f}s while {node.name} has room {node.free}"
            )


def close(a: float, b: float, rel: float = 1e-4) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)

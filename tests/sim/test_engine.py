"""The simulation loop: closed-form cost, the invariant, skipping passes, providers, baselines."""

from __future__ import annotations

import pytest

from burstd.sim.cluster import load_nodes
from burstd.sim.compare import Setup, compare, immediate_ruleset, run_one
from burstd.sim.engine import SimConfig
from burstd.sim.synthetic import generate, parse_synthetic
from burstd.sim.trace import Trace, load_trace
from tests.sim.helpers import close, no_wait_while_room, one_target, rules, run, trace_csv


def closed_form_trace() -> Trace:
    # A runs at home for 2 h; B needs 2 GPUs, more than the 1-GPU cluster has.
    return trace_csv(
        """
submit,duration,gpus
0,7200,1
95,3600,2
"""
    )


@pytest.mark.parametrize("exact", [False, True])
def test_closed_form_cost_and_gpu_hours(exact):
    """The timeline, by hand (interval 10 s, batch_idle 1 s, ready in exactly 5 min):

    * t=0: the first pass; periodic passes every 10 s from there;
    * t=95: B is marked unschedulable and pokes; the batch runs a pass at 96, which creates one
      2-GPU unit (billing starts) and puts the periodic chain at 96 + 10k;
    * t=396: the unit is ready, B starts on it; B ends at 3996, and the unit counts as busy
      until then (as the daemon notes when a pod leaves a unit's node);
    * idle for 10 min since 3996: cordon at the pass at 4596; validation 1 min: drain at 4656;
      empty, so released at the next pass, 4666.
    """
    result = run(closed_form_trace(), "1x1:A", one_target(), exact=exact)
    m = result.metrics
    [unit] = result.outcome.units
    start = result.outcome.start
    assert unit.ready_at is not None
    assert unit.ended_at is not None
    assert (unit.created_at - start, unit.ready_at - start, unit.ended_at - start) == (
        96,
        396,
        4666,
    )
    billed_s = 4666 - 96
    assert close(m["burst_cost_usd"], billed_s * 2 * 1.0 / 3600)
    assert close(m["burst_gpu_hours"], 2 * (4666 - 396) / 3600)
    assert close(m["idle_burst_gpu_hours"], 2 * (4666 - 396) / 3600 - 2 * 3600 / 3600)
    assert sorted(result.outcome.waits) == [0.0, pytest.approx(396 - 95)]
    assert (m["units_provisioned"], m["units_released"], m["peak_burst_gpus"]) == (1, 1, 2)


def test_billing_minimum_and_failures_are_not_billed():
    t = trace_csv("submit,duration,gpus\n0,30,2\n")
    # Ready after 5 min, the pod runs 30 s, the unit is idle 10 min then goes.
    m = run(t, "1x1:A", one_target(minimum="2h")).metrics
    assert close(m["burst_cost_usd"], 2 * 2 * 1.0)  # 2 h minimum x 2 GPUs x 1 USD
    failing = run(t, "1x1:A", one_target(fail=1.0)).metrics
    assert failing["burst_cost_usd"] == 0
    assert failing["units_provisioned"] == 0
    assert failing["pods_never_started"] == 1


def test_slow_unit_is_abandoned_and_its_create_cancelled():
    t = trace_csv("submit,duration,gpus\n0,60,2\n")
    r = run(t, "1x1:A", one_target(ttr="10m", deadline="10m", spread=1.0), seed=1)
    outcomes = {u.outcome for u in r.outcome.units}
    assert "abandoned" in outcomes
    assert r.metrics["units_abandoned"] >= 1
    abandoned = [u for u in r.outcome.units if u.outcome == "abandoned"]
    # Billed from the create to the abandon, which comes at the first pass past the deadline.
    assert all(600 < (u.ended_at or 0) - u.created_at <= 611 for u in abandoned)


def test_donor_capacity_is_finite():
    t = trace_csv("submit,duration,gpus\n" + "".join("0,600,2\n" for _ in range(4)))
    r = run(t, "1x1:A", one_target(capacity=2))
    m = r.metrics
    assert m["peak_burst_gpus"] == 4  # two units of 2 GPUs at most
    assert any("capacity" in u.error for u in r.outcome.units if u.outcome == "failed")
    assert m["pods_never_started"] == 0  # the rest waited for the first two to finish


def test_never_fitting_pods_are_counted_apart():
    t = trace_csv("submit,duration,gpus\n0,60,1\n0,60,16\n")
    m = run(t, "1x1:A", one_target()).metrics
    assert m["unschedulable_pods"] == 1
    assert m["pods"] == 1
    assert m["units_provisioned"] == 0


def test_no_pod_waits_while_a_node_has_room_full_openb_cluster():
    nodes, _ = load_nodes("openb")
    r = run(load_trace(), nodes, None, checker=no_wait_while_room)
    assert r.metrics["pods_that_waited"] == 0
    assert r.metrics["gpu_wait_p99_s"] == 0


def test_no_pod_waits_while_a_node_has_room_small_cluster():
    nodes, _ = load_nodes("small")
    r = run(load_trace(), nodes, None, checker=no_wait_while_room)
    assert r.metrics["pods_that_waited"] > 100  # the small cluster does queue


STRESS_RULES = """
version: 1
loop: {interval: 10s, batch_idle: 1s, batch_max: 10s}
targets:
  donor:
    provider: liqo
    params: {remote_cluster_id: partner}
    gpu_model: G2
    gpus_per_unit: 4
    max_units: 3
    time_to_ready: 1m
    ready_deadline: 2m
    backoff: 1m
    simulation:
      {failure_probability: 0.2, ready_spread: 0.6, capacity_units: 2, billing_minimum: 0s}
  cloud:
    provider: terraform
    gpu_model: V100M32
    gpus_per_unit: 8
    max_units: 3
    price_per_gpu_hour: 3
    time_to_ready: 4m
    ready_deadline: 6m
    simulation: {failure_probability: 0.1, ready_spread: 0.3, billing_minimum: 60s}
rules:
  - name: ls
    match: {qos: [LS]}
    triggers:
      - pending: {gpus: 2, for: 30s}
      - schedule: {cron: "0 9 * * 1-5", duration: 2h}
    burst: {ladder: [donor, cloud], max_units_per_step: 2, min_gpus: 4}
    release: {idle_for: 5m, validation: 30s}
    cooldown: {scale_up: 20s, scale_down: 1m}
  - name: be
    match: {qos: [BE]}
    triggers:
      - oldest_pending: {older_than: 7m}
    burst: {ladder: [cloud]}
    release: {idle_for: 3m, validation: 1m, drain: {mode: evict, max_wait: 20m}}
"""


def test_skipping_passes_changes_nothing():
    """Skipping idle passes must give exactly the results of running every pass."""
    trace = generate(parse_synthetic("synthetic:pods=600,load=1.6,seed=5,median=15m"), 16)
    ruleset = rules(STRESS_RULES)
    fast = run(trace, "2x8:G2", ruleset, seed=2)
    slow = run(trace, "2x8:G2", ruleset, seed=2, exact=True)
    skip = {"control_passes", "events"}
    assert {k: v for k, v in fast.metrics.items() if k not in skip} == {
        k: v for k, v in slow.metrics.items() if k not in skip
    }
    assert fast.metrics["control_passes"] < slow.metrics["control_passes"] / 5
    m = fast.metrics
    assert m["units_failed"] > 0
    assert m["units_provisioned"] > 0
    assert m["evicted_pods"] >= 0
    assert [(u.id, u.outcome, u.created_at, u.ended_at) for u in fast.outcome.units] == [
        (u.id, u.outcome, u.created_at, u.ended_at) for u in slow.outcome.units
    ]


def test_same_seed_same_results_other_seed_differs():
    trace = generate(parse_synthetic("synthetic:pods=400,load=1.5,seed=1"), 16)
    ruleset = rules(STRESS_RULES)
    setup = Setup(
        trace=trace, nodes=load_nodes("2x8:G2")[0], ruleset=ruleset, config=SimConfig(seed=7)
    )
    a = {k: v.metrics for k, v in compare(setup).items()}
    b = {k: v.metrics for k, v in compare(setup).items()}
    assert a == b
    other = Setup(trace=trace, nodes=setup.nodes, ruleset=ruleset, config=SimConfig(seed=8))
    assert run_one(other, "burstd", ruleset).metrics != a["burstd"]


def test_burst_immediately_baseline_shape():
    ruleset = rules(STRESS_RULES)
    derived = immediate_ruleset(ruleset, ruleset.targets["cloud"])
    [rule] = derived.rules
    assert rule.burst.ladder == ("cloud",)
    assert rule.release.idle_for == 600
    assert (rule.cooldown.scale_up, rule.cooldown.scale_down) == (0, 0)
    assert list(derived.targets) == ["cloud"]

"""Starburst's policies as baselines in burstd's world, and the cost-aware wait that beats them.

Runs on the bundled openb trace with the bundled rules (no fakes: the daemon's planner, rules
engine and actuator drive the simulated cluster).
"""

from __future__ import annotations

from importlib import resources

import pytest

from burstd.model import GpuRequest, Pod, ScaleUp, Snapshot
from burstd.plan.planner import plan
from burstd.rules.engine import evaluate
from burstd.rules.loader import RulesError, parse_rules
from burstd.rules.types import PendingTrigger
from burstd.sim.cluster import load_nodes, parse_spec
from burstd.sim.compare import (
    Setup,
    autoscaler_target,
    peer_baselines,
    run_one,
    trace_budget,
)
from burstd.sim.engine import SimConfig
from burstd.sim.synthetic import generate, parse_synthetic
from burstd.sim.trace import load_trace
from burstd.sources.kube.convert import declared_runtime


def _bundled(name: str) -> str:
    return (resources.files("burstd") / "data" / "rules" / name).read_text(encoding="utf-8")


def _runs(nodes: str | None, whole: bool, rules_file: str) -> dict[str, tuple[float, float]]:
    trace = load_trace(None)
    if whole:
        trace = trace.whole_gpus()
    ruleset = parse_rules(_bundled(rules_file), rules_file)
    setup = Setup(trace=trace, nodes=load_nodes(nodes)[0], ruleset=ruleset, config=SimConfig())
    target = autoscaler_target(ruleset)
    assert target is not None
    out = {}
    burstd = run_one(setup, "burstd", ruleset).metrics
    out["burstd"] = (burstd["burst_cost_usd"], burstd["gpu_wait_mean_s"])
    for name, (rs, runtimes) in peer_baselines(
        setup, target, budget=0.25, runtime_error=0.5
    ).items():
        if name in ("compute-wait", "star-wait"):
            m = run_one(setup, name, rs, runtimes=runtimes).metrics
            out[name] = (m["burst_cost_usd"], m["gpu_wait_mean_s"])
    return out


def _dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[0] and a[1] <= b[1] and (a[0] < b[0] or a[1] < b[1])


@pytest.mark.parametrize(("nodes", "whole"), [(None, False), ("6x8", True)])
def test_default_rules_dominate_compute_wait_and_star_wait(nodes, whole):
    runs = _runs(nodes, whole, "sim-default.yaml")
    for peer in ("compute-wait", "star-wait"):
        assert _dominates(runs["burstd"], runs[peer]), (peer, runs)


def _pod(name: str, gpus: int, since: float, runtime: float | None = None) -> Pod:
    return Pod(
        namespace="ns",
        name=name,
        gpu=GpuRequest(gpus=gpus),
        unschedulable=True,
        pending_since=since,
        declared_runtime=runtime,
    )


def test_cost_aware_wait_grows_with_gpus_and_declared_runtime():
    t = PendingTrigger(
        gpus=1, for_s=60, per_gpu=30, per_gpu_hour=600, max_for=3600, default_runtime=1800
    )
    assert t.wait_for(_pod("a", 1, 0, 3600)) == 60 + 30 + 600
    assert t.wait_for(_pod("b", 2, 0, None)) == 60 + 60 + 600  # 2 GPUs x 0.5 h default
    assert t.wait_for(_pod("c", 8, 0, 36000)) == 3600  # capped
    assert PendingTrigger(for_s=60).wait_for(_pod("d", 8, 0, 1e6)) == 60


def test_only_pods_past_their_own_wait_may_burst():
    ruleset = parse_rules(
        """
version: 1
targets:
  cloud: {provider: terraform, gpus_per_unit: 8}
rules:
  - name: all
    triggers:
      - pending: {gpus: 1, per_gpu: 10m}
    burst: {ladder: [cloud]}
""",
        "r.yaml",
    )
    small, big = _pod("small", 1, 0), _pod("big", 8, 0)
    [view] = evaluate(Snapshot(pods=(small, big)), ruleset, now=700)
    assert view.fired
    assert view.burstable == frozenset({"ns/small"})  # 10 min for one GPU, 80 min for eight
    assert "cost-aware" in view.why


def test_cost_aware_fields_are_validated_with_positions():
    with pytest.raises(RulesError) as e:
        parse_rules(
            """
version: 1
targets:
  cloud: {provider: terraform}
rules:
  - name: all
    triggers:
      - pending: {for: 10m, per_gpu: 1m, max_for: 5m}
      - pending: {max_for: 1h}
      - pending: {per_gpu_hour: soon}
    burst: {ladder: [cloud]}
""",
            "r.yaml",
        )
    text = "\n".join(str(p) for p in e.value.problems)
    assert "r.yaml:8:" in text
    assert "max_for: must be at least for (10m)" in text
    assert "r.yaml:9:" in text
    assert "has no effect without per_gpu or per_gpu_hour" in text
    assert "r.yaml:10:" in text
    assert "per_gpu_hour" in text


def test_cloud_only_variant_uses_only_the_cloud():
    ruleset = parse_rules(_bundled("sim-cloud-only.yaml"), "sim-cloud-only.yaml")
    assert list(ruleset.targets) == ["cloud"]
    assert all(
        isinstance(t, PendingTrigger) and t.cost_aware for r in ruleset.rules for t in r.triggers
    )


@pytest.mark.parametrize(("nodes", "whole"), [(None, False), ("6x8", True)])
def test_cloud_only_variant_dominates_compute_wait(nodes, whole):
    """With the cloud alone and no run times, burstd beats the oracle Compute-Wait on both
    clusters, and waits far less than Star-Wait (which costs less: docs/simulator.md has the
    numbers and why it is not dominated)."""
    runs = _runs(nodes, whole, "sim-cloud-only.yaml")
    assert _dominates(runs["burstd"], runs["compute-wait"]), runs
    assert runs["burstd"][1] < runs["star-wait"][1] / 10, runs


STAR_WAIT_RULE = """
rules:
  - name: star-wait
    triggers:
      - pending: {{gpus: 0.001, per_gpu: {per_gpu!r}{cap}}}
    burst: {{ladder: [cloud], max_units_per_step: 4}}
    release: {{idle_for: {idle}, validation: 0s}}
    cooldown: {{scale_up: 0s, scale_down: 0s}}
"""


@pytest.mark.parametrize(("nodes", "whole"), [(None, False), ("6x8", True)])
def test_star_wait_as_a_rules_file_and_capped(nodes, whole):
    """The cloud-only file with its rules replaced by Star-Wait's one rule (k' x GPUs for any
    pod, a thousandth of a GPU being the smallest share; the baseline's release) gives the
    baseline's numbers exactly: no other behaviour of burstd's rules (packing, billing, steps,
    cooldowns, limits) costs more, so what separates the variant from ``star-wait`` is the
    wait alone. The same wait capped at 4 hours, units given back after 1 minute idle,
    dominates ``star-wait`` (docs/simulator.md has the numbers and why the variant is not
    that)."""
    trace = load_trace(None)
    if whole:
        trace = trace.whole_gpus()
    head = _bundled("sim-cloud-only.yaml").split("\nrules:\n")[0]
    k = trace_budget(trace, 0.25).star_k_s

    def metrics(cap: str, idle: str) -> dict[str, float]:
        text = head + STAR_WAIT_RULE.format(per_gpu=k, cap=cap, idle=idle)
        ruleset = parse_rules(text, "star-wait.yaml")
        setup = Setup(trace=trace, nodes=load_nodes(nodes)[0], ruleset=ruleset)
        return run_one(setup, "burstd", ruleset).metrics

    ruleset = parse_rules(_bundled("sim-cloud-only.yaml"), "sim-cloud-only.yaml")
    setup = Setup(trace=trace, nodes=load_nodes(nodes)[0], ruleset=ruleset)
    target = autoscaler_target(ruleset)
    assert target is not None
    baseline, _ = peer_baselines(setup, target, budget=0.25, runtime_error=0.5)["star-wait"]
    peer = run_one(setup, "star-wait", baseline).metrics
    as_file = metrics("", "10m")
    keys = ("burst_cost_usd", "gpu_wait_mean_s", "units_provisioned", "billed_gpu_hours")
    assert {k: as_file[k] for k in keys} == {k: peer[k] for k in keys}
    assert peer["units_provisioned"] > 0
    capped = metrics(", max_for: 4h", "1m")
    point = (capped["burst_cost_usd"], capped["gpu_wait_mean_s"])
    assert _dominates(point, (peer["burst_cost_usd"], peer["gpu_wait_mean_s"])), (point, peer)


def test_daemon_reads_the_declared_runtime_from_annotation_or_deadline():
    """The daemon's side of the same wait: the kube converter fills ``declared_runtime``."""
    assert declared_runtime({}, {"burstd.io/expected-runtime": "90m"}) == 5400
    assert declared_runtime({"activeDeadlineSeconds": 600}, {}) == 600
    assert (
        declared_runtime({"activeDeadlineSeconds": 600}, {"burstd.io/expected-runtime": "x"}) == 600
    )
    assert declared_runtime({}, {}) is None


def test_whole_gpus_counts_a_share_as_one_gpu():
    trace = load_trace(None)
    whole = trace.whole_gpus()
    shares = [i for i, m in enumerate(trace.milli) if m]
    assert shares
    assert all(whole.gpus[i] == 1 and whole.milli[i] == 0 for i in shares)
    assert whole.meta["whole_gpus"] == len(shares)


COST_AWARE = """
version: 1
loop: {interval: 10s, batch_idle: 1s, batch_max: 10s}
targets:
  cloud:
    provider: terraform
    gpu_model: G2
    gpus_per_unit: 4
    max_units: 4
    price_per_gpu_hour: 2
    time_to_ready: 3m
    ready_deadline: 10m
    backoff: 2m
    simulation: {failure_probability: 0.1, ready_spread: 0.3}
rules:
  - name: all
    triggers:
      - pending: {gpus: 1, for: 30s, per_gpu: 2m, per_gpu_hour: 5m, max_for: 40m}
    burst: {ladder: [cloud]}
    release: {idle_for: 3m, validation: 30s}
    cooldown: {scale_up: 0s, scale_down: 0s}
"""


def test_skipping_passes_changes_nothing_with_cost_aware_waits():
    """Per-pod waits are thresholds of their own: the simulator's skipped passes must still
    give exactly the results of running every pass."""
    trace = generate(parse_synthetic("synthetic:pods=250,load=1.6,seed=9,median=15m"), 16)
    ruleset = parse_rules(COST_AWARE, "c.yaml")
    runs = []
    for exact in (False, True):
        setup = Setup(
            trace=trace,
            nodes=parse_spec("2x8:G2"),
            ruleset=ruleset,
            config=SimConfig(seed=4, exact=exact),
        )
        runs.append(run_one(setup, "burstd", ruleset, runtimes=trace.duration))
    fast, slow = runs
    skip = {"control_passes", "events"}
    assert {k: v for k, v in fast.metrics.items() if k not in skip} == {
        k: v for k, v in slow.metrics.items() if k not in skip
    }
    assert fast.metrics["units_provisioned"] > 0
    assert fast.metrics["control_passes"] < slow.metrics["control_passes"]


def test_planner_bursts_only_for_pods_past_their_own_wait():
    ruleset = parse_rules(
        """
version: 1
targets:
  cloud: {provider: terraform, gpus_per_unit: 1, max_units: 8}
rules:
  - name: all
    triggers:
      - pending: {gpus: 1, per_gpu_hour: 1h, default_runtime: 30m}
    burst: {ladder: [cloud]}
    cooldown: {scale_up: 0s}
""",
        "r.yaml",
    )
    pods = (
        _pod("short", 1, 0, 600),  # waits 10 min
        _pod("long", 1, 0, 36000),  # waits 10 h
        _pod("unknown", 1, 0, None),  # waits 30 min (default run time)
    )
    ups = [d for d in plan(Snapshot(pods=pods), ruleset, 1800).actions if isinstance(d, ScaleUp)]
    assert sorted(p for u in ups for p in u.pods) == ["ns/short", "ns/unknown"]

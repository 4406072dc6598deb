"""burstd's policy and the baselines it is compared with, run over the same trace and cluster.

* ``burstd``: the rules file as written.
* ``no-burst``: the local cluster only.
* ``burst-immediately``: what the Cluster Autoscaler does. A rules file derived from burstd's: one
  rule matching every pod, a pending trigger that fires for any unschedulable GPU pod at once
  (``gpus: >0, for: 0s``), a ladder of one target, no cooldowns, up to the target's
  ``max_units`` in one step, and capacity given back after 10 minutes unneeded with no further
  validation delay. The target is the first priced one of the rules file (a cloud node group,
  which is what an autoscaler scales), or the first target if none has a price; ``--immediate-
  target`` picks another.
* ``constant-wait``, ``compute-wait``, ``compute-wait-estimate``, ``star-wait``: Starburst's
  waiting policies (``burstd.sim.starburst``) acted on in burstd's world. Each is the
  ``burst-immediately`` rules file with the peer's wait as its pending trigger: a constant
  ``for``; a cost-aware ``per_gpu_hour`` over the trace's own run times declared by every pod
  (an oracle), or over estimates with a relative error; a ``per_gpu`` (Star-Wait, no run
  times). Each pod may go out once it waited its own wait. The budget is set the peer's way.
* ``static``: a fixed number of extra GPUs for the whole run, as nodes of the first priced
  target's shape, billed at its price from the start to the last pod's end. The default number
  is burstd's mean borrowed GPUs over the run (its GPU-hours divided by the run's length), rounded
  up to whole nodes: the same capacity on average, held all the time instead of when needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from burstd.rules.types import (
    Burst,
    Cooldown,
    Limits,
    Match,
    PendingTrigger,
    Release,
    Rule,
    RuleSet,
    Target,
)
from burstd.sim.cluster import NodeSpec
from burstd.sim.engine import Checker, Outcome, Progress, SimConfig, Simulation
from burstd.sim.results import summarize
from burstd.sim.starburst import (
    DEFAULT_BUDGET,
    DEFAULT_RUNTIME_ERROR,
    Budget,
    budget_label,
    estimated_runtimes,
)
from burstd.sim.trace import Trace

POLICIES = ("burstd", "no-burst", "burst-immediately", "static")
PEER_BASELINES = ("constant-wait", "compute-wait", "compute-wait-estimate", "star-wait")
IMMEDIATE_RELEASE_S = 600.0


@dataclass(slots=True)
class Setup:
    """One comparison's inputs."""

    trace: Trace
    nodes: list[NodeSpec]
    ruleset: RuleSet
    config: SimConfig = field(default_factory=SimConfig)
    nodes_source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class PolicyRun:
    name: str
    metrics: dict[str, Any]
    outcome: Outcome


def first_priced(ruleset: RuleSet) -> Target | None:
    """The first target with a price, else the first target."""
    for target in ruleset.targets.values():
        if target.price_per_gpu_hour > 0:
            return target
    return next(iter(ruleset.targets.values()), None)


def autoscaler_target(ruleset: RuleSet) -> Target | None:
    """What a cluster autoscaler would scale: the first cloud node pool (a ``terraform``
    target), else the first priced target, else the first target."""
    for target in ruleset.targets.values():
        if target.provider == "terraform":
            return target
    return first_priced(ruleset)


def immediate_ruleset(ruleset: RuleSet, target: Target) -> RuleSet:
    """The ``burst-immediately`` baseline as a rules file (see the module docstring)."""
    return one_rule_ruleset(ruleset, target, "burst-immediately", PendingTrigger(gpus=0.0))


def one_rule_ruleset(
    ruleset: RuleSet, target: Target, name: str, trigger: PendingTrigger
) -> RuleSet:
    """A baseline as a rules file: one rule for every pod with ``trigger``, a ladder of one
    target, no cooldowns, the autoscaler's release (see the module docstring)."""
    rule = Rule(
        name=name,
        match=Match(),
        triggers=(trigger,),
        burst=Burst(ladder=(target.name,), max_units_per_step=max(1, target.max_units)),
        release=Release(idle_for=IMMEDIATE_RELEASE_S, validation=0.0),
        cooldown=Cooldown(scale_up=0.0, scale_down=0.0),
    )
    return RuleSet(
        targets={target.name: target},
        rules=(rule,),
        limits=Limits(),
        loop=ruleset.loop,
        source=f"{ruleset.source or 'rules'} ({name} via {target.name})",
        digest=ruleset.digest,
    )


def static_nodes(target: Target, gpus: int) -> list[NodeSpec]:
    per = max(1, target.gpus_per_unit)
    count = math.ceil(gpus / per) if gpus > 0 else 0
    return [NodeSpec(name=f"static-{i}", gpus=per, model=target.gpu_model) for i in range(count)]


def mean_borrowed_gpus(run: PolicyRun) -> float:
    o = run.outcome
    span = max(o.work_end - o.start, 1e-9)
    return float(run.metrics["burst_gpu_hours"]) * 3600.0 / span


def run_one(
    setup: Setup,
    name: str,
    ruleset: RuleSet | None,
    *,
    static: list[NodeSpec] | None = None,
    static_price: float = 0.0,
    checker: Checker | None = None,
    progress: Progress | None = None,
    runtimes: Sequence[float] | None = None,
) -> PolicyRun:
    sim = Simulation(
        setup.trace,
        setup.nodes,
        ruleset,
        policy=name,
        config=setup.config,
        static=static or (),
        static_price=static_price,
        reachable=setup.ruleset.targets.values(),
        checker=checker,
        progress=progress,
        runtimes=runtimes,
    )
    outcome = sim.run()
    outcome.extra["static_units"] = len(static or ())
    return PolicyRun(name=name, metrics=summarize(outcome), outcome=outcome)


def compare(
    setup: Setup,
    *,
    baselines: bool = True,
    static_gpus: int | None = None,
    immediate_target: str | None = None,
    progress: Callable[[str], Progress | None] | None = None,
    budgets: Sequence[float] = (DEFAULT_BUDGET,),
    runtime_error: float = DEFAULT_RUNTIME_ERROR,
) -> dict[str, PolicyRun]:
    """Run burstd's rules and, with ``baselines``, the baselines: ``POLICIES`` then
    ``PEER_BASELINES`` (once per budget, named ``compute-wait b=0.1`` when several)."""

    def bar(name: str) -> Progress | None:
        return progress(name) if progress is not None else None

    runs: dict[str, PolicyRun] = {}
    runs["burstd"] = run_one(setup, "burstd", setup.ruleset, progress=bar("burstd"))
    if not baselines:
        return runs
    runs["no-burst"] = run_one(setup, "no-burst", None, progress=bar("no-burst"))
    if immediate_target is not None:
        target = setup.ruleset.targets[immediate_target]
    else:
        chosen = autoscaler_target(setup.ruleset)
        assert chosen is not None, "a rules file has at least one target"
        target = chosen
    runs["burst-immediately"] = run_one(
        setup,
        "burst-immediately",
        immediate_ruleset(setup.ruleset, target),
        progress=bar("burst-immediately"),
    )
    priced = target
    given = static_gpus is not None
    if static_gpus is None:
        static_gpus = math.ceil(mean_borrowed_gpus(runs["burstd"]) - 1e-9)
    nodes = static_nodes(priced, static_gpus)
    runs["static"] = run_one(
        setup,
        "static",
        None,
        static=nodes,
        static_price=priced.price_per_gpu_hour,
        progress=bar("static"),
    )
    for fraction in budgets:
        peer = peer_baselines(setup, target, budget=fraction, runtime_error=runtime_error)
        for name, (ruleset, runtimes) in peer.items():
            label = budget_label(name, fraction, len(budgets) > 1)
            runs[label] = run_one(setup, label, ruleset, runtimes=runtimes, progress=bar(label))
    setup.meta["baselines"] = {
        "peer": {
            "target": target.name,
            "budgets": [trace_budget(setup.trace, b).as_dict() for b in budgets],
            "runtime_error": runtime_error,
            "compute-wait": "oracle: every pod declares its trace run time",
            "star-wait": "k' x GPUs; no pulling back of long cloud jobs",
        },
        "burst-immediately": {
            "target": target.name,
            "release_after_unneeded_s": IMMEDIATE_RELEASE_S,
        },
        "static": {
            "gpus": sum(n.gpus for n in nodes),
            "nodes": len(nodes),
            "target_shape": priced.name,
            "price_per_gpu_hour": priced.price_per_gpu_hour,
            "chosen": "given (--static-gpus)"
            if given
            else "burstd's mean borrowed GPUs, rounded up to whole nodes",
        },
    }
    return runs


def with_target_simulation(ruleset: RuleSet, name: str, **changes: Any) -> RuleSet:
    """A copy of ``ruleset`` with target ``name``'s simulation profile changed (for tests)."""
    target = ruleset.targets[name]
    targets = dict(ruleset.targets)
    targets[name] = replace(target, simulation=replace(target.simulation, **changes))
    return replace(ruleset, targets=targets)


def trace_budget(trace: Trace, fraction: float) -> Budget:
    """The peer's coefficients for ``trace`` (GPUs counted as burstd counts them: a share by
    its fraction)."""
    gpus = [trace.gpu_equivalent(i) for i in range(len(trace))]
    return Budget.of_columns(trace.duration, gpus, fraction)


def peer_baselines(
    setup: Setup, target: Target, *, budget: float, runtime_error: float
) -> dict[str, tuple[RuleSet, Sequence[float] | None]]:
    """Starburst's policies as rules files for burstd's world, with the run times the pods
    declare (None: none)."""
    costs = trace_budget(setup.trace, budget)
    runtimes = setup.trace.duration
    estimates = estimated_runtimes(runtimes, runtime_error, setup.config.seed)
    per_gpu_hour = costs.compute_k * 3600.0
    chosen: dict[str, tuple[PendingTrigger, Sequence[float] | None]] = {
        "constant-wait": (PendingTrigger(gpus=0.0, for_s=costs.constant_s), None),
        "compute-wait": (PendingTrigger(gpus=0.0, per_gpu_hour=per_gpu_hour), runtimes),
        "compute-wait-estimate": (PendingTrigger(gpus=0.0, per_gpu_hour=per_gpu_hour), estimates),
        "star-wait": (PendingTrigger(gpus=0.0, per_gpu=costs.star_k_s), None),
    }
    return {
        name: (one_rule_ruleset(setup.ruleset, target, name, trigger), declared)
        for name, (trigger, declared) in chosen.items()
    }

"""Small builders for planner tests: a rule set, pods and units in one line each."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from burstd.model import GpuRequest, Pod, PodPhase, Unit, UnitPhase
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
    Trigger,
)

NOW = 10_000.0


def target(name: str, gpus: int = 4, **kw: Any) -> Target:
    kw.setdefault("provider", "kwok")
    return Target(name=name, gpus_per_unit=gpus, **kw)


def rule(
    name: str = "r",
    ladder: tuple[str, ...] = ("a",),
    triggers: tuple[Trigger, ...] = (PendingTrigger(gpus=1, for_s=0),),
    match: Match | None = None,
    **kw: Any,
) -> Rule:
    kw.setdefault("cooldown", Cooldown(scale_up=0, scale_down=0))
    kw.setdefault("release", Release(idle_for=600, validation=60))
    burst = kw.pop("burst", None) or Burst(ladder=ladder)
    return Rule(name=name, match=match or Match(), triggers=triggers, burst=burst, **kw)


def ruleset(*targets: Target, rules: tuple[Rule, ...] | None = None, **kw: Any) -> RuleSet:
    ts = targets or (target("a"),)
    return RuleSet(
        targets={t.name: t for t in ts},
        rules=rules if rules is not None else (rule(ladder=tuple(t.name for t in ts)),),
        limits=kw.pop("limits", Limits()),
        **kw,
    )


def pending(name: str, gpus: int = 1, *, since: float = 0.0, **kw: Any) -> Pod:
    gpu = kw.pop("gpu", None) or GpuRequest(gpus=gpus)
    kw.setdefault("namespace", "ml")
    return Pod(name=name, gpu=gpu, unschedulable=True, pending_since=since, **kw)


def running(name: str, node: str, gpus: int = 1, **kw: Any) -> Pod:
    kw.setdefault("namespace", "ml")
    return Pod(name=name, gpu=GpuRequest(gpus=gpus), phase=PodPhase.RUNNING, node=node, **kw)


def unit(
    uid: str,
    phase: UnitPhase = UnitPhase.READY,
    *,
    tgt: str = "a",
    gpus: int = 4,
    rule_name: str = "r",
    since: float = 0.0,
    **kw: Any,
) -> Unit:
    ready = phase not in (UnitPhase.REQUESTED, UnitPhase.PROVISIONING)
    u = Unit(
        id=uid,
        target=tgt,
        rule=rule_name,
        gpus=gpus,
        phase=phase,
        requested_at=kw.pop("requested_at", since),
        phase_since=since,
        ready_at=since if ready else None,
        node=f"node-{uid}" if ready else None,
    )
    return replace(u, **kw)

"""Table-driven planner scenarios: a snapshot and rules in, the exact actions and reasons out.

Each scenario lists the actions the planner must take (verb and subject, in order) and words
its reasons must contain, so a scenario fails both when the plan changes and when the
explanation stops saying why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from burstd.model import (
    GpuRequest,
    NoOp,
    Pod,
    RuleHistory,
    Sample,
    ScaleUp,
    Snapshot,
    TargetStatus,
    UnitPhase,
)
from burstd.plan.planner import plan
from burstd.rules.types import (
    Burst,
    Cooldown,
    DrainMode,
    Limits,
    Match,
    OldestPendingTrigger,
    PendingTrigger,
    Release,
    RuleSet,
    ScheduleTrigger,
    UtilizationTrigger,
)
from tests.unit.builders import NOW, pending, rule, ruleset, running, target, unit


@dataclass
class Scenario:
    name: str
    rules: RuleSet
    snapshot: Snapshot
    actions: list[str]
    says: list[str] = field(default_factory=list)
    now: float = NOW


def signature(d: object) -> str:
    assert not isinstance(d, NoOp)
    subject = d._subject()  # type: ignore[attr-defined]
    return f"{d.verb} {subject}".strip()  # type: ignore[attr-defined]


quarter = GpuRequest(milli=250)
evict_release = Release(idle_for=600, validation=60, drain_mode=DrainMode.EVICT, max_wait=3600)

SCENARIOS = [
    Scenario(
        "multi-GPU pod needs a big unit",
        ruleset(target("small", 4), target("big", 8)),
        Snapshot(pods=(pending("p", 8),)),
        ["scaleup big +1 unit(s) x 8 GPU"],
        ["1 pod(s) packed onto 1 unit(s)"],
    ),
    Scenario(
        "four quarter-GPU pods pack into one GPU",
        ruleset(target("a", 1)),
        Snapshot(pods=tuple(pending(f"q{i}", gpu=quarter) for i in range(4))),
        ["scaleup a +1 unit(s) x 1 GPU"],
        ["4 pod(s) packed onto 1 unit(s)"],
    ),
    Scenario(
        "a fifth quarter needs a second GPU",
        ruleset(target("a", 1)),
        Snapshot(pods=tuple(pending(f"q{i}", gpu=quarter) for i in range(5))),
        ["scaleup a +2 unit(s) x 1 GPU"],
    ),
    Scenario(
        "whole-GPU pods share a multi-GPU unit",
        ruleset(target("a", 4)),
        Snapshot(pods=tuple(pending(f"p{i}", 2) for i in range(4))),
        ["scaleup a +2 unit(s) x 4 GPU"],
    ),
    Scenario(
        "in-flight unit covers demand",
        ruleset(target("a", 4)),
        Snapshot(
            pods=(pending("p1", 2), pending("p2", 2)),
            units=(unit("u1", UnitPhase.PROVISIONING, since=NOW - 30),),
        ),
        [],
        ["2 pending pod(s) covered by units in flight or just ready"],
    ),
    Scenario(
        "in-flight unit covers part, the rest bursts",
        ruleset(target("a", 4)),
        Snapshot(
            pods=(pending("p1", 4), pending("p2", 4)),
            units=(unit("u1", UnitPhase.REQUESTED, since=NOW - 5),),
        ),
        ["scaleup a +1 unit(s) x 4 GPU"],
    ),
    Scenario(
        "a unit ready moments ago still covers demand",
        ruleset(target("a", 4)),
        Snapshot(pods=(pending("p1", 4),), units=(unit("u1", since=NOW - 10),)),
        [],
        ["covered by units in flight or just ready"],
    ),
    Scenario(
        "budget cap gives a partial burst with a reason",
        ruleset(
            target("a", 4, price_per_gpu_hour=2.0),
            limits=Limits(max_cost_per_hour=10.0),
        ),
        Snapshot(pods=tuple(pending(f"p{i}", 4) for i in range(3))),
        ["scaleup a +1 unit(s) x 4 GPU"],
        ["limited by global max_cost_per_hour 10", "2 pod(s) left unplaced"],
    ),
    Scenario(
        "global max_gpus counts units already borrowed",
        ruleset(target("a", 4), limits=Limits(max_gpus=12)),
        Snapshot(
            pods=tuple(pending(f"p{i}", 4) for i in range(3)),
            units=(unit("u1", since=0, last_busy_at=NOW),),
        ),
        ["scaleup a +2 unit(s) x 4 GPU"],
        ["limited by global max_gpus 12"],
    ),
    Scenario(
        "rule max_gpus binds before the global one",
        ruleset(
            target("a", 2),
            rules=(rule(ladder=("a",), limits=Limits(max_gpus=4)),),
            limits=Limits(max_gpus=100),
        ),
        Snapshot(pods=tuple(pending(f"p{i}", 2) for i in range(3))),
        ["scaleup a +2 unit(s) x 2 GPU"],
        ["limited by rule max_gpus 4"],
    ),
    Scenario(
        "target max_units binds, the ladder takes the rest",
        ruleset(target("a", 4, max_units=1), target("b", 4)),
        Snapshot(pods=(pending("p1", 4), pending("p2", 4))),
        ["scaleup a +1 unit(s) x 4 GPU", "scaleup b +1 unit(s) x 4 GPU"],
        ["limited by target a max_units 1"],
    ),
    Scenario(
        "max_in_flight holds back a burst",
        ruleset(target("a", 4, max_units=8, max_in_flight=2)),
        Snapshot(
            pods=tuple(pending(f"p{i}", 4) for i in range(3)),
            units=(unit("u1", UnitPhase.PROVISIONING, since=NOW - 5),),
        ),
        ["scaleup a +1 unit(s) x 4 GPU"],
        ["limited by target a max_in_flight 2"],
    ),
    Scenario(
        "ladder falls back when the first target is in backoff",
        ruleset(target("donor", 4), target("cloud", 4)),
        Snapshot(
            pods=(pending("p", 4),),
            targets={"donor": TargetStatus(backoff_until=NOW + 120, last_error="no GPUs")},
        ),
        ["scaleup cloud +1 unit(s) x 4 GPU"],
        ["skipped donor in backoff for 2m (no GPUs)"],
    ),
    Scenario(
        "a target whose existing units are unknown is held back: the ladder moves on",
        ruleset(target("donor", 4), target("cloud", 4)),
        Snapshot(
            pods=(pending("p", 4),),
            targets={"donor": TargetStatus(held_back="its existing units are unknown: boom")},
        ),
        ["scaleup cloud +1 unit(s) x 4 GPU"],
        ["skipped donor held back: its existing units are unknown: boom"],
    ),
    Scenario(
        "GPU model constraint skips a target that offers another model",
        ruleset(target("a", 4, gpu_model="A100"), target("b", 4, gpu_model="V100")),
        Snapshot(pods=(pending("p", 1, gpu=GpuRequest(gpus=1, models=frozenset({"V100"}))),)),
        ["scaleup b +1 unit(s) x 4 GPU"],
    ),
    Scenario(
        "MIG pods pack onto a MIG target",
        ruleset(target("a", 1), target("mig", 1, mig={"1g.10gb": 7})),
        Snapshot(
            pods=tuple(pending(f"m{i}", gpu=GpuRequest(mig={"1g.10gb": 1})) for i in range(7))
        ),
        ["scaleup mig +1 unit(s) x 1 GPU"],
        ["7 pod(s) packed onto 1 unit(s)"],
    ),
    Scenario(
        "a pod no target can hold is reported, not burst for",
        ruleset(target("a", 4)),
        Snapshot(pods=(pending("huge", 16),)),
        [],
        ["1 matched pod(s) pending that no new unit would take", "a: asks 16 GPUs, the node has 4"],
    ),
    Scenario(
        "scale-up cooldown",
        ruleset(target("a"), rules=(rule(cooldown=Cooldown(scale_up=30, scale_down=0)),)),
        Snapshot(pods=(pending("p", 1),), history={"r": RuleHistory(last_scale_up_at=NOW - 10)}),
        [],
        ["scale-up cooldown has 20s left"],
    ),
    Scenario(
        "pending trigger waits for its duration",
        ruleset(target("a"), rules=(rule(triggers=(PendingTrigger(gpus=1, for_s=120),)),)),
        Snapshot(pods=(pending("p", 1, since=NOW - 60),)),
        [],
        ["no trigger fired", "0 GPU(s) pending for 2m"],
    ),
    Scenario(
        "pending trigger threshold counts GPUs",
        ruleset(target("a"), rules=(rule(triggers=(PendingTrigger(gpus=4, for_s=0),)),)),
        Snapshot(pods=(pending("p1", 1), pending("p2", 2))),
        [],
        ["3 GPU(s) pending (2 pod(s)), threshold 4"],
    ),
    Scenario(
        "oldest pending trigger fires on one old pod",
        ruleset(target("a"), rules=(rule(triggers=(OldestPendingTrigger(older_than=300),)),)),
        Snapshot(pods=(pending("old", 1, since=NOW - 400), pending("new", 1, since=NOW))),
        ["scaleup a +1 unit(s) x 4 GPU"],
        ["oldest pending pod ml/old waited 6m40s"],
    ),
    Scenario(
        "first matching rule serves a pod, a later rule does not burst twice",
        ruleset(
            target("a"),
            target("b"),
            rules=(
                rule("first", ladder=("a",), match=Match(namespaces=frozenset({"ml"}))),
                rule("second", ladder=("b",)),
            ),
        ),
        Snapshot(pods=(pending("p", 1),)),
        ["scaleup a +1 unit(s) x 4 GPU"],
    ),
    Scenario(
        "dry run decides and explains but marks the decision",
        ruleset(target("a"), dry_run=True),
        Snapshot(pods=(pending("p", 1),)),
        ["scaleup a +1 unit(s) x 4 GPU"],
        ["(dry run)"],
    ),
    Scenario(
        "schedule window keeps min_gpus warm",
        ruleset(
            target("a", 4),
            rules=(
                rule(
                    triggers=(ScheduleTrigger(cron="0 * * * *", duration=1800),),
                    burst=Burst(ladder=("a",), min_gpus=8),
                ),
            ),
        ),
        Snapshot(),
        ["scaleup a +2 unit(s) x 4 GPU"],
        ["2 unit(s) to keep min_gpus 8", "window open"],
        now=3600 * 100 + 60,
    ),
    Scenario(
        "utilization trigger fires on a sustained high signal",
        ruleset(
            target("a", 2),
            rules=(
                rule(
                    triggers=(UtilizationTrigger(query="util", above=80, for_s=300),),
                    burst=Burst(ladder=("a",), min_gpus=2),
                ),
            ),
        ),
        Snapshot(metrics={"util": tuple(Sample(at=NOW - s, value=90) for s in range(0, 301, 30))}),
        ["scaleup a +1 unit(s) x 2 GPU"],
        ["lowest 90.0"],
    ),
    Scenario(
        "utilization trigger needs history across its window",
        ruleset(
            target("a", 2),
            rules=(
                rule(
                    triggers=(UtilizationTrigger(query="util", above=80, for_s=300),),
                    burst=Burst(ladder=("a",), min_gpus=2),
                ),
            ),
        ),
        Snapshot(metrics={"util": (Sample(at=NOW - 10, value=99),)}),
        [],
    ),
    Scenario(
        "in-flight unit past its ready deadline is abandoned",
        ruleset(target("a", 4, ready_deadline=600)),
        Snapshot(units=(unit("u1", UnitPhase.PROVISIONING, since=NOW - 700),)),
        ["abandon u1"],
        ["past its ready deadline 10m"],
    ),
    Scenario(
        "a unit past its deadline backs its target off in the same pass: the ladder goes on",
        ruleset(target("donor", 4, ready_deadline=600), target("cloud", 4)),
        Snapshot(
            pods=(pending("p", 4), pending("q", 4)),
            units=(unit("u1", UnitPhase.PROVISIONING, tgt="donor", since=NOW - 700),),
        ),
        ["abandon u1", "scaleup cloud +2 unit(s) x 4 GPU"],
        [
            "not ready 11m40s after the request, past its ready deadline 10m",
            "skipped donor in backoff for 5m (not ready 11m40s after the request, past its "
            "ready deadline 10m)",
        ],
    ),
    Scenario(
        "a second rule does not burst onto a target another rule's late unit backed off",
        ruleset(
            target("donor", 4, ready_deadline=600),
            rules=(
                rule("first", ladder=("donor",), match=Match(namespaces=frozenset({"a"}))),
                rule("second", ladder=("donor",), match=Match(namespaces=frozenset({"b"}))),
            ),
        ),
        Snapshot(
            pods=(pending("p", 4, namespace="a"),),
            units=(unit("u1", UnitPhase.PROVISIONING, tgt="donor", rule_name="second", since=0),),
        ),
        ["abandon u1"],
        ["left unplaced (1x 4 GPUs); donor in backoff for 5m (not ready 2h46m40s"],
    ),
    Scenario(
        "idle unit is cordoned after idle_for",
        ruleset(target("a")),
        Snapshot(units=(unit("u1", since=0, last_busy_at=NOW - 601),)),
        ["cordon u1"],
        ["idle 10m1s"],
    ),
    Scenario(
        "idle unit is kept before idle_for",
        ruleset(target("a")),
        Snapshot(units=(unit("u1", since=0, last_busy_at=NOW - 300),)),
        [],
    ),
    Scenario(
        "scale-down cooldown delays a cordon",
        ruleset(target("a"), rules=(rule(cooldown=Cooldown(scale_up=0, scale_down=300)),)),
        Snapshot(
            units=(unit("u1", since=0, last_busy_at=0),),
            history={"r": RuleHistory(last_scale_down_at=NOW - 100)},
        ),
        [],
        ["scale-down cooldown has 3m20s left"],
    ),
    Scenario(
        "a busy unit is never cordoned for idleness",
        ruleset(target("a")),
        Snapshot(
            pods=(running("job", "node-u1"),),
            units=(unit("u1", since=0, last_busy_at=0),),
        ),
        [],
    ),
    Scenario(
        "cordoned unit is drained after the validation delay",
        ruleset(target("a")),
        Snapshot(units=(unit("u1", UnitPhase.CORDONED, since=NOW - 61),)),
        ["drain u1"],
        ["validation 1m", "empty"],
    ),
    Scenario(
        "cordoned unit waits out the validation delay",
        ruleset(target("a")),
        Snapshot(units=(unit("u1", UnitPhase.CORDONED, since=NOW - 10),)),
        [],
    ),
    Scenario(
        "cordoned unit is taken back when demand returns",
        ruleset(target("a")),
        Snapshot(
            pods=(pending("p", 2),),
            units=(unit("u1", UnitPhase.CORDONED, since=NOW - 10),),
        ),
        ["uncordon u1"],
        ["cheaper than a new unit"],
    ),
    Scenario(
        "empty draining unit is released",
        ruleset(target("a")),
        Snapshot(units=(unit("u1", UnitPhase.DRAINING, since=NOW - 5),)),
        ["release u1"],
    ),
    Scenario(
        "release waits for a running pod",
        ruleset(target("a")),
        Snapshot(
            pods=(running("job", "node-u1"),),
            units=(unit("u1", UnitPhase.DRAINING, since=NOW - 99_999),),
        ),
        [],
        ["waiting for 1 running pod(s)"],
    ),
    Scenario(
        "evict mode evicts after max_wait, but never a never-evict pod",
        ruleset(target("a"), rules=(rule(release=evict_release),)),
        Snapshot(
            pods=(
                running("batch", "node-u1"),
                running("precious", "node-u1", never_evict=True),
            ),
            units=(unit("u1", UnitPhase.DRAINING, since=NOW - 3601),),
        ),
        ["evict u1"],
        ["1 never-evict pod(s) are waited for"],
    ),
    Scenario(
        "never-evict pods alone are always waited for",
        ruleset(target("a"), rules=(rule(release=evict_release),)),
        Snapshot(
            pods=(running("precious", "node-u1", never_evict=True),),
            units=(unit("u1", UnitPhase.DRAINING, since=NOW - 99_999),),
        ),
        [],
        ["(1 never-evict)"],
    ),
    Scenario(
        "a unit whose rule left the rules file is cordoned",
        ruleset(target("a")),
        Snapshot(units=(unit("u1", rule_name="gone", since=0),)),
        ["cordon u1"],
        ["rule 'gone' is no longer in the rules file"],
    ),
    Scenario(
        "nothing is decided on an unsynced view",
        ruleset(target("a")),
        Snapshot(pods=(pending("p", 1),), synced=False),
        [],
        ["waiting for the cluster view to sync"],
    ),
]


@pytest.mark.parametrize("s", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(s: Scenario) -> None:
    result = plan(s.snapshot, s.rules, s.now)
    text = "\n".join(str(d) for d in result.decisions)
    assert [signature(d) for d in result.actions] == s.actions, text
    for words in s.says:
        assert words in text, text


def test_scale_up_lists_the_pods_it_places() -> None:
    result = plan(Snapshot(pods=(pending("p1", 2), pending("p2", 2))), ruleset(target("a")), NOW)
    (up,) = result.actions
    assert isinstance(up, ScaleUp)
    assert sorted(up.pods) == ["ml/p1", "ml/p2"]


def test_higher_priority_pods_are_placed_first_when_a_limit_binds() -> None:
    pods: tuple[Pod, ...] = (
        pending("low", 4, priority=0, since=0),
        pending("high", 4, priority=100, since=50),
    )
    rules = ruleset(target("a", 4, max_units=1))
    (up,) = plan(Snapshot(pods=pods), rules, NOW).actions
    assert isinstance(up, ScaleUp)
    assert up.pods == ("ml/high",)


def test_two_rules_cannot_spend_the_same_room() -> None:
    rules = ruleset(
        target("a", 4),
        rules=(
            rule("one", match=Match(namespaces=frozenset({"x"}))),
            rule("two", match=Match(namespaces=frozenset({"y"}))),
        ),
        limits=Limits(max_gpus=4),
    )
    pods = (pending("p", 4, namespace="x"), pending("q", 4, namespace="y"))
    ups = [d for d in plan(Snapshot(pods=pods), rules, NOW).actions if isinstance(d, ScaleUp)]
    assert sum(u.units for u in ups) == 1

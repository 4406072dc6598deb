"""The actuator's bookkeeping: units through their phases, backoff, one call per unit at a time.

The driver here is a recorder (the provider calls themselves are tested in the provider suites).
"""

from __future__ import annotations

from burstd.actuate.actuator import Actuator
from burstd.model import (
    Abandon,
    Cordon,
    Drain,
    Release,
    ScaleUp,
    Snapshot,
    Uncordon,
    Unit,
    UnitPhase,
)
from burstd.plan.planner import Plan
from burstd.rules.types import Target
from tests.unit.builders import ruleset, running, target


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def create(self, unit: Unit, target: Target) -> None:
        self.calls.append(("create", unit.id))

    def cordon(self, unit: Unit, target: Target | None) -> None:
        self.calls.append(("cordon", unit.id))

    def uncordon(self, unit: Unit, target: Target | None) -> None:
        self.calls.append(("uncordon", unit.id))

    def evict(self, unit: Unit, target: Target | None, pods: tuple[str, ...]) -> None:
        self.calls.append(("evict", unit.id))

    def delete(self, unit: Unit, target: Target | None) -> None:
        self.calls.append(("delete", unit.id))


RULES = ruleset(target("a", 4, price_per_gpu_hour=1.0, backoff=60))


def phase(a: Actuator, uid: str) -> UnitPhase:
    return a.units[uid].phase


def act(a: Actuator, *decisions: object, now: float) -> None:
    a.execute(Plan(decisions=tuple(decisions)), RULES, now)  # type: ignore[arg-type]


def test_a_unit_lives_through_every_phase() -> None:
    rec = Recorder()
    a = Actuator(rec)
    act(a, ScaleUp(rule="r", target="a", units=1, gpus_per_unit=4, reason="x"), now=0)
    (uid,) = a.units
    assert uid == "a-1"
    assert a.units[uid].phase is UnitPhase.REQUESTED
    a.provisioning(uid, 1)
    a.ready(uid, "node-1", 120)
    assert a.units[uid].phase is UnitPhase.READY
    assert a.units[uid].node == "node-1"
    act(a, Cordon(rule="r", unit=uid, reason="idle"), now=800)
    a.done(uid)
    act(a, Drain(rule="r", unit=uid, reason="validated"), now=900)
    act(a, Release(rule="r", unit=uid, reason="empty"), now=910)
    assert a.units[uid].phase is UnitPhase.DRAINING  # until the provider says it is gone
    a.released(uid, 930)
    assert uid not in a.units
    assert rec.calls == [("create", uid), ("cordon", uid), ("delete", uid)]
    assert (a.provisioned_total, a.released_total) == (1, 1)


def test_a_unit_with_a_call_in_flight_waits_for_it() -> None:
    rec = Recorder()
    a = Actuator(rec)
    act(a, ScaleUp(rule="r", target="a", units=1, gpus_per_unit=4, reason="x"), now=0)
    a.ready("a-1", "n", 10)
    act(a, Cordon(rule="r", unit="a-1", reason="idle"), now=20)
    act(a, Uncordon(rule="r", unit="a-1", reason="demand"), now=21)  # cordon still in flight
    assert phase(a, "a-1") is UnitPhase.CORDONED
    a.done("a-1")
    act(a, Uncordon(rule="r", unit="a-1", reason="demand"), now=22)
    assert phase(a, "a-1") is UnitPhase.READY
    assert [c for c, _ in rec.calls] == ["create", "cordon", "uncordon"]


def test_abandon_cancels_an_in_flight_create_and_backs_the_target_off() -> None:
    rec = Recorder()
    a = Actuator(rec)
    act(a, ScaleUp(rule="r", target="a", units=1, gpus_per_unit=4, reason="x"), now=0)
    act(a, Abandon(rule="r", unit="a-1", reason="late"), now=1000)
    status = a.merged(Snapshot()).targets["a"]
    assert status.consecutive_failures == 1
    assert status.backoff_until == 1060
    a.ready("a-1", "late-node", 1001)  # the create finished after all: still abandoned
    assert a.units["a-1"].phase is UnitPhase.FAILED
    a.released("a-1", 1002)
    assert "a-1" not in a.units
    assert rec.calls == [("create", "a-1"), ("delete", "a-1")]


def test_backoff_doubles_with_each_failure_and_a_success_clears_it() -> None:
    a = Actuator(Recorder())
    act(a, ScaleUp(rule="r", target="a", units=3, gpus_per_unit=4, reason="x"), now=0)
    a.failed("a-1", "boom", RULES.targets["a"], 10)
    a.failed("a-2", "boom", RULES.targets["a"], 20)
    status = a.merged(Snapshot()).targets["a"]
    assert status.backoff_until == 20 + 120
    assert status.last_error == "boom"
    a.ready("a-3", "n", 30)
    assert "a" not in a.merged(Snapshot()).targets


def test_dry_run_decisions_change_nothing() -> None:
    rec = Recorder()
    a = Actuator(rec)
    done = a.execute(
        Plan(
            decisions=(
                ScaleUp(rule="r", target="a", units=2, gpus_per_unit=4, reason="x", dry_run=True),
            )
        ),
        RULES,
        0,
    )
    assert [d.acted for d in done] == [False]
    assert not a.units
    assert not rec.calls


def test_observe_records_when_a_unit_last_ran_a_pod() -> None:
    a = Actuator(Recorder())
    act(a, ScaleUp(rule="r", target="a", units=1, gpus_per_unit=4, reason="x"), now=0)
    a.ready("a-1", "node-x", 10)
    a.observe(Snapshot(pods=(running("job", "node-x"),)), 400)
    a.observe(Snapshot(pods=(running("job", "node-x"),)), 500)
    a.observe(Snapshot(), 900)
    assert a.units["a-1"].last_busy_at == 500
    a.observe(Snapshot(), 1000)
    assert a.units["a-1"].last_busy_at == 500

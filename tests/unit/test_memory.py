"""Durable memory: its stored form, the stores, and what a restarted actuator makes of it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from burstd.actuate.actuator import Actuator
from burstd.actuate.memory import (
    MAX_BYTES,
    FileStore,
    Memory,
    MemoryUnreadable,
    UnitMemory,
    decode,
    encode,
)
from burstd.model import (
    Cordon,
    Drain,
    NoOp,
    RuleHistory,
    ScaleUp,
    Snapshot,
    TargetStatus,
    UnitPhase,
)
from burstd.plan.planner import Plan, plan
from burstd.rules.types import Cooldown
from tests.unit.builders import pending, rule, ruleset, target, unit
from tests.unit.test_actuator import Recorder

RULES = ruleset(
    target("a", 4, backoff=60),
    rules=(rule("r", ladder=("a",), cooldown=Cooldown(scale_up=600, scale_down=300)),),
)


def remembered() -> Memory:
    return Memory(
        rules={"r": RuleHistory(last_scale_up_at=100.0, last_scale_down_at=None)},
        targets={"a": TargetStatus(consecutive_failures=2, backoff_until=900.0, last_error="x")},
        units={
            "u1": UnitMemory(
                phase=UnitPhase.READY,
                phase_since=120.0,
                requested_at=100.0,
                ready_at=120.0,
                last_busy_at=150.0,
            ),
            "u2": UnitMemory(
                phase=UnitPhase.DRAINING,
                phase_since=300.0,
                requested_at=100.0,
                ready_at=130.0,
                last_busy_at=200.0,
            ),
        },
        written_at=400.0,
    )


def test_memory_round_trips_through_its_stored_form() -> None:
    memory = remembered()
    back = decode(encode(memory))
    assert back.rules == memory.rules
    assert back.targets == memory.targets
    assert back.units == memory.units


def test_equal_memories_encode_equally() -> None:
    a = remembered()
    b = Memory(rules=dict(reversed(list(a.rules.items()))), targets=a.targets, units=a.units)
    assert encode(a) == encode(b)


def test_the_stored_form_is_versioned_and_bounded() -> None:
    doc = json.loads(encode(remembered()))
    assert doc["kind"] == "burstd-memory"
    assert doc["version"] == 1
    long_error = Memory(targets={"a": TargetStatus(last_error="e" * 10_000)})
    assert len(encode(long_error)) < 1000


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "not JSON"),
        ("{", "not JSON"),
        ("[" * 100_000, "not JSON"),
        ("[]", "not a burstd-memory document"),
        ('{"kind": "other"}', "not a burstd-memory document"),
        ('{"kind": "burstd-memory", "version": 2}', "version 2; this burstd reads version 1"),
        ('{"kind": "burstd-memory", "version": 1, "rules": []}', "rules: expected an object"),
        (
            '{"kind": "burstd-memory", "version": 1, "rules": {"r": {"last_scale_up_at": "x"}}}',
            "rules.r.last_scale_up_at: expected a time",
        ),
        (
            '{"kind": "burstd-memory", "version": 1, "targets": {"a": '
            '{"consecutive_failures": -1, "backoff_until": 0}}}',
            "targets.a.consecutive_failures: expected a count",
        ),
        (
            '{"kind": "burstd-memory", "version": 1, "units": {"u": {"phase": "gone", '
            '"phase_since": 1, "requested_at": 1}}}',
            "units.u.phase: unknown phase 'gone'",
        ),
        (
            '{"kind": "burstd-memory", "version": 1, "units": {"u": {"phase": "ready", '
            '"phase_since": NaN, "requested_at": 1}}}',
            "units.u.phase_since: expected a time",
        ),
        ("x" * (MAX_BYTES + 1), "more than"),
    ],
)
def test_unreadable_memory_says_why(text: str, why: str) -> None:
    with pytest.raises(MemoryUnreadable, match=why.replace("(", r"\(").replace(")", r"\)")):
        decode(text)


async def test_the_file_store_replaces_the_file_whole(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "state" / "memory.json")
    assert await store.read() is None
    await store.write("one")
    await store.write("two")
    assert await store.read() == "two"
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["memory.json"]


async def test_the_file_store_reports_bytes_that_are_not_text(tmp_path: Path) -> None:
    path = tmp_path / "memory.json"
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(MemoryUnreadable):
        await FileStore(path).read()


def adopted(now: float) -> Actuator:
    """An actuator that just adopted u1 (ready) and u2 (cordoned) with fresh timers."""
    a = Actuator(Recorder())
    a.adopt(
        [
            unit("u1", UnitPhase.READY, since=now, last_busy_at=now, requested_at=110.0),
            unit("u2", UnitPhase.CORDONED, since=now, last_busy_at=now, requested_at=110.0),
        ]
    )
    return a


def test_restore_carries_cooldowns_backoffs_and_unit_timers_over() -> None:
    a = adopted(now=1000.0)
    a.restore(remembered(), ["r"], 1000.0)
    snap = a.merged(Snapshot())
    assert snap.history["r"].last_scale_up_at == 100.0
    assert snap.targets["a"].backoff_until == 900.0
    u1, u2 = a.units["u1"], a.units["u2"]
    assert (u1.phase, u1.phase_since, u1.last_busy_at) == (UnitPhase.READY, 120.0, 150.0)
    # The cluster only shows a cordon; memory knows the drain began at 300.
    assert (u2.phase, u2.phase_since) == (UnitPhase.DRAINING, 300.0)
    assert u2.requested_at == 100.0


def test_units_adopted_late_take_their_remembered_timers_and_leave_the_rest_alone() -> None:
    """A target that could list its units only after planning began: its units get what
    ``restore`` would have given them; cooldowns and backoffs since are not rolled back."""
    a = Actuator(Recorder())
    a.restore(remembered(), ["r"], 1000.0)
    a._touch("r", up=1500.0)  # the daemon scaled up meanwhile
    said = a.adopt_late(
        [unit("u1", UnitPhase.READY, since=2000.0, last_busy_at=2000.0, requested_at=110.0)],
        remembered(),
    )
    assert said == ["u1: ready since 120"]
    u1 = a.units["u1"]
    assert (u1.phase_since, u1.last_busy_at) == (120.0, 150.0)
    assert a.merged(Snapshot()).history["r"].last_scale_up_at == 1500.0


def test_where_cluster_and_memory_disagree_the_cluster_wins_with_fresh_timers() -> None:
    a = Actuator(Recorder())
    # Memory says ready since 120; the node is cordoned (the crash came after the cordon).
    a.adopt([unit("u1", UnitPhase.CORDONED, since=1000.0, requested_at=100.0)])
    a.restore(remembered(), ["r"], 1000.0)
    assert a.units["u1"].phase is UnitPhase.CORDONED
    assert a.units["u1"].phase_since == 1000.0


def test_unreadable_memory_puts_every_cooldown_in_force() -> None:
    a = adopted(now=1000.0)
    a.restore(None, ["r", "other"], 1000.0)
    history = a.merged(Snapshot()).history
    assert history["r"] == RuleHistory(last_scale_up_at=1000.0, last_scale_down_at=1000.0)
    assert history["other"].last_scale_up_at == 1000.0
    # No release before a fresh idle period: timers stay as adoption set them.
    assert a.units["u1"].last_busy_at == 1000.0


def test_a_restored_cooldown_holds_a_scale_up_back() -> None:
    a = Actuator(Recorder())
    a.restore(remembered(), ["r"], 400.0)
    snap = a.merged(Snapshot(pods=(pending("p", 4),)))
    result = plan(snap, RULES, 400.0)
    assert not any(isinstance(d, ScaleUp) for d in result.decisions)
    assert any(isinstance(d, NoOp) and "cooldown" in d.reason for d in result.decisions)
    # Past the cooldown (and the target's remembered backoff) the pod is bursted for.
    later = plan(a.merged(Snapshot(pods=(pending("p", 4),))), RULES, 901.0)
    assert any(isinstance(d, ScaleUp) for d in later.decisions)


def test_without_memory_a_crash_still_cannot_hide_the_last_burst() -> None:
    """Memory written a moment too late: the adopted units' creation is the floor."""
    a = adopted(now=400.0)
    a.restore(Memory(), ["r"], 400.0)
    assert a.merged(Snapshot()).history["r"].last_scale_up_at == 110.0


def test_memory_exports_what_the_actuator_knows() -> None:
    a = Actuator(Recorder())
    a.execute(
        Plan(decisions=(ScaleUp(rule="r", target="a", units=1, gpus_per_unit=4, reason="x"),)),
        RULES,
        50.0,
    )
    (uid,) = a.units
    a.ready(uid, "n1", 60.0)
    a.execute(Plan(decisions=(Cordon(unit=uid, rule="r", reason="idle"),)), RULES, 70.0)
    a.done(uid)
    a.execute(Plan(decisions=(Drain(unit=uid, rule="r", reason="x"),)), RULES, 80.0)
    m = a.memory(90.0)
    assert m.rules["r"].last_scale_up_at == 50.0
    assert m.rules["r"].last_scale_down_at == 70.0
    assert m.units[uid].phase is UnitPhase.DRAINING
    assert m.units[uid].phase_since == 80.0
    assert m.units[uid].requested_at == 50.0
    assert decode(encode(m)).units == m.units


def test_an_orphaned_drain_is_remembered_so_its_rule_coming_back_takes_it_back() -> None:
    a = Actuator(Recorder())
    a.adopt([unit("u2", UnitPhase.CORDONED, since=1000.0, requested_at=100.0)])
    memory = remembered()
    drained = {**memory.units, "u2": replace(memory.units["u2"], orphaned=True)}
    a.restore(decode(encode(replace(memory, units=drained))), ["r"], 1000.0)
    assert a.units["u2"].orphaned
    assert a.units["u2"].phase is UnitPhase.DRAINING

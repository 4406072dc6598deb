"""Missing metric data is not low utilization: state, engine and planner; and the planner's
``wake_at`` that the daemon's loop honours, on virtual time across a daylight-saving change."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from burstd.control.trigger import WAKE, Trigger
from burstd.model import Cordon, Drain, NoOp, Sample, ScaleUp, Snapshot, StaleSignal, UnitPhase
from burstd.model.events import MetricMissing, MetricSamples, SignalStaleNotice
from burstd.plan.planner import plan
from burstd.rules.types import (
    Burst,
    LoopSettings,
    PendingTrigger,
    Release,
    RuleSet,
    ScheduleTrigger,
    UtilizationTrigger,
)
from burstd.state.cluster import ClusterState
from tests.unit.builders import NOW, pending, rule, ruleset, target, unit
from tests.unit.test_trigger import Recorder, VirtualTime, settle

Q = "avg(DCGM_FI_DEV_GPU_UTIL)"
UTIL = UtilizationTrigger(query=Q, above=80, for_s=300)


def high(value: float = 90.0) -> tuple[Sample, ...]:
    return tuple(Sample(at=NOW - s, value=value) for s in range(0, 301, 30))


def util_rules(min_gpus: int = 4) -> RuleSet:
    return ruleset(
        target("a", 4),
        rules=(
            rule(
                triggers=(UTIL,),
                burst=Burst(ladder=("a",), min_gpus=min_gpus),
                release=Release(idle_for=60, validation=30),
            ),
        ),
    )


def test_state_records_stale_since_the_first_miss_and_clears_on_data() -> None:
    state = ClusterState()
    assert state.apply(MetricSamples(query=Q, samples=high(), at=NOW)) is True
    assert state.apply(MetricMissing(query=Q, at=NOW + 10, reason="down")) is True
    assert state.apply(MetricMissing(query=Q, at=NOW + 20, reason="still down")) is False
    snap = state.snapshot(NOW + 20)
    assert snap.stale[Q] == StaleSignal(since=NOW + 10, reason="still down")
    notice = SignalStaleNotice(query=Q, since=NOW + 10, at=NOW + 80, reason="still down")
    state.apply(notice)
    assert list(state.notices) == [notice]
    state.apply(MetricSamples(query=Q, samples=high(), at=NOW + 90))
    assert Q not in state.snapshot(NOW + 90).stale


def test_stale_signal_neither_fires_nor_counts_as_low() -> None:
    snap = Snapshot(metrics={Q: high()}, stale={Q: StaleSignal(since=NOW - 120, reason="down")})
    result = plan(snap, util_rules(), NOW)
    assert not any(isinstance(d, ScaleUp) for d in result.decisions)
    assert "stale since" in result.views[0].why
    assert "not deciding on missing data" in result.views[0].why
    assert result.views[0].stale


def test_fresh_high_signal_fires() -> None:
    result = plan(Snapshot(metrics={Q: high()}), util_rules(), NOW)
    assert [type(d) for d in result.actions] == [ScaleUp]


def test_units_are_kept_while_the_signal_is_stale() -> None:
    idle = unit("u1", since=0, last_busy_at=NOW - 600)
    cordoned = unit("u2", UnitPhase.CORDONED, since=NOW - 600)
    low = tuple(Sample(at=NOW - s, value=5) for s in range(0, 301, 30))
    fresh = plan(Snapshot(units=(idle, cordoned), metrics={Q: low}), util_rules(), NOW)
    assert sorted(type(d).__name__ for d in fresh.actions) == ["Cordon", "Drain"]

    stale = Snapshot(
        units=(idle, cordoned),
        metrics={Q: low},
        stale={Q: StaleSignal(since=NOW - 30, reason="no series")},
    )
    held = plan(stale, util_rules(), NOW)
    assert not any(isinstance(d, Cordon | Drain) for d in held.decisions)
    kept = [d.reason for d in held.decisions if isinstance(d, NoOp) and "kept" in d.reason]
    assert len(kept) == 2
    assert all("no series" in r for r in kept)


def test_min_gpus_keeps_an_idle_unit_while_the_trigger_fires() -> None:
    idle = unit("u1", since=0, last_busy_at=NOW - 600)
    result = plan(Snapshot(units=(idle,), metrics={Q: high()}), util_rules(), NOW)
    assert not result.actions
    assert any("kept for min_gpus 4" in d.reason for d in result.decisions)


# Schedule windows: when the loop must wake ------------------------------------------------

LAB = ScheduleTrigger(cron="45 13 * * tue", duration=3 * 3600 + 15 * 60, timezone="Europe/Rome")


def lab_rules() -> RuleSet:
    return ruleset(
        target("a", 4), rules=(rule(triggers=(LAB,), burst=Burst(ladder=("a",), min_gpus=8)),)
    )


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_wake_at_follows_the_lab_window_across_the_spring_dst_change() -> None:
    # Europe/Rome moves to summer time on Sunday 28 March 2027: the Tuesday lab at 13:45
    # local is 12:45 UTC before and 11:45 UTC after.
    before = plan(Snapshot(), lab_rules(), ts("2027-03-23T10:00:00"))
    assert before.wake_at == ts("2027-03-23T12:45:00")
    during = plan(Snapshot(), lab_rules(), ts("2027-03-23T12:45:00"))
    assert [type(d) for d in during.actions] == [ScaleUp]
    assert during.wake_at == ts("2027-03-23T16:00:00")  # 17:00 CET, the window closes
    after = plan(Snapshot(), lab_rules(), ts("2027-03-23T16:00:01"))
    assert not after.actions
    assert after.wake_at == ts("2027-03-30T11:45:00")  # 13:45 CEST


def test_wake_at_for_a_pending_pod_reaching_its_wait() -> None:
    rs = ruleset(target("a"), rules=(rule(triggers=(PendingTrigger(gpus=1, for_s=30),)),))
    result = plan(Snapshot(pods=(pending("p", since=NOW - 10),)), rs, NOW)
    assert not result.actions
    assert result.wake_at == NOW + 20


async def test_the_loop_runs_when_the_window_opens_not_at_the_next_interval() -> None:
    """The daemon's loop (Trigger + planner) on virtual time over the DST weekend: with a
    one-hour backstop interval the pass that pre-bursts still comes at 11:45:00 UTC."""
    vt = VirtualTime()
    vt.t = ts("2027-03-27T00:00:30")
    rs = lab_rules()
    trigger = Trigger(vt, lambda: LoopSettings(interval=3600.0), sleep=vt.sleep)
    rec = Recorder(trigger, vt)
    scale_ups: list[float] = []

    async def loop() -> None:
        while True:
            why = await trigger.wait()
            rec.passes.append((vt.now(), why))
            result = plan(Snapshot(), rs, vt.now())
            if result.actions:
                scale_ups.append(vt.now())
            trigger.wake_at(result.wake_at)

    task = asyncio.create_task(loop())
    await settle()
    await vt.advance(4 * 86400)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert scale_ups[0] == ts("2027-03-30T11:45:00")
    assert (ts("2027-03-30T11:45:00"), WAKE) in rec.passes

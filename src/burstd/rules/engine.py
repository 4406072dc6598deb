"""Which pods each rule serves, and whether its triggers fire. Pure: snapshot, rules, now in;
data out.

A pod is served by the first rule (in file order) whose match holds, so two rules never burst
for the same pod.

Missing data is not low utilization: a utilization trigger whose query is stale (its source is
down, the query failed, or it returned no series) does not fire, and marks its rule's view
``stale``, which stops the planner from giving the rule's units back on that signal.

Each trigger also says when, with nothing else changing, its answer would next flip
(``wake_at``: a pending pod reaching ``for``, a schedule window opening or closing), so the
daemon's loop can wake at that moment and the simulator can skip the passes in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from burstd.model import Pod, Sample, Snapshot, StaleSignal
from burstd.model.durations import format_duration
from burstd.rules.cron import cron_trigger
from burstd.rules.types import (
    OldestPendingTrigger,
    PendingTrigger,
    Rule,
    RuleSet,
    ScheduleTrigger,
    Trigger,
    UtilizationTrigger,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggerResult:
    fired: bool
    reason: str
    stale: bool = False
    """The trigger reads a metric with no data right now: it neither fires nor lets units go."""
    wake_at: float | None = None
    """The next time (after ``now``) at which this trigger's answer may change by itself."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleView:
    """A rule's share of the snapshot: its pending demand and what its triggers said."""

    rule: Rule
    demand: tuple[Pod, ...]
    triggers: tuple[TriggerResult, ...]
    # Keys of the pods a burst may be for, when only cost-aware pending triggers fired: the
    # pods that waited their own wait. None: all of ``demand``.
    burstable: frozenset[str] | None = None

    @property
    def fired(self) -> bool:
        return any(t.fired for t in self.triggers)

    @property
    def stale(self) -> str:
        """The reasons of the triggers whose data is missing ("" when none is)."""
        return "; ".join(t.reason for t in self.triggers if t.stale)

    @property
    def wake_at(self) -> float | None:
        return min((t.wake_at for t in self.triggers if t.wake_at is not None), default=None)

    @property
    def why(self) -> str:
        """The fired triggers' reasons, or all of them when none fired."""
        fired = [t.reason for t in self.triggers if t.fired]
        return "; ".join(fired or [t.reason for t in self.triggers])


def assign(pods: Sequence[Pod], rules: Sequence[Rule]) -> dict[str, list[Pod]]:
    """Each pod to the first rule that matches it (pods no rule matches are left out)."""
    out: dict[str, list[Pod]] = {r.name: [] for r in rules}
    for pod in pods:
        for rule in rules:
            if rule.match.matches(pod):
                out[rule.name].append(pod)
                break
    return out


def evaluate(snapshot: Snapshot, ruleset: RuleSet, now: float) -> tuple[RuleView, ...]:
    demand = [p for p in snapshot.pods if p.is_demand]
    served = assign(demand, ruleset.rules)
    views = []
    for rule in ruleset.rules:
        pods = tuple(served[rule.name])
        results = tuple(check(t, pods, snapshot, now) for t in rule.triggers)
        views.append(
            RuleView(
                rule=rule,
                demand=pods,
                triggers=results,
                burstable=_burstable(rule.triggers, results, pods, now),
            )
        )
    return tuple(views)


def _burstable(
    triggers: Sequence[Trigger], results: Sequence[TriggerResult], pods: Sequence[Pod], now: float
) -> frozenset[str] | None:
    """Pods a burst may be for: with only cost-aware pending triggers fired, each pod goes out
    once it waited its own wait (as Starburst sends each job at its own timeout)."""
    fired = [t for t, r in zip(triggers, results, strict=True) if r.fired]
    if not fired or not all(isinstance(t, PendingTrigger) and t.cost_aware for t in fired):
        return None
    return frozenset(
        p.key
        for p in pods
        if any(p.waiting_for(now) >= t.wait_for(p) for t in fired if isinstance(t, PendingTrigger))
    )


def check(trigger: Trigger, demand: Sequence[Pod], snapshot: Snapshot, now: float) -> TriggerResult:
    match trigger:
        case PendingTrigger():
            return _pending(trigger, demand, now)
        case OldestPendingTrigger():
            return _oldest(trigger, demand, now)
        case UtilizationTrigger():
            stale = snapshot.stale.get(trigger.query)
            if stale is not None:
                return _stale(trigger, stale, now)
            return _utilization(trigger, snapshot.metrics.get(trigger.query, ()), now)
        case ScheduleTrigger():
            return _schedule(trigger, now)


def _pending(t: PendingTrigger, demand: Sequence[Pod], now: float) -> TriggerResult:
    waited = [p for p in demand if p.waiting_for(now) >= t.wait_for(p)]
    gpus = sum(p.gpu.gpu_equivalent for p in waited)
    if t.cost_aware:
        span = " for their cost-aware wait"
    else:
        span = f" for {format_duration(t.for_s)}" if t.for_s else ""
    what = f"{gpus:g} GPU(s) pending{span} ({len(waited)} pod(s)), threshold {t.gpus:g}"
    later = (_since(p) + t.wait_for(p) for p in demand)
    return TriggerResult(
        fired=bool(waited) and gpus + 1e-9 >= t.gpus,
        reason=what,
        wake_at=min((a for a in later if a > now), default=None),
    )


def _since(pod: Pod) -> float:
    """When the pod's wait started, as ``Pod.waiting_for`` counts it."""
    return pod.pending_since if pod.pending_since is not None else pod.created_at


def _oldest(t: OldestPendingTrigger, demand: Sequence[Pod], now: float) -> TriggerResult:
    if not demand:
        return TriggerResult(fired=False, reason="no pending pods")
    oldest = max(demand, key=lambda p: p.waiting_for(now))
    waited = oldest.waiting_for(now)
    what = (
        f"oldest pending pod {oldest.key} waited {format_duration(waited)}, "
        f"threshold {format_duration(t.older_than)}"
    )
    fired = waited >= t.older_than
    wake = _since(oldest) + t.older_than
    return TriggerResult(fired=fired, reason=what, wake_at=None if fired or wake <= now else wake)


def _utilization(t: UtilizationTrigger, samples: Sequence[Sample], now: float) -> TriggerResult:
    start = now - t.for_s
    window = [s for s in samples if start <= s.at <= now]
    # The value in force when the window opened is the last sample before it: with it the
    # window is covered whatever the sampling step.
    before = max((s for s in samples if s.at < start), key=lambda s: s.at, default=None)
    if before is not None:
        window.append(before)
    if not window:
        return TriggerResult(fired=False, reason=f"no samples of {t.query!r} in the window")
    low = min(s.value for s in window)
    # The samples must span most of the window, or a single high sample would fire it.
    covered = before is not None or now - min(s.at for s in window) >= 0.9 * t.for_s
    what = f"{t.query!r} ≥ {t.above:g} for {format_duration(t.for_s)}: lowest {low:.1f}" + (
        "" if covered else ", not enough history yet"
    )
    return TriggerResult(fired=covered and low >= t.above, reason=what)


def _stale(t: UtilizationTrigger, stale: StaleSignal, now: float) -> TriggerResult:
    since = datetime.fromtimestamp(stale.since, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    what = (
        f"{t.query!r} has no data, stale since {since} ({format_duration(now - stale.since)}): "
        f"{stale.reason}; not deciding on missing data"
    )
    return TriggerResult(fired=False, reason=what, stale=True)


def _schedule(t: ScheduleTrigger, now: float) -> TriggerResult:
    at = datetime.fromtimestamp(now, tz=UTC)
    start = at - timedelta(seconds=t.duration)
    cron = cron_trigger(t.cron, t.timezone)
    opened = cron.get_next_fire_time(None, start)
    if opened is not None and opened <= at:
        closes = opened.timestamp() + t.duration
        left = format_duration(closes - now)
        return TriggerResult(
            fired=True,
            reason=f"schedule {t.cron!r} window open, {left} left",
            wake_at=closes if closes > now else None,
        )
    # The window opens at ``opened`` (already the first fire time after ``start``), or the
    # next one after now when ``opened`` lies in the past window's shadow.
    nxt = opened if opened is not None and opened > at else cron.get_next_fire_time(None, at)
    return TriggerResult(
        fired=False,
        reason=f"schedule {t.cron!r} window closed"
        + (f", opens {nxt.isoformat()}" if nxt is not None else ""),
        wake_at=nxt.timestamp() if nxt is not None else None,
    )

"""When could the next periodic pass decide something different? So the simulator may skip the
passes in between.

The daemon runs a pass every ``loop.interval``. A pass whose inputs are unchanged decides the
same thing, so the simulator skips it, and runs the next periodic pass only when

* something the planner reads changed since the last pass: a pod became (or stopped being)
  pending demand, a pod started or ended on a burst unit, a unit changed phase, the actuator
  acted (the simulator marks these as they happen); or
* the time crossed one of the thresholds the planner compares ``now`` with. The triggers' own
  (``for``/``older_than`` of pending triggers, schedule windows opening and closing) come with
  the plan as ``Plan.wake_at``, which the daemon's loop honours too; the planner's unit and
  rule timers are listed here from ``burstd.plan.planner``: ready deadlines, the ready settle
  window, idle/validation/max-wait timers, cooldowns, target backoffs; each only where the
  planner's branch for the unit's phase (or the presence of pending demand) reads it.

Utilization triggers read metric samples that change at every pass, so a rules file with one
runs every periodic pass. The list must follow the planner: ``tests/sim/test_equivalence.py``
runs the same workload with and without skipping and requires identical results, which fails
if a threshold is missing here.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator

from burstd.model import Unit, UnitPhase
from burstd.model.units import RuleHistory, TargetStatus
from burstd.plan.planner import READY_SETTLE_S
from burstd.rules.types import (
    DrainMode,
    RuleSet,
    UtilizationTrigger,
)


def has_utilization(ruleset: RuleSet) -> bool:
    return any(isinstance(t, UtilizationTrigger) for r in ruleset.rules for t in r.triggers)


class Thresholds:
    """The time thresholds of one rules file, precomputed per rule."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.rules = {r.name: r for r in ruleset.rules}

    def candidates(
        self,
        units: Iterable[Unit],
        targets: dict[str, TargetStatus],
        history: dict[str, RuleHistory],
        demand: bool,
        busy_nodes: Container[str],
        now: float,
    ) -> Iterator[float]:
        """Times at which a comparison with ``now`` in the planner may flip, following its
        branches: only thresholds a decision can depend on in the units' current phases.
        ``demand``: some pod is pending."""
        ruleset = self.ruleset
        idle_ready = False
        for u in units:
            rule = self.rules.get(u.rule)
            if rule is None:
                yield u.phase_since  # an orphan is drained with no validation delay
                continue
            phase = u.phase
            if phase.in_flight:
                target = ruleset.targets.get(u.target)
                if target is not None:
                    yield u.requested_at + target.ready_deadline
            elif phase is UnitPhase.READY:
                if demand and u.ready_at is not None:
                    yield u.ready_at + READY_SETTLE_S
                if u.node is None or u.node not in busy_nodes:
                    idle_ready = True
                    idle_since = u.last_busy_at if u.last_busy_at is not None else u.ready_at
                    if idle_since is None:
                        idle_since = u.phase_since
                    yield idle_since + rule.release.idle_for
            elif phase is UnitPhase.CORDONED:
                yield u.phase_since + rule.release.validation
            elif phase is UnitPhase.DRAINING and rule.release.drain_mode is DrainMode.EVICT:
                yield u.phase_since + rule.release.max_wait
        if idle_ready or demand:
            for name, h in history.items():
                rule = self.rules.get(name)
                if rule is None:
                    continue
                if h.last_scale_up_at is not None:
                    yield h.last_scale_up_at + rule.cooldown.scale_up
                    yield h.last_scale_up_at + rule.cooldown.scale_down
                if h.last_scale_down_at is not None:
                    yield h.last_scale_down_at + rule.cooldown.scale_down
        if demand:
            for status in targets.values():
                yield status.backoff_until

"""The actuator: carries decisions out and remembers units, target backoffs and cooldowns.

It is synchronous and keeps no clock: ``execute`` records what it asked for and hands the
provider calls to a ``Driver``; the driver reports back through ``provisioned``, ``ready``,
``failed`` and ``released`` with the time it saw them. The daemon's driver runs async provider
calls as tasks; the simulator's applies them to the simulated world. One unit has at most one
provider call in flight: decisions about a busy unit wait for the next pass.

Two things it notices on each pass (``observe``), so the pure planner can read them:

* a unit's node cordoned by someone else (unschedulable without ``burstd.io/cordoned-at``)
  marks the unit ``held`` — the operator's decision, never undone by burstd — and an operator's
  uncordon clears it;
* the safety net: the pods a scale-up packed onto a unit that are still pending
  ``READY_SETTLE_S`` after it became ready while it runs nothing become ``Misfit`` records:
  not bursted for on that target for ``MISFIT_BACKOFF_S`` (doubling with each miss, up to
  ``MAX_BACKOFF_S``). Whatever the model of the node missed, the empty unit then goes idle and
  is released, and no new one follows.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from burstd import faults
from burstd.actuate.memory import Memory, UnitMemory
from burstd.model import (
    Abandon,
    Cordon,
    Decision,
    Drain,
    Evict,
    Misfit,
    PodPhase,
    Release,
    RuleHistory,
    ScaleUp,
    Snapshot,
    TargetStatus,
    Uncordon,
    Unit,
    UnitPhase,
)
from burstd.model.units import MAX_BACKOFF_S
from burstd.plan.planner import READY_SETTLE_S, Plan
from burstd.rules.types import RuleSet, Target

MISFIT_BACKOFF_S = 600.0


class Driver(Protocol):
    """Starts provider calls. Each returns at once; results come back through the actuator's
    callbacks. Implementation required for every method."""

    def create(self, unit: Unit, target: Target) -> None: ...
    def cordon(self, unit: Unit, target: Target | None) -> None: ...
    def uncordon(self, unit: Unit, target: Target | None) -> None: ...
    def evict(self, unit: Unit, target: Target | None, pods: tuple[str, ...]) -> None: ...
    def delete(self, unit: Unit, target: Target | None) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    """A decision the actuator acted on (``acted=False``: recorded only, as in dry run)."""

    decision: Decision
    acted: bool
    units: tuple[str, ...] = ()
    at: float = 0.0
    """The clock time of the pass that decided it (cooldowns count from it)."""


def sequential_ids(prefix: str = "") -> Callable[[str], str]:
    """Unit ids ``<target>-1``, ``<target>-2``…: deterministic, for the simulator and tests."""
    counter = itertools.count(1)
    return lambda target: f"{prefix}{target}-{next(counter)}"


class Actuator:
    def __init__(self, driver: Driver, new_id: Callable[[str], str] | None = None) -> None:
        self._driver = driver
        self._new_id = new_id or sequential_ids()
        self._units: dict[str, Unit] = {}
        self._targets: dict[str, TargetStatus] = {}
        self._history: dict[str, RuleHistory] = {}
        self._busy: set[str] = set()
        self._running: set[str] = set()  # units that ran a pod at the last observation
        self._seen_running: dict[str, float] = {}  # unit -> last observation it ran a pod
        # unit -> (the units of its scale-up, the pods that scale-up packed onto them)
        self._packed: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self._misfits: dict[tuple[str, str], Misfit] = {}  # (pod, target) -> record
        # target -> (why it is held back, its provider's problems): found, not remembered
        self._findings: dict[str, tuple[str, tuple[str, ...]]] = {}
        self.listeners: list[Callable[[Applied], None]] = []
        self.provisioned_total = 0
        self.released_total = 0
        self.failed_total = 0

    # Views for the planner -------------------------------------------------------------

    @property
    def units(self) -> Mapping[str, Unit]:
        return self._units

    @property
    def misfits(self) -> Mapping[tuple[str, str], Misfit]:
        """The safety net's records, by (pod, target)."""
        return self._misfits

    def merged(self, base: Snapshot) -> Snapshot:
        """``base`` (pods, nodes, metrics) with the actuator's units and memory."""
        # Built field by field rather than with dataclasses.replace: this runs every pass.
        return Snapshot(
            pods=base.pods,
            nodes=base.nodes,
            units=tuple(self._units.values()),
            targets=self._target_statuses(),
            history=dict(self._history),
            metrics=base.metrics,
            stale=base.stale,
            synced=base.synced,
            misfits=tuple(self._misfits.values()),
        )

    def _target_statuses(self) -> dict[str, TargetStatus]:
        out = dict(self._targets)
        for name, (held_back, problems) in self._findings.items():
            out[name] = replace(
                out.get(name, TargetStatus()), held_back=held_back, problems=problems
            )
        return out

    def hold_back(self, target: str, why: str) -> None:
        """Burst nothing onto ``target`` while ``why`` holds (``""``: it no longer does)."""
        self._find(target, held_back=why)

    def found(self, target: str, problems: Iterable[str]) -> None:
        """What ``target``'s provider now finds wrong with it (nothing: an empty list)."""
        self._find(target, problems=tuple(problems))

    def _find(
        self, target: str, held_back: str | None = None, problems: tuple[str, ...] | None = None
    ) -> None:
        old_held, old_problems = self._findings.get(target, ("", ()))
        held = old_held if held_back is None else held_back
        found = old_problems if problems is None else problems
        if held or found:
            self._findings[target] = (held, found)
        else:
            self._findings.pop(target, None)

    def observe(self, base: Snapshot, now: float) -> None:
        """Note which units run pods now, for idle times.

        The planner reads ``last_busy_at`` only of units that run nothing, so a unit's record
        is rewritten once, when it goes idle, rather than on every pass while it works.
        """
        busy_nodes = {p.node for p in base.pods if p.is_running and p.node is not None}
        running = set()
        for uid, unit in self._units.items():
            if unit.node is not None and unit.node in busy_nodes:
                running.add(uid)
                self._seen_running[uid] = now
        for uid in self._running - running:
            went_idle = self._units.get(uid)
            if went_idle is not None:
                self._units[uid] = replace(went_idle, last_busy_at=self._seen_running[uid])
        self._running = running
        if base.nodes:
            self._note_held(base, now)
        if self._packed or self._misfits:
            self._safety_net(base, running, now)

    def _note_held(self, base: Snapshot, now: float) -> None:
        """A ready unit whose node someone else cordoned is held; uncordoned, it is not."""
        nodes = {n.name: n for n in base.nodes if n.unit is not None}
        for uid, unit in self._units.items():
            if unit.node is None or uid in self._busy or unit.phase is not UnitPhase.READY:
                continue
            node = nodes.get(unit.node)
            if node is None:
                continue
            held = node.unschedulable and not node.cordoned_by_burstd
            if held != unit.held:
                self._units[uid] = replace(unit, held=held, phase_since=now)

    def _safety_net(self, base: Snapshot, running: set[str], now: float) -> None:
        pending = {p.key for p in base.pods if p.node is None and p.phase is PodPhase.PENDING}
        for key in [k for k in self._misfits if k[0] not in pending]:
            del self._misfits[key]  # placed somewhere, or gone
        for uid, (group, pods) in list(self._packed.items()):
            unit = self._units.get(uid)
            if unit is None or not unit.phase.alive:
                del self._packed[uid]
                continue
            if any(not self._settled(u, now) for u in group):
                continue  # the pods may be meant for a unit of the same scale-up still coming
            waiting = tuple(p for p in pods if p in pending)
            if not waiting:
                del self._packed[uid]
            elif uid in running:
                # It works: some of its pods landed. The rest may have lost the room to others;
                # look again once it is empty.
                self._packed[uid] = (group, waiting)
            else:
                del self._packed[uid]
                for pod in waiting:
                    self._misfit(pod, unit, now)

    def _settled(self, uid: str, now: float) -> bool:
        """Ready for the grace period, or gone."""
        unit = self._units.get(uid)
        if unit is None or not unit.phase.alive:
            return True
        return unit.ready_at is not None and now - unit.ready_at >= READY_SETTLE_S

    def _misfit(self, pod: str, unit: Unit, now: float) -> None:
        old = self._misfits.get((pod, unit.target))
        misses = old.misses + 1 if old is not None else 1
        wait = min(MAX_BACKOFF_S, MISFIT_BACKOFF_S * 2.0 ** min(misses - 1, 30))
        self._misfits[(pod, unit.target)] = Misfit(
            pod=pod, target=unit.target, unit=unit.id, until=now + wait, misses=misses
        )

    def saw_running(self, node: str, now: float) -> None:
        """A pod ran on ``node`` until ``now`` and has just finished or left. Passes only see
        snapshots; without this a unit would look idle since the last pass that saw the pod.
        The daemon and the simulator both call it, so their idle timers agree."""
        for uid, unit in self._units.items():
            if unit.node == node:
                self._seen_running[uid] = now
                self._running.add(uid)

    def adopt(self, units: Iterable[Unit]) -> None:
        """Take over units found in the cluster after a restart."""
        for unit in units:
            self._units.setdefault(unit.id, unit)

    # Durable memory ----------------------------------------------------------------------

    def memory(self, now: float) -> Memory:
        """What the planner reads besides the cluster, for the daemon to keep across a restart."""
        return Memory(
            rules=dict(self._history),
            targets=dict(self._targets),
            units={
                uid: UnitMemory(
                    phase=u.phase,
                    phase_since=u.phase_since,
                    requested_at=u.requested_at,
                    ready_at=u.ready_at,
                    last_busy_at=self._seen_running.get(uid, u.last_busy_at)
                    if uid in self._running
                    else u.last_busy_at,
                    orphaned=u.orphaned,
                )
                for uid, u in self._units.items()
                if u.phase.alive
            },
            written_at=now,
        )

    def restore(self, memory: Memory | None, rules: Iterable[str], now: float) -> list[str]:
        """Carry on from ``memory`` after adopting what the cluster holds; return what was
        restored, for the log.

        Cooldowns and backoffs come back as they were. An adopted unit takes its remembered
        timers where the cluster agrees with the memory (same phase: idle since, drain begun
        at, requested at — so deadlines and ``max_wait`` count from the real start). Where they
        disagree the cluster wins and the timers start afresh, which can only delay a
        release. ``memory`` ``None`` means it could not be read: every rule in ``rules`` is
        then treated as having just scaled, so no cooldown a crash may have hidden is skipped.
        Either way a rule's last scale-up is at least the creation of its newest adopted unit:
        memory written a moment too late still cannot let a restart scale up inside the
        cooldown of the burst that made it.
        """
        said: list[str] = []
        if memory is None:
            for rule in rules:
                self._history[rule] = RuleHistory(last_scale_up_at=now, last_scale_down_at=now)
            said.append("memory unreadable: every cooldown in force from now")
        else:
            self._history.update(memory.rules)
            self._targets.update(memory.targets)
            said.extend(self._restore_units(memory, list(self._units)))
        self._floor_cooldowns(list(self._units))
        return said

    def adopt_late(self, units: Iterable[Unit], memory: Memory | None) -> list[str]:
        """Take over units of a target that could not list them when burstd started, once it
        can: each takes its remembered timers from ``memory`` (as read at start) as
        ``restore`` would have given it, and its rule's cooldown counts at least from its
        creation. Return what was restored, for the log."""
        fresh = [u.id for u in units if u.id not in self._units]
        self.adopt(units)
        said = self._restore_units(memory, fresh) if memory is not None else []
        self._floor_cooldowns(fresh)
        return said

    def _restore_units(self, memory: Memory, uids: Iterable[str]) -> list[str]:
        said = []
        for uid in uids:
            unit = self._units.get(uid)
            remembered = memory.units.get(uid)
            if unit is None or remembered is None:
                continue
            restored = _restored(unit, remembered)
            if restored is not unit:
                self._units[uid] = restored
                said.append(f"{uid}: {restored.phase} since {restored.phase_since:.0f}")
        return said

    def _floor_cooldowns(self, uids: Iterable[str]) -> None:
        """A rule's last scale-up is at least the creation of its newest unit among ``uids``."""
        for uid in uids:
            unit = self._units[uid]
            if unit.phase.alive and unit.requested_at:
                h = self._history.get(unit.rule, RuleHistory())
                if h.last_scale_up_at is None or h.last_scale_up_at < unit.requested_at:
                    self._history[unit.rule] = replace(h, last_scale_up_at=unit.requested_at)

    # Acting ----------------------------------------------------------------------------

    def execute(self, plan: Plan, ruleset: RuleSet, now: float) -> list[Applied]:
        done = []
        for decision in plan.actions:
            applied = self._apply(decision, ruleset, now)
            if applied is not None:
                done.append(applied)
                for listener in self.listeners:
                    listener(applied)
        return done

    def _apply(self, d: Decision, ruleset: RuleSet, now: float) -> Applied | None:
        if d.dry_run:
            return Applied(decision=d, acted=False, at=now)
        if isinstance(d, ScaleUp):
            return self._scale_up(d, ruleset.targets[d.target], now)
        assert isinstance(d, Cordon | Uncordon | Drain | Evict | Release | Abandon)
        unit = self._units.get(d.unit)
        if unit is None or not unit.phase.alive:
            return None
        # A unit waits for its provider call to end, except to abandon an in-flight create.
        if d.unit in self._busy and not (isinstance(d, Abandon) and unit.phase.in_flight):
            return None
        target = ruleset.targets.get(unit.target)
        match d:
            case Cordon():
                moved = unit.moved(UnitPhase.CORDONED, now)
                self._units[unit.id] = replace(moved, orphaned=d.orphan)
                self._touch(unit.rule, down=now)
                if unit.node is not None:
                    self._call(unit.id, self._driver.cordon, unit, target)
            case Uncordon():
                self._units[unit.id] = replace(unit.moved(UnitPhase.READY, now), orphaned=False)
                if unit.node is not None:
                    self._call(unit.id, self._driver.uncordon, unit, target)
            case Drain():
                self._units[unit.id] = unit.moved(UnitPhase.DRAINING, now)
                faults.hit(faults.DRAINING)
            case Evict():
                self._busy.add(unit.id)
                self._driver.evict(unit, target, d.pods)
            case Release():
                self._busy.add(unit.id)
                self._driver.delete(unit, target)
            case Abandon():
                # The driver cancels the create in flight, then deletes what it left.
                self._busy.add(unit.id)
                self._units[unit.id] = unit.moved(UnitPhase.FAILED, now)
                self.failed_total += 1
                self._backoff(unit.target, target, d.reason, now)
                self._driver.delete(unit, target)
        return Applied(decision=d, acted=True, units=(unit.id,), at=now)

    def _call(self, uid: str, fn: Callable[[Unit, Target | None], None], *args: object) -> None:
        self._busy.add(uid)
        fn(*args)  # type: ignore[arg-type]

    def _scale_up(self, d: ScaleUp, target: Target, now: float) -> Applied:
        made = []
        for _ in range(d.units):
            uid = self._new_id(target.name)
            while uid in self._units:  # adopted units may hold ids a fresh counter hands out
                uid = self._new_id(target.name)
            unit = Unit(
                id=uid,
                target=target.name,
                rule=d.rule,
                gpus=target.gpus_per_unit,
                gpu_model=target.gpu_model,
                mig=tuple(sorted(target.mig.items())),
                phase=UnitPhase.REQUESTED,
                requested_at=now,
                phase_since=now,
                price_per_gpu_hour=target.price_per_gpu_hour,
            )
            self._units[unit.id] = unit
            self._busy.add(unit.id)
            made.append(unit.id)
            self._driver.create(unit, target)
        if d.pods:
            for uid in made:
                self._packed[uid] = (tuple(made), d.pods)
        self._touch(d.rule, up=now)
        return Applied(decision=d, acted=True, units=tuple(made), at=now)

    def _touch(self, rule: str, up: float | None = None, down: float | None = None) -> None:
        h = self._history.get(rule, RuleHistory())
        self._history[rule] = replace(
            h,
            last_scale_up_at=up if up is not None else h.last_scale_up_at,
            last_scale_down_at=down if down is not None else h.last_scale_down_at,
        )

    def _backoff(self, name: str, target: Target | None, error: str, now: float) -> None:
        status = self._targets.get(name, TargetStatus())
        base = target.backoff if target is not None else 300.0
        self._targets[name] = status.failed(error, base, now)

    # Feedback from the driver ------------------------------------------------------------

    def provisioning(self, uid: str, now: float) -> None:
        unit = self._units.get(uid)
        if unit is not None and unit.phase is UnitPhase.REQUESTED:
            self._units[uid] = unit.moved(UnitPhase.PROVISIONING, now)

    def ready(self, uid: str, node: str, now: float) -> None:
        unit = self._units.get(uid)
        if unit is None or not unit.phase.alive:
            return  # abandoned meanwhile: the delete in flight removes it
        self._busy.discard(uid)
        self.provisioned_total += 1
        self._targets.pop(unit.target, None)  # a success ends the target's backoff
        ready = replace(unit, node=node, last_busy_at=now)
        if unit.phase.in_flight:
            ready = ready.moved(UnitPhase.READY, now)
        else:
            # Cordoned while still in flight (its rule left the file): cordon the node now.
            ready = replace(ready, ready_at=now)
            self._busy.add(uid)
            self._driver.cordon(ready, None)
        self._units[uid] = ready

    def done(self, uid: str) -> None:
        """A cordon, uncordon or evict call finished (successfully or not)."""
        self._busy.discard(uid)

    def failed(
        self, uid: str, error: str, target: Target | None, now: float, *, gone: bool = True
    ) -> None:
        """``create`` failed: its target backs off with the provider's ``error`` at once.
        ``gone``: nothing is left of the unit; otherwise the driver is still removing what the
        create left, and the unit stays, failed (no longer capacity on its way, nothing to
        abandon) and busy, until ``released``. A unit that already failed (abandoned) is not
        counted again."""
        self._seen_running.pop(uid, None)
        self._packed.pop(uid, None)
        unit = self._units.get(uid)
        if gone:
            self._busy.discard(uid)
            self._units.pop(uid, None)
        if unit is None or not unit.phase.alive:
            return
        if not gone:
            self._units[uid] = unit.moved(UnitPhase.FAILED, now)
        self.failed_total += 1
        self._backoff(unit.target, target, error, now)

    def released(self, uid: str, now: float) -> None:
        self._busy.discard(uid)
        self._seen_running.pop(uid, None)
        self._packed.pop(uid, None)
        unit = self._units.pop(uid, None)
        if unit is not None and unit.ready_at is not None:
            self.released_total += 1


def _restored(unit: Unit, remembered: UnitMemory) -> Unit:
    """``unit`` as adopted (its phase read from the cluster) with the remembered timers, where
    the two agree."""
    requested_at = min(unit.requested_at or remembered.requested_at, remembered.requested_at)
    if remembered.phase is unit.phase or (
        remembered.phase is UnitPhase.DRAINING and unit.phase is UnitPhase.CORDONED
    ):
        return replace(
            unit,
            phase=remembered.phase,
            phase_since=remembered.phase_since,
            requested_at=requested_at,
            ready_at=remembered.ready_at if remembered.ready_at is not None else unit.ready_at,
            last_busy_at=remembered.last_busy_at
            if remembered.last_busy_at is not None
            else unit.last_busy_at,
            orphaned=unit.orphaned or remembered.orphaned,
        )
    if remembered.phase.in_flight and unit.phase.in_flight:
        return replace(unit, requested_at=requested_at)
    if requested_at != unit.requested_at:
        return replace(unit, requested_at=requested_at)
    return unit

"""The planner: from a snapshot, the rules and the time, the decisions to take. Pure.

For each rule, in file order:

0. pending pods no target on the rule's ladder would take (checked against the node a new
   unit brings, as the scheduler would: ``plan/fit.py``) are **unservable**: reported with
   the reason, never bursted for and firing no trigger; a unit that exists serves them only
   if they would land on its real node;
1. units past their ready deadline are abandoned, every rule's before any rule bursts: each
   counts as a failure of its target at once (``TargetStatus.failed``, as the actuator will
   record it), so this very pass already sees the target in backoff, bursts onto it no more
   and may walk down the ladder; the actuator rolls the unit back;
2. the rule's pending demand is first covered by capacity already on its way: units in flight,
   units that became ready moments ago, then cordoned or draining units taken back;
3. what is left, if a trigger fires, is bin-packed onto new units down the ladder, within the
   target, rule and global limits, the budget, cooldowns and backoffs (partial when one binds),
   skipping a target held back (``TargetStatus.held_back``: its existing units are unknown);
4. units nobody needs are given back: idle for ``idle_for`` → cordon; re-checked after
   ``validation`` → drain; empty → release. A unit with a running pod is never released, and in
   ``evict`` mode only pods that may be evicted are. A unit given back because its rule had
   left the file is uncordoned when the rule is back, so a later drain starts its
   ``max_wait`` clock afresh.

Units whose rule left the rules file are drained the same way (in ``wait`` mode). A unit
``held`` by an operator's cordon is never uncordoned, evicted from or counted as room; it is
released once nothing runs on it and it has been idle for ``idle_for``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from burstd.model import (
    Abandon,
    Cordon,
    Decision,
    Drain,
    Evict,
    NoOp,
    Pod,
    Release,
    ScaleUp,
    Snapshot,
    TargetStatus,
    Uncordon,
    Unit,
    UnitPhase,
)
from burstd.model.durations import format_duration
from burstd.plan.fit import Fitter, Unservable
from burstd.plan.packing import Bin, Shape, pack_into, pack_new, size_key
from burstd.rules.engine import RuleView, assign, evaluate
from burstd.rules.types import DrainMode, Rule, RuleSet, Target

# A unit that just became ready may still have pending pods the scheduler has not retried yet;
# its free room counts as covering demand for this long, so burstd does not burst twice. It is
# also the safety net's grace period: pods packed onto a unit and still pending this long after
# it became ready are not bursted for on its target for a while (``Actuator.observe``).
READY_SETTLE_S = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """The decisions of one pass; ``views`` what each rule saw (its demand, its triggers);
    ``unservable`` the pending matched pods no target of their rule can take, with why."""

    decisions: tuple[Decision, ...]
    views: tuple[RuleView, ...] = ()
    unservable: tuple[Unservable, ...] = ()
    wake_at: float | None = None
    """The next time a trigger's answer may change with nothing else changing (a schedule
    window opening or closing, a pending pod reaching ``for``): the loop should run then."""

    @property
    def actions(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if not isinstance(d, NoOp))


@dataclass(slots=True)
class _Budget:
    """Running totals while a plan is built, so two rules cannot both spend the same room;
    ``targets`` the targets' statuses with this pass's abandons counted."""

    ruleset: RuleSet
    units: list[Unit]
    targets: dict[str, TargetStatus]
    step_units: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def alive(self) -> list[Unit]:
        return [u for u in self.units if u.phase.alive]

    def gpus(self, units: Iterable[Unit]) -> int:
        return sum(u.gpus for u in units)

    def cost(self, units: Iterable[Unit]) -> float:
        return sum(u.cost_per_hour for u in units)

    def room(self, rule: Rule, target: Target) -> tuple[int, str]:
        """How many more units of ``target`` the limits allow for ``rule``, and which binds."""
        alive = self.alive()
        mine = [u for u in alive if u.rule == rule.name]
        at_target = [u for u in alive if u.target == target.name]
        in_flight = [u for u in at_target if u.phase.in_flight]
        per_unit_gpus = target.gpus_per_unit
        per_unit_cost = target.price_per_gpu_hour * per_unit_gpus
        caps = [
            (
                target.max_units - len(at_target),
                f"target {target.name} max_units {target.max_units}",
            ),
            (
                target.max_in_flight - len(in_flight),
                f"target {target.name} max_in_flight {target.max_in_flight}",
            ),
            (
                rule.burst.max_units_per_step - self.step_units[rule.name],
                f"max_units_per_step {rule.burst.max_units_per_step}",
            ),
        ]
        for scope, limits, units in (
            ("rule", rule.limits, mine),
            ("global", self.ruleset.limits, alive),
        ):
            if limits.max_gpus is not None:
                left = limits.max_gpus - self.gpus(units)
                caps.append((left // per_unit_gpus, f"{scope} max_gpus {limits.max_gpus}"))
            if limits.max_cost_per_hour is not None and per_unit_cost > 0:
                left_cost = limits.max_cost_per_hour - self.cost(units)
                caps.append(
                    (
                        int(left_cost // per_unit_cost + 1e-9),
                        f"{scope} max_cost_per_hour {limits.max_cost_per_hour:g}",
                    )
                )
        n, why = min(caps, key=lambda c: c[0])
        return max(0, n), why

    def status(self, target: str) -> TargetStatus:
        return self.targets.get(target, TargetStatus())

    def abandon(self, target: Target, reason: str, now: float) -> None:
        """A unit of ``target`` is rolled back: the target has failed once more. The unit
        still counts against limits in this pass: it is not gone until its delete ends."""
        self.targets[target.name] = self.status(target.name).failed(reason, target.backoff, now)

    def add(self, rule: Rule, target: Target, n: int, now: float) -> None:
        for i in range(n):
            self.units.append(
                Unit(
                    id=f"planned-{rule.name}-{target.name}-{len(self.units)}-{i}",
                    target=target.name,
                    rule=rule.name,
                    gpus=target.gpus_per_unit,
                    phase=UnitPhase.REQUESTED,
                    requested_at=now,
                    price_per_gpu_hour=target.price_per_gpu_hour,
                )
            )
        self.step_units[rule.name] += n


def plan(snapshot: Snapshot, ruleset: RuleSet, now: float) -> Plan:
    """Decide what to do now. Deterministic: the same inputs give the same plan."""
    if not snapshot.synced:
        return Plan(decisions=(NoOp(reason="waiting for the cluster view to sync"),))
    fitter = Fitter(snapshot, ruleset, now)
    unservable = _unservable(snapshot, ruleset, fitter)
    # Pods no new unit would take fire no trigger; a unit that exists may still take them
    # (a pod pinned to a unit's node by name, say), so they stay in that part of the plan.
    extra: dict[str, list[Pod]] = defaultdict(list)
    full = snapshot
    if unservable:
        left_out = {u.pod for u in unservable}
        pods = {p.key: p for p in snapshot.pods if p.key in left_out}
        for u in unservable:
            extra[u.rule].append(pods[u.pod])
        snapshot = replace(snapshot, pods=tuple(p for p in snapshot.pods if p.key not in left_out))
    views = evaluate(snapshot, ruleset, now)
    snapshot = full
    running = _running_by_node(snapshot.pods)
    budget = _Budget(ruleset, list(snapshot.units), dict(snapshot.targets))
    abandons = _abandon(snapshot, ruleset, budget, now)
    decisions: list[Decision] = []
    by_rule: dict[str, list[Unservable]] = defaultdict(list)
    for u in unservable:
        by_rule[u.rule].append(u)
    for view in views:
        if view.rule.name in by_rule:
            decisions.append(_unservable_noop(view.rule.name, by_rule[view.rule.name]))
        abandoned = abandons.get(view.rule.name, [])
        decisions.extend(abandoned)
        decisions.extend(
            _plan_rule(
                view,
                extra.get(view.rule.name, []),
                {d.unit for d in abandoned},
                snapshot,
                ruleset,
                running,
                budget,
                fitter,
                now,
            )
        )
    for unit in snapshot.units:
        if _is_orphan(unit, ruleset) and unit.phase.alive:
            decisions.extend(_orphan(unit, ruleset, running, now))
    wakes = [v.wake_at for v in views if v.wake_at is not None]
    return Plan(
        decisions=tuple(decisions),
        views=views,
        unservable=unservable,
        wake_at=min(wakes, default=None),
    )


def _abandon(
    snapshot: Snapshot, ruleset: RuleSet, budget: _Budget, now: float
) -> dict[str, list[Abandon]]:
    """The units of each rule past their ready deadline, abandoned, each counted in ``budget``
    as a failure of its target."""
    rules = {r.name: r for r in ruleset.rules}
    out: dict[str, list[Abandon]] = defaultdict(list)
    for u in sorted(snapshot.units, key=lambda u: u.id):
        target = ruleset.targets.get(u.target)
        rule = rules.get(u.rule)
        if target is None or rule is None or not u.phase.in_flight:
            continue
        late = now - u.requested_at
        if late <= target.ready_deadline:
            continue
        reason = (
            f"not ready {format_duration(late)} after the request, past its ready deadline "
            f"{format_duration(target.ready_deadline)}"
        )
        budget.abandon(target, reason, now)
        out[u.rule].append(
            Abandon(
                unit=u.id,
                rule=u.rule,
                dry_run=ruleset.dry_run or rule.dry_run,
                reason=reason,
            )
        )
    return out


def _unservable(snapshot: Snapshot, ruleset: RuleSet, fitter: Fitter) -> tuple[Unservable, ...]:
    demand = [p for p in snapshot.pods if p.is_demand]
    if not demand:
        return ()
    rules = {r.name: r for r in ruleset.rules}
    out = []
    for name, pods in assign(demand, ruleset.rules).items():
        for pod in pods:
            verdict = fitter.unservable(pod, rules[name])
            if verdict is not None:
                out.append(verdict)
    return tuple(sorted(out, key=lambda u: u.pod))


def _unservable_noop(rule: str, pods: Sequence[Unservable]) -> NoOp:
    first = pods[0]
    more = f" (and {len(pods) - 1} more)" if len(pods) > 1 else ""
    return NoOp(
        rule=rule,
        reason=f"{len(pods)} matched pod(s) pending that no new unit would take, not bursting "
        f"for them: {first}{more}",
    )


def _running_by_node(pods: Sequence[Pod]) -> dict[str, list[Pod]]:
    out: dict[str, list[Pod]] = defaultdict(list)
    for pod in pods:
        if pod.is_running and pod.node is not None:
            out[pod.node].append(pod)
    return out


def _shape(target: Target) -> Shape:
    allocatable = target.node.allocatable if target.node is not None else {}
    return Shape(
        gpus=target.gpus_per_unit, model=target.gpu_model, mig=target.mig, allocatable=allocatable
    )


def _plan_rule(
    view: RuleView,
    unservable: Sequence[Pod],
    abandoned: set[str],
    snapshot: Snapshot,
    ruleset: RuleSet,
    running: dict[str, list[Pod]],
    budget: _Budget,
    fitter: Fitter,
    now: float,
) -> list[Decision]:
    rule = view.rule
    dry = ruleset.dry_run or rule.dry_run
    out: list[Decision] = []
    say = out.append
    units = sorted(
        (
            u
            for u in snapshot.units
            if u.rule == rule.name
            and u.phase.alive
            and u.target in ruleset.targets
            and u.id not in abandoned
        ),
        key=lambda u: u.id,
    )
    held = [u for u in units if u.held]
    units = [u for u in units if not u.held]
    by_id = {u.id: u for u in units}

    def lands(pod: Pod, b: Bin) -> bool:
        return b.owner is not None and fitter.may_land(pod, by_id[b.owner])

    def lands_uncordoned(pod: Pod, b: Bin) -> bool:
        return b.owner is not None and fitter.may_land(pod, by_id[b.owner], cordon_lifted=True)

    # 2. Cover demand with capacity on its way (a pod no new unit would take, too, where it
    # would land on a unit that exists).
    matched = [*view.demand, *unservable]
    demand = sorted(matched, key=size_key)
    coming = [
        _bin_for(u, ruleset, running, fitter)
        for u in units
        if u.phase.in_flight
        or (
            u.phase is UnitPhase.READY
            and u.ready_at is not None
            and now - u.ready_at < READY_SETTLE_S
        )
    ]
    left = pack_into([b for b in coming if b is not None], demand, lands)
    covered = len(demand) - len(left)
    reclaimable = [u for u in units if u.phase in (UnitPhase.CORDONED, UnitPhase.DRAINING)]
    taken_back: set[str] = set()
    for u in reclaimable:
        if u.orphaned and u.node is not None:
            # Given back because its rule had left the file; the rule is back. Uncordoned, a
            # later drain starts its max_wait clock afresh (the orphan's drain never evicts,
            # and its clock must not make the rule's evict mode strike at once).
            taken_back.add(u.id)
            say(
                Uncordon(
                    unit=u.id,
                    rule=rule.name,
                    dry_run=dry,
                    reason=f"rule {rule.name!r} is in the rules file again: back to ready",
                )
            )
            continue
        b = _bin_for(u, ruleset, running, fitter)
        if b is None or not left:
            continue
        still = pack_into([b], left, lands_uncordoned)
        if len(still) < len(left):
            taken_back.add(u.id)
            say(
                Uncordon(
                    unit=u.id,
                    rule=rule.name,
                    dry_run=dry,
                    reason=f"{len(left) - len(still)} matched pod(s) pending fit on it; "
                    "cheaper than a new unit",
                )
            )
            left = still

    # 3. Burst for the rest (with a cost-aware wait, for the pods that waited theirs).
    if view.fired and view.burstable is not None:
        left = [p for p in left if p.key in view.burstable]
    floor_gpus = _floor_deficit(rule, units, view) if view.fired else 0
    if left or floor_gpus:
        if not view.fired:
            say(
                NoOp(
                    rule=rule.name,
                    reason=f"{len(left)} matched pod(s) pending, no trigger fired: {view.why}",
                )
            )
        else:
            out.extend(
                _burst(rule, left, floor_gpus, view, snapshot, ruleset, budget, fitter, now, dry)
            )
    elif covered:
        say(
            NoOp(
                rule=rule.name,
                reason=f"{covered} pending pod(s) covered by units in flight or just ready",
            )
        )

    # 4. Give back what nobody needs: a unit some pending matched pod could use is needed.
    # While a trigger's data is missing nothing new is cordoned or drained: missing data is
    # not low utilization.
    # A fired trigger's min_gpus floor keeps its ready units too, idle or not.
    floor = _floor_units(rule, units) if view.fired else set()
    for u in units:
        if u.id not in taken_back:
            needed = any(fitter.could_use(p, u) for p in matched)
            steps = _release_step(u, rule, running, needed, snapshot, now, dry)
            if view.stale and any(isinstance(d, Cordon | Drain) for d in steps):
                steps = [NoOp(rule=rule.name, reason=f"{u.id} kept: {view.stale}")]
            elif u.id in floor and any(isinstance(d, Cordon) for d in steps):
                steps = [
                    NoOp(
                        rule=rule.name,
                        reason=f"{u.id} kept for min_gpus {rule.burst.min_gpus}: {view.why}",
                    )
                ]
            out.extend(steps)
    for u in held:
        out.extend(_held_step(u, rule.name, rule.release.idle_for, running, now, dry))
    return out


def _floor_units(rule: Rule, units: Sequence[Unit]) -> set[str]:
    """The ready units that keep ``min_gpus`` borrowed, after the units in flight."""
    serving = sum(u.gpus for u in units if u.phase.in_flight)
    kept = set()
    for u in units:
        if u.phase is UnitPhase.READY and serving < rule.burst.min_gpus:
            kept.add(u.id)
            serving += u.gpus
    return kept


def _held_step(
    unit: Unit,
    rule_name: str,
    idle_for: float,
    running: dict[str, list[Pod]],
    now: float,
    dry: bool,
) -> list[Decision]:
    """A unit an operator cordoned: wait for what runs on it, then give it back once idle.
    Never uncordoned (the operator's decision), never evicted from, never counted as room."""
    on_it = running.get(unit.node or "", []) if unit.node else []
    if on_it:
        return [
            NoOp(
                rule=rule_name,
                reason=f"{unit.id} cordoned by an operator: waiting for {len(on_it)} running "
                "pod(s); burstd does not uncordon it nor evict from it",
            )
        ]
    idle_since = unit.last_busy_at if unit.last_busy_at is not None else unit.phase_since
    idle = now - idle_since
    if idle < idle_for:
        return [
            NoOp(
                rule=rule_name,
                reason=f"{unit.id} cordoned by an operator and empty for {format_duration(idle)}; "
                f"released after {format_duration(idle_for)} idle",
            )
        ]
    return [
        Release(
            unit=unit.id,
            rule=rule_name,
            dry_run=dry,
            reason=f"cordoned by an operator, empty and idle {format_duration(idle)}: given back",
        )
    ]


def _bin_for(
    unit: Unit, ruleset: RuleSet, running: dict[str, list[Pod]], fitter: Fitter
) -> Bin | None:
    """The unit's room left, as a bin: its own shape (and its node's other resources) less
    the pods running on it. ``None`` for a unit of a target no longer in the file."""
    if unit.target not in ruleset.targets:
        return None
    node = fitter.unit_node(unit)
    shape = Shape(gpus=node.gpus, model=node.gpu_model, mig=node.mig, allocatable=node.allocatable)
    b = Bin.empty(shape, owner=unit.id)
    for pod in running.get(unit.node or "", ()):
        b.take(pod)
    b.pods.clear()
    return b


def _floor_deficit(rule: Rule, units: Sequence[Unit], view: RuleView) -> int:
    """GPUs missing to keep ``min_gpus`` borrowed while the rule's triggers fire."""
    serving = sum(
        u.gpus for u in units if not u.held and (u.phase.in_flight or u.phase is UnitPhase.READY)
    )
    return max(0, rule.burst.min_gpus - serving)


def _burst(
    rule: Rule,
    pods: list[Pod],
    floor_gpus: int,
    view: RuleView,
    snapshot: Snapshot,
    ruleset: RuleSet,
    budget: _Budget,
    fitter: Fitter,
    now: float,
    dry: bool,
) -> list[Decision]:
    out: list[Decision] = []
    history = snapshot.rule_history(rule.name)
    last_up = history.last_scale_up_at
    if last_up is not None and now - last_up < rule.cooldown.scale_up:
        wait = rule.cooldown.scale_up - (now - last_up)
        return [
            NoOp(
                rule=rule.name,
                reason=f"{len(pods)} pod(s) need capacity, scale-up cooldown has "
                f"{format_duration(wait)} left",
            )
        ]
    skipped: list[str] = []
    for name in rule.burst.ladder:
        if not pods and floor_gpus <= 0:
            break
        target = ruleset.targets[name]
        status = budget.status(name)
        if status.held_back:
            skipped.append(f"{name} held back: {status.held_back}")
            continue
        if status.backoff_until > now:
            skipped.append(
                f"{name} in backoff for {format_duration(status.backoff_until - now)}"
                + (f" ({status.last_error})" if status.last_error else "")
            )
            continue
        room, binding = budget.room(rule, target)
        if room <= 0:
            skipped.append(f"{name} at its limit ({binding})")
            continue
        shape = _shape(target)
        takes = [p for p in pods if fitter.for_target(p, target) is None]
        bins, rest = pack_new(shape, takes, room)
        n = len(bins)
        placed = [key for b in bins for key in b.pods]
        floor_need = -(-max(0, floor_gpus - n * target.gpus_per_unit) // target.gpus_per_unit)
        floor_units = min(floor_need, room - n)
        total = n + floor_units
        if total <= 0:
            if takes:
                skipped.append(f"{name} cannot hold the pending pods ({_shapes(rest)})")
            else:
                why = fitter.for_target(pods[0], target) if pods else None
                skipped.append(f"{name} would take none of the pending pods ({why})")
            continue
        short = floor_units < floor_need or any(shape.can_ever_hold(p) for p in rest)
        partial = f"; limited by {binding}" if short else ""
        budget.add(rule, target, total, now)
        floor_gpus -= total * target.gpus_per_unit
        taken = set(placed)
        pods = [p for p in pods if p.key not in taken]
        what = f"{len(placed)} pod(s) packed onto {n} unit(s)" if placed else "no pending pods"
        if floor_units:
            what += f", {floor_units} unit(s) to keep min_gpus {rule.burst.min_gpus}"
        if skipped:
            what += f"; skipped {', '.join(skipped)}"
        out.append(
            ScaleUp(
                rule=rule.name,
                dry_run=dry,
                target=name,
                units=total,
                gpus_per_unit=target.gpus_per_unit,
                pods=tuple(placed),
                reason=f"{what}: {view.why}{partial}",
            )
        )
        skipped = []
    if pods:
        detail = f"; {', '.join(skipped)}" if skipped else ""
        out.append(
            NoOp(
                rule=rule.name,
                reason=f"{len(pods)} pod(s) left unplaced ({_shapes(pods)}){detail}",
            )
        )
    elif skipped and not out:
        out.append(NoOp(rule=rule.name, reason=f"no target can burst: {', '.join(skipped)}"))
    return out


def _shapes(pods: Sequence[Pod]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for p in pods:
        counts[str(p.gpu)] += 1
    return ", ".join(f"{n}x {s}" for s, n in sorted(counts.items()))


def _release_step(
    unit: Unit,
    rule: Rule,
    running: dict[str, list[Pod]],
    needed: bool,
    snapshot: Snapshot,
    now: float,
    dry: bool,
) -> list[Decision]:
    """``needed``: some pending matched pod would land on the unit (``Fitter.could_use``)."""
    on_it = running.get(unit.node or "", []) if unit.node else []
    policy = rule.release
    if unit.phase is UnitPhase.READY:
        if on_it or needed:
            return []
        idle_since = unit.last_busy_at if unit.last_busy_at is not None else unit.ready_at
        idle = now - (idle_since if idle_since is not None else unit.phase_since)
        if idle < policy.idle_for:
            return []
        history = snapshot.rule_history(rule.name)
        last = max(
            (t for t in (history.last_scale_up_at, history.last_scale_down_at) if t is not None),
            default=None,
        )
        if last is not None and now - last < rule.cooldown.scale_down:
            return [
                NoOp(
                    rule=rule.name,
                    reason=f"{unit.id} idle {format_duration(idle)} but scale-down cooldown has "
                    f"{format_duration(rule.cooldown.scale_down - (now - last))} left",
                )
            ]
        return [
            Cordon(
                unit=unit.id,
                rule=rule.name,
                dry_run=dry,
                reason=f"idle {format_duration(idle)} (idle_for {format_duration(policy.idle_for)})"
                " and no pending matched pod fits it",
            )
        ]
    return _drain_step(
        unit, rule.name, policy.validation, policy.drain_mode, policy.max_wait, on_it, now, dry
    )


def _drain_step(
    unit: Unit,
    rule_name: str,
    validation: float,
    mode: DrainMode,
    max_wait: float,
    on_it: Sequence[Pod],
    now: float,
    dry: bool,
) -> list[Decision]:
    since = now - unit.phase_since
    if unit.phase is UnitPhase.CORDONED:
        if since < validation:
            return []
        return [
            Drain(
                unit=unit.id,
                rule=rule_name,
                dry_run=dry,
                reason=f"still unneeded {format_duration(since)} after cordon "
                f"(validation {format_duration(validation)}); "
                + (f"waiting for {len(on_it)} running pod(s)" if on_it else "empty"),
            )
        ]
    if unit.phase is not UnitPhase.DRAINING:
        return []
    if not on_it:
        return [
            Release(unit=unit.id, rule=rule_name, dry_run=dry, reason="drained: no pod runs on it")
        ]
    protected = [p.key for p in on_it if p.never_evict]
    if mode is DrainMode.EVICT and since >= max_wait:
        evictable = tuple(sorted(p.key for p in on_it if not p.never_evict))
        if evictable:
            return [
                Evict(
                    unit=unit.id,
                    rule=rule_name,
                    dry_run=dry,
                    pods=evictable,
                    reason=f"drain passed max_wait {format_duration(max_wait)} in evict mode"
                    + (
                        f"; {len(protected)} never-evict pod(s) are waited for" if protected else ""
                    ),
                )
            ]
    return [
        NoOp(
            rule=rule_name,
            reason=f"{unit.id} draining {format_duration(since)}: waiting for "
            f"{len(on_it)} running pod(s)"
            + (f" ({len(protected)} never-evict)" if protected else ""),
        )
    ]


def _is_orphan(unit: Unit, ruleset: RuleSet) -> bool:
    return unit.target not in ruleset.targets or all(r.name != unit.rule for r in ruleset.rules)


def _orphan(
    unit: Unit, ruleset: RuleSet, running: dict[str, list[Pod]], now: float
) -> list[Decision]:
    """A unit whose rule or target left the rules file: give it back, gently (never
    evicting)."""
    on_it = running.get(unit.node or "", []) if unit.node else []
    if unit.held:
        return _held_step(unit, unit.rule, 0.0, running, now, ruleset.dry_run)
    if unit.phase.in_flight or unit.phase is UnitPhase.READY:
        gone = (
            f"target {unit.target!r}"
            if unit.target not in ruleset.targets
            else f"rule {unit.rule!r}"
        )
        return [
            Cordon(
                unit=unit.id,
                rule=unit.rule,
                dry_run=ruleset.dry_run,
                orphan=True,
                reason=f"{gone} is no longer in the rules file",
            )
        ]
    return _drain_step(unit, unit.rule, 0.0, DrainMode.WAIT, 0.0, on_it, now, ruleset.dry_run)

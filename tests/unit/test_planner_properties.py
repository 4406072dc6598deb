"""Properties the planner keeps for any snapshot: limits hold, running work is never released
or wrongly evicted, and the same inputs give the same plan."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from burstd.model import (
    Evict,
    GpuRequest,
    Pod,
    PodPhase,
    Release,
    ScaleUp,
    Snapshot,
    Unit,
    UnitPhase,
)
from burstd.plan.planner import plan
from burstd.rules.types import Limits, Match, RuleSet
from tests.unit.builders import NOW, rule, target

NAMESPACES = ("a", "b")

limits_st = st.builds(
    Limits,
    max_gpus=st.none() | st.integers(0, 48),
    max_cost_per_hour=st.none() | st.floats(0, 200, allow_nan=False),
)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[RuleSet, Snapshot, float]:
    targets = [
        target(
            f"t{i}",
            draw(st.sampled_from([1, 2, 4, 8])),
            max_units=(mu := draw(st.integers(1, 5))),
            max_in_flight=draw(st.integers(1, mu)),
            price_per_gpu_hour=draw(st.sampled_from([0.0, 0.5, 2.5])),
            gpu_model=draw(st.sampled_from(["", "A100", "V100"])),
        )
        for i in range(draw(st.integers(1, 3)))
    ]
    names = [t.name for t in targets]
    rules = tuple(
        rule(
            f"r{i}",
            ladder=tuple(draw(st.permutations(names))),
            match=Match(namespaces=frozenset({ns})),
            limits=draw(limits_st),
        )
        for i, ns in enumerate(NAMESPACES[: draw(st.integers(1, 2))])
    )
    rs = RuleSet(targets={t.name: t for t in targets}, rules=rules, limits=draw(limits_st))
    units = []
    for i in range(draw(st.integers(0, 6))):
        t = draw(st.sampled_from(targets))
        phase = draw(st.sampled_from(list(UnitPhase)))
        ready = phase not in (UnitPhase.REQUESTED, UnitPhase.PROVISIONING)
        since = NOW - draw(st.integers(0, 4000))
        units.append(
            Unit(
                id=f"u{i}",
                target=t.name,
                rule=draw(st.sampled_from([r.name for r in rules] + ["gone"])),
                gpus=t.gpus_per_unit,
                phase=phase,
                requested_at=since,
                phase_since=since,
                ready_at=since if ready else None,
                last_busy_at=since,
                node=f"n{i}" if ready else None,
                price_per_gpu_hour=t.price_per_gpu_hour,
            )
        )
    requests = st.one_of(
        st.builds(GpuRequest, gpus=st.integers(1, 8)),
        st.builds(GpuRequest, milli=st.sampled_from([100, 250, 500, 750])),
        st.builds(
            GpuRequest,
            gpus=st.integers(1, 2),
            models=st.sampled_from([frozenset(), frozenset({"A100"}), frozenset({"V100"})]),
        ),
    )
    pods: list[Pod] = []
    for i in range(draw(st.integers(0, 12))):
        nodes = [u.node for u in units if u.node]
        on = draw(st.none() | st.sampled_from(nodes)) if nodes else None
        pods.append(
            Pod(
                namespace=draw(st.sampled_from(NAMESPACES)),
                name=f"p{i}",
                gpu=draw(requests),
                phase=PodPhase.RUNNING if on else PodPhase.PENDING,
                unschedulable=on is None,
                node=on,
                never_evict=draw(st.booleans()),
                priority=draw(st.integers(0, 2)),
                pending_since=NOW - draw(st.integers(0, 900)),
            )
        )
    return rs, Snapshot(pods=tuple(pods), units=tuple(units)), NOW


def _after(units: list[Unit], rs: RuleSet, ups: list[ScaleUp]) -> list[Unit]:
    out = [u for u in units if u.phase.alive]
    for up in ups:
        t = rs.targets[up.target]
        out += [
            Unit(
                id=f"new-{up.target}-{i}",
                target=up.target,
                rule=up.rule,
                gpus=up.gpus_per_unit,
                phase=UnitPhase.REQUESTED,
                price_per_gpu_hour=t.price_per_gpu_hour,
            )
            for i in range(up.units)
        ]
    return out


def gpus(units: list[Unit]) -> float:
    return sum(u.gpus for u in units)


def cost(units: list[Unit]) -> float:
    return sum(u.cost_per_hour for u in units)


def _within(before: float, after: float, cap: float | None) -> bool:
    """A limit holds if the plan stays under it, or adds nothing when already over it."""
    return cap is None or after <= cap + 1e-9 or after == before


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_the_planner_never_exceeds_a_limit(world: tuple[RuleSet, Snapshot, float]) -> None:
    rs, snap, now = world
    ups = [d for d in plan(snap, rs, now).decisions if isinstance(d, ScaleUp)]
    before = [u for u in snap.units if u.phase.alive]
    after = _after(list(snap.units), rs, ups)
    assert _within(gpus(before), gpus(after), rs.limits.max_gpus)
    assert _within(cost(before), cost(after), rs.limits.max_cost_per_hour)
    for r in rs.rules:
        mine_b = [u for u in before if u.rule == r.name]
        mine_a = [u for u in after if u.rule == r.name]
        assert _within(gpus(mine_b), gpus(mine_a), r.limits.max_gpus)
        assert _within(cost(mine_b), cost(mine_a), r.limits.max_cost_per_hour)
        added = sum(up.units for up in ups if up.rule == r.name)
        assert added <= r.burst.max_units_per_step
    per_target_b = Counter(u.target for u in before)
    per_target_a = Counter(u.target for u in after)
    flight_a = Counter(u.target for u in after if u.phase.in_flight)
    flight_b = Counter(u.target for u in before if u.phase.in_flight)
    for t in rs.targets.values():
        assert _within(per_target_b[t.name], per_target_a[t.name], t.max_units)
        assert _within(flight_b[t.name], flight_a[t.name], t.max_in_flight)


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_running_work_is_never_released_or_wrongly_evicted(
    world: tuple[RuleSet, Snapshot, float],
) -> None:
    rs, snap, now = world
    units = {u.id: u for u in snap.units}
    for d in plan(snap, rs, now).decisions:
        if isinstance(d, Release):
            node = units[d.unit].node
            assert not [p for p in snap.pods if p.is_running and p.node == node], d
        if isinstance(d, Evict):
            protected = {p.key for p in snap.pods if p.never_evict}
            assert d.pods, d
            assert not set(d.pods) & protected, d


@settings(max_examples=150, deadline=None)
@given(worlds())
def test_the_planner_is_deterministic(world: tuple[RuleSet, Snapshot, float]) -> None:
    rs, snap, now = world
    assert plan(snap, rs, now) == plan(snap, rs, now)

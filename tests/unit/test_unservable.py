"""Demand is only what a new unit would really take: the planner and the actuator, driven over
many passes against a small world whose "scheduler" binds pods to the units' nodes.

The world is a stand-in for the cluster (a unit test, no API server): units become ready one
pass after they are asked for, their nodes carry the target's template, and the scheduler
binds a pending pod to a ready, uncordoned unit node when ``binds`` says so. The integration
tests run the same stories on a real kube-scheduler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from burstd.actuate.actuator import MISFIT_BACKOFF_S, Actuator
from burstd.model import (
    GpuRequest,
    Node,
    NodeTemplate,
    Placement,
    Pod,
    PodPhase,
    Requirement,
    ScaleUp,
    Snapshot,
    Taint,
    Toleration,
    Unit,
    UnitPhase,
)
from burstd.plan.fit import NodeFacts, pod_fits
from burstd.plan.planner import plan
from burstd.rules.types import Burst, Release, RuleSet, Target
from tests.unit.builders import NOW, pending, rule, ruleset, running, target, unit

ZONE = "topology.kubernetes.io/zone"
TEMPLATE = NodeTemplate(
    labels={ZONE: "z1", "nvidia.com/gpu.product": "A100"},
    taints=(Taint(key="burst", value="yes"),),
    allocatable={"cpu": 32_000, "pods": 110},
)
TOLERATES = (Toleration(key="burst", operator="Exists"),)


def kw_target(name: str = "a", **kw: object) -> Target:
    return target(name, 4, gpu_model="A100", node=TEMPLATE, **kw)


def gpu_pod(name: str, *, zone: str | None = None, cpu: int = 0) -> Pod:
    affinity = ((Requirement(key=ZONE, operator="In", values=(zone,)),),) if zone else None
    placement = Placement(
        affinity=affinity, tolerations=TOLERATES, requests={"cpu": cpu} if cpu else {}
    )
    return pending(name, 1, placement=placement)


class World:
    """A cluster: pods, the nodes of units, and a scheduler."""

    def __init__(self, rules: RuleSet, pods: list[Pod], binds: Callable[[Pod, Node], bool]):
        self.rules = rules
        self.pods = {p.key: p for p in pods}
        self.nodes: dict[str, Node] = {}
        self.binds = binds
        self.actuator = Actuator(self)
        self.creates: list[str] = []
        self.starting: list[Unit] = []
        self.now = NOW

    # The driver
    def create(self, u: Unit, t: Target) -> None:
        self.creates.append(u.id)
        self.starting.append(u)

    def cordon(self, u: Unit, t: Target | None) -> None:
        self._set(u, True)

    def uncordon(self, u: Unit, t: Target | None) -> None:
        self._set(u, False)

    def evict(self, u: Unit, t: Target | None, pods: tuple[str, ...]) -> None:
        raise AssertionError("nothing is evicted here")

    def delete(self, u: Unit, t: Target | None) -> None:
        self.nodes.pop(u.node or "", None)
        self.actuator.released(u.id, self.now)

    def _set(self, u: Unit, value: bool) -> None:
        node = self.nodes.get(u.node or "")
        if node is not None:
            self.nodes[node.name] = replace(node, unschedulable=value, cordoned_by_burstd=value)
        self.actuator.done(u.id)

    # The cluster
    def step(self, dt: float = 10.0) -> None:
        self.now += dt
        for u in self.starting:
            name = f"node-{u.id}"
            self.nodes[name] = Node(
                name=name,
                gpu_model="A100",
                gpu_capacity=4,
                gpu_allocatable=4,
                labels=dict(TEMPLATE.labels),
                taints=TEMPLATE.taints,
                allocatable=TEMPLATE.allocatable,
                unit=u.id,
            )
            self.actuator.ready(u.id, name, self.now)
        self.starting = []
        for key, pod in list(self.pods.items()):
            if pod.node is not None:
                continue
            for node in self.nodes.values():
                if not node.unschedulable and self.binds(pod, node):
                    self.pods[key] = replace(pod, node=node.name, phase=PodPhase.RUNNING)
                    break
        snapshot = Snapshot(pods=tuple(self.pods.values()), nodes=tuple(self.nodes.values()))
        self.actuator.observe(snapshot, self.now)
        result = plan(self.actuator.merged(snapshot), self.rules, self.now)
        self.actuator.execute(result, self.rules, self.now)
        self.last = result


def by_predicates(pod: Pod, node: Node) -> bool:
    facts = NodeFacts(labels=node.labels, taints=node.taints, allocatable=node.allocatable, gpus=4)
    return pod_fits(pod, facts) is None


FAST = rule(ladder=("a",), release=Release(idle_for=120, validation=30))


def test_a_pod_no_unit_can_take_never_gets_one() -> None:
    """The loop seen in the field (6 empty nodes in 4 minutes) cannot start: a pod asking for
    a zone no unit has is unservable, reported, and nothing is made, pass after pass."""
    world = World(ruleset(kw_target(), rules=(FAST,)), [gpu_pod("lost", zone="z9")], by_predicates)
    for _ in range(360):  # an hour of 10 s passes
        world.step()
    assert world.creates == []
    (u,) = world.last.unservable
    assert u.pod == "ml/lost"
    assert "topology.kubernetes.io/zone In [z9]" in u.reason
    assert any("no new unit would take" in str(d) for d in world.last.decisions)


def test_servable_pods_still_burst_beside_an_unservable_one() -> None:
    world = World(
        ruleset(kw_target(), rules=(FAST,)),
        [gpu_pod("lost", zone="z9"), gpu_pod("fine", zone="z1")],
        by_predicates,
    )
    for _ in range(3):
        world.step()
    assert len(world.creates) == 1
    assert world.pods["ml/fine"].node is not None
    assert world.pods["ml/lost"].node is None


def test_the_safety_net_stops_the_loop_when_the_model_is_wrong() -> None:
    """The scheduler refuses the pod for a reason burstd cannot see (here: always). One unit is
    made; once ready for the grace period and still empty, the pod is marked not servable by
    the target, the unit goes idle and is released, and no second unit follows within the
    backoff; later tries back off exponentially."""
    world = World(ruleset(kw_target(), rules=(FAST,)), [gpu_pod("picky")], lambda p, n: False)
    for _ in range(int(MISFIT_BACKOFF_S // 10) - 1):
        world.step()
    assert len(world.creates) == 1
    assert not world.actuator.units, "the empty unit was given back"
    (m,) = world.actuator.misfits.values()
    assert (m.pod, m.target, m.misses) == ("ml/picky", "a", 1)
    assert "the scheduler did not place it on unit" in world.last.unservable[0].reason
    for _ in range(6 * 360):  # six more hours
        world.step()
    # Retries at 10, 20, 40, 60, 60... minutes after each miss: far from one a pass.
    assert len(world.creates) <= 8
    assert max(m.misses for m in world.actuator.misfits.values()) >= 3


def test_the_safety_net_spares_a_pod_that_lands() -> None:
    world = World(ruleset(kw_target(), rules=(FAST,)), [gpu_pod("ok")], by_predicates)
    for _ in range(20):
        world.step()
    assert world.pods["ml/ok"].node is not None
    assert not world.actuator.misfits


def test_cpu_is_packed_too() -> None:
    """Two 1-GPU pods of 20 cores each need two 32-core units, not one 4-GPU unit."""
    world = World(
        ruleset(kw_target(), rules=(FAST,)),
        [gpu_pod("x", cpu=20_000), gpu_pod("y", cpu=20_000)],
        by_predicates,
    )
    world.step()
    (up,) = [d for d in world.last.decisions if isinstance(d, ScaleUp)]
    assert up.units == 2


def test_release_counts_only_pods_that_could_land_on_the_unit() -> None:
    """An idle unit is not kept for a pending pod that cannot land on it."""
    rules = ruleset(kw_target(), rules=(FAST,))
    idle = unit("u1", since=NOW - 1000, last_busy_at=NOW - 1000)
    node = Node(
        name="node-u1",
        gpu_model="A100",
        gpu_allocatable=4,
        labels=dict(TEMPLATE.labels),
        taints=TEMPLATE.taints,
        unit="u1",
    )
    for pod, cordoned in ((gpu_pod("lost", zone="z9"), True), (gpu_pod("fits"), False)):
        snap = Snapshot(pods=(pod,), nodes=(node,), units=(idle,))
        verbs = [d.verb for d in plan(snap, rules, NOW).actions]
        assert ("cordon" in verbs) is cordoned, (pod.name, verbs)


def test_units_are_checked_against_their_real_node() -> None:
    """A unit whose real node lacks the label the pod wants does not cover it, even if the
    template has it: a new unit is asked for instead."""
    rules = ruleset(kw_target(), rules=(FAST,))
    coming = unit("u1", since=NOW - 5)  # just ready: its room covers matching demand
    node = Node(
        name="node-u1",
        gpu_model="A100",
        gpu_allocatable=4,
        labels={ZONE: "z2", "nvidia.com/gpu.product": "A100"},
        taints=TEMPLATE.taints,
        unit="u1",
    )
    snap = Snapshot(pods=(gpu_pod("p", zone="z1"),), nodes=(node,), units=(coming,))
    assert [d.verb for d in plan(snap, rules, NOW).actions] == ["scaleup"]
    snap = replace(snap, nodes=(replace(node, labels=dict(TEMPLATE.labels)),))
    assert [d.verb for d in plan(snap, rules, NOW).actions] == []


def test_a_cordoned_unit_is_taken_back_only_for_pods_that_land_on_it() -> None:
    rules = ruleset(kw_target(), rules=(FAST,))
    cordoned = unit("u1", UnitPhase.CORDONED, since=NOW - 5)
    node = Node(
        name="node-u1",
        gpu_model="A100",
        gpu_allocatable=4,
        labels=dict(TEMPLATE.labels),
        taints=(*TEMPLATE.taints, Taint(key="node.kubernetes.io/unschedulable")),
        unschedulable=True,
        cordoned_by_burstd=True,
        unit="u1",
    )
    snap = Snapshot(pods=(gpu_pod("p", zone="z1"),), nodes=(node,), units=(cordoned,))
    assert [d.verb for d in plan(snap, rules, NOW).actions] == ["uncordon"]
    wrong = replace(node, labels={ZONE: "z2", "nvidia.com/gpu.product": "A100"})
    snap = replace(snap, nodes=(wrong,))
    assert [d.verb for d in plan(snap, rules, NOW).actions] == ["scaleup"]


def test_a_pod_another_rung_can_take_goes_there() -> None:
    other = Target(
        name="b",
        provider="kwok",
        gpus_per_unit=4,
        gpu_model="A100",
        node=NodeTemplate(labels={ZONE: "z9"}),
    )
    rules = ruleset(kw_target(), other, rules=(rule(ladder=("a", "b")),))
    result = plan(Snapshot(pods=(gpu_pod("p", zone="z9"),)), rules, NOW)
    (up,) = result.actions
    assert isinstance(up, ScaleUp)
    assert up.target == "b"
    assert not result.unservable


def test_unservable_pods_do_not_fire_triggers_or_keep_min_gpus() -> None:
    floor = rule(burst=Burst(ladder=("a",), min_gpus=4))
    rules = ruleset(kw_target(), rules=(floor,))
    result = plan(Snapshot(pods=(gpu_pod("lost", zone="z9"),)), rules, NOW)
    assert result.actions == ()
    assert result.views[0].demand == ()


def test_running_pods_on_a_unit_are_not_demand() -> None:
    snap = Snapshot(pods=(running("r", "node-u1"),), units=(unit("u1"),))
    assert plan(snap, ruleset(kw_target(), rules=(FAST,)), NOW).unservable == ()


def test_pods_without_constraints_are_unchanged() -> None:
    """A target with no template behaves as before: only GPUs count."""
    rules = ruleset(target("a", 4), rules=(FAST,))
    result = plan(Snapshot(pods=(pending("p", 2, gpu=GpuRequest(gpus=2)),)), rules, NOW)
    assert [d.verb for d in result.actions] == ["scaleup"]


def test_a_starting_units_node_still_covers_its_pods() -> None:
    """The node of a unit in flight exists before it is ready, with the lifecycle's startup
    taints: they do not rule out the pods the unit is coming for (no second unit)."""
    rules = ruleset(kw_target(), rules=(FAST,))
    starting = unit("u1", UnitPhase.PROVISIONING, since=NOW - 5, node="node-u1")
    node = Node(
        name="node-u1",
        gpu_model="A100",
        gpu_allocatable=4,
        labels=dict(TEMPLATE.labels),
        taints=(*TEMPLATE.taints, Taint(key="node.kubernetes.io/not-ready")),
        ready=False,
        unit="u1",
    )
    snap = Snapshot(pods=(gpu_pod("p"),), nodes=(node,), units=(starting,))
    assert plan(snap, rules, NOW).actions == ()


zones = st.sampled_from(("z1", "z2", "z9"))


@settings(max_examples=200, deadline=None)
@given(
    pods=st.lists(st.tuples(st.none() | zones, st.integers(0, 40_000), st.booleans()), max_size=12),
    zone_a=zones,
    zone_b=zones,
)
def test_every_pod_bursted_for_is_one_the_new_node_takes(
    pods: list[tuple[str | None, int, bool]], zone_a: str, zone_b: str
) -> None:
    """Whatever the pods ask, a scale-up only lists pods that its target's node would take,
    and an unservable pod is never in one."""
    targets = [
        replace(kw_target(name), node=replace(TEMPLATE, labels={ZONE: zone}))
        for name, zone in (("a", zone_a), ("b", zone_b))
    ]
    rules = ruleset(*targets, rules=(rule(ladder=("a", "b")),))
    made = []
    for i, (zone, cpu, tolerant) in enumerate(pods):
        affinity = ((Requirement(key=ZONE, operator="In", values=(zone,)),),) if zone else None
        placement = Placement(
            affinity=affinity,
            tolerations=TOLERATES if tolerant else (),
            requests={"cpu": cpu} if cpu else {},
        )
        made.append(pending(f"p{i}", 1, placement=placement))
    by_key = {p.key: p for p in made}
    result = plan(Snapshot(pods=tuple(made)), rules, NOW)
    unservable = {u.pod for u in result.unservable}
    for d in result.actions:
        assert isinstance(d, ScaleUp)
        t = rules.targets[d.target]
        for key in d.pods:
            assert key not in unservable
            assert pod_fits(by_key[key], NodeFacts.of_template(t.node, gpus=4)) is None
    for key in unservable:
        pod = by_key[key]
        for t in targets:
            assert pod_fits(pod, NodeFacts.of_template(t.node, gpus=4, gpu_model="A100"))


def test_a_pod_pinned_to_a_units_node_takes_that_unit_back() -> None:
    """No new unit would take a pod pinned by node name (as DaemonSets pin theirs), but the
    cordoned unit whose node it names can: it is uncordoned for it, and nothing is made."""
    rules = ruleset(kw_target(), rules=(FAST,))
    cordoned = unit("u1", UnitPhase.CORDONED, since=NOW - 5)
    node = Node(
        name="node-u1",
        gpu_model="A100",
        gpu_allocatable=4,
        labels=dict(TEMPLATE.labels),
        taints=TEMPLATE.taints,
        unschedulable=True,
        cordoned_by_burstd=True,
        unit="u1",
    )
    by_name = Requirement(key="metadata.name", operator="In", values=("node-u1",), on_field=True)
    pinned = pending(
        "pinned", 1, placement=Placement(affinity=((by_name,),), tolerations=TOLERATES)
    )
    result = plan(Snapshot(pods=(pinned,), nodes=(node,), units=(cordoned,)), rules, NOW)
    assert [d.verb for d in result.actions] == ["uncordon"]
    assert [u.pod for u in result.unservable] == ["ml/pinned"]

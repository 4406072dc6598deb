"""ClusterState: applying events, snapshots, sync, and which events wake the loop."""

from __future__ import annotations

from burstd.model import GpuRequest, Node, Pod, PodPhase
from burstd.model.events import (
    NODES,
    PODS,
    Desynced,
    NodeDeleted,
    NodeUpserted,
    PodDeleted,
    PodUpserted,
    Synced,
)
from burstd.state.cluster import ClusterState


def gpu_pod(name: str, *, demand: bool = True, node: str | None = None, **kw: object) -> Pod:
    return Pod(
        namespace="ml",
        name=name,
        gpu=GpuRequest(gpus=1),
        unschedulable=demand,
        node=node,
        phase=PodPhase.RUNNING if node else PodPhase.PENDING,
        pending_since=100.0 if demand else None,
        **kw,  # type: ignore[arg-type]
    )


def cpu_pod(name: str, node: str) -> Pod:
    return Pod(namespace="ml", name=name, gpu=GpuRequest(), node=node, phase=PodPhase.RUNNING)


def node(name: str, *, unit: str | None = None, ready: bool = True, gpus: int = 4) -> Node:
    return Node(name=name, gpu_capacity=gpus, gpu_allocatable=gpus, ready=ready, unit=unit)


def synced_state() -> ClusterState:
    s = ClusterState()
    s.apply(Synced(kind=PODS, keys=frozenset()))
    s.apply(Synced(kind=NODES, keys=frozenset()))
    return s


def test_not_synced_until_every_kind_listed() -> None:
    s = ClusterState()
    assert not s.snapshot(0).synced
    assert s.apply(Synced(kind=PODS, keys=frozenset())) is False
    assert not s.synced
    # The view becoming synced is worth a pass.
    assert s.apply(Synced(kind=NODES, keys=frozenset())) is True
    assert s.snapshot(0).synced


def test_desync_and_resume() -> None:
    s = synced_state()
    assert s.apply(Desynced(kind=PODS, reason="watch failed")) is False
    assert not s.snapshot(0).synced
    assert s.desyncs == 1
    assert s.apply(Synced(kind=PODS)) is True
    assert s.snapshot(0).synced


def test_new_demand_triggers_once() -> None:
    s = synced_state()
    assert s.apply(PodUpserted(pod=gpu_pod("a"))) is True
    # The same pod again (a status update that changes nothing of ours): no trigger.
    assert s.apply(PodUpserted(pod=gpu_pod("a"))) is False
    assert s.apply(PodUpserted(pod=gpu_pod("a", labels={"x": "y"}))) is False
    assert [p.key for p in s.snapshot(0).pods] == ["ml/a"]


def test_pod_that_is_not_demand_does_not_trigger() -> None:
    s = synced_state()
    assert s.apply(PodUpserted(pod=gpu_pod("a", demand=False))) is False


def test_pod_leaving_a_unit_triggers() -> None:
    s = synced_state()
    s.apply(NodeUpserted(node=node("n1", unit="u1")))
    s.apply(NodeUpserted(node=node("n2")))
    s.apply(PodUpserted(pod=gpu_pod("a", demand=False, node="n1")))
    s.apply(PodUpserted(pod=gpu_pod("b", demand=False, node="n2")))
    assert s.apply(PodDeleted(namespace="ml", name="a")) is True
    # Leaving a node that is not a unit is not burstd's business.
    assert s.apply(PodDeleted(namespace="ml", name="b")) is False
    assert s.apply(PodDeleted(namespace="ml", name="nobody")) is False


def test_unit_node_becoming_ready_triggers() -> None:
    s = synced_state()
    assert s.apply(NodeUpserted(node=node("n1", unit="u1", ready=False))) is True
    assert s.apply(NodeUpserted(node=node("n1", unit="u1", ready=True))) is True
    assert s.apply(NodeUpserted(node=node("n1", unit="u1", ready=True))) is False
    # Other nodes' changes do not.
    assert s.apply(NodeUpserted(node=node("n2"))) is False
    # A unit node going away does.
    assert s.apply(NodeDeleted(name="n1")) is True
    assert s.apply(NodeDeleted(name="n2")) is False


def test_slim_pods_appear_only_on_held_nodes() -> None:
    s = synced_state()
    s.apply(PodUpserted(pod=cpu_pod("c", "n1")))
    assert s.snapshot(0).pods == ()
    s.apply(NodeUpserted(node=node("n1", unit="u1")))
    assert [p.key for p in s.snapshot(0).pods] == ["ml/c"]
    # An unbound CPU pod is not kept at all.
    s.apply(PodUpserted(pod=Pod(namespace="ml", name="d", gpu=GpuRequest())))
    assert "ml/d" not in s.pods


def test_relist_drops_what_vanished() -> None:
    s = synced_state()
    s.apply(NodeUpserted(node=node("n1", unit="u1")))
    s.apply(NodeUpserted(node=node("n2")))
    s.apply(PodUpserted(pod=gpu_pod("a")))
    s.apply(PodUpserted(pod=gpu_pod("b", demand=False, node="n1")))
    s.apply(Desynced(kind=PODS, reason="410 Gone"))
    s.apply(PodUpserted(pod=gpu_pod("a")))
    # b ran on a unit and vanished during the outage: that is worth a pass.
    assert s.apply(Synced(kind=PODS, keys=frozenset({"ml/a"}))) is True
    assert set(s.pods) == {"ml/a"}
    s.apply(Synced(kind=NODES, keys=frozenset({"n2"})))
    assert set(s.nodes) == {"n2"}


def test_snapshot_is_reused_until_something_changes() -> None:
    s = synced_state()
    s.apply(PodUpserted(pod=gpu_pod("a")))
    first = s.snapshot(0)
    assert s.snapshot(5) is first
    s.apply(PodUpserted(pod=gpu_pod("a")))
    assert s.snapshot(6) is first
    s.apply(PodUpserted(pod=gpu_pod("b")))
    assert s.snapshot(7) is not first
    assert len(s.snapshot(7).pods) == 2


def test_state_is_a_cluster_view() -> None:
    from burstd.control.loop import ClusterView

    view: ClusterView = ClusterState()
    assert not view.snapshot(0).synced

"""The cluster as burstd knows it: applies source events, produces snapshots. No I/O.

``ClusterState`` is the ``ClusterView`` the control loop reads. It holds the pods that request
GPUs and the nodes that offer them in full, and for other pods only a slim record while they
run on a node it holds (a unit running any pod is busy). ``apply`` says whether an event
should wake the control loop: new demand, a unit's node becoming usable or going, a pod
leaving a unit, the view becoming synced, new metric samples, a metric going missing or
coming back. Everything else waits for the periodic pass.

Metrics are held per query: the latest samples, and for a query without data the
``StaleSignal`` saying since when. Stale notices are kept (the last ``max_notices``) for the
alerts layer and status to read.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from burstd.model import Node, Pod, Sample, Snapshot, StaleSignal
from burstd.model.events import (
    NODES,
    PODS,
    Desynced,
    Event,
    MetricMissing,
    MetricSamples,
    NodeDeleted,
    NodeUpserted,
    PodDeleted,
    PodUpserted,
    SignalStaleNotice,
    Synced,
)


class ClusterState:
    """Pods and nodes from the sources, and whether every source has listed.

    ``kinds`` are the event kinds that must all be synced before the view is (by default pods
    and nodes). Not thread-safe; meant for one event loop.
    """

    def __init__(self, kinds: Iterable[str] = (PODS, NODES), *, max_notices: int = 100) -> None:
        self._pods: dict[str, Pod] = {}
        self._nodes: dict[str, Node] = {}
        self._metrics: dict[str, tuple[Sample, ...]] = {}
        self._stale: dict[str, StaleSignal] = {}
        self.notices: deque[SignalStaleNotice] = deque(maxlen=max_notices)
        """Stale-signal notices raised so far, oldest first, for alerts to route."""
        self._synced = dict.fromkeys(kinds, False)
        self._cached: Snapshot | None = None
        self.events_applied = 0
        self.desyncs = 0

    # Reading ---------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        return all(self._synced.values())

    def is_synced(self, kind: str) -> bool:
        return self._synced.get(kind, False)

    @property
    def pods(self) -> dict[str, Pod]:
        return self._pods

    @property
    def nodes(self) -> dict[str, Node]:
        return self._nodes

    @property
    def stale(self) -> dict[str, StaleSignal]:
        """Queries without usable data right now, and since when."""
        return self._stale

    @property
    def metrics(self) -> dict[str, tuple[Sample, ...]]:
        return self._metrics

    def snapshot(self, now: float) -> Snapshot:
        """Pods that request GPUs, other pods running on held nodes, the held nodes.

        ``now`` is not needed: the state is a set of facts, not a function of time. A snapshot
        is built only when something changed since the last one.
        """
        if self._cached is None:
            pods = tuple(p for p in self._pods.values() if p.gpu.is_gpu or p.node in self._nodes)
            self._cached = Snapshot(
                pods=pods,
                nodes=tuple(self._nodes.values()),
                metrics=dict(self._metrics),
                stale=dict(self._stale),
                synced=self.synced,
            )
        return self._cached

    def unit_nodes(self) -> dict[str, Node]:
        return {n.name: n for n in self._nodes.values() if n.unit is not None}

    # Writing ---------------------------------------------------------------------------

    def apply(self, event: Event) -> bool:
        """Apply one event; return whether the control loop should run soon because of it."""
        self.events_applied += 1
        match event:
            case PodUpserted(pod=pod):
                return self._upsert_pod(pod)
            case PodDeleted():
                return self._delete_pod(event.key)
            case NodeUpserted(node=node):
                return self._upsert_node(node)
            case NodeDeleted(name=name):
                return self._delete_node(name)
            case Synced(kind=kind, keys=keys):
                return self._sync(kind, keys)
            case Desynced(kind=kind):
                if self._synced.get(kind, False):
                    self.desyncs += 1
                    self._dirty()
                if kind in self._synced:
                    self._synced[kind] = False
                return False
            case MetricSamples(query=query, samples=samples):
                self._metrics[query] = samples
                self._stale.pop(query, None)
                self._dirty()
                return True
            case MetricMissing(query=query, at=at, reason=reason):
                old = self._stale.get(query)
                self._stale[query] = StaleSignal(
                    since=old.since if old is not None else at, reason=reason
                )
                self._dirty()
                return old is None
            case SignalStaleNotice():
                self.notices.append(event)
                return False
        return False  # pragma: no cover - the match is exhaustive

    def _dirty(self) -> None:
        self._cached = None

    def _upsert_pod(self, pod: Pod) -> bool:
        old = self._pods.get(pod.key)
        if old == pod:
            return False
        if not pod.gpu.is_gpu and pod.node is None:
            # Only bound pods are worth keeping without a GPU request.
            return self._delete_pod(pod.key)
        self._pods[pod.key] = pod
        self._dirty()
        if pod.is_demand and (
            old is None or not old.is_demand or old.pending_since != pod.pending_since
        ):
            return True
        # A pod that stopped running on a unit may have emptied it.
        return old is not None and self._left_unit(old, pod)

    def _left_unit(self, old: Pod, new: Pod | None) -> bool:
        if not old.is_running or old.node is None:
            return False
        node = self._nodes.get(old.node)
        if node is None or node.unit is None:
            return False
        return new is None or not new.is_running or new.node != old.node

    def _delete_pod(self, key: str) -> bool:
        old = self._pods.pop(key, None)
        if old is None:
            return False
        self._dirty()
        return self._left_unit(old, None)

    def _upsert_node(self, node: Node) -> bool:
        old = self._nodes.get(node.name)
        if old == node:
            return False
        self._nodes[node.name] = node
        self._dirty()
        if node.unit is None:
            return False
        usable = node.ready and (node.gpu_allocatable > 0 or any(node.mig_allocatable.values()))
        was = (
            old is not None
            and old.ready
            and (old.gpu_allocatable > 0 or any(old.mig_allocatable.values()))
        )
        return usable != was or old is None

    def _delete_node(self, name: str) -> bool:
        old = self._nodes.pop(name, None)
        if old is None:
            return False
        self._dirty()
        return old.unit is not None

    def _sync(self, kind: str, keys: frozenset[str] | None) -> bool:
        changed = False
        if keys is not None:
            held: dict[str, Pod] | dict[str, Node] = self._pods if kind == PODS else self._nodes
            gone = [k for k in held if k not in keys] if kind in (PODS, NODES) else []
            for k in gone:
                if kind == PODS:
                    changed |= self._delete_pod(k)
                else:
                    changed |= self._delete_node(k)
        was = self.synced
        if kind in self._synced:
            self._synced[kind] = True
        if self.synced != was:
            self._dirty()
            return True
        return changed

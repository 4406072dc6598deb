"""The Kubernetes source: watches pods and nodes and emits model events.

Pods are watched without the finished ones (a field selector on ``status.phase``): a pod that
succeeds or fails leaves the watch as a deletion, so burstd neither receives nor keeps the
cluster's history of completed pods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes_asyncio import client

from burstd.model import Node, Pod
from burstd.model.events import (
    NODES,
    PODS,
    Event,
    NodeDeleted,
    NodeUpserted,
    PodDeleted,
    PodUpserted,
)
from burstd.sources.kube.convert import node_from_raw, pod_from_raw
from burstd.sources.kube.watch import Kind, ResourceWatch, WatchSettings, node_key, pod_key

UNFINISHED_PODS = "status.phase!=Succeeded,status.phase!=Failed"


def _pod_deleted(key: str) -> Event:
    namespace, _, name = key.partition("/")
    return PodDeleted(namespace=namespace, name=name)


def pod_kind(core: Any) -> Kind[Pod]:
    return Kind(
        name=PODS,
        list_fn=core.list_pod_for_all_namespaces,
        convert=pod_from_raw,
        key=pod_key,
        upserted=lambda pod: PodUpserted(pod=pod),
        deleted=_pod_deleted,
        field_selector=UNFINISHED_PODS,
    )


def node_kind(core: Any) -> Kind[Node]:
    return Kind(
        name=NODES,
        list_fn=core.list_node,
        convert=node_from_raw,
        key=node_key,
        upserted=lambda node: NodeUpserted(node=node),
        deleted=lambda name: NodeDeleted(name=name),
    )


class KubeSource:
    """Two watches, pods and nodes, feeding ``emit``. The caller runs each of ``watches``
    as a task (``await w.run()``) and owns ``api``."""

    def __init__(
        self, api: Any, emit: Callable[[Event], None], settings: WatchSettings | None = None
    ) -> None:
        core_api: Any = client.CoreV1Api
        core = core_api(api)
        self.pods = ResourceWatch(pod_kind(core), emit, settings)
        self.nodes = ResourceWatch(node_kind(core), emit, settings)

    @property
    def watches(self) -> tuple[ResourceWatch[Pod], ResourceWatch[Node]]:
        return (self.pods, self.nodes)

    @property
    def synced(self) -> bool:
        return all(w.synced for w in self.watches)

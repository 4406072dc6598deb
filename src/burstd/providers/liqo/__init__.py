"""The Liqo provider's kind: its ``params`` and the node one of its units brings.

A unit is one Liqo ``ResourceSlice`` asking a peered donor cluster for ``gpus_per_unit`` GPUs;
Liqo answers with a ``VirtualNode`` and a virtual ``Node`` that pods are offloaded through.
The provider itself (``provider.py``) talks to the API server; this module stays light so the
rules loader and the simulator can read the kind without loading the Kubernetes client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from burstd.model import GPU_RESOURCE, MIG_RESOURCE_PREFIX, NodeTemplate, Taint
from burstd.model.params import Param, ParamSchema, ParamType
from burstd.model.quantity import base_units
from burstd.providers.base import ProviderKind, UnitShape, unit_labels

# Liqo's own names (Liqo v1.x: pkg/consts and the virtual kubelet's node forge).
REMOTE_CLUSTER_ID_LABEL = "liqo.io/remote-cluster-id"
REMOTE_ID_LABEL = "liqo.io/remoteID"
NODE_TYPE_LABEL = "liqo.io/type"
NODE_TYPE_VIRTUAL = "virtual-node"
REPLICATION_LABEL = "liqo.io/replication"
CREATE_VIRTUAL_NODE_ANNOTATION = "liqo.io/create-virtual-node"
VIRTUAL_NODE_TAINT = Taint(key="virtual-node.liqo.io/not-allowed", value="true", effect="NoExecute")
VIRTUAL_NODE_LABELS = {
    NODE_TYPE_LABEL: NODE_TYPE_VIRTUAL,
    "type": "virtual-kubelet",
    "kubernetes.io/role": "agent",
}
DEFAULT_CLASS = "default"


def tenant_namespace(remote_cluster_id: str) -> str:
    """Liqo's name for the tenant namespace of a peer when its ForeignCluster says none."""
    return f"liqo-tenant-{remote_cluster_id}"


PARAMS: ParamSchema = {
    "remote_cluster_id": Param(
        type=ParamType.STRING,
        doc="cluster ID of the donor (its ForeignCluster), as `liqoctl info` prints it",
        required=True,
    ),
    "namespace": Param(
        type=ParamType.STRING,
        doc="tenant namespace of the donor where slices are made (default: the one its "
        "ForeignCluster names, else liqo-tenant-<remote_cluster_id>)",
    ),
    "resource_slice_class": Param(
        type=ParamType.STRING, doc="spec.class of the slices", default=DEFAULT_CLASS
    ),
    "cpu": Param(type=ParamType.QUANTITY, doc="cpu each slice asks for besides its GPUs"),
    "memory": Param(type=ParamType.QUANTITY, doc="memory each slice asks for"),
    "pods": Param(type=ParamType.QUANTITY, doc="pods each slice asks room for"),
    "poll_interval": Param(
        type=ParamType.DURATION,
        doc="time between checks of a slice, its VirtualNode and its Node",
        default=0.25,
        minimum=0.01,
    ),
    "delete_timeout": Param(
        type=ParamType.DURATION,
        doc="how long delete waits for the slice, the VirtualNode and the Node to go",
        default=120.0,
        minimum=0.01,
    ),
    "node_grace": Param(
        type=ParamType.DURATION,
        doc="once slice and VirtualNode are gone, how long a Node left behind may stay "
        "before burstd deletes it itself",
        default=10.0,
        minimum=0.0,
    ),
}


def resources(shape: UnitShape, params: Mapping[str, Any]) -> dict[str, str]:
    """``spec.resources`` of one slice: the GPUs (or MIG slices) plus cpu/memory/pods asked."""
    out = {key: str(params[key]) for key in ("cpu", "memory", "pods") if params.get(key)}
    if shape.mig:
        out.update({f"{MIG_RESOURCE_PREFIX}{p}": str(n) for p, n in shape.mig.items()})
    else:
        out[GPU_RESOURCE] = str(shape.gpus)
    return out


def node_labels(shape: UnitShape, params: Mapping[str, Any]) -> dict[str, str]:
    labels = dict(VIRTUAL_NODE_LABELS)
    labels[REMOTE_CLUSTER_ID_LABEL] = str(params.get("remote_cluster_id", ""))
    labels.update(unit_labels(shape))
    return labels


def node(shape: UnitShape, params: Mapping[str, Any]) -> NodeTemplate:
    """The virtual Node Liqo makes for one slice: Liqo's labels and taint (pods need the
    toleration Liqo's webhook gives pods of offloaded namespaces), the resources asked."""
    allocatable = {
        resource: n
        for resource, quantity in resources(shape, params).items()
        if (n := base_units(resource, quantity)) is not None
    }
    return NodeTemplate(
        labels=node_labels(shape, params), taints=(VIRTUAL_NODE_TAINT,), allocatable=allocatable
    )


KIND = ProviderKind(
    name="liqo",
    doc="peer with a donor cluster through Liqo ResourceSlices",
    params=PARAMS,
    node=node,
    implementation="burstd.providers.liqo.provider:from_context",
)

"""The InterLink provider's kind: its ``params``, the node one of its units brings, and the
warning a rule gets when it names such a target.

An HPC site is reached through InterLink: a Virtual Kubelet registers a Node that stands for
the site's GPUs, and the pods bound to it run as Slurm jobs. The facts below follow InterLink's
virtual kubelet (``interlink-hq/interLink``, ``pkg/virtualkubelet``): the Node carries the taint
``virtual-node.interlink/no-schedule=true:NoSchedule``, the labels ``virtual-node.interlink/type:
virtual-kubelet``, ``kubernetes.io/os: virtual-kubelet``, ``kubernetes.io/role: agent`` and
``nvidia-gpu-type: <model>``; its capacity is the site's ``cpu``, ``memory``, ``pods`` (100,
3000G, 10000 unless the site says otherwise) and ``nvidia.com/gpu``; its conditions are the
kubelet's plus ``InterlinkConnectivity``, which follows the ping to the InterLink API.

This module stays light (no Kubernetes client) so the rules loader and the simulator can read
it; ``provider.py`` is the implementation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from burstd.model import NodeTemplate, Taint
from burstd.model.params import Param, ParamSchema, ParamType
from burstd.model.quantity import base_units
from burstd.providers import node_params
from burstd.providers.base import ProviderKind, UnitShape, unit_labels
from burstd.providers.node_params import TEXT, taints_param

TAINT = Taint(key="virtual-node.interlink/no-schedule", value="true", effect="NoSchedule")
"""The taint every InterLink virtual node carries: only pods that tolerate it land there."""
TYPE_LABEL = "virtual-node.interlink/type"
GPU_TYPE_LABEL = "nvidia-gpu-type"
CONNECTIVITY_CONDITION = "InterlinkConnectivity"
NODE_LABELS = {
    TYPE_LABEL: "virtual-kubelet",
    "kubernetes.io/os": "virtual-kubelet",
    "kubernetes.io/role": "agent",
    "node.kubernetes.io/exclude-from-external-load-balancers": "true",
    "alpha.service-controller.kubernetes.io/exclude-balancer": "true",
}
"""The labels InterLink's virtual kubelet gives its Node (besides ``kubernetes.io/hostname``)."""
DEFAULT_CAPACITY = {"cpu": "100", "memory": "3000G", "pods": "10000"}
"""InterLink's defaults when the site's configuration names no resources."""

_SLOT: Mapping[str, Param] = {
    "node": Param(
        type=ParamType.STRING,
        doc="name of the InterLink virtual node (the site's, or the one the Deployment registers)",
        required=True,
    ),
    "deployment": Param(
        type=ParamType.STRING,
        doc="namespace/name of the virtual kubelet's Deployment burstd scales 0 → 1 → 0; "
        "without it the node is the site's own and burstd uncordons/cordons it",
    ),
}

PARAMS: ParamSchema = {
    "nodes": Param(
        type=ParamType.LIST,
        doc="the virtual nodes this target may enable, one unit each (max_units at most)",
        item=Param(type=ParamType.MAPPING, doc="one virtual node", fields=_SLOT),
        required=True,
    ),
    "labels": Param(
        type=ParamType.MAP,
        doc="more labels the site's virtual kubelet puts on its nodes (its NodeLabels)",
        item=TEXT,
    ),
    "taints": taints_param(
        "more taints the site's virtual kubelet puts on its nodes (its NodeTaints)"
    ),
    "cpu": Param(type=ParamType.QUANTITY, doc="the site's cpu capacity (InterLink default 100)"),
    "memory": Param(type=ParamType.QUANTITY, doc="its memory (InterLink default 3000G)"),
    "pods": Param(type=ParamType.QUANTITY, doc="its pod capacity (InterLink default 10000)"),
    "require_connectivity": Param(
        type=ParamType.BOOLEAN,
        doc=f"ready also needs the node's {CONNECTIVITY_CONDITION} condition True "
        "(false for InterLink releases without it)",
        default=True,
    ),
    "poll_interval": Param(
        type=ParamType.DURATION,
        doc="time between checks of a node being enabled or disabled",
        default=1.0,
        minimum=0.01,
    ),
    "delete_timeout": Param(
        type=ParamType.DURATION,
        doc="how long disabling waits for the Deployment to scale down and the Node to go",
        default=120.0,
        minimum=0.01,
    ),
}


def slots(params: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """The target's virtual nodes as ``(node, "namespace/name" or None)``, in file order."""
    out = []
    for item in params.get("nodes") or ():
        if isinstance(item, Mapping) and item.get("node"):
            deployment = item.get("deployment")
            out.append((str(item["node"]), str(deployment) if deployment else None))
    return out


def taints(params: Mapping[str, Any]) -> tuple[Taint, ...]:
    """InterLink's taint, then the site's own."""
    return (TAINT, *node_params.taints(params.get("taints")))


def node(shape: UnitShape, params: Mapping[str, Any]) -> NodeTemplate:
    """The Node an InterLink unit brings, as the site's virtual kubelet registers it, with
    burstd's labels: the taint tells the planner which pods could ever land there."""
    labels = dict(NODE_LABELS)
    labels.update({str(k): str(v) for k, v in (params.get("labels") or {}).items()})
    if shape.gpu_model:
        labels[GPU_TYPE_LABEL] = shape.gpu_model
    labels.update(unit_labels(shape))
    allocatable = {
        resource: n
        for resource, quantity in node_params.capacity(params, DEFAULT_CAPACITY).items()
        if (n := base_units(resource, quantity)) is not None
    }
    return NodeTemplate(labels=labels, taints=taints(params), allocatable=allocatable)


def rule_warnings(rule: str, shape: UnitShape, params: Mapping[str, Any]) -> Sequence[str]:
    """What ``burstd validate`` and ``explain`` say of a rule whose ladder names this target:
    its pods must tolerate the taint, or they never land on the site's nodes."""
    t = TAINT
    return (
        f"rule {rule!r} bursts to InterLink target {shape.target!r}, whose nodes carry the taint "
        f"{t.key}={t.value}:{t.effect}: only matched pods that tolerate it can run there "
        "(the others are not counted as demand it serves, and wait for another rung)",
    )


KIND = ProviderKind(
    name="interlink",
    doc="an HPC site behind InterLink virtual nodes (Slurm jobs; never evicted)",
    params=PARAMS,
    node=node,
    implementation="burstd.providers.interlink.provider:from_context",
    rule_warnings=rule_warnings,
)

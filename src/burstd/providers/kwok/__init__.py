"""The kwok provider's kind: its ``params`` and the node one of its units brings.

The provider itself (``provider.py``) talks to the API server; this module stays light so the
rules loader and the simulator can read the kind without loading the Kubernetes client.
See ``provider.py`` for what a kwok unit is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from burstd.model import PROVIDER_LABEL, NodeTemplate, Taint
from burstd.model.params import Param, ParamSchema, ParamType
from burstd.model.quantity import base_units
from burstd.providers import node_params
from burstd.providers.base import (
    ProviderKind,
    UnitShape,
    unit_labels,
)
from burstd.providers.node_params import TEXT, taints_param

KIND_NAME = "kwok"
DEFAULT_CAPACITY = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"}

PARAMS: ParamSchema = {
    "name_prefix": Param(
        type=ParamType.STRING, doc="prefix of node names (the node is named after the unit)"
    ),
    "poll_interval": Param(
        type=ParamType.DURATION,
        doc="time between checks that a new node is Ready with its GPUs allocatable",
        default=0.25,
        minimum=0.01,
    ),
    "delete_timeout": Param(
        type=ParamType.DURATION,
        doc="how long delete waits for the Node object to disappear",
        default=60.0,
        minimum=0.01,
    ),
    "node_template": Param(
        type=ParamType.MAPPING,
        doc="the rest of the Node",
        fields={
            "labels": Param(type=ParamType.MAP, doc="labels added to the node", item=TEXT),
            "annotations": Param(
                type=ParamType.MAP, doc="annotations added to the node", item=TEXT
            ),
            "taints": taints_param("taints of the node"),
            "cpu": Param(type=ParamType.QUANTITY, doc="cpu capacity (default 32)"),
            "memory": Param(type=ParamType.QUANTITY, doc="memory capacity (default 256Gi)"),
            "pods": Param(type=ParamType.QUANTITY, doc="pod capacity (default 110)"),
            "ephemeral_storage": Param(
                type=ParamType.QUANTITY, doc="ephemeral-storage capacity (default 100Gi)"
            ),
            "resources": Param(
                type=ParamType.MAP,
                doc="more extended resources, name: quantity",
                item=Param(type=ParamType.QUANTITY, doc="quantity"),
            ),
        },
    ),
}


def capacity(template: Mapping[str, Any]) -> dict[str, str]:
    """Capacity (and allocatable) of a unit's node other than its GPUs, as quantities."""
    return node_params.capacity(template, DEFAULT_CAPACITY)


def taints(template: Mapping[str, Any]) -> tuple[Taint, ...]:
    return node_params.taints(template.get("taints"))


def node(shape: UnitShape, params: Mapping[str, Any]) -> NodeTemplate:
    """The Node ``provider.KwokProvider.manifest`` makes, less the unit's own names."""
    template = params.get("node_template") or {}
    labels = {str(k): str(v) for k, v in (template.get("labels") or {}).items()}
    labels["type"] = "kwok"
    labels[PROVIDER_LABEL] = KIND_NAME
    labels.update(unit_labels(shape))
    allocatable = {
        resource: n
        for resource, quantity in capacity(template).items()
        if (n := base_units(resource, quantity)) is not None
    }
    return NodeTemplate(labels=labels, taints=taints(template), allocatable=allocatable)


KIND = ProviderKind(
    name=KIND_NAME,
    doc="fake GPU nodes that kwok brings to life (rehearsals and tests)",
    params=PARAMS,
    node=node,
    implementation="burstd.providers.kwok.provider:from_context",
)

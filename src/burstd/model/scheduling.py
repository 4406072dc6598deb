"""What a pod asks of the node it lands on, besides GPUs: the scheduler's view of it.

burstd bursts only for pods that would really land on the node a new unit brings (the
Cluster Autoscaler's check of a node group's template node). For that it keeps, per pod, the
parts of its spec the scheduler's node predicates read: the node selector, the required node
affinity, the tolerations and the resource requests. Sources fill these in (the Kubernetes
watch from the pod's JSON, the simulator from its trace); ``burstd.plan.fit`` checks them.

Most pods ask for nothing of the sort, so they share one empty ``Placement``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# The operators of a node selector requirement (``matchExpressions`` and ``matchFields``).
SELECTOR_OPERATORS = frozenset({"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"})
NODE_NAME_FIELD = "metadata.name"


@dataclass(frozen=True, slots=True, kw_only=True)
class Requirement:
    """One node selector requirement. ``on_field`` means ``matchFields`` (the only field the
    scheduler supports is ``metadata.name``); otherwise it reads a node label."""

    key: str
    operator: str
    values: tuple[str, ...] = ()
    on_field: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Toleration:
    """One toleration. An empty ``key`` with ``Exists`` tolerates every taint; an empty
    ``effect`` matches every effect."""

    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    """A pod's node constraints and non-GPU resource requests.

    ``affinity`` is the required node affinity: terms are alternatives (one must hold), the
    requirements of a term must all hold, and a term without requirements matches no node;
    ``None`` means the pod has none. ``requests`` are in base units (``cpu`` in millicores,
    ``memory`` and ``ephemeral-storage`` in bytes, extended resources as counts), computed as
    the scheduler does: containers summed, the maximum with each init container, plus the
    pod's overhead. GPU resources are left to ``GpuRequest``.
    """

    node_selector: Mapping[str, str] = field(default_factory=dict)
    affinity: tuple[tuple[Requirement, ...], ...] | None = None
    tolerations: tuple[Toleration, ...] = ()
    requests: Mapping[str, int] = field(default_factory=dict)

    @property
    def constrained(self) -> bool:
        """Asks anything of a node's labels."""
        return bool(self.node_selector) or self.affinity is not None


ANYWHERE = Placement()
"""The placement of a pod that asks nothing of its node (shared, it is frozen)."""

TOLERATES_ALL = Placement(tolerations=(Toleration(operator="Exists"),))
"""A pod that asks nothing of its node and tolerates every taint: the simulator's pods, whose
world has no taints (a real pod gets such tolerations from, e.g., Liqo's webhook)."""

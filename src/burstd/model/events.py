"""What sources tell the state layer: objects appeared, changed or went, and whether a source's
view is complete.

Sources (the Kubernetes watch, the simulator) emit these and nothing else; ``ClusterState``
applies them. A source has converted raw objects to model pods and nodes before emitting, so
no event carries an API object.

``Synced`` marks the end of a list (or a watch that resumed): from then on the state holds
every object of that kind the source keeps. When it carries ``keys``, they are exactly those
objects, so anything else the state still holds was deleted while the source was not looking
(a re-list after ``410 Gone`` or an outage). ``Desynced`` says the view of that kind may be
stale until the next ``Synced``: nothing is decided meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

from burstd.model.cluster import Node, Pod

PODS = "pods"
NODES = "nodes"


@dataclass(frozen=True, slots=True, kw_only=True)
class PodUpserted:
    """A pod the source keeps was added or changed."""

    pod: Pod

    def __str__(self) -> str:
        return f"pod {self.pod.key} upserted"


@dataclass(frozen=True, slots=True, kw_only=True)
class PodDeleted:
    """A pod is gone, finished, or no longer of interest (it stopped asking for GPUs)."""

    namespace: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def __str__(self) -> str:
        return f"pod {self.key} deleted"


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeUpserted:
    """A node the source keeps was added or changed."""

    node: Node

    def __str__(self) -> str:
        return f"node {self.node.name} upserted"


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeDeleted:
    """A node is gone or no longer of interest (it stopped offering GPUs)."""

    name: str

    def __str__(self) -> str:
        return f"node {self.name} deleted"


@dataclass(frozen=True, slots=True, kw_only=True)
class Synced:
    """The source's view of ``kind`` (``PODS`` or ``NODES``) is complete.

    ``keys`` (pod ``namespace/name`` or node names), when given, are every object of the kind
    the source keeps right now; the state drops the others. ``None`` after a watch resumed
    from its last resource version, where nothing was missed.
    """

    kind: str
    keys: frozenset[str] | None = None

    def __str__(self) -> str:
        n = "" if self.keys is None else f" ({len(self.keys)} objects)"
        return f"{self.kind} synced{n}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Desynced:
    """The source lost its view of ``kind`` (watch failed, ``410 Gone``), and why."""

    kind: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kind} desynced: {self.reason}"


Event = PodUpserted | PodDeleted | NodeUpserted | NodeDeleted | Synced | Desynced

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

Metric sources (Prometheus, NVML) emit ``MetricSamples`` with a query's recent samples, or
``MetricMissing`` when they have none (source down, query error, no series): missing data is
recorded as such, never as low values. Once a query has been missing for the source's grace
period it also emits ``SignalStaleNotice``, which the state keeps for alerts to route.
"""

from __future__ import annotations

from dataclasses import dataclass

from burstd.model.cluster import Node, Pod
from burstd.model.snapshot import Sample

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


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricSamples:
    """The recent samples of ``query`` (oldest first), evaluated at ``at``: they replace what
    the state held for it, and end any staleness."""

    query: str
    samples: tuple[Sample, ...]
    at: float

    def __str__(self) -> str:
        return f"{len(self.samples)} sample(s) of {self.query!r}"


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricMissing:
    """``query`` has no usable data at ``at``, and why. Its old samples are kept but not used."""

    query: str
    at: float
    reason: str

    def __str__(self) -> str:
        return f"no data for {self.query!r}: {self.reason}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalStaleNotice:
    """``query`` has had no data since ``since``, longer than the source's grace period.

    Raised once per outage; the alerts layer routes it (``event="signal_stale"`` in the log).
    """

    query: str
    since: float
    at: float
    reason: str

    def __str__(self) -> str:
        return (
            f"signal {self.query!r} stale for {self.at - self.since:.0f}s "
            f"(since {self.since:.0f}): {self.reason}"
        )


Event = (
    PodUpserted
    | PodDeleted
    | NodeUpserted
    | NodeDeleted
    | Synced
    | Desynced
    | MetricSamples
    | MetricMissing
    | SignalStaleNotice
)

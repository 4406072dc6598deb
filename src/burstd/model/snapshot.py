"""A consistent view of the cluster at one instant: the planner's only input besides rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from burstd.model.cluster import Node, Pod
from burstd.model.units import RuleHistory, TargetStatus, Unit


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    """One value of a metric series (for example a GPU utilization percentage)."""

    at: float
    value: float


@dataclass(frozen=True, slots=True, kw_only=True)
class StaleSignal:
    """A metric query that has no usable data: its source is down, the query failed, or it
    returned no series. Missing data is not low utilization: a trigger on a stale query
    neither fires nor lets its rule give units back (see ``burstd.rules.engine``)."""

    since: float
    """When the data went missing (the first failed evaluation)."""
    reason: str

    def __str__(self) -> str:
        return f"stale since {self.since:.0f}: {self.reason}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """Pods that request GPUs, nodes that offer them, burstd's units and memory.

    ``metrics`` maps a rule's query text to its recent samples; ``stale`` the queries whose
    data is missing right now. ``synced`` is false until every source has listed once: nothing
    is decided on a partial view.
    """

    pods: tuple[Pod, ...] = ()
    nodes: tuple[Node, ...] = ()
    units: tuple[Unit, ...] = ()
    targets: Mapping[str, TargetStatus] = field(default_factory=dict)
    history: Mapping[str, RuleHistory] = field(default_factory=dict)
    metrics: Mapping[str, tuple[Sample, ...]] = field(default_factory=dict)
    stale: Mapping[str, StaleSignal] = field(default_factory=dict)
    synced: bool = True

    def target_status(self, name: str) -> TargetStatus:
        return self.targets.get(name, TargetStatus())

    def rule_history(self, name: str) -> RuleHistory:
        return self.history.get(name, RuleHistory())

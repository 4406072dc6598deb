"""The typed form of a rules file (version 1). The loader builds it; the engine reads it.

Times are seconds, prices are per GPU-hour in the user's currency (reports say USD). Every
field has a default a cautious operator would pick, so a small file goes a long way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from burstd.model import GpuRequest, NodeTemplate, Pod
from burstd.model.alerts import AlertsConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulationProfile:
    """How the simulator models a target beyond its price and timing (the daemon ignores it).

    ``time_to_ready`` of the target is the median; actual times are drawn log-normally with
    ``ready_spread`` as sigma. ``capacity_units`` bounds what a donor can lend (None: no bound).
    Billing is per second with a minimum of ``billing_minimum`` seconds per unit."""

    failure_probability: float = 0.0
    ready_spread: float = 0.25
    capacity_units: int | None = None
    billing_minimum: float = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """A named source of borrowed GPUs and the shape of one unit of it.

    A unit is one node of ``gpus_per_unit`` GPUs of ``gpu_model`` (or, with ``mig``, that many
    MIG slices per profile). ``params`` are the provider's own settings, checked against the
    schema its kind declares (``providers/registry.py``) with defaults filled in.
    """

    name: str
    provider: str
    params: Mapping[str, Any] = field(default_factory=dict)
    gpu_model: str = ""
    gpus_per_unit: int = 1
    mig: Mapping[str, int] = field(default_factory=dict)
    max_units: int = 4
    max_in_flight: int = 4
    price_per_gpu_hour: float = 0.0
    time_to_ready: float = 300.0
    ready_deadline: float = 900.0
    backoff: float = 300.0
    simulation: SimulationProfile = SimulationProfile()
    node: NodeTemplate | None = None
    """The node one unit brings, as the provider describes it (the loader fills it in);
    ``None``: only the GPU shape is known."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelRequirement:
    """One label-selector expression: ``In``, ``NotIn``, ``Exists`` or ``DoesNotExist``."""

    key: str
    operator: str
    values: frozenset[str] = frozenset()

    def holds(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        match self.operator:
            case "In":
                return present and labels[self.key] in self.values
            case "NotIn":
                return not present or labels[self.key] not in self.values
            case "Exists":
                return present
            case _:
                return not present


@dataclass(frozen=True, slots=True, kw_only=True)
class Match:
    """Which pods a rule serves. Every non-empty field must hold (AND); an empty field matches
    anything."""

    namespaces: frozenset[str] = frozenset()
    labels: tuple[LabelRequirement, ...] = ()
    priority_classes: frozenset[str] = frozenset()
    gpu_models: frozenset[str] = frozenset()
    mig_profiles: frozenset[str] = frozenset()
    qos: frozenset[str] = frozenset()

    def matches(self, pod: Pod) -> bool:
        return (
            (not self.namespaces or pod.namespace in self.namespaces)
            and all(r.holds(pod.labels) for r in self.labels)
            and (not self.priority_classes or pod.priority_class in self.priority_classes)
            and (not self.qos or pod.qos in self.qos)
            and self._gpu_matches(pod.gpu)
        )

    def _gpu_matches(self, gpu: GpuRequest) -> bool:
        if self.mig_profiles and not set(gpu.mig) & self.mig_profiles:
            return False
        # A pod that accepts any model is served by a rule for a model; one that insists on
        # other models is not.
        return not self.gpu_models or not gpu.models or bool(gpu.models & self.gpu_models)


class TriggerKind(StrEnum):
    PENDING = "pending"
    OLDEST_PENDING = "oldest_pending"
    UTILIZATION = "utilization"
    SCHEDULE = "schedule"


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingTrigger:
    """Fires when matched pods, each pending for at least its wait, ask for ``gpus`` GPUs or
    more.

    A pod's wait is ``for_s``, plus ``per_gpu`` seconds per GPU it asks for, plus
    ``per_gpu_hour`` seconds per GPU-hour of its declared run time (``Pod.declared_runtime``;
    ``default_runtime`` for a pod that declares none), at most ``max_for``: a cost-aware wait,
    so that what would cost more to borrow waits longer for the local cluster."""

    gpus: float = 1.0
    for_s: float = 0.0
    per_gpu: float = 0.0
    per_gpu_hour: float = 0.0
    max_for: float | None = None
    default_runtime: float = 0.0
    kind: TriggerKind = TriggerKind.PENDING

    @property
    def cost_aware(self) -> bool:
        return bool(self.per_gpu or self.per_gpu_hour)

    def wait_for(self, pod: Pod) -> float:
        """How long ``pod`` must have been pending to count (seconds). Pure."""
        if not self.cost_aware:
            return self.for_s
        gpus = pod.gpu.gpu_equivalent
        runtime = pod.declared_runtime
        if runtime is None:
            runtime = self.default_runtime
        wait = self.for_s + self.per_gpu * gpus + self.per_gpu_hour * gpus * runtime / 3600.0
        return wait if self.max_for is None else min(wait, self.max_for)


@dataclass(frozen=True, slots=True, kw_only=True)
class OldestPendingTrigger:
    """Fires when the oldest matched pending pod has waited ``older_than`` seconds."""

    older_than: float
    kind: TriggerKind = TriggerKind.OLDEST_PENDING


@dataclass(frozen=True, slots=True, kw_only=True)
class UtilizationTrigger:
    """Fires when every sample of ``query`` over the last ``for_s`` seconds is ≥ ``above``
    (and the samples cover that window)."""

    query: str
    above: float
    for_s: float = 300.0
    kind: TriggerKind = TriggerKind.UTILIZATION


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleTrigger:
    """Fires inside a window that opens at each ``cron`` time and lasts ``duration`` seconds."""

    cron: str
    duration: float
    timezone: str = "UTC"
    kind: TriggerKind = TriggerKind.SCHEDULE


Trigger = PendingTrigger | OldestPendingTrigger | UtilizationTrigger | ScheduleTrigger


@dataclass(frozen=True, slots=True, kw_only=True)
class Burst:
    """How a rule borrows: walk ``ladder`` in order; at most ``max_units_per_step`` new units
    per decision; keep at least ``min_gpus`` borrowed while a trigger fires (pre-bursting)."""

    ladder: tuple[str, ...]
    max_units_per_step: int = 8
    min_gpus: int = 0


class DrainMode(StrEnum):
    WAIT = "wait"
    EVICT = "evict"


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    """How a rule gives back: a unit idle (no pod ran on it) for ``idle_for`` with no matched
    demand is cordoned; after ``validation`` it is re-checked and drained; in ``evict`` mode
    pods still running ``max_wait`` after the drain began are evicted, except never-evict
    pods, which are always waited for."""

    idle_for: float = 600.0
    validation: float = 60.0
    drain_mode: DrainMode = DrainMode.WAIT
    max_wait: float = 4 * 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Caps on borrowed capacity; ``None`` is no cap."""

    max_gpus: int | None = None
    max_cost_per_hour: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Cooldown:
    """``scale_up``: least time between two scale-ups of a rule. ``scale_down``: least time
    after a rule's last scale-up or scale-down before it cordons another unit."""

    scale_up: float = 30.0
    scale_down: float = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    name: str
    match: Match
    triggers: tuple[Trigger, ...]
    burst: Burst
    release: Release = Release()
    limits: Limits = Limits()
    cooldown: Cooldown = Cooldown()
    dry_run: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopSettings:
    """When the control loop runs: on a trigger (an unschedulable pod appeared), once events
    have been quiet for ``batch_idle`` or ``batch_max`` after the first, whichever is first;
    and every ``interval`` regardless."""

    interval: float = 10.0
    batch_idle: float = 1.0
    batch_max: float = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleSet:
    """A whole rules file. ``source`` names the file it came from, ``digest`` is a hash of its
    text. Rules are tried in file order: a pod is served by the first rule that matches it."""

    targets: Mapping[str, Target]
    rules: tuple[Rule, ...]
    limits: Limits = Limits()
    loop: LoopSettings = LoopSettings()
    dry_run: bool = False
    version: int = 1
    source: str = ""
    digest: str = ""
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    """Where events for people go (``burstd.model.alerts``); the decision core ignores it."""

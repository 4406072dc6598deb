"""Pods and nodes as the decision core sees them.

Only what a GPU bursting decision needs is kept: a pod's GPU request and scheduling state, a
node's GPU capacity. Sources (the Kubernetes watch, the simulator) build these; nothing here
knows where they came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from burstd.model.scheduling import ANYWHERE, Placement

GPU_RESOURCE = "nvidia.com/gpu"
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"
GPU_MODEL_LABEL = "nvidia.com/gpu.product"
NEVER_EVICT_ANNOTATION = "burstd.io/never-evict"
# A pod's expected run time (a duration such as "90m"), for cost-aware waits; without it,
# ``spec.activeDeadlineSeconds`` is taken as the run time.
RUNTIME_ANNOTATION = "burstd.io/expected-runtime"
# Every object burstd makes carries these, so a restarted burstd finds and adopts it.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "burstd"
UNIT_LABEL = "burstd.io/unit"
TARGET_LABEL = "burstd.io/target"
RULE_LABEL = "burstd.io/rule"
PROVIDER_LABEL = "burstd.io/provider"
# Which burstd installation made an object: one only ever adopts its own orphans.
INSTANCE_LABEL = "burstd.io/instance"
DEFAULT_INSTANCE = "burstd"
# On a node burstd cordoned itself (with the time, RFC 3339). A cordoned node without it was
# cordoned by someone else: an operator's decision, never read as burstd's own.
CORDONED_ANNOTATION = "burstd.io/cordoned-at"
# Taints the node lifecycle puts on a node while it starts (a unit's node exists before it is
# ready) and lifts a moment after Ready: until then nothing schedules there.
STARTUP_TAINTS = frozenset({"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"})
FULL_GPU_MILLI = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuRequest:
    """What one pod asks of GPUs.

    Exactly one shape is used: ``gpus`` whole GPUs (on one node), a ``milli`` share of a single
    GPU (1..999, GPU sharing as in the openb trace), or ``mig`` slices by profile
    (``{"1g.10gb": 1}`` for ``nvidia.com/mig-1g.10gb: 1``). ``models`` lists acceptable GPU
    models; empty means any.
    """

    gpus: int = 0
    milli: int = 0
    mig: Mapping[str, int] = field(default_factory=dict)
    models: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.gpus < 0 or not 0 <= self.milli < FULL_GPU_MILLI:
            raise ValueError(f"invalid GPU request gpus={self.gpus} milli={self.milli}")
        if self.gpus and self.milli:
            raise ValueError("a GPU request is whole GPUs or a share of one, not both")

    @property
    def is_gpu(self) -> bool:
        return bool(self.gpus or self.milli or any(self.mig.values()))

    @property
    def gpu_equivalent(self) -> float:
        """GPUs this request occupies, counting a share as its fraction and a MIG slice as one
        seventh of a GPU (the smallest A100/H100 profile), for limits and reporting."""
        mig = sum(self.mig.values()) / 7
        return self.gpus + self.milli / FULL_GPU_MILLI + mig

    def accepts(self, model: str) -> bool:
        return not self.models or model in self.models

    def __str__(self) -> str:
        if self.gpus:
            shape = f"{self.gpus} GPU" + ("s" if self.gpus > 1 else "")
        elif self.milli:
            shape = f"{self.milli / FULL_GPU_MILLI:.2f} GPU"
        else:
            shape = " + ".join(f"{n}x mig-{p}" for p, n in sorted(self.mig.items())) or "no GPU"
        if self.models:
            shape += f" ({'|'.join(sorted(self.models))})"
        return shape


class PodPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Pod:
    """A pod that requests GPUs.

    ``unschedulable`` is the scheduler's verdict (condition ``PodScheduled=False``, reason
    ``Unschedulable``); a pending pod without it is not demand yet. ``pending_since`` is when
    that verdict was first given, ``created_at`` when the pod was created. ``placement`` is
    what it asks of a node besides GPUs (selector, affinity, tolerations, other resources).
    ``declared_runtime`` is the run time the pod declares (seconds; ``RUNTIME_ANNOTATION``, else
    ``activeDeadlineSeconds``), ``None`` when it declares none.
    """

    namespace: str
    name: str
    gpu: GpuRequest
    phase: PodPhase = PodPhase.PENDING
    unschedulable: bool = False
    node: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0
    priority_class: str = ""
    qos: str = ""
    never_evict: bool = False
    created_at: float = 0.0
    pending_since: float | None = None
    declared_runtime: float | None = None
    placement: Placement = ANYWHERE

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def is_demand(self) -> bool:
        return self.phase is PodPhase.PENDING and self.unschedulable and self.node is None

    @property
    def is_running(self) -> bool:
        """Occupies a node: bound and not finished."""
        return self.node is not None and self.phase in (PodPhase.PENDING, PodPhase.RUNNING)

    def waiting_for(self, now: float) -> float:
        since = self.pending_since if self.pending_since is not None else self.created_at
        return max(0.0, now - since)


@dataclass(frozen=True, slots=True, kw_only=True)
class Taint:
    key: str
    value: str = ""
    effect: str = "NoSchedule"


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """A node that offers GPUs (or MIG slices).

    ``unit`` names the burstd unit that owns the node, ``None`` for the cluster's own nodes.
    ``allocatable`` holds its other resources in base units, as ``NodeTemplate.allocatable``.
    ``cordoned_by_burstd``: the node carries ``CORDONED_ANNOTATION`` (burstd cordoned it; an
    unschedulable node without it was cordoned by someone else).
    """

    name: str
    gpu_model: str = ""
    gpu_capacity: int = 0
    gpu_allocatable: int = 0
    mig_allocatable: Mapping[str, int] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    ready: bool = True
    unschedulable: bool = False
    unit: str | None = None
    created_at: float = 0.0
    allocatable: Mapping[str, int] = field(default_factory=dict)
    cordoned_by_burstd: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeTemplate:
    """The node a target's new unit would bring, as its provider describes it before making
    one: what the scheduler will see of it besides the GPUs (the unit's shape says those).

    ``allocatable`` holds the other resources in base units (``cpu`` in millicores,
    ``memory`` and ``ephemeral-storage`` in bytes, ``pods`` as a count, extended resources as
    counts); a resource left out is not known and never rules a pod out. The Cluster
    Autoscaler asks the same of a node group's template node before scaling it up for a pod.
    """

    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    allocatable: Mapping[str, int] = field(default_factory=dict)

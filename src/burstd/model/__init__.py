"""Pure, frozen data: pods, nodes, units, snapshots and decisions. No I/O lives here."""

from burstd.model.cluster import (
    FULL_GPU_MILLI,
    GPU_MODEL_LABEL,
    GPU_RESOURCE,
    MIG_RESOURCE_PREFIX,
    NEVER_EVICT_ANNOTATION,
    UNIT_LABEL,
    GpuRequest,
    Node,
    Pod,
    PodPhase,
    Taint,
)
from burstd.model.decisions import (
    Abandon,
    Cordon,
    Decision,
    Drain,
    Evict,
    NoOp,
    Release,
    ScaleUp,
    Uncordon,
    UnitDecision,
)
from burstd.model.snapshot import Sample, Snapshot
from burstd.model.units import RuleHistory, TargetStatus, Unit, UnitPhase

__all__ = [
    "FULL_GPU_MILLI",
    "GPU_MODEL_LABEL",
    "GPU_RESOURCE",
    "MIG_RESOURCE_PREFIX",
    "NEVER_EVICT_ANNOTATION",
    "UNIT_LABEL",
    "Abandon",
    "Cordon",
    "Decision",
    "Drain",
    "Evict",
    "GpuRequest",
    "NoOp",
    "Node",
    "Pod",
    "PodPhase",
    "Release",
    "RuleHistory",
    "Sample",
    "ScaleUp",
    "Snapshot",
    "Taint",
    "TargetStatus",
    "Uncordon",
    "Unit",
    "UnitDecision",
    "UnitPhase",
]

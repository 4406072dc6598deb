"""Bin-packing GPU pods onto unit shapes.

A bin is one node: a list of per-GPU free shares (in thousandths of a GPU) and free MIG slices.
Whole-GPU pods take completely free GPUs of one node; a share takes the fullest GPU that still
has room (best fit, so fractional pods pile onto as few GPUs as possible); MIG pods take slices.
First-fit decreasing over bins: large pods first, so a multi-GPU pod is never starved by
fragments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from burstd.model import FULL_GPU_MILLI, GpuRequest, Pod


@dataclass(frozen=True, slots=True, kw_only=True)
class Shape:
    """The capacity of one node of a unit."""

    gpus: int
    model: str = ""
    mig: Mapping[str, int] = field(default_factory=dict)

    def can_ever_fit(self, request: GpuRequest) -> bool:
        if not request.accepts(self.model):
            return False
        if request.mig:
            return all(self.mig.get(p, 0) >= n for p, n in request.mig.items())
        if request.milli:
            return self.gpus >= 1
        return request.gpus <= self.gpus


@dataclass(slots=True)
class Bin:
    """A node being filled. ``owner`` names the unit it stands for, if it exists already."""

    shape: Shape
    free: list[int]
    mig: dict[str, int]
    owner: str | None = None
    pods: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls, shape: Shape, owner: str | None = None) -> Bin:
        return cls(shape, [FULL_GPU_MILLI] * shape.gpus, dict(shape.mig), owner)

    def fits(self, request: GpuRequest) -> bool:
        if not request.accepts(self.shape.model):
            return False
        if request.mig:
            return all(self.mig.get(p, 0) >= n for p, n in request.mig.items())
        if request.milli:
            return any(f >= request.milli for f in self.free)
        return sum(1 for f in self.free if f == FULL_GPU_MILLI) >= request.gpus

    def take(self, key: str, request: GpuRequest) -> None:
        """Place a request that ``fits``; also used to account for pods already running."""
        self.pods.append(key)
        if request.mig:
            for profile, n in request.mig.items():
                self.mig[profile] = self.mig.get(profile, 0) - n
        elif request.milli:
            best = min(
                (i for i, f in enumerate(self.free) if f >= request.milli),
                key=lambda i: self.free[i],
                default=None,
            )
            if best is not None:
                self.free[best] -= request.milli
        else:
            need = request.gpus
            for i, f in enumerate(self.free):
                if need and f == FULL_GPU_MILLI:
                    self.free[i] = 0
                    need -= 1


def size_key(pod: Pod) -> tuple[int, float, int, float]:
    """Packing order: higher priority first, then larger requests, then the longest waiting."""
    since = pod.pending_since if pod.pending_since is not None else pod.created_at
    return (-pod.priority, -pod.gpu.gpu_equivalent, -len(pod.gpu.mig), since)


def pack_into(bins: list[Bin], pods: Iterable[Pod]) -> list[Pod]:
    """Place ``pods`` into existing ``bins`` first-fit; return those that did not fit."""
    left: list[Pod] = []
    for pod in pods:
        for b in bins:
            if b.fits(pod.gpu):
                b.take(pod.key, pod.gpu)
                break
        else:
            left.append(pod)
    return left


def pack_new(shape: Shape, pods: Iterable[Pod], max_bins: int) -> tuple[list[Bin], list[Pod]]:
    """Open at most ``max_bins`` new bins of ``shape`` for ``pods`` (already in packing order).

    Returns the opened bins and the pods left over: those the shape can never hold, and those
    for which no bin could be opened within ``max_bins``.
    """
    bins: list[Bin] = []
    left: list[Pod] = []
    for pod in pods:
        if not shape.can_ever_fit(pod.gpu):
            left.append(pod)
            continue
        target = next((b for b in bins if b.fits(pod.gpu)), None)
        if target is None:
            if len(bins) >= max_bins:
                left.append(pod)
                continue
            target = Bin.empty(shape)
            bins.append(target)
        target.take(pod.key, pod.gpu)
    return bins, left

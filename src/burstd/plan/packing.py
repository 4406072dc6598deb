"""Bin-packing GPU pods onto unit shapes.

A bin is one node: a list of per-GPU free shares (in thousandths of a GPU) and free MIG slices.
Whole-GPU pods take completely free GPUs of one node; a share takes the fullest GPU that still
has room (best fit, so fractional pods pile onto as few GPUs as possible); MIG pods take slices.
First-fit decreasing over bins: large pods first, so a multi-GPU pod is never starved by
fragments. A bin also counts down the other resources its node lists as allocatable (cpu,
memory, pods…), so eight 1-GPU pods of 16 cores each are not packed onto one 32-core node.
Whether a pod may land on a bin's node at all (labels, taints) is ``burstd.plan.fit``'s
question, asked before packing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from burstd.model import FULL_GPU_MILLI, GpuRequest, Pod


@dataclass(frozen=True, slots=True, kw_only=True)
class Shape:
    """The capacity of one node of a unit: its GPUs, and ``allocatable`` other resources in
    base units (those left out are not counted)."""

    gpus: int
    model: str = ""
    mig: Mapping[str, int] = field(default_factory=dict)
    allocatable: Mapping[str, int] = field(default_factory=dict)

    def can_ever_fit(self, request: GpuRequest) -> bool:
        if not request.accepts(self.model):
            return False
        if request.mig:
            return all(self.mig.get(p, 0) >= n for p, n in request.mig.items())
        if request.milli:
            return self.gpus >= 1
        return request.gpus <= self.gpus

    def can_ever_hold(self, pod: Pod) -> bool:
        """An empty node of this shape holds ``pod`` (GPUs and the resources it lists)."""
        if not self.can_ever_fit(pod.gpu):
            return False
        alloc = self.allocatable
        if not alloc:
            return True
        if alloc.get("pods", 1) < 1:
            return False
        return all(alloc.get(k, n) >= n for k, n in pod.placement.requests.items())


@dataclass(slots=True)
class Bin:
    """A node being filled. ``owner`` names the unit it stands for, if it exists already."""

    shape: Shape
    free: list[int]
    mig: dict[str, int]
    owner: str | None = None
    pods: list[str] = field(default_factory=list)
    res: dict[str, int] = field(default_factory=dict)

    @classmethod
    def empty(cls, shape: Shape, owner: str | None = None) -> Bin:
        return cls(
            shape,
            [FULL_GPU_MILLI] * shape.gpus,
            dict(shape.mig),
            owner,
            res=dict(shape.allocatable),
        )

    def fits(self, pod: Pod) -> bool:
        if self.res and not self._room_for(pod):
            return False
        request = pod.gpu
        if not request.accepts(self.shape.model):
            return False
        if request.mig:
            return all(self.mig.get(p, 0) >= n for p, n in request.mig.items())
        if request.milli:
            return any(f >= request.milli for f in self.free)
        return sum(1 for f in self.free if f == FULL_GPU_MILLI) >= request.gpus

    def _room_for(self, pod: Pod) -> bool:
        res = self.res
        if res.get("pods", 1) < 1:
            return False
        return all(res.get(k, n) >= n for k, n in pod.placement.requests.items())

    def take(self, pod: Pod) -> None:
        """Place a pod that ``fits``; also used to account for pods already running."""
        self.pods.append(pod.key)
        if self.res:
            res = self.res
            if "pods" in res:
                res["pods"] -= 1
            for k, n in pod.placement.requests.items():
                if k in res:
                    res[k] -= n
        request = pod.gpu
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


def pack_into(
    bins: list[Bin], pods: Iterable[Pod], allowed: Callable[[Pod, Bin], bool] | None = None
) -> list[Pod]:
    """Place ``pods`` into existing ``bins`` first-fit; return those that did not fit.
    ``allowed`` says whether a pod may land on a bin's node at all."""
    left: list[Pod] = []
    for pod in pods:
        for b in bins:
            if b.fits(pod) and (allowed is None or allowed(pod, b)):
                b.take(pod)
                break
        else:
            left.append(pod)
    return left


def pack_new(shape: Shape, pods: Iterable[Pod], max_bins: int) -> tuple[list[Bin], list[Pod]]:
    """Open at most ``max_bins`` new bins of ``shape`` for ``pods`` (already in packing order).

    Returns the opened bins and the pods left over: those the shape can never hold, and those
    for which no bin could be opened within ``max_bins``. The caller has already left out pods
    that may not land on the shape's node (``burstd.plan.fit``).
    """
    bins: list[Bin] = []
    left: list[Pod] = []
    for pod in pods:
        if not shape.can_ever_hold(pod):
            left.append(pod)
            continue
        target = next((b for b in bins if b.fits(pod)), None)
        if target is None:
            if len(bins) >= max_bins:
                left.append(pod)
                continue
            target = Bin.empty(shape)
            bins.append(target)
        target.take(pod)
    return bins, left

"""The simulated cluster: GPU nodes and a scheduler that binds pods to them.

Only GPUs matter here (CPU and memory are ignored). A node is a list of per-GPU free shares in
thousandths of a GPU. The scheduler places a pod like kube-scheduler with a best-fit GPU
plugin:

* whole-GPU pods (one or many, always on one node) go to the node with the fewest completely
  free GPUs that still has enough, so large nodes stay whole for large pods;
* a share of one GPU goes to the already shared GPU with the least room that still fits, and only
  then to a free GPU, on the node with the fewest free GPUs;
* a pod's GPU model list (empty = any) restricts the nodes it may use.

The cluster's own nodes are tried before borrowed ones (burst units and the static baseline's
extra nodes): borrowed capacity is for what does not fit at home, as a Liqo virtual node with a
taint that pods tolerate but do not prefer.

Pending pods are tried in priority order, then first come first served, without head-of-line
blocking (a small pod may pass a large one that does not fit, as in Kubernetes). Pods with the
same priority and request form a class: once the first of a class does not fit, none of the
class does, so a scheduling round costs a few placement attempts per class, not one per pod.
Nodes are indexed by model and free-GPU count, so an attempt is cheap even on the 1,213-node
openb cluster.
"""

from __future__ import annotations

import csv
import io
import re
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from heapq import heapify, heappop, heappush
from importlib import resources
from pathlib import Path
from typing import IO

from burstd.model import FULL_GPU_MILLI, Pod

BUNDLED_CLUSTERS = ("small", "openb")
_SPEC = re.compile(r"\s*(\d+)\s*x\s*(\d+)\s*(?::\s*([A-Za-z0-9_.+-]+))?\s*")


class ClusterError(ValueError):
    """A node list or spec that cannot be read; the message says where and why."""


@dataclass(frozen=True, slots=True)
class NodeSpec:
    name: str
    gpus: int
    model: str = ""


# Node lists -------------------------------------------------------------------------------------


def load_nodes(spec: str | None = None) -> tuple[list[NodeSpec], str]:
    """Nodes from a bundled cluster name (``small``, ``openb``), an openb node CSV file, or a
    spec like ``"4x8:V100M32,2x4:T4"`` (count x GPUs per node : model). Returns the nodes and a
    description for the run's metadata."""
    if spec is None or spec == "small":
        return _bundled("small.csv", "clusters"), "small (bundled)"
    if spec == "openb":
        return _bundled("openb_node_list_gpu_node.csv", "traces", "openb"), "openb (bundled)"
    path = Path(spec)
    if path.exists():
        try:
            with path.open(encoding="utf-8", newline="") as f:
                return read_node_csv(f, str(path)), str(path)
        except OSError as e:
            raise ClusterError(f"{path}: cannot read: {e.strerror or e}") from None
        except UnicodeDecodeError as e:
            raise ClusterError(f"{path}: not valid UTF-8 text ({e.reason})") from None
    if "x" in spec and not spec.endswith(".csv"):
        return parse_spec(spec), spec
    raise ClusterError(
        f"{spec}: no such file, and not a node spec like '4x8:V100M32,2x4:T4' "
        f"or a bundled cluster ({', '.join(BUNDLED_CLUSTERS)})"
    )


def _bundled(name: str, *parts: str) -> list[NodeSpec]:
    ref = resources.files("burstd") / "data"
    for part in (*parts, name):
        ref = ref / part
    text = ref.read_text(encoding="utf-8")
    return read_node_csv(io.StringIO(text, newline=""), name)


def parse_spec(spec: str) -> list[NodeSpec]:
    """``"4x8:V100M32,2x4:T4"``: 4 nodes of 8 V100M32 GPUs and 2 of 4 T4s."""
    nodes: list[NodeSpec] = []
    column = 1
    for part in spec.split(","):
        m = _SPEC.fullmatch(part)
        if m is None or int(m.group(1)) < 1 or int(m.group(2)) < 1:
            raise ClusterError(
                f"node spec:1:{column}: expected COUNTxGPUS[:MODEL] like 4x8:V100M32, got {part!r}"
            )
        count, gpus, model = int(m.group(1)), int(m.group(2)), m.group(3) or ""
        for _ in range(count):
            nodes.append(NodeSpec(name=f"node-{len(nodes):04d}", gpus=gpus, model=model))
        column += len(part) + 1
    return nodes


def read_node_csv(f: IO[str], source: str) -> list[NodeSpec]:
    """An openb node list (``sn,cpu_milli,memory_mib,gpu,model``); nodes without GPUs are left
    out."""
    reader = csv.reader(f)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ClusterError(f"{source}:1:1: empty file, expected a header line") from None
    for need in ("sn", "gpu", "model"):
        if need not in header:
            raise ClusterError(f"{source}:1:1: missing column {need!r}")
    i_sn, i_gpu, i_model = header.index("sn"), header.index("gpu"), header.index("model")
    nodes: list[NodeSpec] = []
    for row in reader:
        if not row:
            continue
        line = reader.line_num
        if len(row) != len(header):
            raise ClusterError(f"{source}:{line}:1: expected {len(header)} fields, got {len(row)}")
        text = row[i_gpu].strip()
        try:
            gpus = int(float(text or "0"))
        except ValueError:
            raise ClusterError(
                f"{source}:{line}:{i_gpu + 1}: gpu: expected an integer, got {text!r}"
            ) from None
        if gpus < 0:
            raise ClusterError(f"{source}:{line}:{i_gpu + 1}: gpu: expected 0 or more, got {gpus}")
        if gpus:
            model = row[i_model].strip()
            nodes.append(
                NodeSpec(name=row[i_sn].strip(), gpus=gpus, model="" if model == "nan" else model)
            )
    if not nodes:
        raise ClusterError(f"{source}: no node with GPUs")
    return nodes


# Runtime state ----------------------------------------------------------------------------------


class SimPod:
    """A pod inside the simulation. ``trace`` is its index in the trace (-1 for none)."""

    __slots__ = (
        "arrival",
        "cls",
        "duration",
        "gpu_slots",
        "gpus",
        "index",
        "milli",
        "model_pod",
        "models",
        "node",
        "pending_since",
        "priority",
        "seq",
        "started",
        "waited",
    )

    def __init__(
        self,
        index: int,
        arrival: float,
        duration: float,
        gpus: int,
        milli: int,
        models: frozenset[str],
        priority: int,
        seq: int,
    ) -> None:
        self.index = index
        self.arrival = arrival
        self.duration = duration
        self.gpus = gpus
        self.milli = milli
        self.models = models
        self.priority = priority
        self.seq = seq
        self.cls: tuple[int, int, int, frozenset[str]] = (priority, gpus, milli, models)
        self.node: SimNode | None = None
        self.gpu_slots: tuple[int, ...] = ()
        self.started = 0.0
        self.pending_since: float | None = None
        self.waited = 0.0
        self.model_pod: Pod | None = None

    @property
    def gpu_equivalent(self) -> float:
        return self.gpus + self.milli / FULL_GPU_MILLI


class SimNode:
    """A node with ``gpus`` GPUs of ``model``. ``unit`` names the burst unit that owns it
    (``None`` for the cluster's own nodes)."""

    __slots__ = ("busy_since", "cordoned", "free", "gpus", "model", "name", "pods", "unit", "whole")

    def __init__(self, name: str, gpus: int, model: str, unit: str | None = None) -> None:
        self.name = name
        self.gpus = gpus
        self.model = model
        self.unit = unit
        self.free = [FULL_GPU_MILLI] * gpus
        self.whole = gpus
        self.cordoned = False
        self.pods: dict[SimPod, None] = {}
        self.busy_since = 0.0

    def fits(self, gpus: int, milli: int, models: frozenset[str]) -> bool:
        """Brute force, for the invariant checker: the index must agree with it."""
        if models and self.model not in models:
            return False
        if milli:
            return any(f >= milli for f in self.free)
        return self.whole >= gpus

    def allocated(self) -> float:
        return self.gpus - sum(self.free) / FULL_GPU_MILLI


class _ModelIndex:
    """Schedulable nodes of one GPU model: by count of completely free GPUs, and shared GPUs by
    free share."""

    __slots__ = ("buckets", "keys", "partial")

    def __init__(self) -> None:
        self.buckets: list[dict[SimNode, None]] = [{}]
        self.partial: dict[int, dict[tuple[SimNode, int], None]] = {}
        self.keys: list[int] = []

    def add(self, node: SimNode) -> None:
        while len(self.buckets) <= node.gpus:
            self.buckets.append({})
        if node.whole:
            self.buckets[node.whole][node] = None
        for i, f in enumerate(node.free):
            if 0 < f < FULL_GPU_MILLI:
                self._add_partial(node, i, f)

    def remove(self, node: SimNode) -> None:
        if node.whole:
            self.buckets[node.whole].pop(node, None)
        for i, f in enumerate(node.free):
            if 0 < f < FULL_GPU_MILLI:
                self._drop_partial(node, i, f)

    def _add_partial(self, node: SimNode, i: int, free: int) -> None:
        group = self.partial.get(free)
        if group is None:
            group = self.partial[free] = {}
            insort(self.keys, free)
        group[(node, i)] = None

    def _drop_partial(self, node: SimNode, i: int, free: int) -> None:
        group = self.partial[free]
        del group[(node, i)]
        if not group:
            del self.partial[free]
            del self.keys[bisect_left(self.keys, free)]


class Pool:
    """Nodes tried together, indexed by model."""

    def __init__(self) -> None:
        self.models: dict[str, _ModelIndex] = {}
        self.nodes: dict[str, SimNode] = {}

    def add(self, node: SimNode) -> None:
        self.nodes[node.name] = node
        if not node.cordoned:
            self.models.setdefault(node.model, _ModelIndex()).add(node)

    def remove(self, node: SimNode) -> None:
        self.nodes.pop(node.name, None)
        if not node.cordoned:
            self.models[node.model].remove(node)

    def cordon(self, node: SimNode, cordoned: bool) -> None:
        if node.cordoned == cordoned:
            return
        if cordoned:
            self.models[node.model].remove(node)
            node.cordoned = True
        else:
            node.cordoned = False
            self.models.setdefault(node.model, _ModelIndex()).add(node)

    def _indexes(self, models: frozenset[str]) -> Iterator[_ModelIndex]:
        if not models:
            yield from self.models.values()
            return
        for m in sorted(models):
            idx = self.models.get(m)
            if idx is not None:
                yield idx

    def find(self, gpus: int, milli: int, models: frozenset[str]) -> tuple[SimNode, int] | None:
        """The node (and, for a share, the GPU; -1 for whole GPUs) best fit for a request."""
        indexes = list(self._indexes(models)) if models else self.models.values()
        if milli:
            best_free = FULL_GPU_MILLI
            best: tuple[SimNode, int] | None = None
            for idx in indexes:
                keys = idx.keys
                k = bisect_left(keys, milli)
                if k < len(keys) and keys[k] < best_free:
                    best_free = keys[k]
                    best = next(iter(idx.partial[best_free]))
            if best is not None:
                return best
            need = 1
        else:
            need = gpus
        best_k = 1 << 30
        chosen: SimNode | None = None
        for idx in indexes:
            buckets = idx.buckets
            for k in range(need, min(len(buckets), best_k)):
                bucket = buckets[k]
                if bucket:
                    best_k = k
                    chosen = next(iter(bucket))
                    break
        if chosen is None:
            return None
        return chosen, -1

    def _reindex(
        self, node: SimNode, before_whole: int, changed: Iterable[tuple[int, int]]
    ) -> None:
        """Update the index after GPU ``i`` of ``node`` went from free share ``old`` to its
        current one, for each ``(i, old)`` in ``changed``."""
        if node.cordoned:
            return
        idx = self.models[node.model]
        if before_whole != node.whole:
            if before_whole:
                del idx.buckets[before_whole][node]
            if node.whole:
                idx.buckets[node.whole][node] = None
        for i, old in changed:
            new = node.free[i]
            if 0 < old < FULL_GPU_MILLI:
                idx._drop_partial(node, i, old)
            if 0 < new < FULL_GPU_MILLI:
                idx._add_partial(node, i, new)

    def take(self, node: SimNode, gpu: int, pod: SimPod) -> None:
        before = node.whole
        free = node.free
        if pod.milli:
            if gpu < 0:
                gpu = free.index(FULL_GPU_MILLI)
                node.whole -= 1
            old = free[gpu]
            free[gpu] = old - pod.milli
            pod.gpu_slots = (gpu,)
            self._reindex(node, before, ((gpu, old),))
        else:
            slots = []
            for i, f in enumerate(free):
                if f == FULL_GPU_MILLI:
                    slots.append(i)
                    free[i] = 0
                    if len(slots) == pod.gpus:
                        break
            node.whole -= pod.gpus
            pod.gpu_slots = tuple(slots)
            self._reindex(node, before, ())
        pod.node = node
        node.pods[pod] = None

    def give_back(self, pod: SimPod) -> None:
        node = pod.node
        assert node is not None
        before = node.whole
        free = node.free
        if pod.milli:
            gpu = pod.gpu_slots[0]
            old = free[gpu]
            free[gpu] = old + pod.milli
            if free[gpu] == FULL_GPU_MILLI:
                node.whole += 1
            self._reindex(node, before, ((gpu, old),))
        else:
            for i in pod.gpu_slots:
                free[i] = FULL_GPU_MILLI
            node.whole += len(pod.gpu_slots)
            self._reindex(node, before, ())
        del node.pods[pod]
        pod.node = None
        pod.gpu_slots = ()


class Scheduler:
    """Pending pods by class, and the pools they are placed into (home first)."""

    def __init__(self) -> None:
        self.home = Pool()
        self.borrowed = Pool()
        self.pools = (self.home, self.borrowed)
        self.classes: dict[tuple[int, int, int, frozenset[str]], deque[SimPod]] = {}
        self.pending = 0

    def place(self, pod: SimPod) -> SimNode | None:
        """Bind ``pod`` if some node fits it; the node, or None."""
        for pool in self.pools:
            found = pool.find(pod.gpus, pod.milli, pod.models)
            if found is not None:
                node, gpu = found
                pool.take(node, gpu, pod)
                return node
        return None

    def pool_of(self, node: SimNode) -> Pool:
        return self.home if node.unit is None else self.borrowed

    def release(self, pod: SimPod) -> SimNode:
        node = pod.node
        assert node is not None
        self.pool_of(node).give_back(pod)
        return node

    def enqueue(self, pod: SimPod) -> None:
        q = self.classes.get(pod.cls)
        if q is None:
            q = self.classes[pod.cls] = deque()
        q.append(pod)
        self.pending += 1

    def blocked(self, pod: SimPod) -> bool:
        """A pod of a class with pods already waiting cannot fit either (same request)."""
        return pod.cls in self.classes

    def round(self) -> Iterator[tuple[SimPod, SimNode]]:
        """Try pending pods in priority, then arrival order; yield each one bound."""
        if not self.pending:
            return
        heap = [(-q[0].priority, q[0].seq, key) for key, q in self.classes.items()]
        heapify(heap)
        while heap:
            _, _, key = heappop(heap)
            q = self.classes[key]
            pod = q[0]
            node = self.place(pod)
            if node is None:
                continue
            q.popleft()
            self.pending -= 1
            if q:
                heappush(heap, (-q[0].priority, q[0].seq, key))
            else:
                del self.classes[key]
            yield pod, node

    def remove_pending(self, pod: SimPod) -> None:
        q = self.classes[pod.cls]
        q.remove(pod)
        self.pending -= 1
        if not q:
            del self.classes[pod.cls]

    def pending_pods(self) -> Iterator[SimPod]:
        for q in self.classes.values():
            yield from q

    def schedulable_nodes(self) -> Iterator[SimNode]:
        for pool in self.pools:
            for node in pool.nodes.values():
                if not node.cordoned:
                    yield node

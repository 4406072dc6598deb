"""Starburst's own world (``burstd simulate --peer-model starburst``), to check the peer's
policies against the peer's own numbers before using them as baselines in burstd's world.

Starburst (Luo et al., USENIX ATC'24) decides how long a job waits on-prem before it is sent
to the cloud. Its simulator is a much simpler world than burstd's, written here from its
description and code (not copied):

* the cloud is unlimited and runs a job the moment it is sent, for its trace run time; it is
  billed per job, GPUs x run time (no units, no time to ready, no minimum, no idle capacity);
* the on-prem nodes are homogeneous; a job asks for whole GPUs (a share counts as one GPU) and
  goes to the first node, by index, with enough free GPUs, on its lowest free GPU indices (a
  job larger than a node takes whole nodes plus one for the rest, as in the peer);
* the queue is FIFO by arrival, either ``strict`` (a job that does not fit blocks every job
  behind it) or ``out-of-order`` (later jobs may pass it);
* a job waits at most w(j) from its arrival; at that moment it leaves the queue for the cloud.

Events are handled as the peer does: time jumps to the next job arrival, job completion or
queue timeout; at each instant completions first, then timeouts (a job whose timeout is now goes
to the cloud), then arrivals join the queue, then the queue is scheduled in order. A job
arriving with w(j) = 0 that does not fit goes to the cloud at the same instant, with no wait.
Timeouts being events matters with a strict queue: when its blocked head leaves, the jobs behind
it may start at that moment. The peer's reference numbers (tests/sim/test_starburst.py) hold
only this way; looking at timeouts only at arrivals and completions gives other constant-wait
numbers.

Waiting policies (w(j), seconds), with the budget b set the peer's way, as a fraction of the
total run time the jobs may spend waiting:

* ``no-burst``: w = ∞ (a cluster scheduler, no cloud);
* ``burst-immediately`` (the peer's No-Wait): w = 0;
* ``constant-wait``: w = c, c = b x mean run time;
* ``compute-wait``: w = k x GPUs x run time, k = b x Σ run time / Σ (GPUs x run time); with a
  run-time estimate error e, the run time in w is the trace's plus a normal error of standard
  deviation e x run time (not below 0), drawn once per job from a seeded generator, as the peer
  does;
* ``star-wait``: w = k' x GPUs, k' = b x Σ run time / Σ GPUs (the peer's resource-proportional
  wait, for jobs without a run time; the peer's real scheduler also pulls jobs running longer
  than 5 minutes in the cloud back on-prem, which is not modelled here).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from burstd.sim.trace import Trace

QUEUES = ("strict", "out-of-order")
DEFAULT_BUDGET = 0.25
DEFAULT_RUNTIME_ERROR = 0.5
# The four reference rows of issue 13, each with the queue discipline it was run with.
COMPARE = (
    ("no-burst", "out-of-order"),
    ("burst-immediately", "strict"),
    ("constant-wait", "strict"),
    ("compute-wait", "out-of-order"),
)
# ``--compare`` in the peer model: the four rows, then the estimate variant and Star-Wait.
COMPARE_ALL = (*COMPARE, ("compute-wait-estimate", "out-of-order"), ("star-wait", "out-of-order"))
PEER_POLICIES = tuple(name for name, _ in COMPARE_ALL)


class PeerError(ValueError):
    """Inputs the peer's world cannot take; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Jobs:
    """The peer's jobs: arrival order, whole GPUs, run times in seconds."""

    arrival: tuple[float, ...]
    runtime: tuple[float, ...]
    gpus: tuple[int, ...]

    @classmethod
    def from_trace(cls, trace: Trace) -> Jobs:
        """Jobs from a trace sorted by submit time; a share of a GPU counts as one GPU."""
        gpus = tuple(g if g else 1 for g in trace.gpus)
        return cls(arrival=tuple(trace.submit), runtime=tuple(trace.duration), gpus=gpus)

    def __len__(self) -> int:
        return len(self.arrival)


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """The waiting budget ``fraction`` of the total run time and the coefficients it sets."""

    fraction: float
    constant_s: float
    compute_k: float
    star_k_s: float

    @classmethod
    def of(cls, jobs: Jobs, fraction: float = DEFAULT_BUDGET) -> Budget:
        return cls.of_columns(jobs.runtime, jobs.gpus, fraction)

    @classmethod
    def of_columns(
        cls, runtime: Sequence[float], gpus_of: Sequence[float], fraction: float = DEFAULT_BUDGET
    ) -> Budget:
        """c = b x mean run time; k = b x Σ run time / Σ (GPUs x run time); k' = b x Σ run
        time / Σ GPUs: each policy's waits add up to b x the total run time."""
        total = math.fsum(runtime)
        compute = math.fsum(g * r for g, r in zip(gpus_of, runtime, strict=True))
        gpus = math.fsum(gpus_of)
        n = len(runtime)
        return cls(
            fraction=fraction,
            constant_s=fraction * total / n if n else 0.0,
            compute_k=fraction * total / compute if compute else 0.0,
            star_k_s=fraction * total / gpus if gpus else 0.0,
        )

    def as_dict(self) -> dict[str, float]:
        return {
            "fraction": self.fraction,
            "constant_wait_s": round(self.constant_s, 6),
            "compute_wait_k": round(self.compute_k, 8),
            "star_wait_k_s": round(self.star_k_s, 6),
        }


def waits(
    policy: str, jobs: Jobs, budget: Budget, *, runtime_error: float = 0.0, seed: int = 0
) -> list[float]:
    """w(j) of every job under ``policy`` (one of ``PEER_POLICIES``), in seconds."""
    match policy:
        case "no-burst":
            return [math.inf] * len(jobs)
        case "burst-immediately":
            return [0.0] * len(jobs)
        case "constant-wait":
            return [budget.constant_s] * len(jobs)
        case "compute-wait":
            k = budget.compute_k
            return [k * g * r for g, r in zip(jobs.gpus, jobs.runtime, strict=True)]
        case "compute-wait-estimate":
            k = budget.compute_k
            estimates = estimated_runtimes(jobs.runtime, runtime_error, seed)
            return [k * g * r for g, r in zip(jobs.gpus, estimates, strict=True)]
        case "star-wait":
            return [budget.star_k_s * g for g in jobs.gpus]
    raise PeerError(f"unknown peer policy {policy!r} (known: {', '.join(PEER_POLICIES)})")


def estimated_runtimes(runtimes: Sequence[float], error: float, seed: int) -> list[float]:
    """Run-time estimates with a relative normal error ``error`` (0.5: a standard deviation
    of 50 % of the run time), never below 0; the same ``seed`` gives the same estimates."""
    if error <= 0:
        return list(runtimes)
    rng = np.random.default_rng(seed)
    actual = np.asarray(runtimes, dtype=np.float64)
    noisy = actual + rng.normal(0.0, 1.0, size=actual.size) * (error * actual)
    return [float(x) for x in np.maximum(noisy, 0.0)]


@dataclass(slots=True)
class PeerOutcome:
    """What one run produced: per job its start (on-prem or in the cloud; NaN for a job that
    never started: larger than the cluster, with no timeout) and where it ran; ``end`` is the
    last event's time."""

    policy: str
    queue: str
    starts: list[float]
    cloud: list[bool]
    node_of: list[int]
    gpu_indices: list[tuple[int, ...]]
    events: int
    end: float = 0.0


class _Nodes:
    """Homogeneous nodes, each a bit mask of busy GPU indices."""

    def __init__(self, count: int, per_node: int) -> None:
        self.per = per_node
        self.busy = [0] * count
        self.free = [per_node] * count

    def max_free(self) -> int:
        return max(self.free, default=0)

    def place(self, gpus: int) -> list[tuple[int, tuple[int, ...]]] | None:
        """First fit by node index on the lowest free GPU indices; a job larger than a node
        takes whole nodes and one more node for the rest. None when it does not fit now."""
        demands = [self.per] * (gpus // self.per) + ([gpus % self.per] if gpus % self.per else [])
        if not demands:
            demands = [0]
        plan: list[tuple[int, int]] = []
        taken: set[int] = set()
        for demand in demands:
            for n, free in enumerate(self.free):
                if n not in taken and free >= demand:
                    plan.append((n, demand))
                    taken.add(n)
                    break
            else:
                return None
        out = []
        for n, demand in plan:
            indices: list[int] = []
            mask = self.busy[n]
            for i in range(self.per):
                if len(indices) == demand:
                    break
                if not mask >> i & 1:
                    indices.append(i)
                    mask |= 1 << i
            self.busy[n] = mask
            self.free[n] -= demand
            out.append((n, tuple(indices)))
        return out

    def release(self, allocation: list[tuple[int, tuple[int, ...]]]) -> None:
        for n, indices in allocation:
            for i in indices:
                self.busy[n] &= ~(1 << i)
            self.free[n] += len(indices)


def simulate(
    jobs: Jobs, wait: Sequence[float], *, nodes: int, gpus_per_node: int, queue: str, policy: str
) -> PeerOutcome:
    """Run the peer's world over ``jobs`` with per-job maximum waits ``wait``."""
    if queue not in QUEUES:
        raise PeerError(f"unknown queue {queue!r} (known: {', '.join(QUEUES)})")
    strict = queue == "strict"
    n = len(jobs)
    arrival, runtime, gpus = jobs.arrival, jobs.runtime, jobs.gpus
    cluster = _Nodes(nodes, gpus_per_node)
    starts = [math.nan] * n
    cloud = [False] * n
    node_of = [-1] * n
    indices: list[tuple[int, ...]] = [()] * n
    queued = [False] * n
    running: list[tuple[float, int]] = []  # (end, job)
    allocations: dict[int, list[tuple[int, tuple[int, ...]]]] = {}
    timeouts: list[tuple[float, int]] = []  # (timeout, job); stale once the job left the queue
    pending: list[int] = []  # the queue, in arrival order
    nxt = 0
    events = 0
    t = arrival[0] if n else 0.0
    while True:
        events += 1
        while running and running[0][0] <= t:
            _, j = heapq.heappop(running)
            cluster.release(allocations.pop(j))
        left = False
        while timeouts and timeouts[0][0] <= t:
            timeout, j = heapq.heappop(timeouts)
            if queued[j]:
                queued[j] = False
                cloud[j] = True
                starts[j] = timeout
                left = True
        if left:
            pending = [j for j in pending if queued[j]]
        while nxt < n and arrival[nxt] <= t:
            j = nxt
            nxt += 1
            queued[j] = True
            pending.append(j)
            heapq.heappush(timeouts, (arrival[j] + wait[j], j))
        if pending:
            placed = False
            room = cluster.max_free()
            for j in pending:
                got = cluster.place(gpus[j]) if gpus[j] <= room or gpus[j] > gpus_per_node else None
                if got is None:
                    if strict:
                        break
                    continue
                queued[j] = False
                placed = True
                starts[j] = t
                allocations[j] = got
                node_of[j] = got[0][0]
                indices[j] = tuple(i for _, idx in got for i in idx)
                heapq.heappush(running, (t + runtime[j], j))
                room = cluster.max_free()
            if placed:
                pending = [j for j in pending if queued[j]]
        while timeouts and not queued[timeouts[0][1]]:
            heapq.heappop(timeouts)
        candidates = []
        if running:
            candidates.append(running[0][0])
        if nxt < n:
            candidates.append(arrival[nxt])
        if timeouts and math.isfinite(timeouts[0][0]):
            candidates.append(timeouts[0][0])
        if not candidates:  # what is left in the queue never fits and never times out
            break
        t = max(t, min(candidates))
    return PeerOutcome(
        policy=policy,
        queue=queue,
        starts=starts,
        cloud=cloud,
        node_of=node_of,
        gpu_indices=indices,
        events=events,
        end=t,
    )


def summarize(jobs: Jobs, o: PeerOutcome, local_gpus: int) -> dict[str, Any]:
    """The run's metrics, named as burstd's where they mean the same (docs/simulator.md)."""
    arrival = np.asarray(jobs.arrival, dtype=np.float64)
    runtime = np.asarray(jobs.runtime, dtype=np.float64)
    gpus = np.asarray(jobs.gpus, dtype=np.float64)
    start = np.asarray(o.starts, dtype=np.float64)
    never = np.isnan(start)
    cloud = np.asarray(o.cloud, dtype=bool)
    # A job that never started counts with the wait it had when the run ended.
    wait = np.where(never, o.end - arrival, start - arrival)
    if wait.size:
        p50, p95, p99 = (float(x) for x in np.percentile(wait, [50, 95, 99]))
        finish = np.where(never, o.end, start + runtime)
        span = float(finish.max() - arrival.min())
    else:
        p50 = p95 = p99 = span = 0.0
    local_gpu_s = float((gpus * runtime)[~cloud & ~never].sum())
    return {
        "queue": o.queue,
        "gpu_wait_p50_s": round(p50, 3),
        "gpu_wait_p95_s": round(p95, 3),
        "gpu_wait_p99_s": round(p99, 3),
        "gpu_wait_mean_s": round(float(wait.mean()) if wait.size else 0.0, 3),
        "jct_mean_s": round(float((wait + runtime)[~never].mean()) if (~never).any() else 0.0, 3),
        "local_gpu_utilization": round(local_gpu_s / (local_gpus * span), 6)
        if local_gpus and span
        else 0.0,
        "burst_gpu_hours": round(float((gpus * runtime)[cloud].sum()) / 3600.0, 6),
        "cloud_jobs": int(cloud.sum()),
        "pods": len(jobs),
        "pods_that_waited": int((wait > 0).sum()),
        "pods_never_started": int(never.sum()),
        "events": o.events,
    }


def homogeneous(node_gpus: Sequence[int]) -> int:
    """The GPUs per node of a homogeneous cluster; a PeerError otherwise."""
    sizes = sorted(set(node_gpus))
    if len(sizes) != 1:
        raise PeerError(
            "the starburst peer model needs homogeneous nodes (one GPU count per node), got "
            f"{', '.join(str(s) for s in sizes) or 'no nodes'}; use a spec like --nodes 6x8"
        )
    return sizes[0]


# Policies whose waits do not depend on the budget.
BUDGET_FREE = ("no-burst", "burst-immediately")


def budget_label(policy: str, fraction: float, several: bool) -> str:
    """A policy's name, with its budget when several budgets are run (``compute-wait b=0.1``)."""
    return f"{policy} b={fraction:g}" if several and policy not in BUDGET_FREE else policy


def run_peer(
    jobs: Jobs,
    *,
    nodes: int,
    gpus_per_node: int,
    policies: Sequence[tuple[str, str]],
    budgets: Sequence[Budget],
    runtime_error: float = DEFAULT_RUNTIME_ERROR,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Run each (policy, queue) once per budget (once if its waits do not depend on it) and
    return their metrics by name (``budget_label``), in order."""
    out: dict[str, dict[str, Any]] = {}
    several = len(budgets) > 1
    for policy, queue in policies:
        for budget in budgets[:1] if policy in BUDGET_FREE else budgets:
            w = waits(policy, jobs, budget, runtime_error=runtime_error, seed=seed)
            o = simulate(
                jobs, w, nodes=nodes, gpus_per_node=gpus_per_node, queue=queue, policy=policy
            )
            metrics = summarize(jobs, o, nodes * gpus_per_node)
            out[budget_label(policy, budget.fraction, several)] = metrics
    return out

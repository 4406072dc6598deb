"""The floor for the simulator's speed: a bare heapq event loop over the same trace.

Arrivals and completions in one heap, one FIFO queue (only its head may start: no
backfilling), first-fit over per-GPU free shares, no control loop, no metrics beyond a count.
Whatever the simulator spends beyond this is the price of its scheduler, its bookkeeping and
burstd's decisions.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence

from burstd.sim.cluster import NodeSpec
from burstd.sim.trace import Trace

FULL = 1000


def replay(trace: Trace, nodes: Sequence[NodeSpec]) -> int:
    """Run the trace through a FIFO first-fit cluster; return the number of events handled."""
    free = [[FULL] * n.gpus for n in nodes]
    heap: list[tuple[float, int, int, int, tuple[int, ...]]] = []
    queue: deque[int] = deque()
    submit, duration, gpus, milli = trace.submit, trace.duration, trace.gpus, trace.milli
    seq = 0
    events = 0

    def fit(i: int) -> tuple[int, tuple[int, ...]] | None:
        g, m = gpus[i], milli[i]
        for n, shares in enumerate(free):
            if m:
                for k, f in enumerate(shares):
                    if f >= m:
                        shares[k] = f - m
                        return n, (k,)
            else:
                whole = [k for k, f in enumerate(shares) if f == FULL]
                if len(whole) >= g:
                    for k in whole[:g]:
                        shares[k] = 0
                    return n, tuple(whole[:g])
        return None

    def start(i: int, now: float) -> bool:
        nonlocal seq
        placed = fit(i)
        if placed is None:
            return False
        seq += 1
        heapq.heappush(heap, (now + duration[i], seq, i, placed[0], placed[1]))
        return True

    n_pods = len(submit)
    next_arrival = 0
    while next_arrival < n_pods or heap:
        t_arr = submit[next_arrival] if next_arrival < n_pods else float("inf")
        events += 1
        if heap and heap[0][0] <= t_arr:
            now, _, i, node, slots = heapq.heappop(heap)
            shares = free[node]
            for k in slots:
                shares[k] = shares[k] + milli[i] if milli[i] else FULL
            while queue and start(queue[0], now):
                queue.popleft()
        else:
            i = next_arrival
            next_arrival += 1
            if queue or not start(i, t_arr):
                queue.append(i)
    return events

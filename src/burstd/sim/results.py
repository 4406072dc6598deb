"""The numbers a run is judged by, computed from what it produced.

Every policy of a comparison reports the same metrics (``docs/simulator.md`` says what each
means). Waits are measured from a pod's arrival to its start (summed over restarts after an
eviction); pods that no local node and no target could ever hold are counted apart
(``unschedulable_pods``) and left out of every wait and completion statistic; pods still
waiting when the run ends count with the wait they had so far.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from burstd.sim.engine import Outcome

METRICS = (
    "gpu_wait_p50_s",
    "gpu_wait_p95_s",
    "gpu_wait_p99_s",
    "gpu_wait_mean_s",
    "jct_mean_s",
    "local_gpu_utilization",
    "burst_gpu_hours",
    "idle_burst_gpu_hours",
    "burst_cost_usd",
    "units_provisioned",
    "units_released",
    "peak_burst_gpus",
    "unschedulable_pods",
)


def _r(x: float, digits: int = 6) -> float:
    return float(round(float(x), digits))


def summarize(o: Outcome) -> dict[str, Any]:
    """The metrics of one run, JSON-ready."""
    waits = np.asarray(o.waits, dtype=np.float64)
    if waits.size:
        p50, p95, p99 = np.percentile(waits, [50, 95, 99])
        mean = float(waits.mean())
        waited = int((waits > 0).sum())
    else:
        p50 = p95 = p99 = mean = 0.0
        waited = 0
    span = max(o.work_end - o.start, 1e-9)
    static_hours = o.static_gpus * span / 3600.0
    unit_hours = sum(r.gpus * r.usable_seconds() for r in o.units) / 3600.0
    billed_hours = sum(r.gpus * r.billed_seconds() for r in o.units) / 3600.0 + static_hours
    burst_hours = unit_hours + static_hours
    cost = sum(r.cost() for r in o.units) + static_hours * o.static_price
    static_units = int(o.extra.get("static_units", 0))
    return {
        "gpu_wait_p50_s": _r(p50, 3),
        "gpu_wait_p95_s": _r(p95, 3),
        "gpu_wait_p99_s": _r(p99, 3),
        "gpu_wait_mean_s": _r(mean, 3),
        "jct_mean_s": _r(o.jct_sum / o.jct_count if o.jct_count else 0.0, 3),
        "local_gpu_utilization": _r(o.local_gpu_seconds / (o.local_gpus * span))
        if o.local_gpus
        else 0.0,
        "burst_gpu_hours": _r(burst_hours),
        "idle_burst_gpu_hours": _r(max(0.0, burst_hours - o.borrowed_gpu_seconds / 3600.0)),
        "billed_gpu_hours": _r(billed_hours),
        "burst_cost_usd": _r(cost, 4),
        "units_provisioned": sum(1 for r in o.units if r.ready_at is not None) + static_units,
        "units_released": sum(1 for r in o.units if r.outcome == "released") + static_units,
        "units_failed": sum(1 for r in o.units if r.outcome == "failed"),
        "units_abandoned": sum(1 for r in o.units if r.outcome == "abandoned"),
        "units_alive_at_end": sum(1 for r in o.units if r.outcome == "cut"),
        "peak_burst_gpus": _r(o.peak_borrowed, 3),
        "unschedulable_pods": o.never_fit,
        "pods": len(o.waits),
        "pods_that_waited": waited,
        "pods_never_started": o.never_started,
        "evicted_pods": o.evicted,
        "control_passes": o.passes,
        "events": o.events,
        "work_end_s": _r(o.work_end - o.start, 3),
        "targets": _by_target(o),
    }


def _by_target(o: Outcome) -> dict[str, dict[str, float | int]]:
    out: dict[str, dict[str, float | int]] = {}
    for r in o.units:
        t = out.setdefault(r.target, {"units": 0, "gpu_hours": 0.0, "cost_usd": 0.0})
        t["units"] = int(t["units"]) + (1 if r.ready_at is not None else 0)
        t["gpu_hours"] = float(t["gpu_hours"]) + r.gpus * r.usable_seconds() / 3600.0
        t["cost_usd"] = float(t["cost_usd"]) + r.cost()
    for t in out.values():
        t["gpu_hours"] = _r(t["gpu_hours"])
        t["cost_usd"] = _r(t["cost_usd"], 4)
    return dict(sorted(out.items()))


def cumulative_cost(o: Outcome, points: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Money spent by each time (hours since the start), for the report's cost plot: a unit
    accrues its price linearly from its create call to its end (its billing minimum is
    charged at the end)."""
    end = max(o.end, o.start + 1.0)
    times = np.linspace(o.start, end, points)
    total = np.zeros(points)
    for r in o.units:
        if r.outcome == "failed" or r.ended_at is None:
            continue
        rate = r.gpus * r.price_per_gpu_hour / 3600.0
        if rate <= 0:
            continue
        running = np.clip(times - r.created_at, 0.0, r.ended_at - r.created_at)
        total += running * rate
        short = r.billing_minimum - (r.ended_at - r.created_at)
        if short > 0:
            total += np.where(times >= r.ended_at, short * rate, 0.0)
    if o.static_gpus and o.static_price:
        span_end = o.work_end
        total += np.clip(times - o.start, 0.0, span_end - o.start) * (
            o.static_gpus * o.static_price / 3600.0
        )
    return (times - o.start) / 3600.0, total

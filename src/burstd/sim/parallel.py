"""Sweep runs in parallel processes, one per core by default.

A run is a pure function of its inputs (trace, nodes, rules, seed), so running the runs of a
sweep in other processes changes nothing but the time: each worker gets the setup once (as
its initializer's argument) and one rules file per task, and results come back in sweep
order. ``jobs=1`` runs them here, one after the other, which is what the test compares with.
With a Ray address the runs go to that cluster instead (``burstd.sim.ray_backend``), again in
sweep order: ``run_sweep`` is the one entry point, and picks the backend.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from burstd.rules.types import RuleSet
from burstd.sim.compare import Setup, run_one
from burstd.sim.engine import Progress
from burstd.sim.ray_backend import connected, sweep_metrics
from burstd.sim.results import METRICS
from burstd.sim.sweep import Variant

_setup: Setup | None = None


def default_jobs() -> int:
    """One process per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _init(setup: Setup) -> None:
    global _setup
    _setup = setup


def _metrics(ruleset: RuleSet) -> dict[str, Any]:
    assert _setup is not None, "the worker's initializer sets it up"
    return run_one(_setup, "burstd", ruleset).metrics


def sweep_row(v: Variant, metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "label": v.label,
        "settings": dict(v.settings),
        "rules_digest": v.ruleset.digest,
        **{m: metrics[m] for m in METRICS},
    }


def run_sweep(
    setup: Setup,
    variants: Sequence[Variant],
    *,
    jobs: int | None = None,
    ray: str | None = None,
    progress: Callable[[str], Progress | None] | None = None,
) -> list[dict[str, Any]]:
    """One row per variant, in order: its label, settings, rules digest and metrics. With
    ``ray``, an address as ``burstd simulate --ray`` takes it, as tasks of that Ray cluster
    (``ray_backend.RayError`` if Ray is missing or the address fails); otherwise ``jobs``
    processes (default ``default_jobs()``), and with one, or one variant, in this process (with
    a progress bar per run)."""
    if ray is not None and variants:
        with connected(ray):
            results = sweep_metrics(setup, [v.ruleset for v in variants])
        return [sweep_row(v, m) for v, m in zip(variants, results, strict=True)]
    jobs = default_jobs() if jobs is None else jobs
    if jobs <= 1 or len(variants) <= 1:
        rows = []
        for v in variants:
            bar = progress(v.label[:18]) if progress is not None else None
            rows.append(sweep_row(v, run_one(setup, "burstd", v.ruleset, progress=bar).metrics))
        return rows
    workers = min(jobs, len(variants))
    with ProcessPoolExecutor(max_workers=workers, initializer=_init, initargs=(setup,)) as pool:
        results = list(pool.map(_metrics, [v.ruleset for v in variants]))
    return [sweep_row(v, m) for v, m in zip(variants, results, strict=True)]

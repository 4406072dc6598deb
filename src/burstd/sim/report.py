"""A human report of a simulation: Markdown with PNG plots (matplotlib, Agg backend).

``report.md`` holds the comparison table and what was run; the plots are

* ``capacity.png``: GPU demand against local capacity and borrowed capacity over time, per
  policy that borrows;
* ``wait_cdf.png``: the distribution of GPU wait per policy;
* ``cost.png``: cumulative burst cost per policy;
* ``pareto.png`` (with a sweep): burst cost against mean, p95 and p99 GPU wait for each sweep
  point, the baselines on the same axes, the non-dominated points joined.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from burstd.sim.compare import PolicyRun
from burstd.sim.results import METRICS, cumulative_cost
from burstd.sim.sweep import pareto

COLORS = {
    "burstd": "tab:blue",
    "no-burst": "tab:gray",
    "burst-immediately": "tab:red",
    "static": "tab:green",
    "constant-wait": "tab:orange",
    "compute-wait": "tab:purple",
    "compute-wait-estimate": "tab:pink",
    "star-wait": "tab:brown",
}

DESCRIPTIONS = {
    "gpu_wait_p50_s": "median GPU wait (s)",
    "gpu_wait_p95_s": "95th percentile GPU wait (s)",
    "gpu_wait_p99_s": "99th percentile GPU wait (s)",
    "gpu_wait_mean_s": "mean GPU wait (s)",
    "jct_mean_s": "mean job completion time (s)",
    "local_gpu_utilization": "local GPU allocation (fraction)",
    "burst_gpu_hours": "borrowed GPU-hours (ready to release)",
    "idle_burst_gpu_hours": "borrowed GPU-hours no pod used",
    "burst_cost_usd": "burst cost (USD)",
    "units_provisioned": "units that became ready",
    "units_released": "units given back",
    "peak_burst_gpus": "peak borrowed GPUs",
    "unschedulable_pods": "pods nothing could ever hold",
}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table_rows(runs: Mapping[str, PolicyRun], *, describe: bool = True) -> list[list[str]]:
    """One row per metric: its description (or JSON key) and its value per policy."""
    return [
        [DESCRIPTIONS.get(m, m) if describe else m] + [_fmt(r.metrics[m]) for r in runs.values()]
        for m in METRICS
    ]


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_capacity(runs: Mapping[str, PolicyRun], path: Path) -> None:
    shown = [r for r in runs.values() if r.name != "no-burst"] or list(runs.values())
    fig, axes = plt.subplots(
        len(shown), 1, figsize=(10, 2.6 * len(shown)), sharex=True, squeeze=False
    )
    for ax, run in zip(axes[:, 0], shown, strict=True):
        s = run.outcome.series
        assert s is not None
        days = (np.arange(len(s.demand)) * s.step) / 86_400.0
        local = run.outcome.local_gpus
        borrowed = np.asarray(s.borrowed_capacity)
        ax.fill_between(
            days,
            local,
            local + borrowed,
            step="post",
            color="tab:orange",
            alpha=0.35,
            label="borrowed capacity",
        )
        ax.axhline(local, color="black", lw=1, label=f"local capacity ({local} GPUs)")
        ax.step(
            days,
            s.demand,
            where="post",
            color=COLORS.get(run.name, "tab:blue"),
            lw=1,
            label="demand (running + pending GPUs)",
        )
        ax.step(
            days,
            np.asarray(s.local) + np.asarray(s.borrowed_used),
            where="post",
            color="tab:purple",
            lw=0.8,
            alpha=0.8,
            label="GPUs in use",
        )
        ax.set_ylabel("GPUs")
        ax.set_title(run.name, fontsize=10)
        ax.legend(loc="upper left", fontsize=7)
    axes[-1, 0].set_xlabel("days since the trace start")
    _save(fig, path)


def plot_wait_cdf(runs: Mapping[str, PolicyRun], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for run in runs.values():
        w = np.sort(np.asarray(run.outcome.waits, dtype=np.float64))
        if not w.size:
            continue
        y = np.arange(1, w.size + 1) / w.size
        ax.step(np.maximum(w, 0.1), y, where="post", label=run.name, color=COLORS.get(run.name))
    ax.set_xscale("log")
    ax.set_xlabel("GPU wait (s, log scale; 0 drawn at 0.1)")
    ax.set_ylabel("fraction of pods")
    ax.set_ylim(0.8, 1.001)
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def plot_cost(runs: Mapping[str, PolicyRun], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for run in runs.values():
        hours, total = cumulative_cost(run.outcome)
        ax.plot(hours / 24.0, total, label=run.name, color=COLORS.get(run.name))
    ax.set_xlabel("days since the trace start")
    ax.set_ylabel("cumulative burst cost (USD)")
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


WAITS = (
    ("gpu_wait_mean_s", "mean GPU wait (s)"),
    ("gpu_wait_p95_s", "p95 GPU wait (s)"),
    ("gpu_wait_p99_s", "p99 GPU wait (s)"),
)
PEER_POINTS = ("constant-wait", "compute-wait", "compute-wait-estimate", "star-wait")


def plot_pareto(
    rows: Sequence[Mapping[str, Any]], baselines: Mapping[str, PolicyRun], path: Path
) -> None:
    """Cost against wait, one panel per wait percentile: a p95 of zero for every setting says
    little, the p99 separates them. Cost is on a symlog axis so a free baseline still shows."""
    fig, axes = plt.subplots(1, len(WAITS), figsize=(18, 5))
    for ax, (metric, title) in zip(axes, WAITS, strict=True):
        xy = [(float(r["burst_cost_usd"]), float(r[metric])) for r in rows]
        ax.scatter([c for c, _ in xy], [w for _, w in xy], color="tab:blue", label="burstd (sweep)")
        for row, (c, w) in zip(rows, xy, strict=True):
            ax.annotate(row["label"], (c, w), fontsize=7, xytext=(4, 4), textcoords="offset points")
        front = pareto(xy)
        ax.plot(
            [xy[i][0] for i in front],
            [xy[i][1] for i in front],
            color="tab:blue",
            lw=1,
            alpha=0.6,
            label="Pareto front",
        )
        for kind in PEER_POINTS:  # one policy over several budgets: the peer's own curve
            curve = sorted(
                (float(run.metrics["burst_cost_usd"]), float(run.metrics[metric]))
                for name, run in baselines.items()
                if name.split(" ", 1)[0] == kind
            )
            if len(curve) > 1:
                ax.plot(*zip(*curve, strict=True), ls="--", lw=1, color=COLORS[kind], alpha=0.6)
        for name, run in baselines.items():
            ax.scatter(
                [run.metrics["burst_cost_usd"]],
                [run.metrics[metric]],
                marker="s",
                color=COLORS.get(name.split(" ", 1)[0], "black"),
                label=name,
            )
        ax.set_xscale("symlog", linthresh=100)
        ax.set_yscale("symlog", linthresh=10)
        ax.set_xlabel("burst cost (USD)")
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    _save(fig, path)


def write_report(
    directory: Path,
    runs: Mapping[str, PolicyRun],
    meta: Mapping[str, Any],
    sweep_rows: Sequence[Mapping[str, Any]] = (),
) -> list[Path]:
    """Write ``report.md`` and its plots into ``directory``; return the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    plots = [
        ("capacity.png", "Demand against local and borrowed capacity", plot_capacity),
        ("wait_cdf.png", "GPU wait distribution", plot_wait_cdf),
        ("cost.png", "Cumulative burst cost", plot_cost),
    ]
    for name, _, draw in plots:
        draw(runs, directory / name)
        written.append(directory / name)
    if sweep_rows:
        baselines = {k: v for k, v in runs.items() if k != "burstd"}
        plot_pareto(sweep_rows, baselines, directory / "pareto.png")
        written.append(directory / "pareto.png")

    lines = ["# burstd simulation report", ""]
    trace = meta.get("trace", {})
    lines += [
        f"* trace: {trace.get('trace', '?')} — {trace.get('pods', '?')} GPU pods"
        f" (skipped: {trace.get('skipped', {})}, bad rows skipped: "
        f"{trace.get('bad_rows_skipped', 0)})",
        f"* local cluster: {meta.get('nodes', '?')} — {meta.get('local_nodes', '?')} nodes, "
        f"{meta.get('local_gpus', '?')} GPUs",
        f"* rules: {meta.get('rules', '?')} (digest {meta.get('rules_digest', '?')})",
        f"* seed {meta.get('seed', '?')}, start {meta.get('start', '?')}",
        f"* rescaling: {meta.get('rescaling', 'none')}",
        "",
        "## Comparison",
        "",
        "| metric | " + " | ".join(runs) + " |",
        "| --- | " + " | ".join("---:" for _ in runs) + " |",
    ]
    for row in table_rows(runs):
        lines.append("| " + " | ".join(row) + " |")
    baselines_meta = meta.get("baselines")
    if baselines_meta:
        lines += ["", "Baselines: " + "; ".join(f"{k}: {v}" for k, v in baselines_meta.items())]
    for name, title, _ in plots:
        lines += ["", f"## {title}", "", f"![{title}]({name})"]
    if sweep_rows:
        lines += ["", "## Sweep: cost against wait", "", "![Pareto](pareto.png)", ""]
        lines += [
            "| # | setting | burst cost (USD) | mean wait (s) | p95 wait (s) | p99 wait (s) |",
            "| ---: | --- | ---: | ---: | ---: | ---: |",
        ]
        for n, point in enumerate(sweep_rows, start=1):
            lines.append(
                f"| {n} | {point['label']} | {point['burst_cost_usd']:,.2f} | "
                f"{point['gpu_wait_mean_s']:,.1f} | "
                f"{point['gpu_wait_p95_s']:,.1f} | {point['gpu_wait_p99_s']:,.1f} |"
            )
        lines += _peer_lines(runs, sweep_rows)
    lines.append("")
    (directory / "report.md").write_text("\n".join(lines), encoding="utf-8")
    written.insert(0, directory / "report.md")
    return written


def _dominates(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Lower or equal cost and mean wait, one of them strictly."""
    ca, cb = float(a["burst_cost_usd"]), float(b["burst_cost_usd"])
    wa, wb = float(a["gpu_wait_mean_s"]), float(b["gpu_wait_mean_s"])
    return ca <= cb and wa <= wb and (ca < cb or wa < wb)


def _peer_lines(
    runs: Mapping[str, PolicyRun], sweep_rows: Sequence[Mapping[str, Any]]
) -> list[str]:
    """The peer policies' points and the sweep settings that dominate each."""
    peers = [name for name in runs if name.split(" ", 1)[0] in PEER_POINTS]
    if not peers:
        return []
    lines = [
        "",
        "Starburst's policies on the same axes (dominated: lower or equal cost and mean wait, "
        "one strictly):",
        "",
        "| peer policy | burst cost (USD) | mean wait (s) | p99 wait (s) | dominated by (#) |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name in peers:
        m = runs[name].metrics
        by = [f"#{n}" for n, r in enumerate(sweep_rows, start=1) if _dominates(r, m)]
        lines.append(
            f"| {name} | {m['burst_cost_usd']:,.2f} | {m['gpu_wait_mean_s']:,.1f} | "
            f"{m['gpu_wait_p99_s']:,.1f} | {', '.join(by) or 'no sweep point'} |"
        )
    return lines

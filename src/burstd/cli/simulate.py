"""``burstd simulate``: run the control loop over a workload trace and compare policies.

Defaults are bundled: the openb trace, a small local cluster (``small``: 40 GPUs) and
``sim-default.yaml``. Tables go to stdout; the progress bar, timings and warnings to stderr.
Bad input (a trace row, a node list, a rules file, a sweep) is reported as
``file:line:column: message`` with exit code 1, never a traceback.
"""

from __future__ import annotations

import errno
import json
import sys
import time
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from burstd.cli.options import seconds_option
from burstd.inputs import RULES_MAX_BYTES, InputError, read_text, write_text
from burstd.rules.loader import RulesError, load_rules, parse_rules
from burstd.rules.types import RuleSet
from burstd.sim.cluster import MAX_CLUSTER_GPUS, ClusterError, load_nodes
from burstd.sim.compare import PolicyRun, Setup, compare
from burstd.sim.duty import load_duty_cycle
from burstd.sim.engine import DEFAULT_START_EPOCH, SimConfig
from burstd.sim.parallel import default_jobs, run_sweep
from burstd.sim.ray_backend import RayError
from burstd.sim.ray_backend import check as check_ray
from burstd.sim.report import table_rows, write_report
from burstd.sim.starburst import (
    COMPARE_ALL,
    DEFAULT_BUDGET,
    DEFAULT_RUNTIME_ERROR,
    QUEUES,
    Budget,
    Jobs,
    PeerError,
    homogeneous,
    run_peer,
)
from burstd.sim.sweep import SweepError, parse_sweep, variants
from burstd.sim.synthetic import generate, is_synthetic, parse_synthetic
from burstd.sim.trace import Trace, TraceError, load_trace
from burstd.sim.wakeups import has_utilization

DEFAULT_RULES = "sim-default.yaml"
OPENB_GPUS = 6212


def _rules_text(path: str | None) -> tuple[str, str]:
    if path is None:
        ref = resources.files("burstd") / "data" / "rules" / DEFAULT_RULES
        return ref.read_text(encoding="utf-8"), f"{DEFAULT_RULES} (bundled)"
    try:
        return read_text(path, limit=RULES_MAX_BYTES, what="rules file"), path
    except InputError:
        load_rules(path)  # reports why, as a RulesError
        raise


def _fail(lines: list[str]) -> None:
    for line in lines:
        click.echo(line, err=True)
    raise SystemExit(1)


def _start(text: str | None) -> float:
    if text is None:
        return DEFAULT_START_EPOCH
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"expected an ISO date like 2023-07-03T00:00Z, got {text!r}"
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.timestamp()


class _Bars:
    """One rich progress bar per policy on stderr."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled
        self.total = total
        self.progress = Progress(
            TextColumn("{task.description:<18}"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,} pods"),
            TimeElapsedColumn(),
            console=Console(file=sys.stderr),
            transient=False,
        )

    def __enter__(self) -> _Bars:
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()

    def bar(self, name: str) -> Any:
        if not self.enabled:
            return None
        task = self.progress.add_task(name, total=self.total)

        def update(done: int, total: int) -> None:
            self.progress.update(task, completed=done, total=total)

        return update


@click.command()
@click.option(
    "--trace",
    "trace_arg",
    default=None,
    metavar="PATH|openb|synthetic:...",
    help="Workload: the bundled openb trace (default), an openb or generic CSV/JSONL "
    "file, or synthetic:pods=N,load=L,seed=S,... (docs/simulator.md).",
)
@click.option(
    "--nodes",
    "nodes_arg",
    default=None,
    metavar="PATH|SPEC",
    help="Local cluster: 'small' (bundled, default, 40 GPUs), 'openb' (1,213 nodes), an "
    "openb node CSV, or a spec like 4x8:V100M32,2x4:T4.",
)
@click.option(
    "--rules",
    "rules_arg",
    default=None,
    metavar="PATH",
    help="Rules file (default: the bundled sim-default.yaml).",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=click.IntRange(0, 2**63 - 1),
    help="Seed for provider timing.",
)
@click.option(
    "--utilization",
    "utilization_arg",
    type=click.Choice(["allocation", "duty-cycle"]),
    default="allocation",
    show_default=True,
    help="What utilization triggers read: the share of local GPUs allocated, or the bundled "
    "GenAI duty-cycle trace (mean of its 8 inference pods), replayed.",
)
@seconds_option(
    "--utilization-step",
    1,
    86_400,
    help="Seconds each duty-cycle sample lasts (default: the trace's own 57 s).",
)
@click.option(
    "--compare",
    "do_compare",
    is_flag=True,
    help="Also run the baselines: no-burst, burst-immediately, static.",
)
@click.option(
    "--json",
    "json_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Write metrics and metadata as JSON.",
)
@click.option(
    "--report",
    "report_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Write report.md with plots into this directory.",
)
@click.option(
    "--skip-bad-rows", is_flag=True, help="Skip malformed trace rows (counted) instead of stopping."
)
@click.option(
    "--sweep",
    "sweeps",
    multiple=True,
    metavar="PATH=V1,V2,...",
    help="Run burstd once per value of a rules field, e.g. "
    "rules.interactive.triggers[0].pending.for=0s,2m,10m (repeatable: all combinations).",
)
@click.option(
    "--jobs",
    "jobs_arg",
    type=click.IntRange(min=1),
    default=None,
    help="Processes for --sweep runs (default: one per core; 1 runs them here in turn).",
)
@click.option(
    "--ray",
    "ray_address",
    default=None,
    metavar="ADDRESS",
    help="Run the --sweep runs on a Ray cluster instead: auto (the one RAY_ADDRESS or this "
    "machine names), local (a new local instance), host:port or ray://host:port. Needs "
    "pip install 'burstd[ray]'.",
)
@click.option(
    "--static-gpus",
    type=click.IntRange(0, MAX_CLUSTER_GPUS),
    default=None,
    help="GPUs of the static baseline (default: burstd's mean borrowed GPUs).",
)
@click.option(
    "--immediate-target",
    default=None,
    help="Target of the burst-immediately baseline (default: the first terraform target).",
)
@click.option(
    "--start",
    "start_arg",
    default=None,
    metavar="ISO",
    help="When the trace starts, for schedule triggers (default 2023-07-03T00:00Z, a Monday).",
)
@click.option(
    "--exact", is_flag=True, help="Run every periodic pass instead of skipping idle ones."
)
@click.option(
    "--peer-model",
    type=click.Choice(["starburst"]),
    default=None,
    help="Run a peer's own simulated world instead of burstd's (docs/simulator.md).",
)
@click.option("--whole-gpus", is_flag=True, help="Count every share of a GPU as one whole GPU.")
@click.option(
    "--budget",
    "budgets_arg",
    type=click.FloatRange(min=0.0),
    multiple=True,
    help="Waiting budget of the peer's policies, a fraction of the total run time "
    f"(default {DEFAULT_BUDGET:g}); repeat to sweep it.",
)
@click.option(
    "--queue",
    "queue_arg",
    type=click.Choice(QUEUES),
    default=None,
    help="Peer model: one queue discipline for every policy (default: each its own).",
)
@click.option(
    "--runtime-error",
    type=click.FloatRange(min=0.0),
    default=DEFAULT_RUNTIME_ERROR,
    show_default=True,
    help="Relative error (sigma) of the run-time estimates of compute-wait-estimate.",
)
@click.option(
    "--progress/--no-progress",
    "show_progress",
    default=None,
    help="Progress bar on stderr (default: when stderr is a terminal).",
)
def simulate(
    trace_arg: str | None,
    nodes_arg: str | None,
    rules_arg: str | None,
    seed: int,
    utilization_arg: str,
    utilization_step: float | None,
    do_compare: bool,
    json_path: str | None,
    report_dir: str | None,
    skip_bad_rows: bool,
    sweeps: tuple[str, ...],
    jobs_arg: int | None,
    ray_address: str | None,
    static_gpus: int | None,
    immediate_target: str | None,
    start_arg: str | None,
    exact: bool,
    peer_model: str | None,
    whole_gpus: bool,
    budgets_arg: tuple[float, ...],
    queue_arg: str | None,
    runtime_error: float,
    show_progress: bool | None,
) -> None:
    """Replay a workload through burstd's control loop on a simulated cluster."""
    budgets = budgets_arg or (DEFAULT_BUDGET,)
    if peer_model is not None:
        unused = [
            flag
            for flag, given in (
                ("--rules", rules_arg is not None),
                ("--sweep", bool(sweeps)),
                ("--ray", ray_address is not None),
                ("--report", report_dir is not None),
                ("--static-gpus", static_gpus is not None),
                ("--immediate-target", immediate_target is not None),
                ("--exact", exact),
            )
            if given
        ]
        if unused:
            raise click.UsageError(
                f"{', '.join(unused)}: not used by --peer-model {peer_model} (burstd's world only)"
            )
        _peer(
            trace_arg,
            nodes_arg,
            do_compare=do_compare,
            json_path=json_path,
            skip_bad_rows=skip_bad_rows,
            budgets=budgets,
            queue=queue_arg,
            runtime_error=runtime_error,
            seed=seed,
        )
        return
    if ray_address is not None:
        _check_ray(ray_address, sweeps=bool(sweeps), jobs=jobs_arg is not None)
    try:
        text, source = _rules_text(rules_arg)
        ruleset = parse_rules(text, source)
    except RulesError as e:
        _fail([str(p) for p in e.problems])
        return
    if immediate_target is not None and immediate_target not in ruleset.targets:
        raise click.BadParameter(
            f"no target {immediate_target!r} (targets: {', '.join(ruleset.targets)})",
            param_hint="--immediate-target",
        )
    try:
        nodes, nodes_source = load_nodes(nodes_arg)
        local_gpus = sum(n.gpus for n in nodes)
        if is_synthetic(trace_arg):
            assert trace_arg is not None
            trace = generate(parse_synthetic(trace_arg), local_gpus)
        else:
            trace = load_trace(trace_arg, skip_bad_rows=skip_bad_rows)
        if whole_gpus:
            trace = trace.whole_gpus()
        parsed_sweeps = [parse_sweep(s) for s in sweeps]
        sweep_variants = list(variants(text, source, parsed_sweeps)) if parsed_sweeps else []
    except (TraceError, ClusterError, SweepError) as e:
        _fail([str(e)])
        return
    if trace.meta.get("bad_rows_skipped"):
        click.echo(
            f"skipped {trace.meta['bad_rows_skipped']} bad row(s) of {trace.source}", err=True
        )
        for message in trace.meta.get("bad_row_examples", [])[:5]:
            click.echo(f"  {message}", err=True)

    if exact or has_utilization(ruleset):
        _check_exact(trace, ruleset, "--exact" if exact else "a utilization trigger")
    util: tuple[float, ...] = ()
    step = utilization_step or 60.0
    if utilization_arg == "duty-cycle":
        duty = load_duty_cycle()
        util, step = duty.mean(), utilization_step or duty.step_s
    config = SimConfig(
        seed=seed,
        start_epoch=_start(start_arg),
        exact=exact,
        utilization=util,
        utilization_step=step,
    )
    jobs = jobs_arg if jobs_arg is not None else default_jobs()
    setup = Setup(
        trace=trace, nodes=nodes, ruleset=ruleset, config=config, nodes_source=nodes_source
    )
    meta = _meta(setup, ruleset, trace, nodes_source, local_gpus)
    enabled = show_progress if show_progress is not None else sys.stderr.isatty()
    baselines = do_compare or bool(sweep_variants)
    began = time.perf_counter()
    with _Bars(enabled, len(trace)) as bars:
        runs = compare(
            setup,
            baselines=baselines,
            static_gpus=static_gpus,
            immediate_target=immediate_target,
            progress=bars.bar,
            budgets=budgets,
            runtime_error=runtime_error,
        )
        try:
            sweep_rows = run_sweep(
                setup,
                sweep_variants,
                jobs=jobs,
                ray=ray_address,
                progress=bars.bar if jobs == 1 and ray_address is None else None,
            )
        except RayError as e:
            _fail([f"--ray {e}"])
            return
    elapsed = time.perf_counter() - began
    meta.update(setup.meta)

    _print_table(runs, meta, len(trace))
    if sweep_rows:
        _print_sweep(sweep_rows)
    click.echo(
        f"simulated {len(trace):,} pods x {len(runs) + len(sweep_rows)} run(s) in {elapsed:.2f} s",
        err=True,
    )
    if json_path is not None:
        doc: dict[str, Any] = {"meta": meta, "policies": {k: v.metrics for k, v in runs.items()}}
        if sweep_rows:
            doc["sweep"] = sweep_rows
        _write_json(json_path, doc)
    if report_dir is not None:
        try:
            written = write_report(Path(report_dir), runs, meta, sweep_rows)
        except OSError as e:
            _fail([f"{report_dir}: cannot write the report: {e.strerror or e}"])
            return
        click.echo(f"report: {written[0]}", err=True)


def _check_ray(address: str, *, sweeps: bool, jobs: bool) -> None:
    """Before any run: ``--ray`` is for sweeps, replaces ``--jobs``, and needs Ray installed
    and a cluster that answers."""
    if not sweeps:
        raise click.UsageError("--ray: only --sweep runs go to Ray; give a --sweep")
    if jobs:
        raise click.UsageError("--jobs and --ray: the sweep runs in processes or on Ray, not both")
    try:
        check_ray(address)
    except RayError as e:
        raise click.BadParameter(str(e), param_hint="--ray") from None


MAX_EXACT_PASSES = 10_000_000


def _check_exact(trace: Trace, ruleset: RuleSet, why: str) -> None:
    """Exact runs (``--exact``, or rules with a utilization trigger) make a pass every loop
    interval however idle the trace is, so their time is the trace's span over the interval:
    refuse one that would not end today (10 million passes is 3 years at the default 10 s)."""
    if not len(trace):
        return
    span = max(trace.submit) + max(trace.duration) + SimConfig().drain_horizon
    passes = span / ruleset.loop.interval
    if passes > MAX_EXACT_PASSES:
        raise click.UsageError(
            f"{why} runs every periodic pass, {passes:,.0f} over this trace's "
            f"{span / 86_400:,.0f} days, more than {MAX_EXACT_PASSES:,}; use a shorter trace "
            "or a longer loop.interval" + (", or leave out --exact" if why == "--exact" else "")
        )


def _meta(
    setup: Setup, ruleset: RuleSet, trace: Trace, nodes_source: str, local_gpus: int
) -> dict[str, Any]:
    start = datetime.fromtimestamp(setup.config.start_epoch, tz=UTC).isoformat()
    return {
        "trace": trace.meta,
        "nodes": nodes_source,
        "local_nodes": len(setup.nodes),
        "local_gpus": local_gpus,
        "rules": ruleset.source,
        "rules_digest": ruleset.digest,
        "seed": setup.config.seed,
        "start": start,
        "exact": setup.config.exact,
        "rescaling": (
            "none: the trace's own timing is kept; the local cluster is "
            f"{local_gpus} GPUs instead of the trace's {OPENB_GPUS:,}-GPU cluster, "
            "so its peaks queue"
            if trace.meta.get("format") == "openb"
            else "none"
        ),
    }


def _print_table(runs: dict[str, PolicyRun], meta: dict[str, Any], pods: int) -> None:
    caption = (
        f"{pods:,} GPU pods from {meta['trace'].get('trace', 'the trace')}; "
        f"local cluster {meta['local_gpus']} GPUs on {meta['local_nodes']} node(s) "
        f"({meta['nodes']}); rules {meta['rules']} ({meta['rules_digest']}); seed {meta['seed']}"
    )
    table = Table(title="burstd simulate", caption=caption, show_lines=False)
    table.add_column("metric")
    for name in runs:
        table.add_column(name, justify="right")
    for row in table_rows(runs, describe=False):
        table.add_row(*row)
    # Wide enough for every policy's name, whatever the terminal (or a pipe) says.
    Console(file=sys.stdout, width=max(100, 30 + 24 * len(runs))).print(table)


def _print_sweep(rows: list[dict[str, Any]]) -> None:
    table = Table(title="sweep (burstd)")
    for col in ("setting", "cost USD", "p95 wait s", "p99 wait s", "mean wait s"):
        table.add_column(col, justify="left" if col == "setting" else "right")
    for r in rows:
        table.add_row(
            r["label"],
            f"{r['burst_cost_usd']:,.2f}",
            f"{r['gpu_wait_p95_s']:,.1f}",
            f"{r['gpu_wait_p99_s']:,.1f}",
            f"{r['gpu_wait_mean_s']:,.1f}",
        )
    Console(file=sys.stdout).print(table)


def _peer(
    trace_arg: str | None,
    nodes_arg: str | None,
    *,
    do_compare: bool,
    json_path: str | None,
    skip_bad_rows: bool,
    budgets: tuple[float, ...],
    queue: str | None,
    runtime_error: float,
    seed: int,
) -> None:
    """``--peer-model starburst``: the peer's world (``burstd.sim.starburst``)."""
    try:
        nodes, nodes_source = load_nodes(nodes_arg if nodes_arg is not None else "6x8")
        per_node = homogeneous([n.gpus for n in nodes])
        if is_synthetic(trace_arg):
            assert trace_arg is not None
            trace = generate(parse_synthetic(trace_arg), len(nodes) * per_node)
        else:
            trace = load_trace(trace_arg, skip_bad_rows=skip_bad_rows, conversion="starburst")
    except (TraceError, ClusterError, PeerError) as e:
        _fail([str(e)])
        return
    jobs = Jobs.from_trace(trace)
    if not len(jobs):
        _fail([f"{trace.source}: no GPU jobs to simulate"])
    chosen: tuple[tuple[str, str], ...] = COMPARE_ALL
    if not do_compare:
        chosen = (("compute-wait", "out-of-order"),)
    if queue is not None:
        chosen = tuple((name, queue) for name, _ in chosen)
    costs = [Budget.of(jobs, b) for b in budgets]
    began = time.perf_counter()
    policies = run_peer(
        jobs,
        nodes=len(nodes),
        gpus_per_node=per_node,
        policies=chosen,
        budgets=costs,
        runtime_error=runtime_error,
        seed=seed,
    )
    elapsed = time.perf_counter() - began
    meta: dict[str, Any] = {
        "peer_model": "starburst",
        "trace": trace.meta,
        "nodes": nodes_source,
        "local_nodes": len(nodes),
        "local_gpus": len(nodes) * per_node,
        "whole_gpus": "always in the peer model: a share of a GPU counts as one GPU",
        "budget": costs[0].as_dict(),
        "budgets": [c.as_dict() for c in costs],
        "runtime_error": runtime_error,
        "seed": seed,
    }
    table = Table(
        title="burstd simulate --peer-model starburst",
        caption=f"{len(jobs):,} jobs from {trace.meta.get('trace', trace.source)}; "
        f"{len(nodes)} x {per_node} GPUs ({nodes_source}); budget "
        f"{', '.join(f'{b:g}' for b in budgets)} of the run time",
    )
    for col in ("policy", "queue", "cloud GPU-h", "mean wait s", "p99 wait s", "cloud jobs"):
        table.add_column(col, justify="left" if col in ("policy", "queue") else "right")
    for name, m in policies.items():
        table.add_row(
            name,
            m["queue"],
            f"{m['burst_gpu_hours']:,.1f}",
            f"{m['gpu_wait_mean_s']:,.1f}",
            f"{m['gpu_wait_p99_s']:,.1f}",
            f"{m['cloud_jobs']:,}",
        )
    Console(file=sys.stdout, width=100).print(table)
    click.echo(
        f"simulated {len(jobs):,} jobs x {len(policies)} run(s) in {elapsed:.2f} s", err=True
    )
    if json_path is not None:
        _write_json(json_path, {"meta": meta, "policies": policies})


def _write_json(path: str, doc: dict[str, Any]) -> None:
    try:
        write_text(path, json.dumps(doc, indent=2, sort_keys=False) + "\n")
    except OSError as e:
        # ENXIO: a FIFO that nobody reads, which would otherwise block for ever.
        reason = "a FIFO with no reader" if e.errno == errno.ENXIO else e.strerror or e
        _fail([f"{path}: cannot write: {reason}"])

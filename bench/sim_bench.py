"""Simulator benchmarks; writes bench/results/simulator.md.

    python bench/sim_bench.py            # everything (a few minutes)
    python bench/sim_bench.py --quick    # smaller synthetic runs

Measured: the bundled openb trace with ``--compare`` (burstd, three baselines and Starburst's
four policies) through the real CLI; the same in Starburst's world (``--peer-model``); a
4-point sweep serial and parallel; one
million synthetic pods under burstd's default rules (wall time, peak RSS, events per second),
in a child process so its peak memory is its own; the same trace through the bare heapq floor
(``floor_heapq.py``); and a cProfile summary of where the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import io
import json
import os
import platform
import pstats
import resource
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import floor_heapq

from burstd.rules.loader import parse_rules
from burstd.rules.types import RuleSet
from burstd.sim.cluster import load_nodes
from burstd.sim.compare import Setup, run_one
from burstd.sim.synthetic import generate, parse_synthetic

ROOT = Path(__file__).resolve().parent.parent
SWEEP = ("--sweep", "rules.interactive.triggers[0].pending.for=0s,1m,2m,10m")
RESULTS = ROOT / "bench" / "results" / "simulator.md"
BIG = "synthetic:pods=1000000,load=1.0,seed=1"
BIG_OVERLOADED = "synthetic:pods=1000000,load=1.2,seed=1"
NOTES = """
## Reading these numbers

* The 1,000,000-pod budget (60 s, 1.5 GB) is met at `load=1.0` (the local cluster is full on
  average, bursts follow the daily peaks). At `load=1.2` (20 % more work than the cluster holds,
  so bursting nearly all the time) the run is over budget: about 0.38 real planning passes per pod.
* Planning passes are the daemon's own code (`Controller.run_once`: planner, rules engine,
  actuator) and take most of a bursting run; the simulator already skips or only replays the
  passes that cannot decide anything new (see docs/simulator.md). The rest is the simulator's
  event loop, scheduler and books; the whole run is 12-16x the bare heapq floor, which has no
  scheduler index, no priorities, no control loop and no metrics.
* Core costs worth a look (not simulator code): `Actuator.observe` rebuilds every busy unit with
  `dataclasses.replace` at every pass; the planner formats every NoOp reason (`format_duration`)
  even when nobody reads it, and builds a bin per unit up to three times per pass.
"""


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{datetime.date.today().isoformat()}"
    )


def default_rules() -> RuleSet:
    text = (resources.files("burstd") / "data" / "rules" / "sim-default.yaml").read_text()
    return parse_rules(text, "sim-default.yaml")


def openb_compare(repeats: int, *extra: str) -> tuple[float, dict[str, Any]]:
    """Wall time of ``burstd simulate --compare [extra]`` (best of ``repeats``), and its JSON."""
    best = float("inf")
    out = ROOT / "bench" / "results" / ".openb.json"
    for _ in range(repeats):
        began = time.perf_counter()
        subprocess.run(
            [
                str(Path(sys.executable).parent / "burstd"),
                "simulate",
                "--compare",
                "--json",
                str(out),
                *extra,
            ],
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        best = min(best, time.perf_counter() - began)
    doc = json.loads(out.read_text())
    out.unlink()
    return best, doc


def big_run(spec: str) -> dict[str, Any]:
    """One burstd run over ``spec`` in this process: call through a child for clean RSS."""
    nodes, _ = load_nodes()
    began = time.perf_counter()
    trace = generate(parse_synthetic(spec), sum(n.gpus for n in nodes))
    generated = time.perf_counter()
    rules = default_rules()
    run = run_one(Setup(trace=trace, nodes=nodes, ruleset=rules), "burstd", rules)
    done = time.perf_counter()
    floor_began = time.perf_counter()
    floor_events = floor_heapq.replay(trace, nodes)
    floor_s = time.perf_counter() - floor_began
    return {
        "spec": spec,
        "pods": len(trace),
        "generate_s": generated - began,
        "simulate_s": done - generated,
        "total_s": done - began,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "events": run.outcome.events,
        "passes": run.outcome.passes,
        "virtual_passes": run.outcome.virtual_passes,
        "floor_s": floor_s,
        "floor_events": floor_events,
        "metrics": {
            k: run.metrics[k] for k in ("gpu_wait_p95_s", "burst_cost_usd", "units_provisioned")
        },
    }


def child(spec: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", spec], check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def profile(spec: str, top: int = 18) -> str:
    nodes, _ = load_nodes()
    trace = generate(parse_synthetic(spec), sum(n.gpus for n in nodes))
    rules = default_rules()
    prof = cProfile.Profile()
    prof.enable()
    run_one(Setup(trace=trace, nodes=nodes, ruleset=rules), "burstd", rules)
    prof.disable()
    stats = pstats.Stats(prof)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    groups: dict[str, float] = {}
    for (path, _, _), (_, _, tt, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        if "/burstd/sim/" in path:
            key = "burstd.sim (simulator)"
        elif "/burstd/plan/" in path or "/burstd/rules/" in path:
            key = "burstd.plan + rules (planner, engine)"
        elif "/burstd/actuate/" in path or "/burstd/control/" in path:
            key = "burstd.actuate + control"
        elif "/burstd/model/" in path:
            key = "burstd.model (dataclasses, durations)"
        elif "dataclasses.py" in path:
            key = "dataclasses.replace (called by actuator/planner)"
        else:
            key = "other (builtins, heapq, numpy)"
        groups[key] = groups.get(key, 0.0) + tt
    lines = ["| where (self time) | share |", "| --- | ---: |"]
    for key, tt in sorted(groups.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {key} | {100 * tt / total:.0f} % |")
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    body = "\n".join(line for line in buf.getvalue().splitlines() if line.strip())
    return "\n".join(lines) + "\n\nTop functions by self time:\n\n```\n" + body[-6000:] + "\n```\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(big_run(args.child)))
        return
    scale = 100_000 if args.quick else 1_000_000
    big = BIG.replace("1000000", str(scale))
    over = BIG_OVERLOADED.replace("1000000", str(scale))
    print("openb --compare ...", file=sys.stderr)
    openb_s, openb = openb_compare(3)
    print(f"  {openb_s:.2f} s\npeer model ...", file=sys.stderr)
    peer_s, peer = openb_compare(3, "--peer-model", "starburst", "--whole-gpus", "--nodes", "6x8")
    print(f"  {peer_s:.2f} s\nsweep ...", file=sys.stderr)
    sweeps = {jobs: openb_compare(1, *SWEEP, "--jobs", str(jobs))[0] for jobs in (1, 2)}
    print(f"  {sweeps}\n{big} ...", file=sys.stderr)
    r1 = child(big)
    print(f"  {r1['simulate_s']:.1f} s\n{over} ...", file=sys.stderr)
    r2 = child(over)
    print(f"  {r2['simulate_s']:.1f} s\nprofile ...", file=sys.stderr)
    prof = profile(BIG.replace("1000000", "50000"))
    write(openb_s, openb, r1, r2, prof, peer_s, peer, sweeps)
    print(f"wrote {RESULTS}", file=sys.stderr)


def write(
    openb_s: float,
    openb: dict[str, Any],
    r1: dict[str, Any],
    r2: dict[str, Any],
    prof: str,
    peer_s: float,
    peer: dict[str, Any],
    sweeps: dict[int, float],
) -> None:
    pol = openb["policies"]
    keys = (
        "gpu_wait_p95_s",
        "gpu_wait_p99_s",
        "gpu_wait_mean_s",
        "burst_cost_usd",
        "burst_gpu_hours",
        "idle_burst_gpu_hours",
        "units_provisioned",
        "peak_burst_gpus",
    )
    lines = [
        "# Simulator benchmarks",
        "",
        f"Machine: {machine()}. Written by `python bench/sim_bench.py`; the machine was shared",
        "with other work, so numbers are noisy (openb: best of 3).",
        "",
        "## openb, bundled defaults, `burstd simulate --compare`",
        "",
        f"Wall time of the whole command (start-up, loading, {len(pol)} policies, table): "
        f"**{openb_s:.2f} s** (budget 5 s).",
        "",
        "| metric | " + " | ".join(pol) + " |",
        "| --- | " + " | ".join("---:" for _ in pol) + " |",
    ]
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(f"{pol[p][k]:,}" for p in pol) + " |")
    lines += [
        "",
        "## Starburst's world, `burstd simulate --peer-model starburst --whole-gpus --nodes 6x8 "
        "--compare`",
        "",
        f"Wall time of the whole command (7,064 jobs, {len(peer['policies'])} policies): "
        f"**{peer_s:.2f} s**.",
        "",
        "| policy | queue | cloud GPU-h | mean wait (s) | cloud jobs |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name, m in peer["policies"].items():
        lines.append(
            f"| {name} | {m['queue']} | {m['burst_gpu_hours']:,.1f} | "
            f"{m['gpu_wait_mean_s']:,.1f} | {m['cloud_jobs']} |"
        )
    lines += [
        "",
        "## A 4-point sweep on openb (`--compare` included), serial and parallel",
        "",
        f"`{' '.join(SWEEP)}`: `--jobs 1` **{sweeps[1]:.2f} s**, `--jobs 2` "
        f"**{sweeps[2]:.2f} s** (whole command; identical rows).",
        "",
        "## One million synthetic pods (burstd only, default rules, bundled small cluster)",
        "",
    ]
    lines += [
        "| trace | simulate | peak RSS | events | events/s | real passes | virtual passes "
        "| floor (heapq FIFO first-fit) | floor events/s | ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in (r1, r2):
        eps = r["events"] / r["simulate_s"]
        feps = r["floor_events"] / r["floor_s"]
        lines.append(
            f"| `{r['spec']}` | {r['simulate_s']:.1f} s | {r['peak_rss_mb']:.0f} MB | "
            f"{r['events']:,} | {eps:,.0f} | {r['passes']:,} | {r['virtual_passes']:,} | "
            f"{r['floor_s']:.1f} s | {feps:,.0f} | {r['simulate_s'] / r['floor_s']:.1f}x |"
        )
    lines += ["", "## Where the time goes (cProfile, 50,000 pods, load 1.0)", "", prof, NOTES]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

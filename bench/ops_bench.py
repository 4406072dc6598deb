"""What the operator's side costs the daemon, in process, on a large cluster view.

With 5,000 running GPU pods, 500 nodes and 100 units in the app's state, it times:

* ``Ops.passed`` (the per-pass hook: cost so far, burst, backoff, cap and drain checks);
* ``Ops.applied`` for a scale-up placing 5 pods (the per-decision hook);
* ``Notifier.notify`` with a receiver routed but its queue full (the worst case: log, dedupe
  miss, drop, dead letter);
* rendering ``/metrics`` and ``/status`` (what a scrape or a page refresh costs the loop);

and the resident memory ``burstd run`` needs for its imports, from /proc ``VmHWM`` of a fresh
interpreter that imports ``burstd.cli.run``.

Usage::

    .venv/bin/python -m bench.ops_bench --out bench/results/ops.md
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import generate_latest

from burstd.actuate.actuator import Applied
from burstd.alerts.notifier import Notifier
from burstd.app import App, Settings
from burstd.model import GpuRequest, Node, Pod, PodPhase, ScaleUp, Unit, UnitPhase
from burstd.model.alerts import Alert, AlertKind, AlertsConfig, Route, WebhookReceiver
from burstd.model.events import NODES, PODS, NodeUpserted, PodUpserted, Synced
from burstd.providers.fake import FakeProvider
from burstd.state.clock import ManualClock

RULES = """\
version: 1
targets:
  kw: {provider: kwok, gpus_per_unit: 4, max_units: 200, price_per_gpu_hour: 2}
rules:
  - name: jobs
    triggers: [{pending: {gpus: 1}}]
    burst: {ladder: [kw]}
"""
NOW = 1_767_000_000.0


def build(tmp: Path) -> App:
    config = tmp / "rules.yaml"
    config.write_text(RULES)
    app = App(
        Settings(config=config, handle_signals=False),
        clock=ManualClock(NOW),
        providers={"kwok": lambda context: FakeProvider(target="kw")},
    )
    for n in range(500):
        app._on_event(NodeUpserted(node=Node(name=f"n{n}", gpu_capacity=10, gpu_allocatable=10)))
    for p in range(5000):
        pod = Pod(
            namespace="ml",
            name=f"p{p}",
            gpu=GpuRequest(gpus=1),
            phase=PodPhase.RUNNING,
            node=f"n{p % 500}",
        )
        app._on_event(PodUpserted(pod=pod))
    app._on_event(Synced(kind=PODS))
    app._on_event(Synced(kind=NODES))
    app.actuator.adopt(
        Unit(
            id=f"kw-{u}",
            target="kw",
            rule="jobs",
            gpus=4,
            phase=UnitPhase.READY,
            node=f"n{u}",
            requested_at=NOW - 600,
            phase_since=NOW - 300,
            price_per_gpu_hour=2,
        )
        for u in range(100)
    )
    app._pass("bench")
    return app


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and p95 in microseconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95)]


def import_rss_kb() -> int:
    code = (
        "import burstd.cli.run\n"
        "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # log formatting is not what is measured
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        app = build(tmp)
        ops = app.ops
        rows = []
        plan = app.controller.last_plan
        assert plan is not None
        rows.append(("Ops.passed (per pass)", *timed(lambda: ops.passed(NOW, plan), 200)))
        scale = ScaleUp(
            rule="jobs",
            target="kw",
            units=1,
            gpus_per_unit=4,
            reason="bench",
            pods=tuple(f"ml/p{i}" for i in range(5)),
        )
        applied = Applied(decision=scale, acted=True, units=("kw-0",))
        rows.append(("Ops.applied (per decision)", *timed(lambda: ops.applied(applied), 2000)))
        config = AlertsConfig(
            receivers={"down": WebhookReceiver(name="down", url="http://127.0.0.1:9/")},
            routes=(Route(receivers=("down",)),),
            queue_size=1,
            dead_letter=tmp / "dead.jsonl",
        )
        notifier = Notifier(config, ManualClock(NOW))
        counter = iter(range(10**9))

        def notify() -> None:
            i = next(counter)
            notifier.notify(Alert(kind=AlertKind.UNIT_FAILED, reason="x", at=NOW + i, unit=f"u{i}"))

        rows.append(("Notifier.notify, queue full (drop + dead letter)", *timed(notify, 2000)))
        rows.append(("render /metrics", *timed(lambda: generate_latest(ops.registry), 200)))
        rows.append(("render /status (JSON)", *timed(lambda: json.dumps(ops.status()), 200)))
        metrics_bytes = len(generate_latest(ops.registry))
        status_bytes = len(json.dumps(ops.status()))
    rss = import_rss_kb()
    lines = [
        "# The operator's side: what it costs the daemon",
        "",
        "Measured with `bench/ops_bench.py`, in process: 5,000 running GPU pods, 500 nodes and",
        "100 ready units in the app's state (logging disabled: its cost is the handler's).",
        "",
        f"**Machine:** {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, {platform.platform()}. "
        f"**Date:** {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        f"**Load average** at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
        "(a shared machine: the p95 column mostly measures the neighbours).",
        "",
        "| What | median µs | p95 µs |",
        "| --- | ---: | ---: |",
        *(f"| {name} | {med:,.1f} | {p95:,.1f} |" for name, med, p95 in rows),
        "",
        f"`/metrics` is {metrics_bytes:,} bytes, `/status` {status_bytes:,} bytes.",
        f"Peak RSS of a fresh interpreter importing `burstd.cli.run`: {rss / 1024:.1f} MB.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()

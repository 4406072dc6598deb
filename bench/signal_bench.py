"""Detection delay of a utilization trigger: from the moment the replayed utilization has been
above its threshold for the trigger's whole window, to burstd's provider call.

Real parts: the test control plane (kwok), Debian's Prometheus scraping the DCGM replay
exporter every second, burstd's ``App`` in this process with the kwok provider. Each trial
replays a quiet stretch of the bundled duty cycle until no unit is left, then jumps to
``vllm-0``'s rush (sample 438: 65, 82, 96, 85, 96, 84, 56 %), 2 s a sample. The exporter serves
the rush from ``t0`` (the jump), so the trigger can fire at ``t0 + for`` at the earliest:

    delay = (provider call) - (t0 + for)

The provider call time is the ``at`` field of the driver's ``provider_call`` log line (same
clock). What the delay is made of: up to one scrape interval (1 s) for Prometheus to see the
value, up to one loop interval for burstd to poll it, the batch idle window, one pass.

Usage (the control plane and Prometheus must be up: ``scripts/kube-testenv up --prometheus``)::

    .venv/bin/python -m bench.signal_bench --trials 8 --out bench/results/signals.md
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import os
import platform
import random
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from burstd.actuate.driver import RetryPolicy
from burstd.app import App, Settings
from burstd.sim.duty import load_duty_cycle
from burstd.sources.kube.watch import WatchSettings
from burstd.sources.prometheus import PrometheusSettings
from burstd.testing.dcgm_exporter import ReplayExporter

REPO = Path(__file__).resolve().parents[1]
HIGH, LOW, WINDOW = 438, 1063, 5.0


class Calls(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.creates: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "event", "") == "provider_call" and getattr(record, "call", "") == (
            "create"
        ):
            self.creates.append(float(record.at))  # type: ignore[attr-defined]


async def until(check: Callable[[], bool], every: float = 0.2) -> None:
    while True:
        if check():
            return
        await asyncio.sleep(every)


def rules(target: str, query: str, interval: float) -> str:
    return f"""\
version: 1
loop: {{interval: {interval}s, batch_idle: 200ms, batch_max: 1s}}
targets:
  {target}:
    provider: kwok
    params: {{poll_interval: 0.1, delete_timeout: 20, node_template: {{cpu: "16"}}}}
    gpus_per_unit: 4
    max_units: 2
    time_to_ready: 1s
    ready_deadline: 1m
rules:
  - name: chat
    match: {{namespaces: [bench-none]}}
    triggers:
      - utilization: {{query: '{query}', above: 50, for: {WINDOW:g}s}}
    burst: {{ladder: [{target}], min_gpus: 4, max_units_per_step: 1}}
    release: {{idle_for: 1s, validation: 500ms, drain: {{mode: wait}}}}
    cooldown: {{scale_up: 0s, scale_down: 0s}}
"""


async def trial_run(trials: int, interval: float) -> list[float]:
    home = Path(os.environ.get("BURSTD_TESTENV_DIR", REPO / ".testenv"))
    url = (home / "prometheus-url").read_text().strip()
    replay = ReplayExporter(load_duty_cycle(), seconds_per_step=2.0, start_step=LOW)
    calls = Calls()
    logging.getLogger("burstd").addHandler(calls)
    logging.getLogger("burstd").setLevel(logging.INFO)
    delays: list[float] = []
    async with replay.serve() as address:
        sd = home / "prometheus" / "targets" / f"bench-{secrets.token_hex(3)}.json"
        tmp_sd = sd.with_suffix(".tmp")
        tmp_sd.write_text(f'[{{"targets": ["{address}"]}}]')
        tmp_sd.replace(sd)  # Prometheus must never read a half-written file
        query = f'max(DCGM_FI_DEV_GPU_UTIL{{pod="vllm-0", instance="{address}"}})'
        target = f"bench{secrets.token_hex(3)}"
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "rules.yaml"
            config.write_text(rules(target, query, interval))
            settings = Settings(
                config=config,
                kubeconfig=str(home / "kubeconfig"),
                handle_signals=False,
                reload_check=0,
                grace_period=5,
                watch=WatchSettings(backoff_base=0.2, backoff_max=1.0),
                retry=RetryPolicy(base=0.2, max_delay=2.0),
                prometheus=PrometheusSettings(url=url, timeout=2.0),
            )
            app = App(settings)
            task = asyncio.create_task(app.run())
            await app.wait_planning()
            try:
                for i in range(trials):
                    # Quiet until every unit is gone and the window has been read low.
                    replay.seek(LOW)
                    await until(lambda: not any(u.phase.alive for u in app.actuator.units.values()))
                    # A random phase against the poll: otherwise every trial starts at the
                    # same point of the poll cycle (the release that ends the previous trial
                    # is itself timed by it) and the delays would not be a fair sample.
                    await asyncio.sleep(WINDOW + 2 * interval + random.uniform(0, interval))
                    before = len(calls.creates)
                    replay.seek(HIGH)
                    t0 = time.time()
                    await until(lambda n=before: len(calls.creates) > n, every=0.05)  # type: ignore[misc]
                    delay = calls.creates[before] - (t0 + WINDOW)
                    delays.append(delay)
                    print(f"trial {i + 1}: {delay:.2f} s", flush=True)
            finally:
                app.stop()
                await asyncio.wait_for(task, 30)
                sd.unlink(missing_ok=True)
    return delays


def report(delays: dict[float, list[float]]) -> str:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    lines = [
        "# Utilization trigger: detection delay",
        "",
        "Measured with `bench/signal_bench.py`: the test control plane (kwok), Debian's",
        "Prometheus 2.42 scraping the DCGM replay exporter every 1 s, burstd's `App` in the",
        'benchmark\'s process. Trigger: `max(DCGM_FI_DEV_GPU_UTIL{pod="vllm-0"})` above 50 for',
        f"{WINDOW:g} s; the exporter jumps from a quiet stretch to vllm-0's rush at t0.",
        "Delay = provider `create` call (driver's `provider_call` log time) - (t0 + window): the",
        "time burstd took once the rush had lasted the whole window.",
        "",
        f"**Machine:** {cpu}, {os.cpu_count()} cores, Linux {platform.release()}, Python "
        f"{platform.python_version()}; shared with other work (load average "
        f"{os.getloadavg()[0]:.1f} at the end). **Date:** "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        "| loop interval | trials | min | median | max | mean |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for interval, ds in delays.items():
        lines.append(
            f"| {interval:g} s | {len(ds)} | {min(ds):.2f} s | {statistics.median(ds):.2f} s | "
            f"{max(ds):.2f} s | {statistics.fmean(ds):.2f} s |"
        )
    lines += [
        "",
        "What it is made of: up to one scrape interval (1 s) before Prometheus has the value,",
        "then the window is covered once the sample in force at its start is a high one, which",
        "burstd reads at its polls (one per loop interval, each followed by a pass after",
        "batch_idle, 0.2 s): so between about 0.2 s and one loop interval plus a scrape",
        "interval. Each trial starts at a random phase of the poll cycle.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--intervals", default="1,5", help="loop intervals to try, seconds")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results = {}
    for interval in (float(x) for x in args.intervals.split(",")):
        results[interval] = asyncio.run(trial_run(args.trials, interval))
    text = report(results)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()

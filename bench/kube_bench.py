"""Benchmark burstd's Kubernetes path against the real test control plane.

With 500 kwok GPU nodes and 5,000 running GPU pods present (every GPU taken, so every new GPU
pod is Unschedulable), it runs ``burstd run`` as a subprocess and measures:

* latency from a pod becoming Unschedulable to burstd's provider call for it. "Became
  Unschedulable" is when this script's own watch sees the scheduler's condition (the API's
  ``lastTransitionTime`` has a one-second resolution); the provider call time is the ``at``
  field of burstd's ``provider_call`` log line (same machine, same clock);
* burstd's resident memory (peak, from /proc ``VmHWM``) and steady-state CPU (from /proc
  ``utime + stime`` over a quiet window);
* in-process micro-benchmarks: raw JSON to model vs the generated client models (time and
  memory for 5,000 pods), and one planner pass over the full snapshot.

Usage (the control plane must be up: ``scripts/kube-testenv up``)::

    .venv/bin/python -m bench.kube_bench --kubeconfig .testenv/kubeconfig \\
        --out bench/results/kube.md
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import gc
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kubernetes_asyncio import client

from burstd.model.events import NODES, PODS, NodeUpserted, PodUpserted, Synced
from burstd.plan.planner import plan
from burstd.rules.loader import load_rules
from burstd.sources.kube.client import connect
from burstd.sources.kube.convert import node_from_raw, pod_from_raw
from burstd.state.cluster import ClusterState

FILL_NS = "bench-fill"
BURST_NS = "bench-burst"
NODE_PREFIX = "bench-node-"
GPUS_PER_NODE = 10
MODEL = "NVIDIA-A100-SXM4-80GB"
NODE_CAPACITY = {
    "cpu": "64",
    "memory": "512Gi",
    "pods": "110",
    "nvidia.com/gpu": str(GPUS_PER_NODE),
}

RULES = """\
version: 1
loop: {{interval: 10s, batch_idle: {idle}s, batch_max: 10s}}
targets:
  bench-kwok:
    provider: kwok
    params:
      poll_interval: 0.25
      node_template: {{cpu: "32", memory: 256Gi}}
    gpu_model: {model}
    gpus_per_unit: 4
    max_units: 400
    max_in_flight: 400
    time_to_ready: 1s
    ready_deadline: 2m
    backoff: 10s
rules:
  - name: bench
    match: {{namespaces: [{ns}]}}
    triggers: [{{pending: {{gpus: 1}}}}]
    burst: {{ladder: [bench-kwok], max_units_per_step: 100}}
    release: {{idle_for: 1h, validation: 1m}}
    cooldown: {{scale_up: 0s, scale_down: 1h}}
"""


# API helpers ----------------------------------------------------------------------------------


class Api:
    def __init__(self, api: Any) -> None:
        self.api = api
        self.core: Any = client.CoreV1Api(api)

    async def raw(self, fn: Any, *args: Any, ok: tuple[int, ...] = (), **kw: Any) -> Any:
        resp = await fn(*args, _preload_content=False, **kw)
        try:
            body = await resp.read()
        finally:
            resp.release()
        if not (200 <= resp.status < 300 or resp.status in ok):
            raise RuntimeError(f"HTTP {resp.status}: {body[:300]!r}")
        return json.loads(body) if body else {}


async def bounded(coros: list[Any], limit: int = 64) -> None:
    sem = asyncio.Semaphore(limit)

    async def one(c: Any) -> None:
        async with sem:
            await c

    await asyncio.gather(*(one(c) for c in coros))


def gpu_pod(name: str, gpus: int, node: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [
            {"name": "c", "image": "x", "resources": {"limits": {"nvidia.com/gpu": gpus}}}
        ],
        "terminationGracePeriodSeconds": 0,
    }
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "labels": {"app": "bench"}}, "spec": spec}


async def populate(api: Api, nodes: int, pods: int) -> float:
    started = time.monotonic()
    for ns in (FILL_NS, BURST_NS):
        await api.raw(api.core.create_namespace, {"metadata": {"name": ns}}, ok=(409,))
    node_bodies = [
        {
            "metadata": {
                "name": f"{NODE_PREFIX}{i}",
                "labels": {"nvidia.com/gpu.product": MODEL, "bench": "true"},
                "annotations": {"kwok.x-k8s.io/node": "fake"},
            },
            "status": {
                "capacity": {
                    "cpu": "64",
                    "memory": "512Gi",
                    "pods": "110",
                    "nvidia.com/gpu": str(GPUS_PER_NODE),
                },
                "allocatable": {
                    "cpu": "64",
                    "memory": "512Gi",
                    "pods": "110",
                    "nvidia.com/gpu": str(GPUS_PER_NODE),
                },
            },
        }
        for i in range(nodes)
    ]
    await bounded([api.raw(api.core.create_node, b, ok=(409,)) for b in node_bodies])
    per_node = max(1, pods // nodes)
    bodies = [
        gpu_pod(f"fill-{i}", 1, f"{NODE_PREFIX}{(i // per_node) % nodes}") for i in range(pods)
    ]
    await bounded([api.raw(api.core.create_namespaced_pod, FILL_NS, b, ok=(409,)) for b in bodies])
    # kwok marks them Running; wait for that so the steady state is steady.
    while True:
        if await count(api, FILL_NS, "status.phase=Running") >= pods:
            break
        await asyncio.sleep(2)
    return time.monotonic() - started


async def count(api: Api, namespace: str, field_selector: str) -> int:
    """Objects matching, page by page (lists with a selector carry no remaining count)."""
    n, cont = 0, None
    while True:
        kw: dict[str, Any] = {"field_selector": field_selector, "limit": 1000}
        if cont:
            kw["_continue"] = cont
        data = await api.raw(api.core.list_namespaced_pod, namespace, **kw)
        n += len(data.get("items", []))
        cont = data["metadata"].get("continue")
        if not cont:
            return n


async def cleanup(api: Api) -> None:
    for ns in (FILL_NS, BURST_NS):
        await api.raw(api.core.delete_namespace, ns, ok=(404,))
    await api.raw(api.core.delete_collection_node, label_selector="bench=true", ok=(404,))
    await api.raw(
        api.core.delete_collection_node,
        label_selector="burstd.io/target=bench-kwok",
        ok=(404,),
    )
    # Wait for the namespaces to go, or the next run cannot recreate them.
    for _ in range(300):
        left = [
            ns
            for ns in (FILL_NS, BURST_NS)
            if (await api.raw(api.core.read_namespace, ns, ok=(404,))).get("kind") == "Namespace"
        ]
        if not left:
            return
        await asyncio.sleep(1)


# Watching what the scheduler says ----------------------------------------------------------


async def watch_unschedulable(api: Api, seen: dict[str, float], stop: asyncio.Event) -> None:
    """Record when each pod of BURST_NS is first seen Unschedulable (local wall time)."""
    rv = (await api.raw(api.core.list_namespaced_pod, BURST_NS))["metadata"]["resourceVersion"]
    while not stop.is_set():
        resp = await api.core.list_namespaced_pod(
            BURST_NS,
            watch=True,
            resource_version=rv,
            allow_watch_bookmarks=True,
            timeout_seconds=30,
            _preload_content=False,
        )
        try:
            async for line in resp.content:
                if stop.is_set():
                    break
                if not line.strip():
                    continue
                ev = json.loads(line)
                obj = ev["object"]
                rv = obj["metadata"].get("resourceVersion", rv)
                if ev["type"] not in ("ADDED", "MODIFIED"):
                    continue
                for c in obj.get("status", {}).get("conditions") or []:
                    if c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable":
                        seen.setdefault(obj["metadata"]["name"], time.time())
        finally:
            resp.release()


# burstd as a subprocess ----------------------------------------------------------------------


def read_log(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# Micro-benchmarks -----------------------------------------------------------------------------


async def micro(api: Api, rules_path: Path) -> dict[str, Any]:
    data = await api.raw(api.core.list_namespaced_pod, FILL_NS)
    raw_pods = data["items"]
    nodes = (await api.raw(api.core.list_node))["items"]
    text = json.dumps({"items": raw_pods})
    out: dict[str, Any] = {"pods": len(raw_pods), "json_bytes": len(text)}

    gc.collect()
    t = time.perf_counter()
    parsed = json.loads(text)["items"]
    models = [pod_from_raw(p) for p in parsed]
    out["raw_seconds"] = time.perf_counter() - t
    del parsed

    generated: Any = client.ApiClient()
    try:
        t = time.perf_counter()
        v1 = generated.deserialize(SimpleNamespace(data=text), "V1PodList")
        out["generated_seconds"] = time.perf_counter() - t
        del v1
        gc.collect()
        tracemalloc.start()
        kept_models = [pod_from_raw(p) for p in json.loads(text)["items"]]
        gc.collect()
        out["raw_kept_bytes"] = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del kept_models
        gc.collect()
        tracemalloc.start()
        kept_v1 = generated.deserialize(SimpleNamespace(data=text), "V1PodList").items
        gc.collect()
        out["generated_kept_bytes"] = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del kept_v1
    finally:
        await generated.close()

    state = ClusterState()
    for m in models:
        if m is not None:
            state.apply(PodUpserted(pod=m))
    for n in nodes:
        node = node_from_raw(n)
        if node is not None:
            state.apply(NodeUpserted(node=node))
    state.apply(Synced(kind=PODS, keys=None))
    state.apply(Synced(kind=NODES, keys=None))
    ruleset = load_rules(rules_path)
    now = time.time()
    snap = state.snapshot(now)
    t = time.perf_counter()
    for _ in range(10):
        plan(snap, ruleset, now)
    out["plan_seconds"] = (time.perf_counter() - t) / 10
    out["snapshot_pods"] = len(snap.pods)
    out["snapshot_nodes"] = len(snap.nodes)
    return out


# ``burstd run`` without the rest of the CLI: what the daemon itself costs, apart from the
# modules other subcommands import when the ``burstd`` command loads them all.
APP_ONLY = """\
import asyncio, sys
from pathlib import Path
from burstd.app import App, Settings, configure_logging
configure_logging("json", "info")
asyncio.run(App(Settings(config=Path(sys.argv[1]), kubeconfig=sys.argv[2], memory="none")).run())
"""


def start_burstd(
    rules: Path, kubeconfig: str, log_path: Path, entry: str
) -> subprocess.Popen[bytes]:
    if entry == "cli":
        burstd = Path(sys.executable).with_name("burstd")
        argv = [str(burstd), "run", "--config", str(rules), "--kubeconfig", kubeconfig]
        argv += ["--log-format", "json", "--memory", "none"]
    else:
        argv = [sys.executable, "-c", APP_ONLY, str(rules), kubeconfig]
    with log_path.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=out)


# The run ----------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    api = Api(await connect(args.kubeconfig))
    result: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="burstd-bench-"))
    rules = work / "rules.yaml"
    rules.write_text(RULES.format(idle=args.batch_idle, model=MODEL, ns=BURST_NS))
    log_path = work / "burstd.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        await cleanup(api)
        result["populate_seconds"] = await populate(api, args.nodes, args.pods)
        print(f"populated in {result['populate_seconds']:.0f}s", file=sys.stderr)
        proc = start_burstd(rules, args.kubeconfig, log_path, args.entry)
        started = time.monotonic()
        while not any(r.get("event") == "adoption_done" for r in read_log(log_path)):
            if proc.poll() is not None:
                raise RuntimeError(f"burstd exited: {log_path.read_text()[-2000:]}")
            await asyncio.sleep(0.1)
        result["startup_seconds"] = time.monotonic() - started
        result["rss_after_sync"] = proc_status(proc.pid)["VmRSS"]

        # Steady state before any burst.
        await asyncio.sleep(5)
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        await asyncio.sleep(args.quiet)
        result["cpu_quiet_before"] = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0)

        # Waves of pods, each a whole 4-GPU unit, into a full cluster.
        seen: dict[str, float] = {}
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_unschedulable(api, seen, stop))
        await asyncio.sleep(1)
        for w in range(args.waves):
            await bounded(
                [
                    api.raw(api.core.create_namespaced_pod, BURST_NS, gpu_pod(f"w{w}-{i}", 4))
                    for i in range(args.per_wave)
                ]
            )
            await asyncio.sleep(args.wave_gap)
        await asyncio.sleep(args.batch_idle + 5)
        stop.set()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher

        records = read_log(log_path)
        call_at = {
            r["unit"]: r["at"]
            for r in records
            if r.get("event") == "provider_call" and r.get("call") == "create"
        }
        planned: dict[str, float] = {}
        for r in records:
            if r.get("event") == "decision" and r.get("verb") == "scaleup":
                at = min(call_at[u] for u in r["units"])
                for key in r.get("pods", []):
                    planned.setdefault(key.split("/", 1)[1], at)
        latencies = [planned[n] - t for n, t in seen.items() if n in planned]
        missing = sorted(set(seen) - set(planned))
        result.update(
            pods_measured=len(latencies),
            pods_unplanned=missing,
            latency_p50=percentile(latencies, 50),
            latency_p99=percentile(latencies, 99),
            latency_max=max(latencies),
            latency_min=min(latencies),
            latency_mean=statistics.fmean(latencies),
            units_made=len(call_at),
        )

        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        await asyncio.sleep(args.quiet)
        result["cpu_quiet_after"] = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0)
        status = proc_status(proc.pid)
        result["rss_end"] = status["VmRSS"]
        result["rss_peak"] = status["VmHWM"]
        result["cpu_total"] = cpu_seconds(proc.pid)
        result["micro"] = await micro(api, rules)
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        result["burstd_exit"] = proc.returncode if proc is not None else None
        if not args.keep:
            await cleanup(api)
        await api.api.close()
    return result


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kubeconfig", default=".testenv/kubeconfig")
    p.add_argument("--nodes", type=int, default=500)
    p.add_argument("--pods", type=int, default=5000)
    p.add_argument("--waves", type=int, default=20)
    p.add_argument("--per-wave", type=int, default=5)
    p.add_argument("--wave-gap", type=float, default=4.0)
    p.add_argument("--batch-idle", type=float, default=1.0)
    p.add_argument("--quiet", type=float, default=60.0, help="seconds of each CPU window")
    p.add_argument(
        "--entry",
        choices=["cli", "app"],
        default="cli",
        help="cli: the burstd command; app: burstd.app alone (no other subcommand imported)",
    )
    p.add_argument("--keep", action="store_true", help="leave the objects in the cluster")
    p.add_argument("--json", type=Path, help="write the raw numbers here")
    args = p.parse_args()
    result = asyncio.run(run(args))
    result["machine"] = machine()
    result["args"] = vars(args) | {"json": str(args.json) if args.json else None}
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()

"""Benchmark burstd's own overhead on the Liqo path, on two real control planes.

``scripts/kube-testenv up --donor`` must be up (consumer, donor, Liqo emulator, whose delays
are zero: it answers a slice on its next 0.25 s tick). ``burstd run`` runs as a subprocess with
one Liqo target of 4-GPU units; the benchmark sends waves of one 4-GPU pod each (one unit per
wave), waits for it to run, deletes it and waits for the unit to be given back, and measures,
on one clock (same machine):

* **Unschedulable → slice create call**: from this script's watch seeing the pod's
  ``PodScheduled=False/Unschedulable`` to burstd's ``provider_call`` log line for the unit
  (the driver starting ``create``) and to its ``liqo_slice_created`` line (the API server has
  the slice: the peering check and the POST are included);
* **node Ready → pods bound**: from this script's watch seeing the virtual Node Ready without
  the not-ready taint (what the scheduler waits for) to the pod bound to it, and to burstd's
  ``unit_ready`` line.

Usage::

    .venv/bin/python bench/liqo_bench.py --kubeconfig .testenv/kubeconfig \\
        --waves 10 --out bench/results/liqo.md
"""

from __future__ import annotations

import argparse
import asyncio
import json
import operator
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from kube_bench import Api, gpu_pod, machine, percentile, read_log, start_burstd
from kubernetes_asyncio import client

from burstd.sources.kube.client import connect

NS = "bench-liqo"
TARGET = "bench-donor"
RULES = f"""\
version: 1
loop: {{interval: 5s, batch_idle: 200ms, batch_max: 2s}}
targets:
  {TARGET}:
    provider: liqo
    params: {{remote_cluster_id: donor, poll_interval: 0.05, node_grace: 1s}}
    gpus_per_unit: 4
    max_units: 4
    max_in_flight: 4
    time_to_ready: 1s
    ready_deadline: 1m
    backoff: 10s
rules:
  - name: bench
    match: {{namespaces: [{NS}]}}
    triggers: [{{pending: {{gpus: 1}}}}]
    burst: {{ladder: [{TARGET}]}}
    release: {{idle_for: 1s, validation: 1s, drain: {{mode: wait}}}}
    cooldown: {{scale_up: 0s, scale_down: 0s}}
"""
STARTUP_TAINTS = {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}


async def watch(api: Api, lister: Any, args: tuple[Any, ...], on: Callable[[Any], None]) -> None:
    """Call ``on`` with every object ``lister`` lists and then sees change, until cancelled."""
    listed = await api.raw(lister, *args)
    for obj in listed.get("items") or []:
        on(obj)
    rv = listed["metadata"]["resourceVersion"]
    while True:
        resp = await lister(
            *args, watch=True, resource_version=rv, timeout_seconds=30, _preload_content=False
        )
        try:
            async for line in resp.content:
                if not line.strip():
                    continue
                ev = json.loads(line)
                rv = ev["object"]["metadata"].get("resourceVersion", rv)
                if ev["type"] in ("ADDED", "MODIFIED"):
                    on(ev["object"])
        finally:
            resp.release()


def stats(values: list[float]) -> str:
    if not values:
        return "no samples"
    ms = [v * 1000 for v in values]
    return (
        f"p50 {statistics.median(ms):.0f} ms, p90 {percentile(ms, 90):.0f} ms, "
        f"max {max(ms):.0f} ms (n={len(ms)})"
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    api = Api(await connect(args.kubeconfig))
    unsched: dict[str, float] = {}
    bound: dict[str, tuple[str, float]] = {}
    ready: dict[str, float] = {}

    def on_pod(pod: dict[str, Any]) -> None:
        name = pod["metadata"]["name"]
        if pod.get("spec", {}).get("nodeName"):
            bound.setdefault(name, (pod["spec"]["nodeName"], time.time()))
        for c in pod.get("status", {}).get("conditions") or []:
            if c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable":
                unsched.setdefault(name, time.time())

    def on_node(node: dict[str, Any]) -> None:
        conds = node.get("status", {}).get("conditions") or []
        is_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
        tainted = any(t.get("key") in STARTUP_TAINTS for t in node["spec"].get("taints") or [])
        if is_ready and not tainted:
            ready.setdefault(node["metadata"]["name"], time.time())

    await api.raw(api.core.create_namespace, {"metadata": {"name": NS}}, ok=(409,))
    custom: Any = client.CustomObjectsApi(api.api)
    offloading = {
        "apiVersion": "offloading.liqo.io/v1beta1",
        "kind": "NamespaceOffloading",
        "metadata": {"name": "offloading", "namespace": NS},
        "spec": {},
    }
    await api.raw(
        custom.create_namespaced_custom_object,
        "offloading.liqo.io",
        "v1beta1",
        NS,
        "namespaceoffloadings",
        offloading,
        ok=(409,),
    )
    work = Path(tempfile.mkdtemp(prefix="burstd-liqo-bench-"))
    (work / "rules.yaml").write_text(RULES)
    log_path = work / "burstd.log"
    watches = [
        asyncio.create_task(watch(api, api.core.list_namespaced_pod, (NS,), on_pod)),
        asyncio.create_task(
            watch(api, api.core.list_node, (), lambda n: on_node(n) if _virtual(n) else None)
        ),
    ]
    proc = start_burstd(work / "rules.yaml", args.kubeconfig, log_path, "cli")
    try:
        await _until(lambda: any(r.get("event") == "synced" for r in read_log(log_path)), 60)
        for i in range(args.waves):
            name = f"wave-{i}"
            await api.raw(api.core.create_namespaced_pod, NS, gpu_pod(name, 4))
            await _until(partial(operator.contains, bound, name), 90)
            await asyncio.sleep(0.5)
            await api.raw(api.core.delete_namespaced_pod, name, NS, grace_period_seconds=0)
            node = bound[name][0]
            await _until(partial(_released, log_path, node), 90)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for t in watches:
            t.cancel()
        await api.api.close()
    records = read_log(log_path)
    calls = {
        r["unit"]: r["at"]
        for r in records
        if r.get("event") == "provider_call" and r.get("call") == "create"
    }
    created = {r["unit"]: r["ts"] for r in records if r.get("event") == "liqo_slice_created"}
    unit_ready = {r["unit"]: r["ts"] for r in records if r.get("event") == "unit_ready"}
    to_call, to_created, to_bound, to_unit_ready = [], [], [], []
    for pod, (node, at) in bound.items():
        unit = node  # the unit's node is named after it
        if pod in unsched and unit in calls:
            to_call.append(calls[unit] - unsched[pod])
            to_created.append(created[unit] - unsched[pod])
        if node in ready:
            to_bound.append(at - ready[node])
            if unit in unit_ready:
                to_unit_ready.append(unit_ready[unit] - ready[node])
    return {
        "waves": args.waves,
        "unschedulable_to_create_call": stats(to_call),
        "unschedulable_to_slice_created": stats(to_created),
        "node_ready_to_pod_bound": stats(to_bound),
        "node_ready_to_unit_ready": stats(to_unit_ready),
        "machine": machine(),
    }


def _virtual(node: dict[str, Any]) -> bool:
    return bool(node["metadata"].get("labels", {}).get("liqo.io/type") == "virtual-node")


def _released(log_path: Path, node: str) -> bool:
    done = {r.get("unit") for r in read_log(log_path) if r.get("event") == "unit_released"}
    return node in done


async def _until(check: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        await asyncio.sleep(0.05)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kubeconfig", default=".testenv/kubeconfig")
    p.add_argument("--waves", type=int, default=10)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

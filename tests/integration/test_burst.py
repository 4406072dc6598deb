"""Bursting and giving back, end to end: real API server, scheduler, controllers and kwok;
burstd in the test's event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from burstd.model import Cordon, Drain, Evict, Release, ScaleUp
from tests.integration.kube import (
    Kube,
    burstd_in_process,
    cordoned,
    eventually,
    name_of,
    node_of,
    phase,
    rules_yaml,
)

pytestmark = pytest.mark.integration


async def test_unschedulable_gpu_pods_get_kwok_nodes(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(rules_yaml(target=target, namespace=namespace))
    async with burstd_in_process(config, kubeconfig) as app:
        await kube.create_job(namespace, "train", pods=3, gpus=2, complete_after="never")

        async def all_running() -> list[dict[str, Any]] | None:
            pods = await kube.pods(namespace)
            ok = len(pods) == 3 and all(phase(p) == "Running" and node_of(p) for p in pods)
            return pods if ok else None

        pods = await eventually(all_running, within=60, what="3 pods Running")

        nodes = await kube.nodes(f"burstd.io/target={target}")
        # Three 2-GPU pods fit on two 4-GPU units: no more were made.
        assert len(nodes) == 2
        names = {name_of(n) for n in nodes}
        assert {node_of(p) for p in pods} <= names
        for node in nodes:
            meta = node["metadata"]
            assert meta["annotations"]["kwok.x-k8s.io/node"] == "fake"
            assert meta["labels"]["app.kubernetes.io/managed-by"] == "burstd"
            assert meta["labels"]["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB"
            assert meta["labels"]["burstd.io/rule"] == "burst"
            assert node["status"]["allocatable"]["nvidia.com/gpu"] == "4"

        # burstd acted because the scheduler had marked exactly these pods Unschedulable.
        scale_ups = [a.decision for a in app.applied if isinstance(a.decision, ScaleUp)]
        planned = {key for d in scale_ups for key in d.pods}
        assert planned == {f"{namespace}/{p['metadata']['name']}" for p in pods}
        assert sum(d.units for d in scale_ups) == 2
        assert all(d.reason for d in scale_ups)


async def test_idle_nodes_are_given_back_but_busy_ones_wait(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(rules_yaml(target=target, namespace=namespace, idle_for="2s"))
    async with burstd_in_process(config, kubeconfig) as app:
        # A long-running server that takes a whole 4-GPU unit, then a Job that finishes.
        await kube.create_pod(namespace, "server", gpus=4)

        async def server_node() -> str | None:
            pods = await kube.pods(namespace)
            return next((node_of(p) for p in pods if phase(p) == "Running" and node_of(p)), None)

        busy = await eventually(server_node, within=60, what="the server running")
        await kube.create_job(namespace, "train", pods=3, gpus=2, complete_after="3s")

        async def job_done() -> bool:
            job = await kube.job(namespace, "train")
            return bool(job.get("status", {}).get("succeeded") == 3)

        await eventually(job_done, within=60, what="the Job to complete")
        job_nodes = {
            node_of(p) for p in await kube.pods(namespace) if p["metadata"]["name"] != "server"
        }
        assert busy not in job_nodes

        async def only_busy_left() -> bool:
            nodes = await kube.nodes(f"burstd.io/target={target}")
            names = {name_of(n) for n in nodes}
            # Meanwhile the busy node is never touched.
            assert busy in names
            assert not any(cordoned(n) for n in nodes if name_of(n) == busy)
            return names == {busy}

        await eventually(only_busy_left, within=60, what="idle nodes deleted")

        # Well past idle_for + validation, the server's node is still there and in service.
        for _ in range(10):
            await asyncio.sleep(0.5)
            nodes = await kube.nodes(f"burstd.io/target={target}")
            assert [name_of(n) for n in nodes] == [busy]
            assert not cordoned(nodes[0])
            server = [p for p in await kube.pods(namespace) if p["metadata"]["name"] == "server"]
            assert phase(server[0]) == "Running"

        await kube.delete_pod(namespace, "server")

        async def all_gone() -> bool:
            return not await kube.nodes(f"burstd.io/target={target}")

        await eventually(all_gone, within=60, what="the last node deleted")

        decisions = [a.decision for a in app.applied]
        units = {u for a in app.applied if isinstance(a.decision, ScaleUp) for u in a.units}
        for kind in (Cordon, Drain, Release):
            assert {d.unit for d in decisions if isinstance(d, kind)} == units, kind
        assert not any(isinstance(d, Evict) for d in decisions)

        async def all_reported() -> bool:
            return app.actuator.released_total == len(units)

        await eventually(all_reported, within=15, what="every unit reported released")

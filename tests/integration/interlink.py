"""Helpers of the InterLink tests: an emulated HPC site (``burstd.testing.interlink``) run in
the test's event loop against the real control plane, and rules files that use it.

Only the site's virtual kubelet is emulated (there is no InterLink API or Slurm here); the API
server, scheduler and controller-manager are the real ones.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from kubernetes_asyncio import client

from burstd.providers.interlink import TAINT
from burstd.testing.interlink import Emulator, Site, SiteNode
from tests.integration.kube import COMPLETE_AFTER, GPU, Kube

TOLERATION = {"key": TAINT.key, "operator": "Equal", "value": TAINT.value, "effect": TAINT.effect}
GPU_MODEL = "NVIDIA-A100-SXM4-64GB"


def site(
    prefix: str,
    namespace: str,
    *,
    static: int = 0,
    scaled: int = 1,
    gpus: int = 8,
    queue_delay: float = 1.0,
    fault: str = "",
) -> Site:
    """``static`` nodes the site runs (``<prefix>-site-N``) and ``scaled`` virtual kubelets
    whose Deployments (``<namespace>/<prefix>-vk-N``) register ``<prefix>-vk-N``."""
    nodes = [
        SiteNode(node=f"{prefix}-site-{i}", gpus=gpus, gpu_model=GPU_MODEL, fault=fault)
        for i in range(1, static + 1)
    ]
    nodes += [
        SiteNode(
            node=f"{prefix}-vk-{i}",
            deployment=(namespace, f"{prefix}-vk-{i}"),
            gpus=gpus,
            gpu_model=GPU_MODEL,
            fault=fault,
        )
        for i in range(1, scaled + 1)
    ]
    return Site(nodes=tuple(nodes), queue_delay=queue_delay, ping_after=0.5, tick=0.2)


def params_nodes(s: Site) -> list[dict[str, str]]:
    """The provider's ``params.nodes`` for every node of ``s``."""
    return [
        {"node": n.node, **({"deployment": "/".join(n.deployment)} if n.deployment else {})}
        for n in s.nodes
    ]


def nodes_yaml(s: Site) -> str:
    rows = []
    for item in params_nodes(s):
        rows.append("        - {" + ", ".join(f"{k}: {v}" for k, v in item.items()) + "}")
    return "\n".join(rows)


@contextlib.asynccontextmanager
async def emulated(kube: Kube, s: Site) -> AsyncIterator[Emulator]:
    """The site's virtual kubelets running until the block ends; their Nodes are deleted
    afterwards (the emulator itself never deletes one)."""
    emulator = Emulator(kube.api, s)
    await emulator.setup()
    task = asyncio.create_task(emulator.run(), name="interlink-emulator")
    try:
        yield emulator
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for n in s.nodes:
            if await node_or_none(kube, n.node) is not None:
                await kube.raw(kube.core.delete_node, n.node)


async def create_hpc_job(
    kube: Kube,
    namespace: str,
    name: str,
    *,
    pods: int,
    gpus: int,
    complete_after: str,
    tolerate: bool = True,
) -> None:
    """A Job whose pods ask for GPUs and (with ``tolerate``) tolerate InterLink's taint."""
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [{"name": "work", "image": "x", "resources": {"limits": {GPU: gpus}}}],
    }
    if tolerate:
        spec["tolerations"] = [TOLERATION]
    body = {
        "metadata": {"name": name},
        "spec": {
            "parallelism": pods,
            "completions": pods,
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {COMPLETE_AFTER: complete_after}},
                "spec": spec,
            },
        },
    }
    await kube.raw(kube.batch.create_namespaced_job, namespace, body)


async def deployment(kube: Kube, n: SiteNode) -> dict[str, Any]:
    """The Deployment of the virtual kubelet of ``n``."""
    assert n.deployment is not None
    namespace, name = n.deployment
    apps: Any = client.AppsV1Api(kube.api)
    d: dict[str, Any] = await kube.raw(apps.read_namespaced_deployment, name, namespace)
    return d


async def replicas(kube: Kube, n: SiteNode) -> int:
    d = await deployment(kube, n)
    return int((d.get("spec") or {}).get("replicas") or 0)


async def node_or_none(kube: Kube, name: str) -> dict[str, Any] | None:
    resp = await kube.core.read_node(name, _preload_content=False)
    try:
        if resp.status == 404:
            return None
        data: dict[str, Any] = await resp.json()
        return data
    finally:
        resp.release()


def interlink_rules(
    *,
    target: str,
    namespace: str,
    s: Site,
    rule: str = "hpc-burst",
    gpus_per_unit: int = 4,
    ready_deadline: str = "30s",
    idle_for: str = "2s",
    drain: str = "{mode: evict, max_wait: 0s}",
    extra_targets: str = "",
    ladder: str = "",
) -> str:
    """A rules file with one InterLink target over every node of ``s``, one rule for one
    namespace, short timers. Drain mode evict with no wait: the provider's refusal to evict is
    what keeps the HPC jobs alive."""
    return f"""\
version: 1
loop: {{interval: 1s, batch_idle: 300ms, batch_max: 2s}}
targets:
  {target}:
    provider: interlink
    params:
      poll_interval: 0.2
      delete_timeout: 30
      nodes:
{nodes_yaml(s)}
    gpu_model: {GPU_MODEL}
    gpus_per_unit: {gpus_per_unit}
    max_units: {len(s.nodes)}
    time_to_ready: 2s
    ready_deadline: {ready_deadline}
    backoff: 1m
{extra_targets}rules:
  - name: {rule}
    match: {{namespaces: [{namespace}]}}
    triggers:
      - pending: {{gpus: 1}}
    burst:
      ladder: [{ladder or target}]
    release:
      idle_for: {idle_for}
      validation: 1s
      drain: {drain}
    cooldown: {{scale_up: 0s, scale_down: 0s}}
"""

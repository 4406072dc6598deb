"""Helpers of the Liqo tests: the emulator's fault switch, slices, reflections, evictions.

The consumer is the first test control plane, the donor the second
(``kube-testenv up --donor``); the Liqo emulator plays Liqo between them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client

from burstd.providers.base import UnitShape
from burstd.providers.liqo.provider import LiqoProvider
from burstd.testing.liqo import set_faults
from burstd.testing.liqo_api import Cluster
from tests.integration.kube import Kube

DONOR_ID = "donor"
CONSUMER_ID = "consumer"
TENANT_NS = f"liqo-tenant-{DONOR_ID}"
AUTH = ("authentication.liqo.io", "v1beta1")
OFFLOADING = ("offloading.liqo.io", "v1beta1")


def provider(kube: Kube, target: str, **params: Any) -> LiqoProvider:
    given = {"remote_cluster_id": DONOR_ID, "poll_interval": 0.1, "node_grace": 1.0}
    given.update(params)
    return LiqoProvider(kube.api, UnitShape(target=target, gpus=4), given)


@contextlib.asynccontextmanager
async def faults(kubeconfig: Path, **modes: object) -> AsyncIterator[None]:
    """Switch the emulator's fault modes for the block (all off again after it)."""
    async with Cluster(str(kubeconfig), "consumer") as consumer:
        await set_faults(consumer, **modes)
        try:
            yield
        finally:
            await set_faults(consumer)


async def slices(kube: Kube, selector: str = "") -> list[dict[str, Any]]:
    custom: Any = client.CustomObjectsApi(kube.api)
    data = await kube.raw(
        custom.list_namespaced_custom_object,
        *AUTH,
        TENANT_NS,
        "resourceslices",
        label_selector=selector,
    )
    items: list[dict[str, Any]] = data.get("items", [])
    return items


async def virtual_nodes(kube: Kube) -> list[dict[str, Any]]:
    custom: Any = client.CustomObjectsApi(kube.api)
    data = await kube.raw(
        custom.list_namespaced_custom_object, *OFFLOADING, TENANT_NS, "virtualnodes"
    )
    items: list[dict[str, Any]] = data.get("items", [])
    return items


async def offload(kube: Kube, namespace: str) -> None:
    """Give ``namespace`` a NamespaceOffloading, as ``liqoctl offload namespace`` does."""
    custom: Any = client.CustomObjectsApi(kube.api)
    body = {
        "apiVersion": "offloading.liqo.io/v1beta1",
        "kind": "NamespaceOffloading",
        "metadata": {"name": "offloading", "namespace": namespace},
        "spec": {"podOffloadingStrategy": "LocalAndRemote"},
    }
    await kube.raw(
        custom.create_namespaced_custom_object,
        *OFFLOADING,
        namespace,
        "namespaceoffloadings",
        body,
    )


async def evictions(kube: Kube, namespace: str) -> list[dict[str, Any]]:
    """The emulator's record of pods Liqo evicted (Events with reason LiqoEvicted)."""
    data = await kube.raw(kube.core.list_namespaced_event, namespace)
    return [e for e in data.get("items", []) if e.get("reason") == "LiqoEvicted"]


async def cleanup(kube: Kube, target: str) -> None:
    """Delete what a test's target left: its slices (the emulator then removes their nodes)
    and any Node of it."""
    custom: Any = client.CustomObjectsApi(kube.api)
    for rs in await slices(kube, f"burstd.io/target={target}"):
        await kube.raw(
            custom.delete_namespaced_custom_object,
            *AUTH,
            TENANT_NS,
            "resourceslices",
            rs["metadata"]["name"],
        )


def liqo_rules_yaml(
    *,
    namespace: str,
    donor: str,
    ladder: list[str],
    kwok: str | None = None,
    remote: str = DONOR_ID,
    idle_for: str = "2s",
    ready_deadline: str = "1m",
    gpus_per_unit: int = 4,
    max_units: int = 3,
    rule: str = "burst",
) -> str:
    """A rules file: a Liqo target (and optionally a kwok one) for one namespace."""
    kwok_target = (
        f"""
  {kwok}:
    provider: kwok
    params: {{poll_interval: 0.1, delete_timeout: 20}}
    gpus_per_unit: {gpus_per_unit}
    max_units: {max_units}
    max_in_flight: {max_units}
    time_to_ready: 1s
    ready_deadline: 1m
    backoff: 5s"""
        if kwok
        else ""
    )
    return f"""\
version: 1
loop: {{interval: 1s, batch_idle: 500ms, batch_max: 3s}}
targets:
  {donor}:
    provider: liqo
    params:
      remote_cluster_id: {remote}
      poll_interval: 0.1
      delete_timeout: 60
      node_grace: 1s
    gpus_per_unit: {gpus_per_unit}
    max_units: {max_units}
    max_in_flight: {max_units}
    time_to_ready: 1s
    ready_deadline: {ready_deadline}
    backoff: 30s{kwok_target}
rules:
  - name: {rule}
    match: {{namespaces: [{namespace}]}}
    triggers:
      - pending: {{gpus: 1}}
    burst:
      ladder: [{", ".join(ladder)}]
      max_units_per_step: {max_units}
    release:
      idle_for: {idle_for}
      validation: 1s
      drain: {{mode: wait}}
    cooldown: {{scale_up: 0s, scale_down: 0s}}
"""

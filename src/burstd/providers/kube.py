"""The Kubernetes API as the providers call it: requests, and the node operations they share.

Every provider that works on Kubernetes objects (kwok, Liqo, InterLink, Terraform's Nodes)
reads and writes them alike: raw JSON through ``burstd.kubeapi``, an ``ApiError`` (a
``ProviderError`` with the HTTP status) when the API server refuses, a plain retryable
``ProviderError`` when it cannot be reached, and 404 meaning "nothing there" where the caller
says so. Cordoning, eviction, what makes a unit's node ready and how a unit is written on the
objects that carry it are the same everywhere too: a cordon records on the node that burstd made
it, so ``list_units`` can tell burstd's cordon from an operator's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from burstd import kubeapi
from burstd.model import (
    CORDONED_ANNOTATION,
    GPU_RESOURCE,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    MIG_RESOURCE_PREFIX,
    STARTUP_TAINTS,
    UNIT_LABEL,
)
from burstd.providers.base import ProviderError

REQUEST_TIMEOUT = 30.0
MERGE = "application/merge-patch+json"

# What burstd writes on the object that carries a unit, so a restarted burstd adopts it with
# the shape it was made with (the labels say whose it is; labels cannot hold every value).
UNIT_ANNOTATION = "burstd.io/unit"
RULE_ANNOTATION = "burstd.io/rule"
GPUS_ANNOTATION = "burstd.io/gpus"
MIG_ANNOTATION = "burstd.io/mig"


class ApiError(ProviderError):
    """The API server refused a request: ``status`` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        # Client errors other than conflicts and throttling will not go away by retrying.
        self.retryable = status >= 500 or status in (409, 429)


async def call(fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> Any:
    """A generated API call's JSON body; ``ApiError`` on an error status, ``ProviderError``
    when the server cannot be reached."""
    return await kubeapi.request(
        fn,
        *args,
        request_timeout=REQUEST_TIMEOUT,
        refused=ApiError,
        unreachable=ProviderError,
        **kw,
    )


async def maybe(fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> dict[str, Any] | None:
    """Like ``call``, ``None`` for 404 (a read of an object that may not exist)."""
    try:
        found: dict[str, Any] = await call(fn, *args, **kw)
    except ApiError as e:
        if e.status == 404:
            return None
        raise
    return found


async def gone(fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> None:
    """Like ``call`` on an object that may be gone already: 404 is success."""
    await maybe(fn, *args, **kw)


async def evict(core: Any, pod: str) -> None:
    """Evict ``pod`` (``namespace/name``) through the Eviction API of ``core`` (a
    ``CoreV1Api``): PodDisruptionBudgets apply, so a refusal is a retryable ``ApiError`` 429. A
    pod already gone is no error."""
    namespace, _, name = pod.partition("/")
    body = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": namespace},
    }
    await gone(core.create_namespaced_pod_eviction, name, namespace, body)


def now_rfc3339() -> str:
    """The time now as burstd writes it in annotations (RFC 3339, UTC, whole seconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def set_unschedulable(core: Any, name: str, value: bool) -> bool:
    """Cordon (``value`` True) or uncordon Node ``name`` through ``core`` (a ``CoreV1Api``).
    The same write sets burstd's record of its own cordon (``CORDONED_ANNOTATION``, the time as
    RFC 3339) or removes it. Idempotent; False when the node is gone."""
    stamp = now_rfc3339() if value else None
    body = {
        "metadata": {"annotations": {CORDONED_ANNOTATION: stamp}},
        "spec": {"unschedulable": value},
    }
    return await maybe(core.patch_node, name, body, _content_type=MERGE) is not None


async def cordon_node(
    core: Any, unit_id: str, name: str, value: bool, *, log: logging.Logger, event: str
) -> None:
    """``set_unschedulable`` for a provider's ``cordon``/``uncordon`` of unit ``unit_id``: a
    node already gone has nothing to cordon, which ``log`` warns of as ``event``."""
    if not await set_unschedulable(core, name, value):
        log.warning(
            "unit %s: node %s is gone; nothing to %s",
            unit_id,
            name,
            "cordon" if value else "uncordon",
            extra={"event": event, "unit": unit_id},
        )


def gpu_need(gpus: int, mig: Mapping[str, int]) -> dict[str, int]:
    """What a unit's node must have allocatable: its MIG slices as resources, else ``gpus``
    whole GPUs."""
    if mig:
        return {f"{MIG_RESOURCE_PREFIX}{p}": int(n) for p, n in mig.items()}
    return {GPU_RESOURCE: gpus}


def node_ready(node: Mapping[str, Any], need: Mapping[str, int]) -> bool:
    """The Node is Ready, past its start-up taints, with ``need`` (resource → count)
    allocatable."""
    status = node.get("status") or {}
    if not any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    ):
        return False
    taints = (node.get("spec") or {}).get("taints") or []
    if any(t.get("key") in STARTUP_TAINTS for t in taints):
        return False
    allocatable = status.get("allocatable") or {}
    for resource, n in need.items():
        try:
            if int(str(allocatable.get(resource, "0"))) < n:
                return False
        except ValueError:
            return False
    return True


def owned(obj: Mapping[str, Any], unit_id: str) -> bool:
    """``obj`` is burstd's and carries unit ``unit_id`` (by its annotation, else its label)."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    return (
        labels.get(MANAGED_BY_LABEL) == MANAGED_BY
        and annotations.get(UNIT_ANNOTATION, labels.get(UNIT_LABEL)) == unit_id
    )


def count(value: object) -> int:
    """A whole number the API server wrote as a number or text; 0 when it is not one."""
    try:
        return int(str(value))
    except ValueError:
        return 0


def timestamp(value: object) -> float:
    """An RFC 3339 time as seconds since the epoch; 0.0 when absent or unreadable."""
    try:
        return datetime.fromisoformat(str(value)).timestamp() if value else 0.0
    except ValueError:
        return 0.0

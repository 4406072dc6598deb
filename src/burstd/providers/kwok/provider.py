"""The kwok provider: a unit is a fake GPU Node that kwok brings to life.

Like the Cluster Autoscaler's kwok cloud provider, it makes real Node objects in a real API
server; kwok (managing nodes annotated ``kwok.x-k8s.io/node: fake``) marks them Ready and runs
the pods the scheduler binds to them. Everything above the provider (watch, scheduler, drain,
adoption) is therefore exercised for real, with no cloud and no GPU.

One unit is one node named ``<name_prefix><unit id>``, built from the target's
``params.node_template`` (see examples/kwok.yaml):

``node_template``
    ``labels``, ``annotations``: added to the node (burstd's own labels win);
    ``taints``: a list of ``{key, value, effect}``;
    ``cpu``, ``memory``, ``pods``, ``ephemeral_storage``: capacity (default 32 / 256Gi / 110 /
    100Gi), also allocatable;
    ``resources``: more extended resources, ``{name: quantity}``.
``name_prefix``
    prefix of node names (default empty: the node is named after the unit).
``poll_interval``
    seconds between readiness checks (default 0.25).
``delete_timeout``
    seconds ``delete`` waits for the node to disappear (default 60).

The node offers ``nvidia.com/gpu: <gpus_per_unit>`` (or the target's MIG slices as
``nvidia.com/mig-<profile>``), is labelled ``nvidia.com/gpu.product: <gpu_model>`` and with
burstd's ownership labels (``burstd.io/provider: kwok`` among them, so a restarted burstd finds
it even when its target left the rules file), and records the unit id, rule, GPU count and MIG
slices in annotations so a restarted burstd can adopt it exactly, with the shape it was made
with. ``cordon`` also sets ``burstd.io/cordoned-at`` (``uncordon`` removes it): a node
cordoned without it was cordoned by an operator, which ``list_units`` reports.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from kubernetes_asyncio import client

from burstd import faults
from burstd.model import (
    CORDONED_ANNOTATION,
    GPU_MODEL_LABEL,
    GPU_RESOURCE,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    MIG_RESOURCE_PREFIX,
    PROVIDER_LABEL,
    RULE_LABEL,
    TARGET_LABEL,
    UNIT_LABEL,
)
from burstd.providers import kube
from burstd.providers.base import (
    NotReadyError,
    ProviderContext,
    ProviderError,
    ProvisionedUnit,
    UnitSpec,
)
from burstd.providers.kube import (
    GPUS_ANNOTATION,
    MIG_ANNOTATION,
    RULE_ANNOTATION,
    UNIT_ANNOTATION,
)
from burstd.providers.kwok import KIND_NAME
from burstd.providers.kwok import capacity as kwok_capacity
from burstd.providers.kwok import taints as kwok_taints

log = logging.getLogger(__name__)

KWOK_ANNOTATION = "kwok.x-k8s.io/node"


class KwokProvider:
    """A target whose units are kwok-managed fake GPU nodes. ``api`` is a
    ``kubernetes_asyncio`` ``ApiClient``, owned by the caller."""

    def __init__(
        self,
        api: Any,
        target: str,
        params: Mapping[str, Any] | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        core_api: Any = client.CoreV1Api
        self._core = core_api(api)
        self.target = target
        self.params: Mapping[str, Any] = dict(params or {})
        template = self.params.get("node_template") or {}
        self._template: Mapping[str, Any] = template if isinstance(template, Mapping) else {}
        self._prefix = str(self.params.get("name_prefix") or "")
        self._poll = float(self.params.get("poll_interval", 0.25))
        self._delete_timeout = float(self.params.get("delete_timeout", 60.0))
        self._sleep = sleep

    def node_name(self, unit_id: str) -> str:
        return f"{self._prefix}{unit_id}"

    async def _read(self, name: str) -> dict[str, Any] | None:
        return await kube.maybe(self._core.read_node, name)

    # The node ---------------------------------------------------------------------------

    def manifest(self, spec: UnitSpec) -> dict[str, Any]:
        """The Node object for ``spec``."""
        t = self._template
        labels = {str(k): str(v) for k, v in (t.get("labels") or {}).items()}
        labels.update(
            {
                "type": "kwok",
                PROVIDER_LABEL: KIND_NAME,
                MANAGED_BY_LABEL: MANAGED_BY,
                UNIT_LABEL: spec.id,
                TARGET_LABEL: spec.target,
                RULE_LABEL: spec.rule,
            }
        )
        labels.update(spec.labels)
        if spec.gpu_model:
            labels[GPU_MODEL_LABEL] = spec.gpu_model
        annotations = {str(k): str(v) for k, v in (t.get("annotations") or {}).items()}
        annotations.update(
            {
                KWOK_ANNOTATION: "fake",
                UNIT_ANNOTATION: spec.id,
                RULE_ANNOTATION: spec.rule,
                GPUS_ANNOTATION: str(spec.gpus),
            }
        )
        if spec.mig:
            annotations[MIG_ANNOTATION] = format_mig(spec.mig)
        capacity = kwok_capacity(t)
        if spec.mig:
            for profile, n in spec.mig.items():
                capacity[f"{MIG_RESOURCE_PREFIX}{profile}"] = str(n)
        else:
            capacity[GPU_RESOURCE] = str(spec.gpus)
        taints = [{"key": x.key, "value": x.value, "effect": x.effect} for x in kwok_taints(t)]
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name(spec.id),
                "labels": labels,
                "annotations": annotations,
            },
            "spec": {"taints": taints} if taints else {},
            "status": {"capacity": capacity, "allocatable": dict(capacity)},
        }
        return body

    # The Provider contract ----------------------------------------------------------------

    async def create(self, spec: UnitSpec) -> ProvisionedUnit:
        """Create the node (or find the one made for ``spec.id`` before) and wait until it
        is Ready with its GPUs allocatable; past ``spec.ready_deadline`` delete it and raise
        ``NotReadyError``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + spec.ready_deadline
        name = self.node_name(spec.id)
        try:
            await kube.call(self._core.create_node, self.manifest(spec))
            faults.hit(faults.OBJECT_CREATED)
            log.info(
                "created node %s for unit %s",
                name,
                spec.id,
                extra={"event": "kwok_node_created", "unit": spec.id, "node": name},
            )
        except kube.ApiError as e:
            if e.status != 409:
                raise
            existing = await self._read(name)
            if existing is not None and not kube.owned(existing, spec.id):
                raise ProviderError(f"node {name} exists and is not unit {spec.id}'s") from e
        while True:
            try:
                node = await self._read(name)
            except ProviderError as e:
                # The API server may be restarting; keep waiting until the deadline.
                log.warning(
                    "unit %s: checking node %s: %s",
                    spec.id,
                    name,
                    e,
                    extra={"event": "kwok_poll_error", "unit": spec.id},
                )
                node = {}
            if node is None:
                raise ProviderError(f"node {name} of unit {spec.id} was deleted while starting")
            if node and kube.node_ready(node, kube.gpu_need(spec.gpus, spec.mig)):
                return self._found(node, spec.id)
            if loop.time() >= deadline:
                await self._delete_quietly(spec.id, name)
                raise NotReadyError(
                    f"node {name} not Ready with {spec.gpus} GPU(s) allocatable within "
                    f"{spec.ready_deadline:g}s"
                )
            await self._sleep(min(self._poll, max(0.0, deadline - loop.time())))

    async def _delete_quietly(self, unit_id: str, name: str) -> None:
        try:
            await self.delete(unit_id, name)
        except ProviderError as e:
            log.error(
                "unit %s: could not delete node %s after its deadline: %s",
                unit_id,
                name,
                e,
                extra={"event": "kwok_cleanup_error", "unit": unit_id},
            )

    def _found(self, node: Mapping[str, Any], unit_id: str | None = None) -> ProvisionedUnit:
        meta = node.get("metadata") or {}
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        status = node.get("status") or {}
        uid = unit_id or str(annotations.get(UNIT_ANNOTATION) or labels.get(UNIT_LABEL, ""))
        try:
            gpus = int(annotations.get(GPUS_ANNOTATION, ""))
        except ValueError:
            try:
                gpus = int(str((status.get("capacity") or {}).get(GPU_RESOURCE, "0")))
            except ValueError:
                gpus = 0
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        mig = parse_mig(str(annotations.get(MIG_ANNOTATION, "")))
        if not mig and MIG_ANNOTATION not in annotations:
            mig = _mig_capacity(status.get("capacity") or {})
        return ProvisionedUnit(
            id=uid,
            target=str(labels.get(TARGET_LABEL, self.target)),
            rule=str(annotations.get(RULE_ANNOTATION) or labels.get(RULE_LABEL, "")),
            gpus=gpus,
            node=str(meta.get("name")),
            ready=ready,
            cordoned=bool((node.get("spec") or {}).get("unschedulable")),
            cordoned_by_burstd=CORDONED_ANNOTATION in annotations,
            gpu_model=str(labels.get(GPU_MODEL_LABEL, "")),
            mig=mig,
            created_at=kube.timestamp(meta.get("creationTimestamp")),
        )

    async def _set_unschedulable(self, unit_id: str, node: str | None, value: bool) -> None:
        name = node or self.node_name(unit_id)
        await kube.cordon_node(self._core, unit_id, name, value, log=log, event="kwok_node_gone")

    async def cordon(self, unit_id: str, node: str | None) -> None:
        """Mark the node unschedulable, recording that burstd did. Idempotent."""
        await self._set_unschedulable(unit_id, node, True)

    async def uncordon(self, unit_id: str, node: str | None) -> None:
        """Mark the node schedulable again and drop burstd's cordon record. Idempotent."""
        await self._set_unschedulable(unit_id, node, False)

    async def evict(self, unit_id: str, node: str | None, pods: Sequence[str]) -> None:
        """Evict ``pods`` through the Eviction API (PodDisruptionBudgets apply: a refusal is
        a retryable ``ApiError`` 429). Pods already gone are skipped."""
        for pod in pods:
            await kube.evict(self._core, pod)

    async def delete(self, unit_id: str, node: str | None) -> None:
        """Delete the unit's node and wait until it is gone. Idempotent; refuses to delete a
        node that is not this unit's."""
        name = node or self.node_name(unit_id)
        existing = await self._read(name)
        if existing is None:
            return
        if not kube.owned(existing, unit_id):
            e = ProviderError(f"node {name} is not unit {unit_id}'s; not deleting it")
            e.retryable = False
            raise e
        await kube.gone(self._core.delete_node, name)
        faults.hit(faults.DELETE_SENT)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._delete_timeout
        while await self._read(name) is not None:
            if loop.time() >= deadline:
                raise ProviderError(f"node {name} still exists {self._delete_timeout:g}s later")
            await self._sleep(self._poll)
        log.info(
            "deleted node %s of unit %s",
            name,
            unit_id,
            extra={"event": "kwok_node_deleted", "unit": unit_id, "node": name},
        )

    async def list_units(self) -> list[ProvisionedUnit]:
        """Every node burstd made for this target (being deleted ones left out)."""
        selector = f"{MANAGED_BY_LABEL}={MANAGED_BY},{TARGET_LABEL}={self.target}"
        data = await kube.call(self._core.list_node, label_selector=selector)
        return [
            self._found(node)
            for node in data.get("items") or []
            if not (node.get("metadata") or {}).get("deletionTimestamp")
        ]


def format_mig(mig: Mapping[str, int]) -> str:
    """MIG slices as ``1g.10gb=7,2g.20gb=1`` (sorted), for the node's annotation."""
    return ",".join(f"{p}={n}" for p, n in sorted(mig.items()))


def parse_mig(text: str) -> dict[str, int]:
    """The inverse of ``format_mig``; unreadable parts are skipped."""
    out: dict[str, int] = {}
    for part in text.split(","):
        profile, _, count = part.strip().partition("=")
        if profile and count.isdigit() and int(count) > 0:
            out[profile] = int(count)
    return out


def _mig_capacity(capacity: Mapping[str, Any]) -> dict[str, int]:
    out = {}
    for name, value in capacity.items():
        if str(name).startswith(MIG_RESOURCE_PREFIX) and str(value).isdigit() and int(value):
            out[str(name)[len(MIG_RESOURCE_PREFIX) :]] = int(value)
    return out


def from_context(ctx: ProviderContext) -> KwokProvider:
    """The kind's factory (see ``providers/registry.py``)."""
    return KwokProvider(ctx.api, ctx.target, ctx.params)

"""The InterLink provider: a unit is one InterLink virtual node, enabled for burstd's pods.

The site runs the virtual nodes; burstd only turns them on and off. A target lists them in
``params.nodes``, each either

* a node the site already runs (``node`` only): enable = uncordon, disable = cordon;
* or a virtual kubelet whose Deployment burstd scales (``node`` plus ``deployment:
  namespace/name``): enable = scale to 1 (the virtual kubelet registers ``node``), disable =
  scale to 0 and then delete the Node, since a virtual kubelet never deletes its own Node (a
  stale NotReady node would stay, with its pods Terminating, and take the name of the next one).

So the unit ids the actuator hands out are mapped onto the listed nodes: ``create`` claims the
first free one by writing the unit onto it (labels ``app.kubernetes.io/managed-by=burstd``,
``burstd.io/unit``/``target``/``rule``/``provider`` and annotations with the unit id, rule, GPU
count and the time it was enabled), on the Node for a site's node, on the Deployment (and then
its Node) otherwise; the write is conditional on the object's ``resourceVersion``, so two
creates never claim the same node. Disabling removes exactly what burstd wrote, and a
site's node is left cordoned as it was found. ``list_units`` reads the listed nodes again,
so a restarted burstd adopts every unit, even one half enabled or half disabled.

Ready means: the Node is Ready, its ``InterlinkConnectivity`` condition is True (the virtual
kubelet's ping to the InterLink API succeeds), no not-ready/unreachable taint is left and
``nvidia.com/gpu`` allocatable covers the unit, within the target's ``ready_deadline``; else
the node is disabled again and ``NotReadyError`` raised, so the planner walks down the ladder.

Pods on these nodes are Slurm jobs: evicting one loses its HPC allocation, so ``evict`` is not
implemented and the actuator waits for every pod to finish before the release.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client

from burstd import faults
from burstd.model import (
    CORDONED_ANNOTATION,
    GPU_MODEL_LABEL,
    GPU_RESOURCE,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    PROVIDER_LABEL,
    RULE_LABEL,
    STARTUP_TAINTS,
    TARGET_LABEL,
    UNIT_LABEL,
)
from burstd.providers import kube
from burstd.providers.base import (
    CapacityError,
    NotReadyError,
    ProviderContext,
    ProviderError,
    ProvisionedUnit,
    UnitSpec,
)
from burstd.providers.interlink import CONNECTIVITY_CONDITION, GPU_TYPE_LABEL, slots
from burstd.providers.kube import GPUS_ANNOTATION, RULE_ANNOTATION, UNIT_ANNOTATION

log = logging.getLogger(__name__)

ENABLED_ANNOTATION = "burstd.io/enabled-at"
PROVIDER = "interlink"

_OWN_LABELS = (MANAGED_BY_LABEL, UNIT_LABEL, TARGET_LABEL, RULE_LABEL, PROVIDER_LABEL)
_OWN_ANNOTATIONS = (
    UNIT_ANNOTATION,
    RULE_ANNOTATION,
    GPUS_ANNOTATION,
    ENABLED_ANNOTATION,
    CORDONED_ANNOTATION,
)
_CLAIM_TRIES = 8


def _meta(obj: Mapping[str, Any] | None, key: str) -> dict[str, Any]:
    if not obj:
        return {}
    value = (obj.get("metadata") or {}).get(key)
    return dict(value) if isinstance(value, Mapping) else {}


def _condition(node: Mapping[str, Any], kind: str) -> str | None:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return str(c.get("status"))
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Slot:
    """One virtual node of the target: the site's own (``deployment`` None) or one whose
    virtual kubelet Deployment burstd scales."""

    node: str
    deployment: tuple[str, str] | None = None

    @property
    def scaled(self) -> bool:
        return self.deployment is not None

    def __str__(self) -> str:
        if self.deployment is None:
            return f"node {self.node}"
        return f"node {self.node} (deployment {'/'.join(self.deployment)})"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Seen:
    """A slot as read now: its Node and Deployment (``None`` when absent)."""

    slot: Slot
    node: dict[str, Any] | None
    deployment: dict[str, Any] | None

    @property
    def holder(self) -> dict[str, Any] | None:
        """The object burstd writes the unit on."""
        return self.deployment if self.slot.scaled else self.node

    @property
    def unit(self) -> str | None:
        return _meta(self.holder, "annotations").get(UNIT_ANNOTATION) or None

    @property
    def target(self) -> str | None:
        return _meta(self.holder, "labels").get(TARGET_LABEL) or None

    @property
    def replicas(self) -> int:
        return kube.count(((self.deployment or {}).get("spec") or {}).get("replicas", 0))


class InterLinkProvider:
    """A target whose units are InterLink virtual nodes. ``api`` is a ``kubernetes_asyncio``
    ``ApiClient``, owned by the caller."""

    def __init__(
        self,
        api: Any,
        target: str,
        params: Mapping[str, Any] | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        core_api: Any = client.CoreV1Api
        apps_api: Any = client.AppsV1Api
        self._core = core_api(api)
        self._apps = apps_api(api)
        self.target = target
        self.params: Mapping[str, Any] = dict(params or {})
        self.slots: tuple[Slot, ...] = tuple(
            Slot(node=name, deployment=_split(deployment) if deployment else None)
            for name, deployment in slots(self.params)
        )
        self._poll = float(self.params.get("poll_interval", 1.0))
        self._delete_timeout = float(self.params.get("delete_timeout", 120.0))
        self._connectivity = bool(self.params.get("require_connectivity", True))
        self._sleep = sleep
        self._claiming = asyncio.Lock()

    # Requests ---------------------------------------------------------------------------

    async def _read_node(self, name: str) -> dict[str, Any] | None:
        return await kube.maybe(self._core.read_node, name)

    async def _see(self, slot: Slot) -> _Seen:
        deployment = None
        if slot.deployment is not None:
            namespace, name = slot.deployment
            deployment = await kube.maybe(self._apps.read_namespaced_deployment, name, namespace)
        return _Seen(slot=slot, node=await self._read_node(slot.node), deployment=deployment)

    async def _patch_node(self, name: str, body: Mapping[str, Any]) -> None:
        await kube.call(self._core.patch_node, name, body)

    async def _patch_deployment(self, slot: Slot, body: Mapping[str, Any]) -> None:
        assert slot.deployment is not None
        namespace, name = slot.deployment
        await kube.call(self._apps.patch_namespaced_deployment, name, namespace, body)

    # Ownership ----------------------------------------------------------------------------

    def _ownership(self, spec: UnitSpec, rv: str | None) -> dict[str, Any]:
        labels = dict(spec.labels)
        labels.update(
            {
                MANAGED_BY_LABEL: MANAGED_BY,
                TARGET_LABEL: labels.get(TARGET_LABEL, spec.target),
                RULE_LABEL: labels.get(RULE_LABEL, spec.rule),
                UNIT_LABEL: labels.get(UNIT_LABEL, spec.id),
                PROVIDER_LABEL: PROVIDER,
            }
        )
        meta: dict[str, Any] = {
            "labels": labels,
            "annotations": {
                UNIT_ANNOTATION: spec.id,
                RULE_ANNOTATION: spec.rule,
                GPUS_ANNOTATION: str(spec.gpus),
                ENABLED_ANNOTATION: kube.now_rfc3339(),
                CORDONED_ANNOTATION: None,
            },
        }
        if rv is not None:
            meta["resourceVersion"] = rv  # the claim fails with 409 if anyone wrote meanwhile
        return meta

    @staticmethod
    def _disowned() -> dict[str, Any]:
        return {
            "labels": dict.fromkeys(_OWN_LABELS),
            "annotations": dict.fromkeys(_OWN_ANNOTATIONS),
        }

    async def _find(self, unit_id: str) -> _Seen | None:
        for slot in self.slots:
            seen = await self._see(slot)
            if seen.unit == unit_id and seen.target in (None, self.target):
                return seen
        return None

    async def _claim(self, spec: UnitSpec) -> _Seen:
        """The slot of ``spec.id``, claiming the first free one if it has none."""
        async with self._claiming:
            free: list[_Seen] = []
            for slot in self.slots:
                seen = await self._see(slot)
                if seen.unit == spec.id:
                    return seen
                if seen.unit is None and self._free(seen):
                    free.append(seen)
            for seen in free:
                claimed = await self._try_claim(seen, spec)
                if claimed is not None:
                    log.info(
                        "unit %s: enabled %s",
                        spec.id,
                        seen.slot,
                        extra={
                            "event": "interlink_enabled",
                            "unit": spec.id,
                            "node": seen.slot.node,
                        },
                    )
                    faults.hit(faults.OBJECT_CREATED)
                    return claimed
        raise CapacityError(
            f"every virtual node of target {self.target} is in use or missing "
            f"({', '.join(s.node for s in self.slots) or 'params.nodes is empty'})"
        )

    async def _try_claim(self, seen: _Seen, spec: UnitSpec) -> _Seen | None:
        """Write ``spec``'s unit on a free slot; ``None`` if it was taken or went away. A
        conflict is retried on a fresh read: the virtual kubelet's own status heartbeats
        change the Node's resourceVersion too."""
        for _ in range(_CLAIM_TRIES):
            try:
                await self._enable(seen, spec)
            except kube.ApiError as e:
                if e.status not in (404, 409):
                    raise
                seen = await self._see(seen.slot)
                if seen.unit == spec.id:
                    return seen
                if e.status == 404 or seen.unit is not None or not self._free(seen):
                    return None
                continue
            return await self._see(seen.slot)
        return None

    @staticmethod
    def _free(seen: _Seen) -> bool:
        if seen.slot.scaled:
            return seen.deployment is not None and seen.replicas == 0
        return seen.node is not None and not (seen.node.get("metadata") or {}).get(
            "deletionTimestamp"
        )

    async def _enable(self, seen: _Seen, spec: UnitSpec) -> None:
        holder = seen.holder
        assert holder is not None
        rv = (holder.get("metadata") or {}).get("resourceVersion")
        meta = self._ownership(spec, str(rv) if rv else None)
        if seen.slot.scaled:
            await self._patch_deployment(seen.slot, {"metadata": meta, "spec": {"replicas": 1}})
        else:
            await self._patch_node(
                seen.slot.node, {"metadata": meta, "spec": {"unschedulable": False}}
            )

    async def _label_node(self, seen: _Seen, spec: UnitSpec) -> None:
        """The Node a scaled virtual kubelet registered gets the unit's labels too, so the
        cluster view knows it for the unit's (its own labels are the virtual kubelet's)."""
        node = seen.node
        if node is None or kube.owned(node, spec.id):
            return
        meta = self._ownership(spec, None)
        meta["annotations"][ENABLED_ANNOTATION] = _meta(seen.deployment, "annotations").get(
            ENABLED_ANNOTATION, kube.now_rfc3339()
        )
        await self._patch_node(seen.slot.node, {"metadata": meta, "spec": {"unschedulable": False}})

    # Readiness ----------------------------------------------------------------------------

    def _not_ready(self, node: Mapping[str, Any] | None, gpus: int) -> str | None:
        """Why ``node`` does not serve a unit of ``gpus`` GPUs yet (``None``: it does)."""
        if node is None:
            return "the Node is not registered"
        if (node.get("metadata") or {}).get("deletionTimestamp"):
            return "the Node is being deleted"
        if _condition(node, "Ready") != "True":
            return "the Node is not Ready"
        if self._connectivity and _condition(node, CONNECTIVITY_CONDITION) != "True":
            return f"its {CONNECTIVITY_CONDITION} condition is not True"
        taints = (node.get("spec") or {}).get("taints") or []
        if any(t.get("key") in STARTUP_TAINTS for t in taints):
            return "it still has a not-ready taint"
        have = kube.count(
            ((node.get("status") or {}).get("allocatable") or {}).get(GPU_RESOURCE, 0)
        )
        if have < gpus:
            return f"it has {have} {GPU_RESOURCE} allocatable, the unit needs {gpus}"
        return None

    # The Provider contract ----------------------------------------------------------------

    async def create(self, spec: UnitSpec) -> ProvisionedUnit:
        """Enable a free virtual node for ``spec`` (or find the one enabled for ``spec.id``
        before) and wait until it is ready; past ``spec.ready_deadline`` disable it again and
        raise ``NotReadyError``. ``CapacityError`` when every listed node is in use."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + spec.ready_deadline
        seen = await self._claim(spec)
        why = "not checked yet"
        while True:
            try:
                seen = await self._see(seen.slot)
                if seen.slot.scaled and seen.unit == spec.id:
                    await self._label_node(seen, spec)
                why = self._not_ready(seen.node, spec.gpus) or ""
            except ProviderError as e:
                # The API server may be restarting; keep waiting until the deadline.
                log.warning(
                    "unit %s: checking %s: %s",
                    spec.id,
                    seen.slot,
                    e,
                    extra={"event": "interlink_poll_error", "unit": spec.id},
                )
            if seen.unit != spec.id:
                raise ProviderError(f"{seen.slot} was taken from unit {spec.id} meanwhile")
            if not why:
                return self._found(seen, ready=True)
            if loop.time() >= deadline:
                await self._rollback(spec.id)
                raise NotReadyError(
                    f"{seen.slot} not ready within {spec.ready_deadline:g}s: {why}; disabled again"
                )
            await self._sleep(min(self._poll, max(0.0, deadline - loop.time())))

    async def _rollback(self, unit_id: str) -> None:
        try:
            await self.delete(unit_id, None)
        except ProviderError as e:
            log.error(
                "unit %s: could not disable its virtual node after its deadline: %s",
                unit_id,
                e,
                extra={"event": "interlink_cleanup_error", "unit": unit_id},
            )

    def _found(self, seen: _Seen, *, ready: bool | None = None) -> ProvisionedUnit:
        holder = _meta(seen.holder, "annotations")
        labels = _meta(seen.holder, "labels")
        node = seen.node or {}
        node_labels = _meta(node, "labels")
        gpus = kube.count(holder.get(GPUS_ANNOTATION, 0))
        if ready is None:
            ready = self._not_ready(seen.node, gpus) is None
            if seen.slot.scaled and not kube.owned(node, str(holder.get(UNIT_ANNOTATION, ""))):
                # A virtual kubelet's Node is the unit's only once burstd labelled it (create
                # does that; a crash before leaves it unready, and adoption's create labels it).
                ready = False
        cordoned = bool((node.get("spec") or {}).get("unschedulable"))
        by_burstd = CORDONED_ANNOTATION in _meta(node, "annotations")
        if seen.slot.scaled and seen.replicas == 0:
            # Half disabled (scaled down, Node maybe left): it takes no pods, burstd did that.
            cordoned = by_burstd = True
        return ProvisionedUnit(
            id=str(holder.get(UNIT_ANNOTATION, "")),
            target=str(labels.get(TARGET_LABEL, self.target)),
            rule=str(holder.get(RULE_ANNOTATION) or labels.get(RULE_LABEL, "")),
            gpus=gpus,
            node=seen.slot.node,
            ready=ready,
            cordoned=cordoned,
            cordoned_by_burstd=cordoned and by_burstd,
            gpu_model=str(node_labels.get(GPU_MODEL_LABEL) or node_labels.get(GPU_TYPE_LABEL, "")),
            created_at=kube.timestamp(holder.get(ENABLED_ANNOTATION)),
        )

    async def _unschedulable(self, unit_id: str, node: str | None, value: bool) -> None:
        name = node or (seen.slot.node if (seen := await self._find(unit_id)) else None)
        if name is None:
            return
        await kube.cordon_node(
            self._core, unit_id, name, value, log=log, event="interlink_node_gone"
        )

    async def cordon(self, unit_id: str, node: str | None) -> None:
        """Mark the node unschedulable (noting burstd did it). Idempotent."""
        await self._unschedulable(unit_id, node, True)

    async def uncordon(self, unit_id: str, node: str | None) -> None:
        """Mark the node schedulable again. Idempotent."""
        await self._unschedulable(unit_id, node, False)

    async def evict(self, unit_id: str, node: str | None, pods: Sequence[str]) -> None:
        """Not implemented: the pods are Slurm jobs and evicting one loses its allocation, so
        the actuator waits for them to finish."""
        raise NotImplementedError("InterLink pods are HPC jobs: burstd waits for them")

    async def delete(self, unit_id: str, node: str | None) -> None:
        """Disable the unit's virtual node: a site's node is cordoned; a scaled one is scaled to
        0 and its Node deleted. burstd's labels and annotations are removed last, so a crash
        half way leaves a unit ``list_units`` still reports. Idempotent."""
        seen = await self._find(unit_id)
        if seen is None:
            return
        slot = seen.slot
        if not slot.scaled:
            await self._patch_node(
                slot.node, {"metadata": self._disowned(), "spec": {"unschedulable": True}}
            )
            faults.hit(faults.DELETE_SENT)
        else:
            if seen.replicas != 0:
                await self._patch_deployment(slot, {"spec": {"replicas": 0}})
                faults.hit(faults.DELETE_SENT)
            await self._scaled_down(slot)
            await self._delete_node(slot.node)
            await self._patch_deployment(slot, {"metadata": self._disowned()})
        log.info(
            "unit %s: disabled %s",
            unit_id,
            slot,
            extra={"event": "interlink_disabled", "unit": unit_id, "node": slot.node},
        )

    async def _until(self, done: Callable[[], Awaitable[bool]], what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._delete_timeout
        while not await done():
            if loop.time() >= deadline:
                raise ProviderError(f"{what} {self._delete_timeout:g}s later")
            await self._sleep(self._poll)

    async def _scaled_down(self, slot: Slot) -> None:
        """Wait until the virtual kubelet's pods are gone, so it cannot re-register the Node
        burstd is about to delete."""
        assert slot.deployment is not None
        namespace, name = slot.deployment

        async def done() -> bool:
            d = await kube.maybe(self._apps.read_namespaced_deployment, name, namespace)
            if d is None:
                return True
            status = d.get("status") or {}
            observed = kube.count(status.get("observedGeneration", 0))
            generation = kube.count((d.get("metadata") or {}).get("generation", 0))
            return observed >= generation and kube.count(status.get("replicas", 0)) == 0

        await self._until(done, f"deployment {namespace}/{name} still has replicas")

    async def _delete_node(self, name: str) -> None:
        await kube.gone(self._core.delete_node, name)

        async def gone() -> bool:
            return await self._read_node(name) is None

        await self._until(gone, f"node {name} still exists")

    async def list_units(self) -> list[ProvisionedUnit]:
        """Every listed virtual node enabled for a unit of this target, as it is now."""
        out = []
        for slot in self.slots:
            seen = await self._see(slot)
            if seen.unit is not None and seen.target in (None, self.target):
                out.append(self._found(seen))
        return out


def _split(text: str) -> tuple[str, str]:
    namespace, sep, name = text.partition("/")
    if not sep or not namespace or not name:
        return ("default", text.strip("/"))
    return (namespace, name)


def from_context(ctx: ProviderContext) -> InterLinkProvider:
    """The kind's factory (see ``providers/registry.py``)."""
    return InterLinkProvider(ctx.api, ctx.target, ctx.params)

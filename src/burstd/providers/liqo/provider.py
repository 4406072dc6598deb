"""The Liqo provider: a unit is one ResourceSlice asking a peered donor cluster for GPUs.

Liqo v1.x lends capacity per ``ResourceSlice`` (``authentication.liqo.io/v1beta1``) made in the
consumer cluster, in the donor's tenant namespace. The donor answers through two conditions,
``Authentication`` and ``Resources`` (``Accepted`` or ``Denied``), and ``status.resources``
(what it grants); Liqo then makes a ``VirtualNode`` (``offloading.liqo.io/v1beta1``) of the
same name and its virtual kubelet registers a ``Node`` of that name, tainted
``virtual-node.liqo.io/not-allowed:NoExecute``, through which pods are offloaded unchanged.

What this provider adds to that:

* **Before a unit**: the peering must exist and be healthy (the ``ForeignCluster`` of
  ``remote_cluster_id``, its authentication and offloading modules). No peering is a
  non-retryable ``ProviderError`` saying what to run; the target backs off and the ladder
  moves on. Pending GPU pods in a namespace without a ``NamespaceOffloading`` are warned about
  (they can never land on the virtual node). Both are also the target's problems
  (``problems``), which the daemon asks for now and then and shows in ``/status``, the status
  page and its alerts, whether or not a unit is being made.
* **Ready** means all of: both conditions ``Accepted``, ``status.resources`` granting the GPUs
  asked, the Node Ready with ``nvidia.com/gpu`` allocatable at least the grant, within
  ``ready_deadline``. ``Accepted`` alone proves nothing. ``Denied`` is a ``CapacityError`` at
  once; a deadline miss deletes the slice and raises ``NotReadyError`` saying what was missing.
* **Release**: deleting a slice makes Liqo evict every pod on its node. ``delete`` therefore
  checks the node itself and refuses (retryably) while any pod still runs there, whatever the
  caller believes; once the slice is gone it waits for the ``VirtualNode`` and the ``Node`` to
  go, and deletes a Node the virtual kubelet left behind (Liqo's does not delete its Node when
  it dies).
* **Ownership**: the slice carries burstd's labels (found again by ``list_units``) plus those
  ``liqoctl create resourceslice`` sets (``liqo.io/remote-cluster-id``, ``liqo.io/remoteID``,
  ``liqo.io/replication``, annotation
  ``liqo.io/create-virtual-node``); Liqo does not copy a slice's labels to its Node, so the
  provider labels the Node itself once it appears (burstd's watch knows a unit's node by them).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from kubernetes_asyncio import client

from burstd import faults
from burstd.model import (
    CORDONED_ANNOTATION,
    GPU_RESOURCE,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    MIG_RESOURCE_PREFIX,
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
    UnitShape,
    UnitSpec,
)
from burstd.providers.kube import (
    GPUS_ANNOTATION,
    MIG_ANNOTATION,
    RULE_ANNOTATION,
    UNIT_ANNOTATION,
)
from burstd.providers.liqo import (
    CREATE_VIRTUAL_NODE_ANNOTATION,
    DEFAULT_CLASS,
    REMOTE_CLUSTER_ID_LABEL,
    REMOTE_ID_LABEL,
    REPLICATION_LABEL,
    node_labels,
    resources,
    tenant_namespace,
)

log = logging.getLogger(__name__)

AUTH = ("authentication.liqo.io", "v1beta1")
OFFLOADING = ("offloading.liqo.io", "v1beta1")
CORE = ("core.liqo.io", "v1beta1")
GPU_MODEL_ANNOTATION = "burstd.io/gpu-model"

_BAD_MODULE = frozenset({"Error", "NotReady", "SomeNotReady"})
_PEERING_TTL = 30.0


def slice_name(unit_id: str) -> str:
    """A unit's slice (and so its VirtualNode and Node) name: a DNS-1123 label."""
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in unit_id.lower())
    return name.strip("-")[:63].strip("-")


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return {}


class LiqoProvider:
    """One donor cluster reached through Liqo. ``api`` is a ``kubernetes_asyncio``
    ``ApiClient`` of the consumer cluster, owned by the caller."""

    def __init__(
        self,
        api: Any,
        shape: UnitShape,
        params: Mapping[str, Any],
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        core: Any = client.CoreV1Api
        custom: Any = client.CustomObjectsApi
        self._core = core(api)
        self._custom = custom(api)
        self.shape = shape
        self.target = shape.target
        self.params: Mapping[str, Any] = dict(params)
        self.remote = str(self.params.get("remote_cluster_id") or "")
        self._namespace = str(self.params.get("namespace") or "")
        self._class = str(self.params.get("resource_slice_class") or DEFAULT_CLASS)
        self._poll = float(self.params.get("poll_interval", 0.25))
        self._delete_timeout = float(self.params.get("delete_timeout", 120.0))
        self._node_grace = float(self.params.get("node_grace", 10.0))
        self._sleep = sleep
        self._peering_ok_at: float | None = None

    # Requests ---------------------------------------------------------------------------

    async def _slice(self, name: str) -> dict[str, Any] | None:
        ns = await self.namespace()
        return await kube.maybe(
            self._custom.get_namespaced_custom_object, *AUTH, ns, "resourceslices", name
        )

    async def _virtual_node(self, name: str) -> dict[str, Any] | None:
        ns = await self.namespace()
        return await kube.maybe(
            self._custom.get_namespaced_custom_object, *OFFLOADING, ns, "virtualnodes", name
        )

    async def _node(self, name: str) -> dict[str, Any] | None:
        return await kube.maybe(self._core.read_node, name)

    # The peering ------------------------------------------------------------------------

    async def _foreign_cluster(self) -> dict[str, Any] | None:
        """The ForeignCluster of ``remote_cluster_id``: by name (Liqo names it after the
        cluster ID), else by its remote-cluster-id label or ``spec.clusterID``."""
        found = await kube.maybe(
            self._custom.get_cluster_custom_object, *CORE, "foreignclusters", self.remote
        )
        if found is not None:
            return found
        listed = await kube.call(self._custom.list_cluster_custom_object, *CORE, "foreignclusters")
        for fc in listed.get("items") or []:
            labels = (fc.get("metadata") or {}).get("labels") or {}
            cid = (fc.get("spec") or {}).get("clusterID")
            if labels.get(REMOTE_CLUSTER_ID_LABEL) == self.remote or cid == self.remote:
                return dict(fc)
        return None

    async def namespace(self) -> str:
        """The tenant namespace where this target's slices live."""
        if not self._namespace:
            fc = await self._foreign_cluster()
            local = ((fc or {}).get("status") or {}).get("tenantNamespace") or {}
            self._namespace = str(local.get("local") or tenant_namespace(self.remote))
        return self._namespace

    async def check_peering(self) -> None:
        """Raise unless the peering with the donor exists and is healthy: no ForeignCluster is
        a non-retryable ``ProviderError`` (an operator must peer first), an unhealthy module a
        retryable one. Checked before a unit, at most every 30 s while it is fine."""
        now = time.monotonic()
        if self._peering_ok_at is not None and now - self._peering_ok_at < _PEERING_TTL:
            return
        err = await self._peering_error()
        if err is not None:
            if not err.retryable:
                log.error(
                    "target %s: %s",
                    self.target,
                    err,
                    extra={
                        "event": "liqo_no_peering",
                        "target": self.target,
                        "remote": self.remote,
                    },
                )
            raise err
        self._peering_ok_at = now

    async def problems(self, namespaces: frozenset[str] | None = None) -> list[str]:
        """What keeps this donor's units from serving now (``ReportsProblems``): no peering or
        an unhealthy one, and each namespace with pending GPU pods that Liqo does not offload
        (their pods can never reach the virtual node)."""
        err = await self._peering_error()
        if err is not None:
            return [str(err)]
        return [self._unoffloaded_text(ns) for ns in await self._unoffloaded(namespaces)]

    async def _peering_error(self) -> ProviderError | None:
        """Why the peering with the donor cannot lend, or ``None`` if it can."""
        try:
            fc = await self._foreign_cluster()
        except kube.ApiError as e:
            if e.status != 404:
                raise
            fc = None  # the CRD itself is missing: Liqo is not installed
        if fc is None:
            return _fatal(
                f"no peering with donor {self.remote!r}: no ForeignCluster for it in this "
                f"cluster (peer first: liqoctl peer --remote-kubeconfig <donor> "
                f"--create-resource-slice=false)"
            )
        modules = (fc.get("status") or {}).get("modules") or {}
        problems = []
        for name in ("authentication", "offloading"):
            module = modules.get(name) or {}
            if not module.get("enabled"):
                problems.append(f"module {name} not enabled")
            for c in module.get("conditions") or []:
                if c.get("status") in _BAD_MODULE:
                    problems.append(f"{name} {c.get('type')} is {c.get('status')}")
        if problems:
            return ProviderError(
                f"peering with donor {self.remote!r} is not healthy: {'; '.join(problems)}"
            )
        return None

    async def _unoffloaded(self, namespaces: frozenset[str] | None) -> list[str]:
        """The namespaces (of ``namespaces``; ``None``: any) whose GPU pods are pending but
        that Liqo does not offload: without a NamespaceOffloading their pods never get the
        virtual node's toleration. Empty when the API cannot say."""
        try:
            offloads = await kube.call(
                self._custom.list_cluster_custom_object, *OFFLOADING, "namespaceoffloadings"
            )
            pending = await kube.call(
                self._core.list_pod_for_all_namespaces, field_selector="status.phase=Pending"
            )
        except ProviderError:
            return []
        offloaded = {
            (o.get("metadata") or {}).get("namespace") for o in offloads.get("items") or []
        }
        return sorted(
            {
                ns
                for pod in pending.get("items") or []
                if (ns := str((pod.get("metadata") or {}).get("namespace"))) not in offloaded
                and (namespaces is None or ns in namespaces)
                and _wants_gpus(pod)
            }
        )

    def _unoffloaded_text(self, ns: str) -> str:
        return (
            f"namespace {ns} has pending GPU pods but no NamespaceOffloading: Liqo will not "
            f"offload them to donor {self.remote} (liqoctl offload namespace {ns})"
        )

    # The slice --------------------------------------------------------------------------

    def manifest(self, spec: UnitSpec, namespace: str) -> dict[str, Any]:
        """The ResourceSlice of ``spec``."""
        shape = UnitShape(target=spec.target, gpus=spec.gpus, mig=dict(spec.mig))
        labels = {
            MANAGED_BY_LABEL: MANAGED_BY,
            UNIT_LABEL: spec.id,
            TARGET_LABEL: spec.target,
            RULE_LABEL: spec.rule,
            **spec.labels,
            PROVIDER_LABEL: "liqo",
            REMOTE_CLUSTER_ID_LABEL: self.remote,
            REMOTE_ID_LABEL: self.remote,
            REPLICATION_LABEL: "true",
        }
        annotations = {
            CREATE_VIRTUAL_NODE_ANNOTATION: "true",
            UNIT_ANNOTATION: spec.id,
            RULE_ANNOTATION: spec.rule,
            GPUS_ANNOTATION: str(spec.gpus),
        }
        if spec.gpu_model:
            annotations[GPU_MODEL_ANNOTATION] = spec.gpu_model
        if spec.mig:
            annotations[MIG_ANNOTATION] = json.dumps(dict(spec.mig), sort_keys=True)
        return {
            "apiVersion": "/".join(AUTH),
            "kind": "ResourceSlice",
            "metadata": {
                "name": slice_name(spec.id),
                "namespace": namespace,
                "labels": labels,
                "annotations": annotations,
            },
            "spec": {
                "class": self._class,
                "providerClusterID": self.remote,
                "resources": resources(shape, self.params),
            },
        }

    # The Provider contract ----------------------------------------------------------------

    async def create(self, spec: UnitSpec) -> ProvisionedUnit:
        """Make the slice (or find the one made for ``spec.id`` before, judged by its own
        creation time) and wait until it is ready (see the module docstring)."""
        await self.check_peering()
        ns = await self.namespace()
        name = slice_name(spec.id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + spec.ready_deadline
        try:
            await kube.call(
                self._custom.create_namespaced_custom_object,
                *AUTH,
                ns,
                "resourceslices",
                self.manifest(spec, ns),
            )
            log.info(
                "created resource slice %s/%s for unit %s (%d GPU(s) from %s)",
                ns,
                name,
                spec.id,
                spec.gpus,
                self.remote,
                extra={"event": "liqo_slice_created", "unit": spec.id, "slice": name},
            )
            faults.hit(faults.OBJECT_CREATED)
        except kube.ApiError as e:
            if e.status != 409:
                raise
            existing = await self._slice(name)
            if existing is not None and not kube.owned(existing, spec.id):
                raise ProviderError(f"resource slice {ns}/{name} is not unit {spec.id}'s") from e
            if existing is not None:
                made = kube.timestamp((existing.get("metadata") or {}).get("creationTimestamp"))
                if made:
                    left = made + spec.ready_deadline - time.time()
                    deadline = loop.time() + max(0.0, min(spec.ready_deadline, left))
        return await self._wait_ready(spec, name, deadline)

    async def _wait_ready(self, spec: UnitSpec, name: str, deadline: float) -> ProvisionedUnit:
        loop = asyncio.get_running_loop()
        missing = "no answer from the donor"
        while True:
            try:
                rs = await self._slice(name)
                if rs is None or (rs.get("metadata") or {}).get("deletionTimestamp"):
                    raise _fatal(f"resource slice {name} of unit {spec.id} was deleted")
                missing, node = await self._progress(spec, rs, name)
                if node is not None and not kube.owned(node, spec.id):
                    node = await self._label_node(name, spec)
                if not missing and node is not None:
                    return self._found(rs, node)
            except CapacityError:
                await self._delete_quietly(spec.id, name)
                raise
            except kube.ApiError as e:
                if not e.retryable:
                    raise
                missing = f"API error: {e}"
            except ProviderError as e:
                if not e.retryable:
                    raise
                missing = str(e)  # the API server may be restarting: wait on
            if loop.time() >= deadline:
                await self._delete_quietly(spec.id, name)
                raise NotReadyError(
                    f"resource slice {name} from donor {self.remote} not ready within "
                    f"{spec.ready_deadline:g}s: {missing}; slice deleted"
                )
            await self._sleep(min(self._poll, max(0.0, deadline - loop.time())))

    async def _progress(
        self, spec: UnitSpec, rs: Mapping[str, Any], name: str
    ) -> tuple[str, dict[str, Any] | None]:
        """What still keeps the unit from being ready ("" when nothing) and its Node."""
        auth, res = _condition(rs, "Authentication"), _condition(rs, "Resources")
        for kind, c in (("Authentication", auth), ("Resources", res)):
            if c.get("status") == "Denied":
                why = c.get("message") or c.get("reason") or "no reason given"
                raise CapacityError(f"donor {self.remote} denied slice {name} ({kind}): {why}")
        if auth.get("status") != "Accepted" or res.get("status") != "Accepted":
            return "slice not Accepted yet", None
        granted = (rs.get("status") or {}).get("resources") or {}
        for resource, n in kube.gpu_need(spec.gpus, spec.mig).items():
            if kube.count(granted.get(resource, 0)) < n:
                return f"accepted, but status.resources grants {granted.get(resource, 0)} " + (
                    f"of {n} {resource}"
                ), None
        if await self._virtual_node(name) is None:
            return "accepted, but no VirtualNode yet", None
        node = await self._node(name)
        if node is None:
            return "VirtualNode made, but no Node yet", None
        return self._node_missing(spec, node, granted), node

    def _node_missing(
        self, spec: UnitSpec, node: Mapping[str, Any], granted: Mapping[str, Any]
    ) -> str:
        name = (node.get("metadata") or {}).get("name")
        if _condition(node, "Ready").get("status") != "True":
            return f"node {name} not Ready"
        taints = (node.get("spec") or {}).get("taints") or []
        if any(t.get("key") in STARTUP_TAINTS for t in taints):
            return f"node {name} still tainted not-ready"
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        for resource, n in kube.gpu_need(spec.gpus, spec.mig).items():
            need = max(n, kube.count(granted.get(resource, n)))
            if kube.count(allocatable.get(resource, 0)) < need:
                return (
                    f"accepted, but node {name} has {allocatable.get(resource, 0)} of {need} "
                    f"{resource} allocatable"
                )
        return ""

    async def _label_node(self, name: str, spec: UnitSpec) -> dict[str, Any]:
        """Put burstd's labels on the unit's Node (Liqo does not copy the slice's); the Node
        as patched."""
        shape = UnitShape(target=spec.target, gpus=spec.gpus, gpu_model=spec.gpu_model)
        labels = node_labels(shape, self.params)
        labels.update(spec.labels)
        labels.update({UNIT_LABEL: spec.id, RULE_LABEL: spec.rule, PROVIDER_LABEL: "liqo"})
        body = {"metadata": {"labels": labels}}
        node: dict[str, Any] = await kube.call(
            self._core.patch_node, name, body, _content_type=kube.MERGE
        )
        return node

    async def _delete_quietly(self, unit_id: str, name: str) -> None:
        try:
            await self.delete(unit_id, name)
        except ProviderError as e:
            log.error(
                "unit %s: could not delete resource slice %s: %s",
                unit_id,
                name,
                e,
                extra={"event": "liqo_cleanup_error", "unit": unit_id},
            )

    def _found(self, rs: Mapping[str, Any], node: Mapping[str, Any] | None) -> ProvisionedUnit:
        meta = rs.get("metadata") or {}
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        uid = str(annotations.get(UNIT_ANNOTATION) or labels.get(UNIT_LABEL, ""))
        try:
            mig = {str(k): int(v) for k, v in json.loads(annotations[MIG_ANNOTATION]).items()}
        except (KeyError, ValueError, TypeError, AttributeError):
            mig = {}
        gpus = kube.count(annotations.get(GPUS_ANNOTATION, "0"))
        ready = False
        cordoned = by_burstd = False
        if node is not None:
            spec = UnitSpec(id=uid, target=self.target, rule="", gpus=gpus, mig=mig)
            granted = (rs.get("status") or {}).get("resources") or {}
            # The Node is the unit's only once burstd labelled it (create does that last; a
            # crash before leaves it unready, and adoption's create finishes the job).
            ready = kube.owned(node, uid) and not self._node_missing(spec, node, granted)
            cordoned = bool((node.get("spec") or {}).get("unschedulable"))
            node_annotations = (node.get("metadata") or {}).get("annotations") or {}
            by_burstd = cordoned and CORDONED_ANNOTATION in node_annotations
        if meta.get("deletionTimestamp"):
            ready, cordoned = False, True
        return ProvisionedUnit(
            id=uid,
            target=str(labels.get(TARGET_LABEL, self.target)),
            rule=str(annotations.get(RULE_ANNOTATION) or labels.get(RULE_LABEL, "")),
            gpus=gpus,
            node=str((node.get("metadata") or {}).get("name")) if node is not None else None,
            ready=ready,
            cordoned=cordoned,
            cordoned_by_burstd=by_burstd,
            gpu_model=str(annotations.get(GPU_MODEL_ANNOTATION, "")),
            mig=mig,
            created_at=kube.timestamp(meta.get("creationTimestamp")),
        )

    async def _cordon(self, unit_id: str, node: str | None, value: bool) -> None:
        name = node or slice_name(unit_id)
        await kube.cordon_node(self._core, unit_id, name, value, log=log, event="liqo_node_gone")

    async def cordon(self, unit_id: str, node: str | None) -> None:
        """Mark the virtual node unschedulable (and that burstd did it). Idempotent."""
        await self._cordon(unit_id, node, True)

    async def uncordon(self, unit_id: str, node: str | None) -> None:
        """Undo ``cordon``. Idempotent."""
        await self._cordon(unit_id, node, False)

    async def evict(self, unit_id: str, node: str | None, pods: Sequence[str]) -> None:
        """Evict ``pods`` through the Eviction API (PodDisruptionBudgets apply; a refusal is
        a retryable 429). Liqo's virtual kubelet then deletes their reflections."""
        for pod in pods:
            await kube.evict(self._core, pod)

    async def running_pods(self, node: str) -> list[str]:
        """Pods on ``node`` that have not finished (Liqo would evict them)."""
        listed = await kube.call(
            self._core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={node}"
        )
        return [
            f"{p['metadata'].get('namespace')}/{p['metadata'].get('name')}"
            for p in listed.get("items") or []
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]

    async def delete(self, unit_id: str, node: str | None) -> None:
        """Delete the unit's slice once no pod runs on its node, then wait for its
        VirtualNode and Node to go; delete a Node left behind. Idempotent. Refuses (a
        retryable ``ProviderError``) while a pod runs there: Liqo would evict it."""
        name = slice_name(unit_id)
        node_name = node or name
        rs = await self._slice(name)
        if rs is not None and not kube.owned(rs, unit_id):
            raise _fatal(f"resource slice {name} is not unit {unit_id}'s; not deleting it")
        running = await self.running_pods(node_name)
        if running:
            log.warning(
                "unit %s: not deleting resource slice %s: %d pod(s) still run on node %s (%s)",
                unit_id,
                name,
                len(running),
                node_name,
                ", ".join(running[:5]),
                extra={"event": "liqo_delete_refused", "unit": unit_id, "pods": running},
            )
            raise ProviderError(
                f"{len(running)} pod(s) still run on node {node_name}; deleting slice {name} "
                f"would make Liqo evict them"
            )
        if rs is not None and not (rs.get("metadata") or {}).get("deletionTimestamp"):
            ns = await self.namespace()
            await kube.gone(
                self._custom.delete_namespaced_custom_object, *AUTH, ns, "resourceslices", name
            )
            log.info(
                "deleted resource slice %s of unit %s",
                name,
                unit_id,
                extra={"event": "liqo_slice_deleted", "unit": unit_id, "slice": name},
            )
            faults.hit(faults.DELETE_SENT)
        await self._wait_gone(unit_id, name, node_name)

    async def _wait_gone(self, unit_id: str, name: str, node_name: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._delete_timeout
        orphan_since: float | None = None
        while True:
            rs, vn = await self._slice(name), await self._virtual_node(name)
            node = await self._node(node_name)
            if rs is None and vn is None and node is None:
                return
            if rs is None and vn is None and node is not None:
                orphan_since = orphan_since if orphan_since is not None else loop.time()
                if loop.time() - orphan_since >= self._node_grace:
                    await self._delete_left_node(unit_id, node_name, node)
            if loop.time() >= deadline:
                left = [
                    what
                    for what, obj in (("slice", rs), ("VirtualNode", vn), ("Node", node))
                    if obj is not None
                ]
                raise ProviderError(
                    f"unit {unit_id}: {', '.join(left)} {name} still there "
                    f"{self._delete_timeout:g}s after the slice was deleted"
                )
            await self._sleep(self._poll)

    async def _delete_left_node(self, unit_id: str, name: str, node: Mapping[str, Any]) -> None:
        if (await self.running_pods(name)) or (node.get("metadata") or {}).get("deletionTimestamp"):
            return
        log.warning(
            "unit %s: node %s outlived its slice and VirtualNode; deleting it",
            unit_id,
            name,
            extra={"event": "liqo_node_left_behind", "unit": unit_id, "node": name},
        )
        await kube.gone(self._core.delete_node, name)

    async def list_units(self) -> list[ProvisionedUnit]:
        """Every slice burstd made for this target, with its Node when there is one (a slice
        whose node never appeared is a unit still provisioning)."""
        ns = await self.namespace()
        selector = f"{MANAGED_BY_LABEL}={MANAGED_BY},{TARGET_LABEL}={self.target}"
        try:
            listed = await kube.call(
                self._custom.list_namespaced_custom_object,
                *AUTH,
                ns,
                "resourceslices",
                label_selector=selector,
            )
        except kube.ApiError as e:
            if e.status == 404:
                return []  # Liqo's CRDs are not installed: nothing was ever made
            raise
        out = []
        for rs in listed.get("items") or []:
            name = str((rs.get("metadata") or {}).get("name"))
            out.append(self._found(rs, await self._node(name)))
        return out


def _fatal(message: str) -> ProviderError:
    err = ProviderError(message)
    err.retryable = False
    return err


def _wants_gpus(pod: Mapping[str, Any]) -> bool:
    for c in (pod.get("spec") or {}).get("containers") or []:
        r = c.get("resources") or {}
        asked = {**(r.get("requests") or {}), **(r.get("limits") or {})}
        if any(k == GPU_RESOURCE or k.startswith(MIG_RESOURCE_PREFIX) for k in asked):
            return True
    return False


def from_context(ctx: ProviderContext) -> LiqoProvider:
    """The kind's factory (see ``providers/registry.py``)."""
    return LiqoProvider(ctx.api, ctx.shape, ctx.params)

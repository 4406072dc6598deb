"""An emulator of Liqo's controllers, for rehearsing burstd's Liqo provider on two real
control planes (``scripts/kube-testenv up --donor`` starts it).

Liqo's own controllers and virtual kubelet cannot be built here, so this process plays them,
as the consumer sees them, between two real API servers — the *consumer* (where burstd runs)
and the *donor* (a second control plane with its own kwok GPU nodes)::

    python -m burstd.testing.liqo --consumer .testenv/kubeconfig \\
        --donor .testenv/donor/kubeconfig --cert .testenv/pki/serving.crt \\
        --key .testenv/pki/serving.key --ca .testenv/pki/ca.crt --port 0 --info FILE

What it does, like Liqo v1.x:

* installs the project's Liqo CRDs (``deploy/liqo-crds/``) in both clusters and seeds a
  healthy peering: in the consumer the donor's ``ForeignCluster`` (role Provider,
  authentication and offloading modules enabled and Ready), its tenant namespace
  ``liqo-tenant-<donor id>`` and a ``NamespaceOffloading`` ``offloading`` in each offloaded
  namespace (``default``); in the donor the consumer's ``ForeignCluster`` and ``Tenant``;
  and the donor's kwok GPU nodes (``--donor-gpus``, 4 a node);
* answers each ``ResourceSlice`` from the donor's **real** free GPUs — its Ready nodes'
  allocatable GPUs, minus what the donor's own bound pods request, minus what slices accepted
  before were granted: both conditions ``Accepted`` and ``status.resources`` set to the ask,
  or ``Resources: Denied`` when the GPUs are not there;
* for an accepted slice with annotation ``liqo.io/create-virtual-node: "true"`` creates the
  ``VirtualNode`` (same name, same namespace) and the virtual ``Node`` (Liqo's labels, the
  taint ``virtual-node.liqo.io/not-allowed=true:NoExecute``, capacity = the grant), first
  ``Ready=False`` then Ready; being its kubelet, it renews the Node's Lease and heartbeat
  (kwok does not manage these nodes: they carry no kwok annotation);
* reflects each pod bound to a virtual node into the donor as a real pod (namespace
  ``<namespace>-<consumer id>``, Liqo's default name mapping), scheduled by the donor's own
  scheduler onto its kwok nodes so donor capacity is really used, and mirrors its status back;
  a deleted consumer pod deletes its reflection, then is removed (as a kubelet confirms);
* on slice deletion evicts every pod still on its node (an Event ``LiqoEvicted`` records
  each), deletes the reflections, the ``VirtualNode`` and the ``Node``, then lets the slice go;
* runs a mutating admission webhook (HTTPS on 127.0.0.1, the test CA's serving certificate)
  registered in the consumer that gives pods of offloaded namespaces the toleration of the
  virtual node's taint, as Liqo's webhook does.

Faults, switched per test through the ConfigMap ``liqo/liqo-emulator`` in the consumer
(``set_faults``): ``deny`` (deny every new slice), ``accept_delay`` (seconds before answering),
``no_gpus`` (accept, grant, but the Node has no GPUs), ``kubelet_dead`` (virtual kubelets stop:
their Nodes turn NotReady, no heartbeat), ``leave_node`` (the Node stays after its slice and
VirtualNode are gone, as when Liqo's virtual kubelet dies). A donor taking its GPUs back needs
no fault: create pods in the donor.

Where it departs from Liqo:

* one process plays the consumer's and the provider's controllers; slices are not replicated
  to the donor (no CRD replicator), the donor's ``Tenant``/``ForeignCluster`` are seeded, not
  negotiated, and there is no authentication (no CSR, no keys, no ``authParams``);
* no network fabric (no gateway, no IP remapping), no ``NamespaceMap``, no ``ShadowPod``:
  reflections are plain pods made by the emulator; services, config maps and volumes are not
  reflected; only containers' name, image, command, args and resources are copied;
* a pod owned by a Job in the consumer gets the kwok annotation
  ``pod-complete.stage.kwok.x-k8s.io/delay: 1s`` on its reflection, so it completes like a
  Job's pod on a kwok node (the reflection has no Job owner);
* the Node's resources other than the grant default to 64 CPUs, 256Gi memory, 110 pods when
  the slice asks none; the webhook adds only the toleration (Liqo also adds node affinity for
  the ``Local``/``Remote`` pod offloading strategies) and only on pod creation;
* the slice keeps a finalizer of the emulator's own (``liqo-emulator.burstd.io/slice``); Liqo
  has its own finalizers and, unlike here, never finishes deleting a slice whose pods it could
  not evict;
* ``Denied`` is decided once per slice from the donor's free GPUs at that moment; the
  emulator does not revoke accepted slices when the donor's own workload grows.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from ruamel.yaml import YAML

from burstd.model import GPU_RESOURCE
from burstd.model.quantity import parse_quantity
from burstd.testing.liqo_api import MERGE, Cluster, HttpError

log = logging.getLogger("burstd.testing.liqo")

AUTH = ("authentication.liqo.io", "v1beta1")
OFFLOADING = ("offloading.liqo.io", "v1beta1")
CORE = ("core.liqo.io", "v1beta1")
CRD_DIR = Path(__file__).resolve().parents[3] / "deploy" / "liqo-crds"
TAINT_KEY = "virtual-node.liqo.io/not-allowed"
FINALIZER = "liqo-emulator.burstd.io/slice"
FAULTS = ("liqo", "liqo-emulator")
ORIGIN_LABEL = "liqo.io/origin-cluster-id"
ORIGIN_NODE_LABEL = "liqo.io/origin-node"
KWOK_COMPLETE = "pod-complete.stage.kwok.x-k8s.io/delay"
DEFAULT_NODE = {"cpu": "64", "memory": "256Gi", "pods": "110"}
WEBHOOK_NAME = "liqo-emulator.burstd.io"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _gpus(value: object) -> int:
    q = parse_quantity(value)
    return int(q) if q is not None else 0


def _pod_gpus(pod: Mapping[str, Any]) -> int:
    total = 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        r = c.get("resources") or {}
        asked = (r.get("limits") or {}).get(
            GPU_RESOURCE, (r.get("requests") or {}).get(GPU_RESOURCE)
        )
        total += _gpus(asked or 0)
    return total


def _condition(obj: Mapping[str, Any], kind: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return {}


def _finished(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


@dataclass(frozen=True, slots=True, kw_only=True)
class Faults:
    """The fault modes in force (see the module docstring)."""

    deny: bool = False
    accept_delay: float = 0.0
    no_gpus: bool = False
    kubelet_dead: bool = False
    leave_node: bool = False

    @staticmethod
    def parse(data: Mapping[str, str]) -> Faults:
        def flag(key: str) -> bool:
            return str(data.get(key, "")).lower() in ("1", "true", "yes")

        try:
            delay = float(data.get("accept_delay", "0") or 0)
        except ValueError:
            delay = 0.0
        return Faults(
            deny=flag("deny"),
            accept_delay=delay,
            no_gpus=flag("no_gpus"),
            kubelet_dead=flag("kubelet_dead"),
            leave_node=flag("leave_node"),
        )


@dataclass(slots=True, kw_only=True)
class Settings:
    consumer_id: str = "consumer"
    donor_id: str = "donor"
    offload: tuple[str, ...] = ("default",)
    donor_gpus: int = 16
    gpus_per_node: int = 4
    interval: float = 0.25
    heartbeat: float = 10.0
    port: int = 0
    cert: str = ""
    key: str = ""
    ca: str = ""
    info: str = ""
    evicted: list[str] = field(default_factory=list)

    @property
    def tenant_ns(self) -> str:
        return f"liqo-tenant-{self.donor_id}"


def load_crds() -> list[dict[str, Any]]:
    """The project's Liqo CRDs (``deploy/liqo-crds/*.yaml``)."""
    yaml = YAML(typ="safe")
    return [yaml.load(p.read_text(encoding="utf-8")) for p in sorted(CRD_DIR.glob("*.yaml"))]


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def _write(path: str, text: str) -> None:
    Path(path).write_text(text, encoding="utf-8")


async def set_faults(consumer: Cluster, **faults: object) -> None:
    """Switch the emulator's fault modes (replacing all of them; none given: all off)."""
    data = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in faults.items()}
    ns, name = FAULTS
    body = {"metadata": {"name": name, "namespace": ns}, "data": data}
    try:
        await consumer.call(consumer.core.replace_namespaced_config_map, name, ns, body)
    except HttpError as e:
        if e.status != 404:
            raise
        await consumer.call(consumer.core.create_namespaced_config_map, ns, body)


def free_gpus(
    nodes: list[dict[str, Any]], pods: list[dict[str, Any]], slices: list[dict[str, Any]]
) -> int:
    """The donor's GPUs a new slice may have: its Ready nodes' allocatable GPUs, less what its
    own bound, unfinished pods ask (reflections count against their slice), less what accepted
    slices were granted."""
    total = sum(
        _gpus((n.get("status") or {}).get("allocatable", {}).get(GPU_RESOURCE, 0))
        for n in nodes
        if _condition(n, "Ready").get("status") == "True"
    )
    local = sum(
        _pod_gpus(p)
        for p in pods
        if (p.get("spec") or {}).get("nodeName")
        and not _finished(p)
        and ORIGIN_LABEL not in (p["metadata"].get("labels") or {})
    )
    granted = sum(
        _gpus(((rs.get("status") or {}).get("resources") or {}).get(GPU_RESOURCE, 0))
        for rs in slices
        if _condition(rs, "Resources").get("status") == "Accepted"
    )
    return total - local - granted


class Emulator:
    """The emulator between two clusters; ``run`` until cancelled."""

    def __init__(self, consumer: Cluster, donor: Cluster, settings: Settings) -> None:
        self.consumer = consumer
        self.donor = donor
        self.s = settings
        self.faults = Faults()
        self.offloaded: set[str] = set(settings.offload)
        self.ready = asyncio.Event()
        self._beats: dict[str, float] = {}
        self._answered_at: dict[str, float] = {}
        self._not_offloaded: dict[str, float] = {}

    # Setup ------------------------------------------------------------------------------

    async def install_crds(self, cluster: Cluster) -> None:
        names = []
        for crd in load_crds():
            name = crd["metadata"]["name"]
            names.append(name)
            old = await cluster.get(cluster.crds.read_custom_resource_definition, name)
            if old is None:
                await cluster.ensure(cluster.crds.create_custom_resource_definition, crd)
            else:
                crd["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
                await cluster.call(cluster.crds.replace_custom_resource_definition, name, crd)
        for name in names:
            for _ in range(200):
                got = await cluster.get(cluster.crds.read_custom_resource_definition, name)
                if got and _condition(got, "Established").get("status") == "True":
                    break
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError(f"{cluster.name}: CRD {name} not Established")

    async def _namespace(self, cluster: Cluster, name: str) -> None:
        await cluster.ensure(cluster.core.create_namespace, {"metadata": {"name": name}})

    async def _foreign_cluster(self, cluster: Cluster, cid: str, role: str, tenant: str) -> None:
        body = {
            "apiVersion": "/".join(CORE),
            "kind": "ForeignCluster",
            "metadata": {"name": cid, "labels": {"liqo.io/remote-cluster-id": cid}},
            "spec": {"clusterID": cid},
        }
        await cluster.ensure(
            cluster.custom.create_cluster_custom_object, *CORE, "foreignclusters", body
        )
        ready = [{"type": "APIServerStatus", "status": "Ready", "lastTransitionTime": now_iso()}]

        def module(kind: str) -> dict[str, Any]:
            return {
                "enabled": True,
                "conditions": [{"type": kind, "status": "Ready", "lastTransitionTime": now_iso()}],
            }

        status = {
            "status": {
                "role": role,
                "tenantNamespace": {"local": tenant, "remote": tenant},
                "modules": {
                    "networking": {"enabled": False},
                    "authentication": module("AuthTenantStatus"),
                    "offloading": module("OffloadingVirtualNodeStatus"),
                },
                "conditions": ready,
            }
        }
        await cluster.merge(
            cluster.custom.patch_cluster_custom_object_status, *CORE, "foreignclusters", cid, status
        )

    async def setup(self) -> None:
        c, d, s = self.consumer, self.donor, self.s
        await asyncio.gather(self.install_crds(c), self.install_crds(d))
        for ns in ("liqo", s.tenant_ns, *s.offload):
            await self._namespace(c, ns)
        await self._foreign_cluster(c, s.donor_id, "Provider", s.tenant_ns)
        for ns in s.offload:
            body = {
                "apiVersion": "/".join(OFFLOADING),
                "kind": "NamespaceOffloading",
                "metadata": {"name": "offloading", "namespace": ns},
                "spec": {"podOffloadingStrategy": "LocalAndRemote"},
            }
            await c.ensure(
                c.custom.create_namespaced_custom_object,
                *OFFLOADING,
                ns,
                "namespaceoffloadings",
                body,
            )
        ns, name = FAULTS
        await c.ensure(
            c.core.create_namespaced_config_map, ns, {"metadata": {"name": name}, "data": {}}
        )
        donor_tenant = f"liqo-tenant-{s.consumer_id}"
        await self._namespace(d, donor_tenant)
        await self._foreign_cluster(d, s.consumer_id, "Consumer", donor_tenant)
        tenant = {
            "apiVersion": "/".join(AUTH),
            "kind": "Tenant",
            "metadata": {"name": s.consumer_id},
            "spec": {"clusterID": s.consumer_id, "tenantCondition": "Active"},
        }
        await d.ensure(d.custom.create_cluster_custom_object, *AUTH, "tenants", tenant)
        await d.merge(
            d.custom.patch_cluster_custom_object_status,
            *AUTH,
            "tenants",
            s.consumer_id,
            {"status": {"tenantNamespace": donor_tenant}},
        )
        await self._donor_nodes()

    async def _donor_nodes(self) -> None:
        left, i = self.s.donor_gpus, 0
        while left > 0:
            gpus = min(self.s.gpus_per_node, left)
            capacity = {"cpu": "64", "memory": "512Gi", "pods": "110", GPU_RESOURCE: str(gpus)}
            body = {
                "metadata": {
                    "name": f"donor-gpu-{i}",
                    "labels": {"type": "kwok", "burstd-testenv/donor": "true"},
                    "annotations": {"kwok.x-k8s.io/node": "fake"},
                },
                "status": {
                    "capacity": capacity,
                    "allocatable": capacity,
                    "conditions": [
                        {"type": "Ready", "status": "False", "reason": "KubeletNotReady"}
                    ],
                },
            }
            await self.donor.ensure(self.donor.core.create_node, body)
            left -= gpus
            i += 1

    async def register_webhook(self, port: int) -> None:
        ca = _read(self.s.ca)
        body = {
            "metadata": {"name": WEBHOOK_NAME},
            "webhooks": [
                {
                    "name": "pod.liqo-emulator.burstd.io",
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "failurePolicy": "Ignore",
                    "timeoutSeconds": 5,
                    "clientConfig": {
                        "url": f"https://127.0.0.1:{port}/mutate",
                        "caBundle": base64.b64encode(ca).decode(),
                    },
                    "namespaceSelector": {
                        "matchExpressions": [
                            {
                                "key": "kubernetes.io/metadata.name",
                                "operator": "NotIn",
                                "values": ["kube-system", "kube-node-lease", "liqo"],
                            }
                        ]
                    },
                    "rules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["pods"],
                            "scope": "Namespaced",
                        }
                    ],
                }
            ],
        }
        c = self.consumer
        await c.gone(c.admission.delete_mutating_webhook_configuration, WEBHOOK_NAME)
        await c.call(c.admission.create_mutating_webhook_configuration, body)

    # The webhook ------------------------------------------------------------------------

    async def mutate(self, request: web.Request) -> web.Response:
        review = await request.json()
        req = review.get("request") or {}
        uid = req.get("uid", "")
        pod = req.get("object") or {}
        answer: dict[str, Any] = {"uid": uid, "allowed": True}
        ns = str(req.get("namespace") or "")
        checked = self._not_offloaded.get(ns, 0.0)
        if ns and ns not in self.offloaded and time.monotonic() - checked > 1.0:
            # The loop's view may be a tick old: a namespace offloaded just now counts.
            self._not_offloaded[ns] = time.monotonic()
            c = self.consumer
            found = await c.get(
                c.custom.get_namespaced_custom_object,
                *OFFLOADING,
                ns,
                "namespaceoffloadings",
                "offloading",
            )
            if found is not None:
                self.offloaded.add(ns)
        if ns in self.offloaded:
            tolerations = (pod.get("spec") or {}).get("tolerations")
            toleration = {"key": TAINT_KEY, "operator": "Exists", "effect": "NoExecute"}
            if not any(t.get("key") == TAINT_KEY for t in tolerations or []):
                op = (
                    {"op": "add", "path": "/spec/tolerations/-", "value": toleration}
                    if tolerations
                    else {"op": "add", "path": "/spec/tolerations", "value": [toleration]}
                )
                answer["patchType"] = "JSONPatch"
                answer["patch"] = base64.b64encode(json.dumps([op]).encode()).decode()
        out = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": answer}
        return web.json_response(out)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(
            text="ok" if self.ready.is_set() else "starting",
            status=200 if self.ready.is_set() else 503,
        )

    # The loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        app = web.Application()
        app.router.add_post("/mutate", self.mutate)
        app.router.add_get("/healthz", self.healthz)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(self.s.cert, self.s.key)
        site = web.TCPSite(runner, "127.0.0.1", self.s.port, ssl_context=tls)
        await site.start()
        port = runner.addresses[0][1]
        try:
            await self.setup()
            await self.register_webhook(port)
            if self.s.info:
                _write(self.s.info, json.dumps({"port": port, "donor_id": self.s.donor_id}))
            self.ready.set()
            log.info("liqo emulator ready (webhook on 127.0.0.1:%d)", port)
            while True:
                started = time.monotonic()
                try:
                    await self.reconcile()
                except (HttpError, OSError, TimeoutError) as e:
                    log.warning("reconcile: %s", e)
                except Exception:
                    log.exception("reconcile failed")
                await asyncio.sleep(max(0.0, self.s.interval - (time.monotonic() - started)))
        finally:
            await runner.cleanup()

    async def reconcile(self) -> None:
        c, d = self.consumer, self.donor
        cm = await c.get(c.core.read_namespaced_config_map, FAULTS[1], FAULTS[0])
        self.faults = Faults.parse((cm or {}).get("data") or {})
        offloads = await c.items(
            c.custom.list_cluster_custom_object, *OFFLOADING, "namespaceoffloadings"
        )
        self.offloaded = {o["metadata"]["namespace"] for o in offloads}
        slices = await c.items(c.custom.list_cluster_custom_object, *AUTH, "resourceslices")
        donor_nodes = await d.items(d.core.list_node)
        donor_pods = await d.items(d.core.list_pod_for_all_namespaces)
        nodes = {
            n["metadata"]["name"]: n
            for n in await c.items(c.core.list_node, label_selector="liqo.io/type=virtual-node")
        }
        free = free_gpus(donor_nodes, donor_pods, slices)
        for rs in sorted(slices, key=lambda x: x["metadata"].get("creationTimestamp", "")):
            try:
                free -= await self._slice(rs, nodes.get(rs["metadata"]["name"]), free)
            except HttpError as e:
                log.warning("slice %s: %s", rs["metadata"]["name"], e)
        await self._pods(set(nodes), donor_pods)

    async def _slice(self, rs: dict[str, Any], node: dict[str, Any] | None, free: int) -> int:
        """Move one slice on; answer the GPUs it newly takes from ``free``."""
        c = self.consumer
        meta = rs["metadata"]
        name, ns = meta["name"], meta["namespace"]
        if meta.get("deletionTimestamp"):
            await self._teardown(rs, node)
            return 0
        if FINALIZER not in (meta.get("finalizers") or []):
            patch = {"metadata": {"finalizers": [*(meta.get("finalizers") or []), FINALIZER]}}
            await c.merge(
                c.custom.patch_namespaced_custom_object, *AUTH, ns, "resourceslices", name, patch
            )
        resources = (rs.get("spec") or {}).get("resources") or {}
        res = _condition(rs, "Resources").get("status")
        taken = 0
        if res is None:
            first = self._answered_at.setdefault(meta["uid"], time.monotonic())
            if time.monotonic() - first < self.faults.accept_delay:
                return 0
            ask = _gpus(resources.get(GPU_RESOURCE, 0))
            if self.faults.deny or ask > free:
                why = (
                    "denied by fault mode"
                    if self.faults.deny
                    else (f"donor {self.s.donor_id} has {max(free, 0)} free GPU(s), {ask} asked")
                )
                await self._answer(rs, "Denied", why, {})
                return 0
            await self._answer(rs, "Accepted", "resources available", resources)
            taken, res = ask, "Accepted"
        if res != "Accepted":
            return taken
        ann = meta.get("annotations") or {}
        if ann.get("liqo.io/create-virtual-node") == "true":
            await self._virtual_node(rs, node)
        return taken

    async def _answer(
        self, rs: dict[str, Any], verdict: str, why: str, granted: Mapping[str, Any]
    ) -> None:
        c, meta = self.consumer, rs["metadata"]
        t = now_iso()
        status: dict[str, Any] = {
            "conditions": [
                {
                    "type": "Authentication",
                    "status": "Accepted",
                    "lastTransitionTime": t,
                    "reason": "Authenticated",
                    "message": "tenant authenticated",
                },
                {
                    "type": "Resources",
                    "status": verdict,
                    "lastTransitionTime": t,
                    "reason": "Resources" + verdict,
                    "message": why,
                },
            ],
            "class": (rs.get("spec") or {}).get("class") or "default",
        }
        if granted:
            status["resources"] = dict(granted)
        rs["status"] = status  # the rest of this pass sees the answer
        await c.merge(
            c.custom.patch_namespaced_custom_object_status,
            *AUTH,
            meta["namespace"],
            "resourceslices",
            meta["name"],
            {"status": status},
        )
        log.info("slice %s/%s: Resources %s (%s)", meta["namespace"], meta["name"], verdict, why)

    async def _virtual_node(self, rs: dict[str, Any], node: dict[str, Any] | None) -> None:
        c, meta = self.consumer, rs["metadata"]
        name, ns = meta["name"], meta["namespace"]
        labels = {
            "liqo.io/type": "virtual-node",
            "liqo.io/remote-cluster-id": self.s.donor_id,
            "type": "virtual-kubelet",
            "kubernetes.io/role": "agent",
            "kubernetes.io/hostname": name,
            **((rs.get("status") or {}).get("nodeLabels") or {}),
        }
        taint = {"key": TAINT_KEY, "value": "true", "effect": "NoExecute"}
        granted = dict((rs.get("status") or {}).get("resources") or {})
        vn = {
            "apiVersion": "/".join(OFFLOADING),
            "kind": "VirtualNode",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": {
                    "liqo.io/remote-cluster-id": self.s.donor_id,
                    "liqo.io/resourceslice-name": name,
                },
            },
            "spec": {
                "clusterID": self.s.donor_id,
                "createNode": True,
                "labels": labels,
                "taints": [taint],
                "resourceQuota": {"hard": granted},
            },
        }
        if node is None:
            await c.ensure(
                c.custom.create_namespaced_custom_object, *OFFLOADING, ns, "virtualnodes", vn
            )
            t = now_iso()
            running = [
                {"type": kind, "status": "Running", "lastTransitionTime": t}
                for kind in ("VirtualKubelet", "Node")
            ]
            vn_status = {"status": {"effectiveCreateNode": True, "conditions": running}}
            await c.merge(
                c.custom.patch_namespaced_custom_object_status,
                *OFFLOADING,
                ns,
                "virtualnodes",
                name,
                vn_status,
            )
            capacity = {**DEFAULT_NODE, **{k: str(v) for k, v in granted.items()}}
            annotations = {}
            if self.faults.no_gpus:
                capacity[GPU_RESOURCE] = "0"
                annotations["liqo-emulator.burstd.io/no-gpus"] = "true"
            body = {
                "metadata": {"name": name, "labels": labels, "annotations": annotations},
                "spec": {"taints": [taint]},
                "status": {
                    "capacity": capacity,
                    "allocatable": capacity,
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "False",
                            "reason": "KubeletNotReady",
                            "lastHeartbeatTime": now_iso(),
                            "lastTransitionTime": now_iso(),
                        }
                    ],
                },
            }
            await c.ensure(c.core.create_node, body)
            log.info("virtual node %s created", name)
            return
        await self._heartbeat(name, node)

    async def _heartbeat(self, name: str, node: dict[str, Any]) -> None:
        """The virtual kubelet's part: Ready (or NotReady when it is 'dead'), Lease, heartbeat."""
        c = self.consumer
        ready = _condition(node, "Ready")
        dead = self.faults.kubelet_dead
        want = "False" if dead else "True"
        last = self._beats.get(name, 0.0)
        if ready.get("status") == want and (dead or time.monotonic() - last < self.s.heartbeat):
            return
        self._beats[name] = time.monotonic()
        t = now_iso()
        cond = {
            "type": "Ready",
            "status": want,
            "reason": "VirtualKubeletDown" if dead else "KubeletReady",
            "message": "virtual kubelet not running" if dead else "virtual kubelet is ready",
            "lastHeartbeatTime": t,
            "lastTransitionTime": ready.get("lastTransitionTime", t)
            if ready.get("status") == want
            else t,
        }
        await c.merge(c.core.patch_node_status, name, {"status": {"conditions": [cond]}})
        if dead:
            return
        lease = {
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": micro_iso()},
        }
        try:
            await c.call(
                c.leases.patch_namespaced_lease, name, "kube-node-lease", lease, _content_type=MERGE
            )
        except HttpError as e:
            if e.status != 404:
                raise
            await c.ensure(c.leases.create_namespaced_lease, "kube-node-lease", lease)

    async def _teardown(self, rs: dict[str, Any], node: dict[str, Any] | None) -> None:
        """A slice being deleted: evict its pods, remove VirtualNode and Node, let it go."""
        c, meta = self.consumer, rs["metadata"]
        name, ns = meta["name"], meta["namespace"]
        pods = await c.items(
            c.core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={name}"
        )
        for pod in pods:
            if _finished(pod):
                continue
            key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
            log.warning("slice %s deleted: evicting pod %s", name, key)
            self.s.evicted.append(key)
            await self._event(pod, name)
            await self._delete_reflection(pod)
            await c.gone(
                c.core.delete_namespaced_pod,
                pod["metadata"]["name"],
                pod["metadata"]["namespace"],
                grace_period_seconds=0,
            )
        await c.gone(
            c.custom.delete_namespaced_custom_object, *OFFLOADING, ns, "virtualnodes", name
        )
        if node is not None and not self.faults.leave_node:
            await c.gone(c.core.delete_node, name)
            await c.gone(c.leases.delete_namespaced_lease, name, "kube-node-lease")
        finalizers = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
        if len(finalizers) != len(meta.get("finalizers") or []):
            await c.merge(
                c.custom.patch_namespaced_custom_object,
                *AUTH,
                ns,
                "resourceslices",
                name,
                {"metadata": {"finalizers": finalizers or None}},
            )
            log.info("slice %s/%s released", ns, name)
        self._beats.pop(name, None)

    async def _event(self, pod: dict[str, Any], node: str) -> None:
        meta = pod["metadata"]
        body = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "apiVersion": "v1",
            },
            "reason": "LiqoEvicted",
            "message": f"evicted: resource slice of node {node} deleted",
            "type": "Warning",
            "source": {"component": "liqo-emulator"},
            "firstTimestamp": now_iso(),
            "lastTimestamp": now_iso(),
            "count": 1,
        }
        await self.consumer.ensure(
            self.consumer.core.create_namespaced_event, meta["namespace"], body
        )

    # Pods -------------------------------------------------------------------------------

    def _remote_ns(self, ns: str) -> str:
        return f"{ns}-{self.s.consumer_id}"[:63]

    async def _delete_reflection(self, pod: Mapping[str, Any]) -> None:
        d, meta = self.donor, pod["metadata"]
        await d.gone(
            d.core.delete_namespaced_pod,
            meta["name"],
            self._remote_ns(meta["namespace"]),
            grace_period_seconds=0,
        )

    async def _pods(self, virtual: set[str], donor_pods: list[dict[str, Any]]) -> None:
        c = self.consumer
        reflections = {
            (p["metadata"]["namespace"], p["metadata"]["name"]): p
            for p in donor_pods
            if (p["metadata"].get("labels") or {}).get(ORIGIN_LABEL) == self.s.consumer_id
        }
        seen = set()
        for name in virtual:
            pods = await c.items(
                c.core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={name}"
            )
            for pod in pods:
                meta = pod["metadata"]
                key = (self._remote_ns(meta["namespace"]), meta["name"])
                seen.add(key)
                if meta.get("deletionTimestamp"):
                    await self._delete_reflection(pod)
                    await c.gone(
                        c.core.delete_namespaced_pod,
                        meta["name"],
                        meta["namespace"],
                        grace_period_seconds=0,
                    )
                    continue
                remote = reflections.get(key)
                if remote is None:
                    if not _finished(pod):
                        await self._reflect(pod, name)
                    continue
                await self._mirror(pod, remote)
        for key, remote in reflections.items():
            if key not in seen and not remote["metadata"].get("deletionTimestamp"):
                d = self.donor
                await d.gone(d.core.delete_namespaced_pod, key[1], key[0], grace_period_seconds=0)

    async def _reflect(self, pod: dict[str, Any], node: str) -> None:
        d, meta, spec = self.donor, pod["metadata"], pod.get("spec") or {}
        ns = self._remote_ns(meta["namespace"])
        await d.ensure(d.core.create_namespace, {"metadata": {"name": ns}})
        annotations = dict(meta.get("annotations") or {})
        owned_by_job = any(o.get("kind") == "Job" for o in meta.get("ownerReferences") or [])
        if owned_by_job and KWOK_COMPLETE not in annotations:
            annotations[KWOK_COMPLETE] = "1s"
        keep = ("name", "image", "command", "args", "resources")
        body = {
            "metadata": {
                "name": meta["name"],
                "namespace": ns,
                "labels": {
                    **(meta.get("labels") or {}),
                    ORIGIN_LABEL: self.s.consumer_id,
                    ORIGIN_NODE_LABEL: node,
                },
                "annotations": annotations,
            },
            "spec": {
                "containers": [
                    {k: v for k, v in ctr.items() if k in keep}
                    for ctr in spec.get("containers") or []
                ],
                "restartPolicy": spec.get("restartPolicy", "Always"),
            },
        }
        await d.ensure(d.core.create_namespaced_pod, ns, body)
        log.info(
            "pod %s/%s reflected into the donor as %s/%s",
            meta["namespace"],
            meta["name"],
            ns,
            meta["name"],
        )

    async def _mirror(self, pod: dict[str, Any], remote: dict[str, Any]) -> None:
        """The consumer pod's status follows its reflection's; it stays scheduled (bound to
        the virtual node) while the reflection waits for the donor's scheduler."""
        rstatus = remote.get("status") or {}
        phase = rstatus.get("phase", "Pending")
        conditions = [
            cnd for cnd in rstatus.get("conditions") or [] if cnd.get("type") != "PodScheduled"
        ]
        conditions.append(
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now_iso()}
        )
        want: dict[str, Any] = {"phase": phase, "conditions": conditions}
        for k in ("containerStatuses", "startTime", "podIP", "podIPs", "hostIP"):
            if k in rstatus:
                want[k] = rstatus[k]
        have = pod.get("status") or {}
        if have.get("phase") == phase and have.get("containerStatuses") == want.get(
            "containerStatuses"
        ):
            return
        c, meta = self.consumer, pod["metadata"]
        await c.merge(
            c.core.patch_namespaced_pod_status, meta["name"], meta["namespace"], {"status": want}
        )


async def main_async(args: argparse.Namespace) -> None:
    settings = Settings(
        consumer_id=args.consumer_id,
        donor_id=args.donor_id,
        offload=tuple(args.offload),
        donor_gpus=args.donor_gpus,
        gpus_per_node=args.gpus_per_node,
        port=args.port,
        cert=args.cert,
        key=args.key,
        ca=args.ca,
        info=args.info,
    )
    async with (
        Cluster(args.consumer, "consumer") as consumer,
        Cluster(args.donor, "donor") as donor,
    ):
        await Emulator(consumer, donor, settings).run()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m burstd.testing.liqo", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--consumer", required=True, help="kubeconfig of the consumer (burstd's) cluster"
    )
    p.add_argument("--donor", required=True, help="kubeconfig of the donor cluster")
    p.add_argument("--cert", required=True, help="webhook serving certificate (SAN 127.0.0.1)")
    p.add_argument("--key", required=True, help="its key")
    p.add_argument("--ca", required=True, help="the CA that signed it (the webhook's caBundle)")
    p.add_argument("--port", type=int, default=0, help="webhook port (0: a free one)")
    p.add_argument("--info", default="", help="write {port, donor_id} here once ready")
    p.add_argument("--consumer-id", default="consumer")
    p.add_argument("--donor-id", default="donor")
    p.add_argument(
        "--offload", action="append", default=None, help="namespace to offload (default: default)"
    )
    p.add_argument("--donor-gpus", type=int, default=16)
    p.add_argument("--gpus-per-node", type=int, default=4)
    args = p.parse_args(argv)
    args.offload = args.offload or ["default"]
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()

"""An emulator of an HPC site's InterLink virtual kubelet, on the local control plane.

burstd's InterLink provider only enables and disables virtual nodes; what it must cope with is
how the site's virtual kubelet behaves. This emulator plays that part against a real API
server (real scheduler, real controller-manager), so the provider and the whole daemon are
rehearsed without an HPC centre::

    python -m burstd.testing.interlink --kubeconfig .testenv/kubeconfig --site site.yaml

(``scripts/kube-testenv up --interlink`` starts it with ``.testenv/interlink/site.yaml``.)
The site file (YAML)::

    queue_delay: 10s      # Slurm's queue: a bound pod turns Running this long after binding
    ping_after: 2s        # first successful ping to the InterLink API after the start
    heartbeat: 10s        # Node status refresh (the node controller's grace is 40 s)
    nodes:
      - node: hpc-site-1  # a node the site runs: registered at start, cordoned
        gpus: 8
        gpu_model: NVIDIA-A100-SXM4-64GB
      - node: hpc-vk-1    # a virtual kubelet run by a Deployment (made with 0 replicas)
        deployment: interlink/hpc-vk-1
        gpus: 4

What it does, as InterLink's virtual kubelet (``interlink-hq/interLink``,
``pkg/virtualkubelet``) does it:

* While a node's virtual kubelet runs (always for a site's node; while its Deployment's
  ``spec.replicas`` ≥ 1 otherwise) it registers the Node with InterLink's labels
  (``virtual-node.interlink/type: virtual-kubelet``, ``kubernetes.io/os: virtual-kubelet``,
  ``kubernetes.io/role: agent``, ``nvidia-gpu-type``…), the taint
  ``virtual-node.interlink/no-schedule=true:NoSchedule``, ``providerID external:///<node>``,
  and the site's capacity (``cpu``, ``memory``, ``pods``, ``nvidia.com/gpu``) as allocatable.
  It starts ``Ready=False`` (reason ``KubeletPending``, ``NetworkUnavailable=True``); after the
  first successful ping it reports ``Ready=True`` and ``InterlinkConnectivity=True`` (reason
  ``InterlinkPingSuccessful``) and annotates ``interlink.virtual-kubelet.io/ping-response``.
* Pods the scheduler binds to the node are Slurm jobs: they stay ``Pending`` on the node for
  the queue delay (the site's ``queue_delay``, or the pod's annotation
  ``interlink.burstd.io/queue-delay``), then turn ``Running``. A running pod completes
  (``Succeeded``) per the same annotation as the kwok stages:
  ``pod-complete.stage.kwok.x-k8s.io/delay: "<duration>"`` after it started (``never``: runs
  until deleted); a Job's pod without it completes after 1 s; others run until deleted. A
  deleted pod is removed at once while the virtual kubelet runs.
* When the Deployment scales to 0 the virtual kubelet stops: nothing more is written. The Node
  is never deleted (InterLink's virtual kubelet does not delete its Node either): it goes stale,
  the node controller marks it ``Unknown`` once heartbeats stop, and pods left on it stay.

Fault modes (the site file's ``fault`` of a node, or the annotation
``interlink.burstd.io/emulate-fault`` on the Deployment, or on the Node of a site's node,
read at every step so a test can flip it):

* ``connectivity`` — the ping to the InterLink API fails: ``InterlinkConnectivity=False``
  (``InterlinkPingFailed``) and ``Ready=False``, as InterLink reports it; queued pods stay
  queued;
* ``notready`` — the Node stays ``Ready=False`` (``KubeletPending``) while the ping succeeds;
* a stale Node after a scale-down is not a fault to switch on: it is what always happens;
* a queue delay past the deadline is just a long ``queue_delay``.

Where it departs from InterLink:

* no InterLink API, no Slurm and no containers: pods only change phase; no pod IPs, logs,
  exec, volumes or wstunnel networking; a failed job (``pod-fail`` annotation) is not emulated;
* the first ping comes after ``ping_after`` (default 2 s) instead of InterLink's 30 s timer,
  and the Node status is refreshed every ``heartbeat`` (no node Lease is kept);
* ``notready`` (Ready False while the ping succeeds) is a state InterLink itself does not
  report, where Ready follows the ping: it stands for a kubelet that never finishes starting;
* the virtual kubelet's Deployment is only read, never run: its pod template gets a
  nodeSelector no node has (``burstd.io/emulated-virtual-kubelet: nowhere``), so the
  controller-manager's pod stays Pending (asking for no GPU, it is no demand to burstd), and
  the emulator follows ``spec.replicas`` directly;
* a site's node is registered cordoned at start (its "disabled" state, which burstd lifts).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from burstd.model import GPU_RESOURCE
from burstd.model.durations import parse_duration
from burstd.providers.interlink import (
    CONNECTIVITY_CONDITION,
    DEFAULT_CAPACITY,
    GPU_TYPE_LABEL,
    NODE_LABELS,
    TAINT,
)

log = logging.getLogger("burstd.testing.interlink")

FAULT_ANNOTATION = "interlink.burstd.io/emulate-fault"
QUEUE_ANNOTATION = "interlink.burstd.io/queue-delay"
COMPLETE_ANNOTATION = "pod-complete.stage.kwok.x-k8s.io/delay"
PING_ANNOTATION = "interlink.virtual-kubelet.io/ping-response"
NOWHERE = {"burstd.io/emulated-virtual-kubelet": "nowhere"}
FAULTS = ("", "connectivity", "notready")


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteNode:
    """One virtual node of the site."""

    node: str
    deployment: tuple[str, str] | None = None
    gpus: int = 8
    gpu_model: str = ""
    cpu: str = DEFAULT_CAPACITY["cpu"]
    memory: str = DEFAULT_CAPACITY["memory"]
    pods: str = DEFAULT_CAPACITY["pods"]
    fault: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Site:
    nodes: tuple[SiteNode, ...]
    queue_delay: float = 10.0
    ping_after: float = 2.0
    heartbeat: float = 10.0
    tick: float = 0.5


def site_from(data: Mapping[str, Any]) -> Site:
    """A ``Site`` from the site file's mapping; ``ValueError`` names what is wrong."""

    def seconds(key: str, default: float) -> float:
        value = data.get(key, default)
        return float(value) if isinstance(value, int | float) else parse_duration(str(value))

    nodes = []
    for i, item in enumerate(data.get("nodes") or ()):
        if not isinstance(item, Mapping) or not item.get("node"):
            raise ValueError(f"nodes[{i}]: needs a 'node' name")
        deployment = None
        if item.get("deployment"):
            namespace, _, name = str(item["deployment"]).partition("/")
            if not namespace or not name:
                raise ValueError(f"nodes[{i}].deployment: write namespace/name")
            deployment = (namespace, name)
        fault = str(item.get("fault") or "")
        if fault not in FAULTS:
            raise ValueError(f"nodes[{i}].fault: one of {', '.join(f for f in FAULTS if f)}")
        nodes.append(
            SiteNode(
                node=str(item["node"]),
                deployment=deployment,
                gpus=int(item.get("gpus", 8)),
                gpu_model=str(item.get("gpu_model") or ""),
                cpu=str(item.get("cpu", DEFAULT_CAPACITY["cpu"])),
                memory=str(item.get("memory", DEFAULT_CAPACITY["memory"])),
                pods=str(item.get("pods", DEFAULT_CAPACITY["pods"])),
                fault=fault,
            )
        )
    return Site(
        nodes=tuple(nodes),
        queue_delay=seconds("queue_delay", 10.0),
        ping_after=seconds("ping_after", 2.0),
        heartbeat=seconds("heartbeat", 10.0),
        tick=seconds("tick", 0.5),
    )


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _delay(text: object) -> float | None:
    """A duration annotation in seconds; ``None`` for ``never`` or nonsense."""
    try:
        return parse_duration(str(text))
    except ValueError:
        return None


@dataclass(slots=True)
class _Kubelet:
    """What one virtual kubelet remembers while it runs."""

    up_since: float
    last_status: float = -1e18
    last_conditions: dict[str, str] = field(default_factory=dict)
    since: dict[str, str] = field(default_factory=dict)  # condition -> lastTransitionTime
    bound_at: dict[str, float] = field(default_factory=dict)  # pod uid -> first seen bound
    started_at: dict[str, float] = field(default_factory=dict)  # pod uid -> Running since


class Emulator:
    """Runs every virtual kubelet of ``site`` against the API server of ``api`` (a
    ``kubernetes_asyncio`` ``ApiClient`` owned by the caller) until cancelled."""

    def __init__(
        self,
        api: Any,
        site: Site,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        core_api: Any = client.CoreV1Api
        apps_api: Any = client.AppsV1Api
        self._core = core_api(api)
        self._apps = apps_api(api)
        self.site = site
        self._clock = clock
        self._sleep = sleep
        self._kubelets: dict[str, _Kubelet] = {}
        self.started: list[str] = []
        """Nodes whose virtual kubelet started, in order (for tests)."""

    def _now(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    async def _call(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> Any:
        resp = await fn(*args, _preload_content=False, _request_timeout=30, **kw)
        try:
            body = await resp.read()
        finally:
            resp.release()
        data = json.loads(body) if body else {}
        if resp.status == 404:
            return None
        if not 200 <= resp.status < 300 and resp.status != 409:
            raise RuntimeError(f"HTTP {resp.status}: {data.get('message', body[:200])}")
        return data

    async def run(self) -> None:
        """Set the site up (Deployments with 0 replicas, the site's own nodes), then step
        every node every ``tick`` until cancelled. An API error skips one step."""
        while True:
            try:
                await self.setup()
                break
            except (aiohttp.ClientError, OSError, RuntimeError) as e:
                # The API server may be down (a test stops it): a site waits for it.
                log.warning("setting the site up: %s: %s", type(e).__name__, e)
                await self._sleep(self.site.tick)
        log.info("site up: %d virtual node(s)", len(self.site.nodes))
        while True:
            await self.step()
            await self._sleep(self.site.tick)

    async def setup(self) -> None:
        """Make the Deployments (0 replicas) and start the site's own nodes."""
        for n in self.site.nodes:
            if n.deployment is not None:
                await self._ensure_deployment(n)
        await self.step()

    async def step(self) -> None:
        for n in self.site.nodes:
            try:
                await self._step(n)
            except Exception as e:  # one bad answer must not stop the site
                log.warning("node %s: %s: %s", n.node, type(e).__name__, e)

    # The Deployment ---------------------------------------------------------------------

    async def _ensure_deployment(self, n: SiteNode) -> None:
        assert n.deployment is not None
        namespace, name = n.deployment
        await self._call(self._core.create_namespace, {"metadata": {"name": namespace}})
        labels = {"app.kubernetes.io/name": "interlink-virtual-kubelet", "vk-node": n.node}
        body = {
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "nodeSelector": NOWHERE,
                        "containers": [{"name": "vk", "image": "interlink-virtual-kubelet"}],
                    },
                },
            },
        }
        await self._call(self._apps.create_namespaced_deployment, namespace, body)

    async def _running(self, n: SiteNode) -> tuple[bool, Mapping[str, str]]:
        """Whether the virtual kubelet runs, and the annotations that may hold a fault."""
        if n.deployment is None:
            node = await self._call(self._core.read_node, n.node)
            return True, ((node or {}).get("metadata") or {}).get("annotations") or {}
        namespace, name = n.deployment
        d = await self._call(self._apps.read_namespaced_deployment, name, namespace)
        if d is None:
            return False, {}
        replicas = int((d.get("spec") or {}).get("replicas") or 0)
        return replicas >= 1, (d.get("metadata") or {}).get("annotations") or {}

    # The Node -----------------------------------------------------------------------------

    async def _step(self, n: SiteNode) -> None:
        running, annotations = await self._running(n)
        kubelet = self._kubelets.get(n.node)
        if not running:
            if kubelet is not None:
                log.info("node %s: virtual kubelet stopped; its Node is left", n.node)
                del self._kubelets[n.node]
            return
        now = self._now()
        if kubelet is None:
            # Registered first: a registration the API server did not take is tried again.
            await self._register(n)
            kubelet = self._kubelets[n.node] = _Kubelet(up_since=now)
            self.started.append(n.node)
            log.info("node %s: virtual kubelet started", n.node)
        fault = str(annotations.get(FAULT_ANNOTATION) or n.fault)
        healthy = await self._report(n, kubelet, fault, now)
        await self._pods(n, kubelet, healthy, now)

    def _node_body(self, n: SiteNode) -> dict[str, Any]:
        labels = dict(NODE_LABELS)
        labels["kubernetes.io/hostname"] = n.node
        if n.gpu_model:
            labels[GPU_TYPE_LABEL] = n.gpu_model
        capacity = {"cpu": n.cpu, "memory": n.memory, "pods": n.pods}
        if n.gpus:
            capacity[GPU_RESOURCE] = str(n.gpus)
        return {
            "metadata": {"name": n.node, "labels": labels},
            "spec": {
                "providerID": f"external:///{n.node}",
                "taints": [{"key": TAINT.key, "value": TAINT.value, "effect": TAINT.effect}],
            },
            "status": {
                "capacity": capacity,
                "allocatable": dict(capacity),
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "nodeInfo": {
                    "architecture": "virtual-kubelet",
                    "operatingSystem": "linux",
                    "kubeletVersion": "v1.0.0-interlink-emulator",
                },
                "conditions": self._conditions(None, None, {}),
            },
        }

    async def _register(self, n: SiteNode) -> None:
        body = self._node_body(n)
        existing = await self._call(self._core.read_node, n.node)
        if existing is None:
            if n.deployment is None:
                body["spec"]["unschedulable"] = True
            await self._call(self._core.create_node, body)
            return
        # A stale Node from an earlier run: the restarted virtual kubelet takes it over.
        taints = [
            t for t in (existing.get("spec") or {}).get("taints") or [] if t.get("key") != TAINT.key
        ]
        taints.insert(0, body["spec"]["taints"][0])
        patch = {"metadata": {"labels": body["metadata"]["labels"]}, "spec": {"taints": taints}}
        await self._call(self._core.patch_node, n.node, patch)
        await self._call(self._core.patch_node_status, n.node, {"status": body["status"]})

    def _conditions(
        self, ready: bool | None, ping: bool | None, since: Mapping[str, str]
    ) -> list[dict[str, str]]:
        """The virtual kubelet's conditions: ``ready`` True/False; ``ping`` None before the
        first ping (no connectivity condition yet)."""
        now = _stamp()
        up = bool(ready)
        rows = [
            ("Ready", up, "KubeletReady" if up else "KubeletPending"),
            ("MemoryPressure", False, "KubeletHasSufficientMemory"),
            ("DiskPressure", False, "KubeletHasNoDiskPressure"),
            ("NetworkUnavailable", not up, "RouteCreated"),
        ]
        out = [
            {
                "type": kind,
                "status": "True" if status else "False",
                "reason": reason,
                "message": f"emulated: {reason}",
                "lastHeartbeatTime": now,
                "lastTransitionTime": since.get(kind, now),
            }
            for kind, status, reason in rows
        ]
        if ping is not None:
            reason = "InterlinkPingSuccessful" if ping else "InterlinkPingFailed"
            out.append(
                {
                    "type": CONNECTIVITY_CONDITION,
                    "status": "True" if ping else "False",
                    "reason": reason,
                    "message": "Ping successful with code 200" if ping else "Ping failed",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": since.get(CONNECTIVITY_CONDITION, now),
                }
            )
        return out

    async def _report(self, n: SiteNode, k: _Kubelet, fault: str, now: float) -> bool:
        """Write the Node's conditions when they change or a heartbeat is due; ``True`` when
        the node runs jobs."""
        pinged = now - k.up_since >= self.site.ping_after
        ping: bool | None = None
        ready = False
        if pinged:
            ping = fault != "connectivity"
            ready = ping and fault != "notready"
        states = {"Ready": str(ready), CONNECTIVITY_CONDITION: str(ping)}
        changed = states != k.last_conditions
        if changed or now - k.last_status >= self.site.heartbeat:
            stamp = _stamp()
            for kind, state in states.items():
                if k.last_conditions.get(kind) != state:
                    k.since[kind] = stamp
            k.since["NetworkUnavailable"] = k.since.get("Ready", stamp)
            body: dict[str, Any] = {
                "status": {"conditions": self._conditions(ready, ping, k.since)}
            }
            if ping is not None:
                body["metadata"] = {"annotations": {PING_ANNOTATION: "ok" if ping else ""}}
            await self._call(self._core.patch_node_status, n.node, body)
            k.last_conditions = states
            k.last_status = now
            if changed:
                log.info("node %s: Ready=%s %s=%s", n.node, ready, CONNECTIVITY_CONDITION, ping)
        return ready

    # The pods (Slurm jobs) -------------------------------------------------------------------

    async def _pods(self, n: SiteNode, k: _Kubelet, healthy: bool, now: float) -> None:
        data = await self._call(
            self._core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={n.node}"
        )
        for pod in (data or {}).get("items") or []:
            meta = pod.get("metadata") or {}
            uid = str(meta.get("uid"))
            name, namespace = str(meta.get("name")), str(meta.get("namespace"))
            phase = (pod.get("status") or {}).get("phase")
            annotations = meta.get("annotations") or {}
            if meta.get("deletionTimestamp"):
                await self._call(
                    self._core.delete_namespaced_pod, name, namespace, grace_period_seconds=0
                )
                continue
            if phase == "Pending":
                bound = k.bound_at.setdefault(uid, now)
                queue = _delay(annotations.get(QUEUE_ANNOTATION, self.site.queue_delay))
                if healthy and queue is not None and now - bound >= queue:
                    await self._set_phase(pod, "Running")
                    k.started_at[uid] = now
                    log.info("pod %s/%s: Slurm job started on %s", namespace, name, n.node)
            elif phase == "Running":
                started = k.started_at.setdefault(uid, now)
                after = self._runs_for(meta)
                if after is not None and now - started >= after:
                    await self._set_phase(pod, "Succeeded")
                    log.info("pod %s/%s: Slurm job completed on %s", namespace, name, n.node)

    @staticmethod
    def _runs_for(meta: Mapping[str, Any]) -> float | None:
        annotations = meta.get("annotations") or {}
        if COMPLETE_ANNOTATION in annotations:
            return _delay(annotations[COMPLETE_ANNOTATION])
        owners = meta.get("ownerReferences") or []
        return 1.0 if any(o.get("kind") == "Job" for o in owners) else None

    async def _set_phase(self, pod: Mapping[str, Any], phase: str) -> None:
        meta = pod.get("metadata") or {}
        containers: Sequence[Mapping[str, Any]] = (pod.get("spec") or {}).get("containers") or []
        now = _stamp()
        running = phase == "Running"
        start = (pod.get("status") or {}).get("startTime") or now
        if running:
            state: dict[str, Any] = {"running": {"startedAt": now}}
        else:
            state = {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": start,
                    "finishedAt": now,
                }
            }
        flag = "True" if running else "False"
        status = {
            "phase": phase,
            "startTime": start,
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
                {"type": "Ready", "status": flag, "lastTransitionTime": now},
            ],
            "containerStatuses": [
                {
                    "name": c.get("name"),
                    "image": c.get("image"),
                    "imageID": "",
                    "ready": running,
                    "started": running,
                    "restartCount": 0,
                    "state": state,
                }
                for c in containers
            ],
        }
        await self._call(
            self._core.patch_namespaced_pod_status,
            meta.get("name"),
            meta.get("namespace"),
            {"status": status},
        )


def load_site(path: Path) -> Site:
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, Mapping):
        raise ValueError("the site file must be a mapping")
    return site_from(data)


async def _main(kubeconfig: str | None, site: Site) -> None:
    from burstd.sources.kube.client import connect

    api = await connect(kubeconfig)
    try:
        await Emulator(api, site).run()
    finally:
        await api.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m burstd.testing.interlink",
        description="Emulate an HPC site's InterLink virtual kubelet on a test cluster.",
    )
    parser.add_argument("--kubeconfig", help="the cluster's kubeconfig (default: $KUBECONFIG)")
    parser.add_argument("--site", required=True, type=Path, help="the site file (YAML)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        site = load_site(args.site)
    except (OSError, ValueError, YAMLError) as e:
        parser.exit(1, f"{args.site}: {e}\n")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.kubeconfig, site))


if __name__ == "__main__":
    main()

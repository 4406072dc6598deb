"""Small helpers to drive the test cluster with raw JSON (what burstd itself reads).

They talk to the API server of ``scripts/kube-testenv`` only (127.0.0.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from kubernetes_asyncio import client

from burstd.actuate.driver import RetryPolicy
from burstd.app import App, Settings
from burstd.sources.kube.client import connect
from burstd.sources.kube.watch import WatchSettings
from burstd.sources.prometheus import PrometheusSettings
from burstd.state.clock import Clock

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
TESTENV = REPO / "scripts" / "kube-testenv"
GPU = "nvidia.com/gpu"
COMPLETE_AFTER = "pod-complete.stage.kwok.x-k8s.io/delay"


class HttpError(RuntimeError):
    """The API server answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Kube:
    """An API client plus the calls the tests need. Use ``async with Kube(path) as k``."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self.api: Any = None
        self.core: Any = None
        self.batch: Any = None
        self.rbac: Any = None

    async def __aenter__(self) -> Kube:
        self.api = await connect(str(self.kubeconfig))
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.rbac = client.RbacAuthorizationV1Api(self.api)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.api.close()

    async def raw(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> Any:
        resp = await fn(*args, _preload_content=False, **kw)
        try:
            body = await resp.read()
        finally:
            resp.release()
        data = json.loads(body) if body else {}
        if not 200 <= resp.status < 300 and resp.status != 409:
            raise HttpError(resp.status, f"HTTP {resp.status}: {data.get('message', body[:300])}")
        return data

    # Objects ----------------------------------------------------------------------------

    async def create_namespace(self, prefix: str = "bt") -> str:
        name = f"{prefix}-{secrets.token_hex(3)}"
        await self.raw(self.core.create_namespace, {"metadata": {"name": name}})
        return name

    async def delete_namespace(self, name: str) -> None:
        await self.raw(self.core.delete_namespace, name)

    async def create_job(
        self,
        namespace: str,
        name: str,
        *,
        pods: int,
        gpus: int,
        complete_after: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        annotations = {COMPLETE_AFTER: complete_after} if complete_after else {}
        body = {
            "metadata": {"name": name},
            "spec": {
                "parallelism": pods,
                "completions": pods,
                "backoffLimit": 0,
                "template": {
                    "metadata": {"annotations": annotations, "labels": labels or {}},
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {"name": "work", "image": "x", "resources": {"limits": {GPU: gpus}}}
                        ],
                    },
                },
            },
        }
        await self.raw(self.batch.create_namespaced_job, namespace, body)

    async def create_pod(
        self,
        namespace: str,
        name: str,
        *,
        gpus: int,
        complete_after: str | None = None,
        resource: str = GPU,
        spec: dict[str, Any] | None = None,
    ) -> None:
        """A bare pod asking ``gpus`` of ``resource``; ``spec`` adds to its spec (affinity,
        nodeSelector, tolerations...)."""
        annotations = {COMPLETE_AFTER: complete_after} if complete_after else {}
        limits = {resource: gpus}
        body = {
            "metadata": {"name": name, "annotations": annotations},
            "spec": {
                "containers": [{"name": "work", "image": "x", "resources": {"limits": limits}}],
                **(spec or {}),
            },
        }
        await self.raw(self.core.create_namespaced_pod, namespace, body)

    async def pod(self, namespace: str, name: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.raw(self.core.read_namespaced_pod, name, namespace)
        return data

    async def cordon_node(self, name: str) -> None:
        """Cordon as an operator does (``kubectl cordon``): only ``spec.unschedulable``."""
        await self.raw(self.core.patch_node, name, {"spec": {"unschedulable": True}})

    async def delete_pod(self, namespace: str, name: str) -> None:
        await self.raw(self.core.delete_namespaced_pod, name, namespace, grace_period_seconds=0)

    async def pods(self, namespace: str) -> list[dict[str, Any]]:
        data = await self.raw(self.core.list_namespaced_pod, namespace)
        items: list[dict[str, Any]] = data.get("items", [])
        return items

    async def job(self, namespace: str, name: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.raw(self.batch.read_namespaced_job, name, namespace)
        return data

    async def nodes(self, selector: str = "") -> list[dict[str, Any]]:
        data = await self.raw(self.core.list_node, label_selector=selector)
        items: list[dict[str, Any]] = data.get("items", [])
        return items

    async def delete_nodes(self, selector: str) -> None:
        for node in await self.nodes(selector):
            await self.raw(self.core.delete_node, node["metadata"]["name"])

    async def grant_controller_manager(self) -> None:
        """Workaround for the test environment: kube-controller-manager runs without
        ``--use-service-account-credentials``, so its controllers act as the user
        ``system:kube-controller-manager``, which RBAC does not allow to create a Job's pods.
        Bind that user to cluster-admin (test cluster only)."""
        body = {
            "metadata": {"name": "burstd-tests-controller-manager"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [
                {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "User",
                    "name": "system:kube-controller-manager",
                }
            ],
        }
        await self.raw(self.rbac.create_cluster_role_binding, body)


def phase(pod: dict[str, Any]) -> str:
    return str(pod.get("status", {}).get("phase", ""))


def node_of(pod: dict[str, Any]) -> str | None:
    node = pod.get("spec", {}).get("nodeName")
    return str(node) if node else None


def name_of(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["name"])


def cordoned(node: dict[str, Any]) -> bool:
    return bool(node.get("spec", {}).get("unschedulable"))


def unschedulable(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "PodScheduled"
        and c.get("status") == "False"
        and c.get("reason") == "Unschedulable"
        for c in pod.get("status", {}).get("conditions") or []
    )


async def eventually(
    check: Callable[[], Awaitable[T | None]],
    *,
    within: float,
    interval: float = 0.2,
    what: str = "condition",
) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    last: T | None = None
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for {what} ({last!r})")
        await asyncio.sleep(interval)


def rules_yaml(
    *,
    target: str,
    namespace: str,
    rule: str = "burst",
    idle_for: str = "3s",
    validation: str = "1s",
    gpus_per_unit: int = 4,
    max_units: int = 6,
    node_delay: str = "0s",
    interval: str = "1s",
    drain: str = "wait",
    max_wait: str = "4h",
    shape: str = "",
    trigger: str = "pending: {gpus: 1}",
    min_gpus: int = 0,
) -> str:
    """A rules file for one test: one kwok target, one rule for one namespace, short timers.
    ``shape`` replaces the unit's GPU lines (e.g. ``"mig: {1g.10gb: 7}"``)."""
    shape = shape or f"gpus_per_unit: {gpus_per_unit}"
    return f"""\
version: 1
loop: {{interval: {interval}, batch_idle: 500ms, batch_max: 3s}}
targets:
  {target}:
    provider: kwok
    params:
      poll_interval: 0.1
      delete_timeout: 20
      node_template:
        labels: {{burstd-test: "{target}"}}
        annotations: {{node-initialize.stage.kwok.x-k8s.io/delay: "{node_delay}"}}
        cpu: "16"
        memory: 64Gi
    gpu_model: NVIDIA-A100-SXM4-80GB
    {shape}
    max_units: {max_units}
    max_in_flight: {max_units}
    time_to_ready: 1s
    ready_deadline: 1m
    backoff: 5s
rules:
  - name: {rule}
    match: {{namespaces: [{namespace}]}}
    triggers:
      - {trigger}
    burst:
      ladder: [{target}]
      max_units_per_step: {max_units}
      min_gpus: {min_gpus}
    release:
      idle_for: {idle_for}
      validation: {validation}
      drain: {{mode: {drain}, max_wait: {max_wait}}}
    cooldown: {{scale_up: 0s, scale_down: 0s}}
"""


async def passes(app: App, n: int, *, within: float = 60) -> None:
    """Wait until burstd has made ``n`` more planning passes."""
    until = app.passes + n

    async def done() -> bool:
        return app.passes >= until

    await eventually(done, within=within, interval=0.1, what=f"{n} more passes")


@contextlib.asynccontextmanager
async def burstd_in_process(
    config: Path,
    kubeconfig: Path,
    *,
    prometheus: PrometheusSettings | None = None,
    clock: Clock | None = None,
    **settings: Any,
) -> AsyncIterator[App]:
    """``burstd run`` inside the test's event loop, with short retry delays; yields the app
    once it has synced, adopted and started planning, and stops it gracefully at the end.
    ``settings`` override fields of ``Settings``."""
    defaults = Settings(
        config=config,
        kubeconfig=str(kubeconfig),
        handle_signals=False,
        reload_check=0,
        grace_period=5,
        watch=WatchSettings(backoff_base=0.2, backoff_max=1.0),
        retry=RetryPolicy(base=0.2, max_delay=2.0),
        adopt_retry=0.5,
        prometheus=prometheus,
        memory="none",
    )
    app = App(replace(defaults, **settings), clock=clock)
    task = asyncio.create_task(app.run(), name="burstd")
    planning = asyncio.create_task(app.wait_planning())
    done, _ = await asyncio.wait({task, planning}, timeout=30, return_when="FIRST_COMPLETED")
    if task in done:
        planning.cancel()
        task.result()
        raise AssertionError("burstd stopped before planning")
    if planning not in done:
        planning.cancel()
        app.stop()
        await asyncio.wait_for(task, 30)
        raise AssertionError("burstd did not start planning within 30s")
    try:
        yield app
    finally:
        app.stop()
        await asyncio.wait_for(task, 30)

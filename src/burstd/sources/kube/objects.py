"""burstd's own objects in the cluster: its memory ConfigMap and its leader-election Lease.

Both are read and written with optimistic concurrency: every update carries the
``resourceVersion`` last read, and a conflict (HTTP 409) means someone else wrote in between.
Requests go through ``burstd.kubeapi`` (raw JSON, like the watch), and every failure becomes
an ``ApiError`` with the HTTP status, never a traceback out of a task.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from kubernetes_asyncio import client

from burstd import kubeapi
from burstd.model import MANAGED_BY, MANAGED_BY_LABEL

MEMORY_KEY = "memory.json"
REQUEST_TIMEOUT = 10.0


class ApiError(Exception):
    """A request failed: ``status`` is the HTTP status, 0 when the server was not reached."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status


async def request(fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> dict[str, Any]:
    """Call a generated API function; its JSON body, or ``ApiError``."""
    data = await kubeapi.request(
        fn,
        *args,
        request_timeout=REQUEST_TIMEOUT,
        refused=ApiError,
        unreachable=partial(ApiError, 0),
        **kw,
    )
    return data if isinstance(data, dict) else {}


class ConfigMapStore:
    """Memory in a ConfigMap (key ``memory.json``), for a daemon with cluster access: a
    Deployment's replicas all see it, so a failover carries the memory over.

    ``write`` creates the ConfigMap the first time and replaces it with the
    ``resourceVersion`` it last read or wrote afterwards; on a conflict it reads the current
    version and writes once more (only the leader writes, so a conflict is a stale version
    after a failover, not a second writer)."""

    def __init__(self, api: Any, namespace: str, name: str) -> None:
        core: Any = client.CoreV1Api
        self._core = core(api)
        self.namespace = namespace
        self.name = name
        self._version: str | None = None

    def __str__(self) -> str:
        return f"configmap {self.namespace}/{self.name}"

    async def read(self) -> str | None:
        try:
            cm = await request(self._core.read_namespaced_config_map, self.name, self.namespace)
        except ApiError as e:
            if e.status == 404:
                self._version = None
                return None
            raise
        self._version = str((cm.get("metadata") or {}).get("resourceVersion") or "") or None
        text = (cm.get("data") or {}).get(MEMORY_KEY)
        return text if isinstance(text, str) else None

    def _body(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY, "burstd.io/role": "memory"},
        }
        if self._version is not None:
            meta["resourceVersion"] = self._version
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}

    async def write(self, text: str) -> None:
        for attempt in range(2):
            body = self._body()
            body["data"] = {MEMORY_KEY: text}
            try:
                if self._version is None:
                    made = await request(
                        self._core.create_namespaced_config_map, self.namespace, body
                    )
                else:
                    made = await request(
                        self._core.replace_namespaced_config_map, self.name, self.namespace, body
                    )
            except ApiError as e:
                if e.status in (404, 409) and attempt == 0:
                    await self.read()
                    continue
                raise
            self._version = str((made.get("metadata") or {}).get("resourceVersion") or "") or None
            return

"""Raw JSON access to one API server for the Liqo emulator: a handful of verbs over the
generated ``kubernetes_asyncio`` clients, answering plain dicts (what the emulator reasons
about) and ``None`` for 404 where a caller asks."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from kubernetes_asyncio import client

from burstd.sources.kube.client import connect

MERGE = "application/merge-patch+json"


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Cluster:
    """One API server. ``async with Cluster(kubeconfig, name) as c``."""

    def __init__(self, kubeconfig: str, name: str) -> None:
        self.kubeconfig = kubeconfig
        self.name = name
        self.api: Any = None

    async def __aenter__(self) -> Cluster:
        self.api = await connect(self.kubeconfig)
        generated: Any = client
        self.core = generated.CoreV1Api(self.api)
        self.custom = generated.CustomObjectsApi(self.api)
        self.crds = generated.ApiextensionsV1Api(self.api)
        self.leases = generated.CoordinationV1Api(self.api)
        self.admission = generated.AdmissionregistrationV1Api(self.api)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.api.close()

    async def call(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> Any:
        resp: aiohttp.ClientResponse = await fn(
            *args, _preload_content=False, _request_timeout=30, **kw
        )
        try:
            raw = await resp.read()
        finally:
            resp.release()
        body = json.loads(raw) if raw else {}
        if resp.status >= 300:
            message = body.get("message", "") if isinstance(body, dict) else ""
            raise HttpError(resp.status, str(message or raw[:200]))
        return body

    async def get(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await self.call(fn, *args)
        except HttpError as e:
            if e.status == 404:
                return None
            raise
        return found

    async def ensure(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Create, leaving an object that already exists as it is."""
        try:
            await self.call(fn, *args)
        except HttpError as e:
            if e.status != 409:
                raise

    async def gone(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> None:
        """Delete, an object already gone being fine."""
        try:
            await self.call(fn, *args, **kw)
        except HttpError as e:
            if e.status != 404:
                raise

    async def items(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> list[Any]:
        listed = await self.call(fn, *args, **kw)
        found: list[Any] = listed.get("items") or []
        return found

    async def merge(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """A JSON merge patch (the last argument is the body); 404 is ignored."""
        try:
            await self.call(fn, *args, _content_type=MERGE)
        except HttpError as e:
            if e.status != 404:
                raise

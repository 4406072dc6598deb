"""List, then watch, one kind of Kubernetes object, and turn what it sees into events.

The loop is the informer's: list (in pages) and remember the list's ``resourceVersion``;
watch from there with bookmarks, so the version stays fresh even when nothing we keep
changes; when a watch ends or its stream breaks, resume from the last version seen. On
``410 Gone`` (the version is too old for the server), and when the server could not be reached
or refused a request (it may have been down for long, or restored with less history), list
again: the ``Synced`` event that ends the list carries the keys that exist, so objects deleted
meanwhile are dropped. Failures are retried with exponential backoff and jitter; from the
first failure until the kind is listed or watched again, it is ``Desynced``.

Objects are read as raw JSON and converted to the model at once: the generated client models
cost several times the time and memory (see bench/results/kube.md), and burstd keeps a
handful of fields per object.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import aiohttp

from burstd.model.events import Desynced, Event, Synced

log = logging.getLogger(__name__)

M = TypeVar("M")


class WatchError(Exception):
    """The API server answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Gone(WatchError):
    """``410 Gone``: the resource version is too old; list again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchSettings:
    """How a watch talks to the API server."""

    page_size: int = 500
    """Objects per list page: bounds the memory a list needs."""
    timeout: float = 300.0
    """Server-side length of one watch request; it is then resumed from the last version.
    Jittered up to +20 % so watches started together do not all end together."""
    connect_timeout: float = 10.0
    """Giving up on connecting to the API server."""
    backoff_base: float = 0.5
    """First delay after a failure; doubles per consecutive failure..."""
    backoff_max: float = 10.0
    """...up to this. The delay is drawn uniformly between half and all of it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Kind(Generic[M]):
    """One kind of object: how to list/watch it and what to keep of it."""

    name: str
    list_fn: Callable[..., Awaitable[Any]]
    """A generated list function (``CoreV1Api.list_node``…) that accepts ``watch``,
    ``resource_version``, ``_preload_content=False`` and the other list parameters."""
    convert: Callable[[Mapping[str, Any]], M | None]
    """Raw object to model, ``None`` if not kept."""
    key: Callable[[Mapping[str, Any]], str]
    upserted: Callable[[M], Event]
    deleted: Callable[[str], Event]
    field_selector: str = ""


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def pod_key(obj: Mapping[str, Any]) -> str:
    meta = _meta(obj)
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def node_key(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("name", ""))


class ResourceWatch(Generic[M]):
    """The list/watch loop of one kind. ``run`` returns only when cancelled.

    ``emit`` receives every event synchronously, in order; it must not block. ``sleep`` is
    injected so tests run the backoff on virtual time.
    """

    def __init__(
        self,
        kind: Kind[M],
        emit: Callable[[Event], None],
        settings: WatchSettings | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.kind = kind
        self._emit = emit
        self.settings = settings or WatchSettings()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._known: set[str] = set()
        self.synced = False
        self.resource_version: str | None = None
        self.lists = 0
        self.relists = 0
        self.reconnects = 0
        self.failures = 0
        self.events = 0
        # Consecutive failures, for the backoff: reset once the server accepts a request.
        self._streak = 0
        # A watch stream is open: a failure now is a broken stream, resumed from the last
        # version; a failure before is the server not answering, which calls for a list.
        self._streaming = False

    @property
    def name(self) -> str:
        return self.kind.name

    async def run(self) -> None:
        while True:
            try:
                if self.resource_version is None:
                    self.resource_version = await self._list()
                self.resource_version = await self._watch(self.resource_version)
            except Gone as e:
                log.info(
                    "%s: %s; listing again",
                    self.name,
                    e,
                    extra={"event": "watch_gone", "kind": self.name},
                )
                self.resource_version = None
                self._desync(f"resource version expired ({e})")
            except (aiohttp.ClientError, TimeoutError, OSError, WatchError, ValueError) as e:
                # ValueError: a line that is not JSON, or one too long to buffer.
                if not self._streaming:
                    # The server could not be reached or refused the request: it may have been
                    # down for long, may have lost history. List again once it answers.
                    self.resource_version = None
                self._streak += 1
                self.failures += 1
                delay = self._backoff(self._streak)
                log.warning(
                    "%s watch failed (%s: %s); retrying in %.1fs",
                    self.name,
                    type(e).__name__,
                    e,
                    delay,
                    extra={"event": "watch_error", "kind": self.name, "retry_in": delay},
                )
                self._desync(f"{type(e).__name__}: {e}")
                await self._sleep(delay)
                self.reconnects += 1

    def _backoff(self, failures: int) -> float:
        s = self.settings
        top = min(s.backoff_max, s.backoff_base * 2 ** (failures - 1))
        return self._rng.uniform(top / 2, top)

    def _desync(self, reason: str) -> None:
        if self.synced:
            self.synced = False
            self._emit(Desynced(kind=self.name, reason=reason))

    async def _request(self, **params: Any) -> aiohttp.ClientResponse:
        s = self.settings
        self._streaming = False
        read = params.get("timeout_seconds", s.timeout) + 30.0
        if self.kind.field_selector:
            params["field_selector"] = self.kind.field_selector
        resp: aiohttp.ClientResponse = await self.kind.list_fn(
            _preload_content=False,
            _request_timeout=aiohttp.ClientTimeout(
                total=None,
                connect=s.connect_timeout,
                sock_connect=s.connect_timeout,
                sock_read=read,
            ),
            **params,
        )
        if resp.status == 200:
            self._streak = 0
            return resp
        try:
            body = await resp.text()
        finally:
            resp.release()
        message = body
        with contextlib.suppress(ValueError, AttributeError):
            message = str(json.loads(body).get("message", body))
        if resp.status == 410:
            raise Gone(resp.status, message)
        raise WatchError(resp.status, message)

    async def _list(self) -> str:
        """List every object in pages; emit upserts, deletes for what vanished, ``Synced``."""
        seen: set[str] = set()
        cont: str | None = None
        rv = ""
        while True:
            params: dict[str, Any] = {"limit": self.settings.page_size}
            if cont:
                params["_continue"] = cont
            resp = await self._request(**params)
            try:
                data = json.loads(await resp.read())
            finally:
                resp.release()
            for obj in data.get("items") or ():
                self._upsert(obj, seen)
            meta = data.get("metadata") or {}
            rv = str(meta.get("resourceVersion") or "")
            cont = meta.get("continue") or None
            if not cont:
                break
        for key in self._known - seen:
            self._emit(self.kind.deleted(key))
        self._known = seen
        if self.lists:
            self.relists += 1
        self.lists += 1
        self.synced = True
        self._emit(Synced(kind=self.name, keys=frozenset(seen)))
        log.info(
            "%s listed: %d kept at resource version %s",
            self.name,
            len(seen),
            rv,
            extra={"event": "listed", "kind": self.name, "kept": len(seen)},
        )
        return rv

    def _upsert(self, obj: Mapping[str, Any], seen: set[str] | None = None) -> None:
        key = self.kind.key(obj)
        model = self.kind.convert(obj)
        if model is None:
            self._forget(key)
            return
        if seen is not None:
            seen.add(key)
        self._known.add(key)
        self._emit(self.kind.upserted(model))

    def _forget(self, key: str) -> None:
        if key in self._known:
            self._known.discard(key)
            self._emit(self.kind.deleted(key))

    async def _watch(self, rv: str) -> str:
        """Watch from ``rv`` until the server ends the request; return the last version."""
        timeout = int(self.settings.timeout * self._rng.uniform(1.0, 1.2))
        resp = await self._request(
            watch=True,
            resource_version=rv,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout,
        )
        self._streaming = True
        try:
            if not self.synced:
                # Resumed from the last version seen: nothing was missed.
                self.synced = True
                self._emit(Synced(kind=self.name))
            async for line in resp.content:
                if not line.strip():
                    continue
                rv = self._handle(json.loads(line), rv)
                # Kept as it goes: a stream that breaks resumes after the last event seen.
                self.resource_version = rv
        finally:
            resp.release()
        return rv

    def _handle(self, event: Mapping[str, Any], rv: str) -> str:
        kind = event.get("type")
        obj = event.get("object")
        if not isinstance(obj, dict):
            return rv
        if kind == "ERROR":
            code = obj.get("code")
            status = code if isinstance(code, int) else 0
            message = str(obj.get("message", ""))
            if status == 410:
                raise Gone(410, message)
            raise WatchError(status, message)
        self.events += 1
        new_rv = str(_meta(obj).get("resourceVersion") or rv)
        if kind in ("ADDED", "MODIFIED"):
            self._upsert(obj)
        elif kind == "DELETED":
            self._forget(self.kind.key(obj))
        return new_rv

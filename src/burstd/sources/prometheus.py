"""GPU utilization (or any PromQL) from a Prometheus server, as metric events for the state.

Every loop interval the source evaluates each utilization trigger's query and emits
``MetricSamples`` with the samples covering the trigger's ``for`` window. The first evaluation
of a query, and the first after its data went missing, is a range query over the whole window
(``/api/v1/query_range``, at ``step``), so a restarted daemon does not wait a full window
before a sustained rush can fire; after that an instant query (``/api/v1/query``) adds one
sample per interval and the oldest fall out of the window.

Missing data is not low utilization. When Prometheus cannot be reached, answers an error, or
the query returns no series (or several: aggregate them, see ``docs/signals.md``), the source
emits ``MetricMissing`` instead: the state marks the query stale since then, and the rule
neither fires on it nor gives units back. The first failure is logged once
(``event="signal_missing"``); if the query is still without data after ``grace`` seconds, a
``SignalStaleNotice`` is emitted and logged once (``event="signal_stale"``) for the alerts
layer; recovery is logged once (``event="signal_recovered"``). The source keeps polling at the
loop interval, never faster, and never lets an exception out of a poll.

Why aiohttp and not prometheus-api-client: that client is synchronous (``requests``), so every
query would have to run in a worker thread, where a hung connection cannot be cancelled when
the daemon stops, and it pulls in pandas and its dependency tree for a daemon that needs two
HTTP GETs. aiohttp is already the daemon's HTTP library (kubernetes-asyncio uses it): queries
run on the event loop, time out with ``ClientTimeout`` and are cancelled cleanly on shutdown.

Secrets (bearer token or basic-auth password) are read from a file or an environment variable
at each poll, so a rotated token file is picked up; they are never logged, and neither is the
user-info part of the URL.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from burstd.model import Sample
from burstd.model.events import Event, MetricMissing, MetricSamples, SignalStaleNotice

log = logging.getLogger("burstd.sources.prometheus")


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricQuery:
    """A query some trigger reads, and the window of samples it needs (its ``for``)."""

    query: str
    window: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Secret:
    """Where a secret comes from: a file (its content, stripped) or an environment variable.
    Holds the location only, so printing settings never shows the secret."""

    file: Path | None = None
    env: str | None = None

    def read(self) -> str:
        """The secret; ``OSError``/``KeyError`` with a message that names only the source."""
        if self.file is not None:
            try:
                return self.file.read_text(encoding="utf-8").strip()
            except OSError as e:
                raise OSError(f"cannot read {self.file}: {e.strerror}") from None
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise KeyError(f"environment variable {self.env} is not set")
            return value
        raise KeyError("no file or environment variable given")


@dataclass(frozen=True, slots=True, kw_only=True)
class PrometheusSettings:
    """How to reach Prometheus and how to read its answers."""

    url: str
    """Base URL, e.g. ``http://prometheus.monitoring:9090`` (a path prefix is kept)."""
    bearer_token: Secret | None = None
    """Sent as ``Authorization: Bearer``; exclusive with basic auth."""
    username: str | None = None
    """Basic-auth user; the password comes from ``password``."""
    password: Secret | None = None
    ca_file: Path | None = None
    """CA bundle to verify an ``https`` server with (default: the system's)."""
    timeout: float = 5.0
    """Seconds one query may take, connection included; also sent as Prometheus' own timeout."""
    step: float | None = None
    """Resolution of range queries in seconds (default: the loop interval)."""
    grace: float = 60.0
    """Seconds a query may be without data before ``signal_stale`` is raised."""


@dataclass(slots=True)
class _QueryState:
    samples: list[Sample] = field(default_factory=list)
    missing_since: float | None = None
    reason: str = ""
    noticed: bool = False


class QueryFailed(Exception):
    """A query gave no usable data; the message says why (never a secret)."""


def redact(url: str) -> str:
    """``url`` without user-info, for logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def parse_result(body: Any) -> list[Sample]:
    """The samples of a Prometheus API answer (vector, matrix or scalar) of one series;
    ``QueryFailed`` for an error answer, no series, several series, or NaN values only."""
    if not isinstance(body, dict):
        raise QueryFailed("answer is not a JSON object")
    if body.get("status") != "success":
        raise QueryFailed(f"{body.get('errorType', 'error')}: {body.get('error', 'no message')}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise QueryFailed("answer has no data")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list):
        points = [result]
    elif kind in ("vector", "matrix") and isinstance(result, list):
        if not result:
            raise QueryFailed("no series")
        if len(result) > 1:
            raise QueryFailed(
                f"{len(result)} series; aggregate them to one (avg(...), max(...)), "
                "see docs/signals.md"
            )
        series = result[0]
        points = [series.get("value")] if kind == "vector" else series.get("values") or []
    else:
        raise QueryFailed(f"unexpected result type {kind!r}")
    samples = []
    for point in points:
        try:
            at, value = float(point[0]), float(point[1])
        except (TypeError, ValueError, IndexError):
            raise QueryFailed(f"malformed sample {point!r}") from None
        if math.isfinite(value):
            samples.append(Sample(at=at, value=value))
    if not samples:
        raise QueryFailed("no finite values")
    return samples


class PrometheusSource:
    """Polls Prometheus for the triggers' queries; ``run`` until cancelled.

    ``queries`` and ``interval`` are called at each poll, so a reloaded rules file changes what
    is asked and how often at once. ``emit`` receives the events (it must not block).
    """

    name = "prometheus"

    def __init__(
        self,
        settings: PrometheusSettings,
        queries: Callable[[], Sequence[MetricQuery]],
        interval: Callable[[], float],
        emit: Callable[[Event], None],
        *,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self._queries = queries
        self._interval = interval
        self._emit = emit
        self._now = now
        self._sleep = sleep
        self._state: dict[str, _QueryState] = {}
        self.polls = 0

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(ssl=self._ssl())
        async with aiohttp.ClientSession(connector=connector) as session:
            log.info(
                "polling Prometheus at %s",
                redact(self.settings.url),
                extra={"event": "prometheus_source", "url": redact(self.settings.url)},
            )
            while True:
                started = self._now()
                await self.poll(session)
                interval = self._interval()
                # Never faster than a tenth of the interval, even after a slow poll.
                await self._sleep(max(interval - (self._now() - started), interval / 10))

    def _ssl(self) -> ssl.SSLContext | bool:
        if self.settings.ca_file is None:
            return True
        return ssl.create_default_context(cafile=str(self.settings.ca_file))

    async def poll(self, session: aiohttp.ClientSession) -> None:
        """Evaluate every query once and emit what came of it."""
        self.polls += 1
        wanted: dict[str, float] = {}
        for q in self._queries():
            wanted[q.query] = max(q.window, wanted.get(q.query, 0.0))
        for gone in set(self._state) - set(wanted):
            del self._state[gone]
        if not wanted:
            return
        now = self._now()
        try:
            headers = self._auth_headers()
            auth = self._basic_auth()
        except (OSError, KeyError) as e:
            for query in wanted:
                self._missing(query, now, f"credentials: {e}")
            return
        await asyncio.gather(
            *(self._one(session, q, w, now, headers, auth) for q, w in wanted.items())
        )

    def _auth_headers(self) -> Mapping[str, str]:
        if self.settings.bearer_token is None:
            return {}
        return {"Authorization": f"Bearer {self.settings.bearer_token.read()}"}

    def _basic_auth(self) -> aiohttp.BasicAuth | None:
        if self.settings.username is None:
            return None
        password = self.settings.password.read() if self.settings.password else ""
        return aiohttp.BasicAuth(self.settings.username, password)

    async def _one(
        self,
        session: aiohttp.ClientSession,
        query: str,
        window: float,
        now: float,
        headers: Mapping[str, str],
        auth: aiohttp.BasicAuth | None,
    ) -> None:
        st = self._state.setdefault(query, _QueryState())
        step = self.settings.step or self._interval()
        # Instant queries extend a window held without gaps; anything else asks for the window.
        last = st.samples[-1].at if st.samples else -math.inf
        try:
            if st.missing_since is None and last >= now - 3 * step:
                params: dict[str, str | float] = {"query": query, "time": now}
                got = await self._get(session, "query", params, headers, auth)
                samples = [*st.samples, *(s for s in got if s.at > last)]
            else:
                params = {"query": query, "start": now - window, "end": now, "step": step}
                samples = await self._get(session, "query_range", params, headers, auth)
        except QueryFailed as e:
            self._missing(query, now, str(e))
            return
        st.samples = [s for s in samples if s.at >= now - window - 2 * step]
        if st.missing_since is not None:
            log.info(
                "query %r has data again after %.0fs",
                query,
                now - st.missing_since,
                extra={"event": "signal_recovered", "query": query},
            )
        st.missing_since, st.reason, st.noticed = None, "", False
        self._emit(MetricSamples(query=query, samples=tuple(st.samples), at=now))

    async def _get(
        self,
        session: aiohttp.ClientSession,
        endpoint: str,
        params: Mapping[str, str | float],
        headers: Mapping[str, str],
        auth: aiohttp.BasicAuth | None,
    ) -> list[Sample]:
        url = f"{self.settings.url.rstrip('/')}/api/v1/{endpoint}"
        form = {k: str(v) for k, v in params.items()}
        form["timeout"] = f"{self.settings.timeout:g}s"
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout)
        try:
            async with session.post(
                url, data=form, headers=headers, auth=auth, timeout=timeout
            ) as resp:
                if resp.status in (401, 403):
                    raise QueryFailed(f"HTTP {resp.status}: not authorized")
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    raise QueryFailed(f"HTTP {resp.status}: answer is not JSON") from None
        except TimeoutError:
            raise QueryFailed(f"no answer within {self.settings.timeout:g}s") from None
        except aiohttp.ClientError as e:
            raise QueryFailed(f"cannot reach Prometheus: {type(e).__name__}: {e}") from None
        return parse_result(body)

    def _missing(self, query: str, now: float, reason: str) -> None:
        st = self._state.setdefault(query, _QueryState())
        st.samples = []
        if st.missing_since is None:
            st.missing_since = now
            log.warning(
                "query %r has no data (%s); its trigger neither fires nor releases until it does",
                query,
                reason,
                extra={"event": "signal_missing", "query": query, "reason": reason},
            )
        st.reason = reason
        self._emit(MetricMissing(query=query, at=now, reason=reason))
        if not st.noticed and now - st.missing_since >= self.settings.grace:
            st.noticed = True
            notice = SignalStaleNotice(query=query, since=st.missing_since, at=now, reason=reason)
            log.warning(
                "%s",
                notice,
                extra={
                    "event": "signal_stale",
                    "query": query,
                    "since": st.missing_since,
                    "reason": reason,
                },
            )
            self._emit(notice)

"""The HTTP API (aiohttp): read-only, loopback by default, a bearer token off loopback.

``/healthz`` and ``/readyz`` answer ``200 ok`` or ``503 <why>``; ``/metrics`` is Prometheus'
text format; ``/status`` is JSON; ``/`` is the status page, a self-contained HTML shell whose
script fetches ``/status`` every few seconds (no external assets). The probes and the page
shell carry no data and are never behind the token, so kubelet probes and a browser can load
them; ``/metrics`` and ``/status`` are. The page passes a token given in the URL fragment
(``/#token=…``, which browsers never send to the server) on to ``/status``.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from burstd.api.ops import Ops
from burstd.api.page import PAGE

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/", "/healthz", "/readyz"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) → host and port; raises ``ValueError``."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"--listen {listen!r}: write HOST:PORT, like 127.0.0.1:9464")
    host = host.strip("[]")
    if not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen {listen!r}: port out of range")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name could resolve to anything


def make_app(ops: Ops) -> web.Application:
    token = ops.settings.token

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is not None and request.path not in OPEN_PATHS:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return web.Response(
                    status=401,
                    text="bearer token required\n",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        response = await handler(request)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    async def healthz(_: web.Request) -> web.Response:
        ok, why = ops.health()
        return web.Response(status=200 if ok else 503, text=f"{why}\n")

    async def readyz(_: web.Request) -> web.Response:
        ok, why = ops.readiness()
        return web.Response(status=200 if ok else 503, text=f"{why}\n")

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(ops.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def status(_: web.Request) -> web.Response:
        return web.Response(
            text=json.dumps(ops.status(), default=str), content_type="application/json"
        )

    async def page(_: web.Request) -> web.Response:
        return web.Response(
            text=PAGE,
            content_type="text/html",
            headers={
                "Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'; "
                "script-src 'unsafe-inline'; connect-src 'self'"
            },
        )

    app = web.Application(middlewares=[guard])
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/status", status)
    app.router.add_get("/", page)
    return app


async def serve(ops: Ops, tg: asyncio.TaskGroup, listen: str) -> tuple[str, int]:
    """Start the API on ``listen``; return the address bound. It stops when ``tg`` is
    cancelled."""
    host, port = split_listen(listen)
    runner = web.AppRunner(
        make_app(ops), access_log=None, handle_signals=False, shutdown_timeout=1.0
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0] if runner.addresses else (host, port)
    address = (str(bound[0]), int(bound[1]))
    log.info(
        "API listening on http://%s:%d/%s",
        host if ":" not in host else f"[{host}]",
        address[1],
        "" if ops.settings.token is None else " (bearer token required for /metrics, /status)",
        extra={"event": "api_listening", "host": address[0], "port": address[1]},
    )

    async def hold() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    tg.create_task(hold(), name="api")
    return address

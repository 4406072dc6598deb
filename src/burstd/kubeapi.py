"""One request to the Kubernetes API through the generated ``kubernetes_asyncio`` client.

burstd calls the generated functions with ``_preload_content=False`` and reads the raw JSON
itself, like the watch does: the generated models would turn unknown fields and custom
resources into noise, and a dict is what the code reasons about. Every failure becomes an
exception the caller chose, never a traceback out of a task: the callers differ only in the
errors they raise (``sources.kube.objects`` has its own, the providers a ``ProviderError``), so
this module takes them as arguments and imports neither. It imports no Kubernetes client
either: the function to call is passed in.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp


async def request(
    fn: Callable[..., Awaitable[Any]],
    *args: Any,
    request_timeout: float,
    refused: Callable[[int, str], Exception],
    unreachable: Callable[[str], Exception],
    **kw: Any,
) -> Any:
    """Call ``fn(*args, **kw)`` and return its JSON body (``{}`` when it has none or is not
    JSON). Raise ``refused(status, message)`` on a status outside 2xx, with the server's
    ``message`` (or the start of the body), and ``unreachable(message)`` when the server could
    not be reached within ``request_timeout`` seconds."""
    try:
        resp: aiohttp.ClientResponse = await fn(
            *args, _preload_content=False, _request_timeout=request_timeout, **kw
        )
        try:
            body = await resp.read()
        finally:
            resp.release()
    except (aiohttp.ClientError, TimeoutError, OSError) as e:
        raise unreachable(f"cannot reach the API server: {type(e).__name__}: {e}") from e
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        data = {}  # a proxy's error page, say: the status tells what happened
    if not 200 <= resp.status < 300:
        message = data.get("message", "") if isinstance(data, dict) else ""
        raise refused(resp.status, str(message or body[:200]))
    return data

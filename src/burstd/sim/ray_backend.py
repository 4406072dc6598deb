"""Sweep runs as tasks on a Ray cluster (``burstd simulate --sweep ... --ray ADDRESS``).

The same runs as ``burstd.sim.parallel``'s processes, spread over a cluster's CPUs instead of
this machine's: the setup goes into Ray's object store once, each run is one task with one
rules file, and ``ray.get`` hands the metrics back in sweep order, so the rows are the serial
run's.

Ray is an optional extra (``pip install 'burstd[ray]'``), imported here only when a sweep asks
for it: burstd imports and runs without it. Ray's own annotations are partial, so the module is
held as a plain module object (its attributes are ``Any`` to the type checker) and used from
this file only. Every node of a cluster needs burstd (the same version) and the driver's Ray
and Python versions; a fresh ``local`` instance starts with this interpreter, so it has them.
"""

from __future__ import annotations

import importlib
import os
import signal
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from burstd.rules.types import RuleSet
from burstd.sim.compare import Setup, run_one

INSTALL = "pip install 'burstd[ray]'"
# Ray's default ports: the GCS of ``ray start --head`` and the Ray Client server.
GCS_PORT = 6379
CLIENT_PORT = 10001
CONNECT_TIMEOUT_S = 5.0


class RayError(Exception):
    """Ray is not installed, or the address names no cluster that answers."""


def require() -> ModuleType:
    """The ``ray`` module; ``RayError`` naming the extra to install when it is missing."""
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise RayError(f"Ray is not installed; install the extra: {INSTALL}") from None


def check(address: str) -> None:
    """Fail fast, before any run: Ray missing, or nothing listening at a ``host:port`` or
    ``ray://host[:port]`` address (Ray itself keeps retrying one, for 10 minutes and more). ``auto``
    and ``local`` are Ray's to resolve."""
    require()
    if address in ("auto", "local"):
        return
    client = address.startswith("ray://")
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep:
        if not client:
            raise RayError(f"{address}: expected auto, local, host:port or ray://host:port")
        host, port = hostport, str(CLIENT_PORT)
    if not port.isdigit() or not host:
        raise RayError(f"{address}: expected auto, local, host:port or ray://host:port")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        raise RayError(f"{address}: no Ray cluster answers there ({e.strerror or e})") from None


@contextmanager
def connected(address: str, **init: Any) -> Iterator[None]:
    """This process as a Ray driver of the cluster at ``address`` for the block; after it,
    disconnected (a ``local`` instance stopped) and its SIGTERM handler given back. ``init``
    goes to ``ray.init`` as is (a test's small local instance). A ``local`` instance runs no
    dashboard (it needs Ray's larger ``default`` extra) and, unless ``RAY_USAGE_STATS_ENABLED``
    says otherwise, reports no usage statistics."""
    ray = require()
    if address == "local":
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        init.setdefault("include_dashboard", False)
    # ray.init makes SIGTERM raise SystemExit in this process, and shutdown leaves it so.
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        try:
            ray.init(address=address, log_to_driver=False, **init)
        except (ConnectionError, ValueError, RuntimeError, ray.exceptions.RayError) as e:
            # No cluster at "auto", a bad address, a missing or wrong token: said, no traceback.
            raise RayError(f"{address}: {e}") from None
        try:
            yield
        finally:
            ray.shutdown()
    finally:
        if sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, sigterm)


def _metrics(setup: Setup, ruleset: RuleSet) -> dict[str, Any]:
    return run_one(setup, "burstd", ruleset).metrics


def sweep_metrics(setup: Setup, rulesets: Sequence[RuleSet]) -> list[dict[str, Any]]:
    """burstd's metrics for each rules file, in order, each run a task of the cluster this
    process is connected to (``connected``)."""
    ray = require()
    task = ray.remote(_metrics)
    shared = ray.put(setup)
    results: list[dict[str, Any]] = ray.get([task.remote(shared, r) for r in rulesets])
    return results

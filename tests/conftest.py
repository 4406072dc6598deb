"""The real control plane, started once per session for the tests that ask for it.

``scripts/kube-testenv up`` builds the binaries on first use (a long, cached build) and starts
etcd, kube-apiserver, kube-scheduler, kube-controller-manager and kwok on 127.0.0.1; ``down``
stops them when the session ends (set ``BURSTD_TESTENV_KEEP=1`` to leave it running, e.g. while
iterating on a test). Tests that need it never skip: without the control plane they fail.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from tests.integration.kube import TESTENV, Kube

MANAGED = "app.kubernetes.io/managed-by=burstd"


async def _prepare(kubeconfig: Path) -> None:
    async with Kube(kubeconfig) as k:
        await k.grant_controller_manager()
        # Nodes a previous, interrupted session left behind would take this session's pods.
        await k.delete_nodes(MANAGED)


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[Path]:
    """The admin kubeconfig of a running test control plane."""
    if not os.access(TESTENV, os.X_OK):
        pytest.fail(f"{TESTENV} is missing: the integration tests need it")
    up = subprocess.run(
        [str(TESTENV), "up"], capture_output=True, text=True, timeout=3 * 3600, check=False
    )
    if up.returncode != 0:
        pytest.fail(f"kube-testenv up failed ({up.returncode}):\n{up.stderr[-3000:]}")
    path = Path(up.stdout.strip().splitlines()[-1])
    asyncio.run(_prepare(path))
    try:
        yield path
    finally:
        if not os.environ.get("BURSTD_TESTENV_KEEP"):
            subprocess.run([str(TESTENV), "down"], capture_output=True, timeout=180, check=False)


@pytest.fixture(scope="session")
def donor(kubeconfig: Path) -> Path:
    """The admin kubeconfig of the Liqo donor: a second control plane with its own kwok GPU
    nodes, and the Liqo emulator between it and the first (``kube-testenv up --donor``;
    stopped with the first at the end of the session)."""
    up = subprocess.run(
        [str(TESTENV), "up", "--donor"],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
        env={**os.environ, "BURSTD_PYTHON": sys.executable},
    )
    if up.returncode != 0:
        pytest.fail(f"kube-testenv up --donor failed ({up.returncode}):\n{up.stderr[-3000:]}")
    asyncio.run(_prepare_donor(kubeconfig))
    return kubeconfig.parent / "donor" / "kubeconfig"


async def _prepare_donor(kubeconfig: Path) -> None:
    # Slices an interrupted session left (with BURSTD_TESTENV_KEEP) would hold donor GPUs.
    async with Kube(kubeconfig) as k:
        custom: Any = client.CustomObjectsApi(k.api)
        await k.raw(
            custom.delete_collection_namespaced_custom_object,
            "authentication.liqo.io",
            "v1beta1",
            "liqo-tenant-donor",
            "resourceslices",
            label_selector=MANAGED,
        )

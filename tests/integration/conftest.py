"""Fixtures of the integration tests; the control plane itself is started by
``tests/conftest.py`` (the ``kubeconfig`` fixture), shared with the provider contract suite."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import MANAGED
from tests.integration.kube import REPO, TESTENV, Kube

HOME = Path(os.environ.get("BURSTD_TESTENV_DIR", REPO / ".testenv"))


@dataclass(frozen=True)
class Prometheus:
    """The test environment's real Prometheus (``kube-testenv up --prometheus``)."""

    url: str
    home: Path

    def add_target(self, name: str, address: str) -> Path:
        """Have Prometheus scrape ``address`` (file_sd); returns the file to remove later."""
        path = self.home / "prometheus" / "targets" / f"{name}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps([{"targets": [address], "labels": {"test": name}}]))
        tmp.replace(path)
        return path

    def kill(self) -> None:
        """SIGKILL the Prometheus process this test environment started (a crash)."""
        pid = int((self.home / "pids" / "prometheus.pid").read_text())
        os.kill(pid, signal.SIGKILL)

    def start(self) -> None:
        """Start it again (same port, same data), as ``up --prometheus`` does."""
        _up_prometheus()


def _up_prometheus() -> str:
    up = subprocess.run(
        [str(TESTENV), "up", "--prometheus"], capture_output=True, text=True, timeout=900
    )
    if up.returncode != 0:
        pytest.fail(f"kube-testenv up --prometheus failed ({up.returncode}):\n{up.stderr[-3000:]}")
    return (HOME / "prometheus-url").read_text().strip()


@pytest.fixture(scope="session")
def prometheus(kubeconfig: Path) -> Prometheus:
    """A real Prometheus next to the control plane; ``kubeconfig``'s teardown stops both."""
    url = _up_prometheus()
    return Prometheus(url=url, home=HOME)


@pytest.fixture
async def kube(kubeconfig: Path) -> AsyncIterator[Kube]:
    async with Kube(kubeconfig) as k:
        yield k


@pytest.fixture
def target() -> str:
    """A target name of this test alone: its nodes carry it, so cleanup finds them."""
    return f"kw{secrets.token_hex(3)}"


@pytest.fixture
async def namespace(kube: Kube, target: str) -> AsyncIterator[str]:
    """A fresh namespace; at the end it and the test target's nodes are deleted."""
    name = await kube.create_namespace()
    try:
        yield name
    finally:
        await kube.delete_namespace(name)
        await kube.delete_nodes(f"{MANAGED},burstd.io/target={target}")

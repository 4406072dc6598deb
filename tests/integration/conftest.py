"""Fixtures of the integration tests; the control plane itself is started by
``tests/conftest.py`` (the ``kubeconfig`` fixture), shared with the provider contract suite."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import MANAGED
from tests.integration.kube import Kube


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

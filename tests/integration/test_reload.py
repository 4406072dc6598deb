"""Rules reloads under load: a bad file changes nothing; a rule that leaves the file has its
units given back, gently (a running pod is waited for, never evicted)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from burstd.model import Cordon, Evict
from tests.integration.kube import (
    Kube,
    burstd_in_process,
    cordoned,
    eventually,
    name_of,
    node_of,
    phase,
    rules_yaml,
)

pytestmark = pytest.mark.integration


async def test_reload_keeps_good_rules_and_drains_orphans_gently(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(rules_yaml(target=target, namespace=namespace, rule="first"))
    async with burstd_in_process(config, kubeconfig) as app:
        await kube.create_pod(namespace, "server", gpus=1)

        async def server_node() -> str | None:
            pods = await kube.pods(namespace)
            return next((node_of(p) for p in pods if phase(p) == "Running"), None)

        busy = await eventually(server_node, within=60, what="the server running")
        digest = app.rules.digest

        # A file that does not validate: reported, and the rules in force stay.
        config.write_text("version: 1\ntargets: {}\nrules:\n  - name: Bad Name\n")
        assert app.reload_now() is False
        assert app.reload_failures == 1
        assert app.rules.digest == digest
        assert len(await kube.nodes(f"burstd.io/target={target}")) == 1

        # The rule is renamed: its unit is an orphan now, cordoned at once...
        config.write_text(rules_yaml(target=target, namespace=namespace, rule="second"))
        assert app.reload_now() is True

        async def is_cordoned() -> bool:
            nodes = await kube.nodes(f"burstd.io/target={target}")
            return len(nodes) == 1 and name_of(nodes[0]) == busy and cordoned(nodes[0])

        await eventually(is_cordoned, within=30, what="the orphan unit cordoned")
        # ...but its running pod is waited for.
        for _ in range(6):
            await asyncio.sleep(0.5)
            assert await is_cordoned()
            assert await server_node() == busy
        await kube.delete_pod(namespace, "server")

        async def gone() -> bool:
            return not await kube.nodes(f"burstd.io/target={target}")

        await eventually(gone, within=60, what="the orphan unit deleted")
        decisions = [a.decision for a in app.applied]
        assert any(
            isinstance(d, Cordon) and "no longer in the rules file" in d.reason for d in decisions
        )
        assert not any(isinstance(d, Evict) for d in decisions)

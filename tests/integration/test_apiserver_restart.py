"""The API server restarts under a running burstd: the watch recovers and bursting goes on.

After a restart each watch either lists again or resumes from its last resourceVersion; both
are right, and which one happens depends on timing. The test asserts what the user needs
whichever way it went: no pending pod is missed, burstd's view matches the server's, and the
pods get exactly the units they need.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from burstd.model import UnitPhase
from tests.integration.kube import (
    TESTENV,
    Kube,
    burstd_in_process,
    eventually,
    name_of,
    node_of,
    phase,
    rules_yaml,
)

pytestmark = pytest.mark.integration


async def test_watch_recovers_after_apiserver_restart(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(rules_yaml(target=target, namespace=namespace))
    async with burstd_in_process(config, kubeconfig) as app:
        assert app.source is not None
        restart = await asyncio.to_thread(
            subprocess.run,
            [str(TESTENV), "restart-apiserver"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert restart.returncode == 0, restart.stderr

        # Create the pods at once, while burstd's watches are still reconnecting.
        async def created() -> bool:
            try:
                await kube.create_job(namespace, "train", pods=3, gpus=2, complete_after="never")
            except Exception:
                return False
            return True

        await eventually(created, within=30, what="the Job created")

        async def all_running() -> bool:
            pods = await kube.pods(namespace)
            return len(pods) == 3 and all(phase(p) == "Running" and node_of(p) for p in pods)

        # Running on burst units: burstd saw every pod that went pending during the outage.
        await eventually(all_running, within=90, what="3 pods Running")

        async def view_matches() -> bool:
            pods = {f"{namespace}/{name_of(p)}": node_of(p) for p in await kube.pods(namespace)}
            seen = {k: p.node for k, p in app.state.pods.items() if p.namespace == namespace}
            return app.state.synced and seen == pods

        await eventually(view_matches, within=30, what="burstd's view equal to the server's")

        # The right units: two 4-GPU nodes for three 2-GPU pods, the pods on them, and the
        # actuator holding them ready (it sees them ready on its next pass after the nodes).
        nodes = {name_of(n) for n in await kube.nodes(f"burstd.io/target={target}")}
        assert len(nodes) == 2
        assert {node_of(p) for p in await kube.pods(namespace)} <= nodes

        async def units_ready() -> bool:
            units = [u for u in app.actuator.units.values() if u.target == target]
            return {u.node for u in units} == nodes and all(
                u.phase is UnitPhase.READY for u in units
            )

        await eventually(units_ready, within=30, what="the actuator to hold both units ready")

"""The API server restarts under a running burstd: the watch recovers and bursting goes on."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from tests.integration.kube import (
    TESTENV,
    Kube,
    burstd_in_process,
    eventually,
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
        watches = app.source.watches
        lists_before = sum(w.lists for w in watches)

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

        await eventually(all_running, within=90, what="3 pods Running")

        # The watches saw the server go, were desynced meanwhile, and listed again.
        assert sum(w.failures for w in watches) >= 1
        assert app.state.desyncs >= 1
        assert sum(w.lists for w in watches) > lists_before
        assert app.state.synced
        nodes = await kube.nodes(f"burstd.io/target={target}")
        assert len(nodes) == 2

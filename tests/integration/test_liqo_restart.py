"""burstd is SIGKILLed while a Liqo unit is in flight, and while one drains: the restarted
daemon adopts the slice it made (no second slice), and finishes the cycle without ever
deleting a slice under a running pod."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration import liqo
from tests.integration.kube import Kube, cordoned, eventually, name_of, node_of, phase
from tests.integration.test_liqo import offloaded, running_on
from tests.integration.test_restart import events, start

pytestmark = pytest.mark.integration

__all__ = ["offloaded"]  # the fixture, shared with test_liqo


async def _logged(log: Path, kind: str) -> bool:
    await asyncio.sleep(0)
    return bool(events(log, kind))


def _seen(kube: Kube, target: str, names: set[str]) -> Callable[[], Awaitable[list[Any]]]:
    async def found() -> list[Any]:
        items = await liqo.slices(kube, f"burstd.io/target={target}")
        names.update(name_of(s) for s in items)
        return items

    return found


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL


async def test_killed_before_the_slice_is_ready_adopts_it(
    kube: Kube, donor: Path, offloaded: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(liqo.liqo_rules_yaml(namespace=offloaded, donor=target, ladder=[target]))
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    names: set[str] = set()
    seen = _seen(kube, target, names)
    procs: list[subprocess.Popen[bytes]] = []
    # The donor takes 4 s to answer: the kill lands after the create, before ready.
    async with liqo.faults(kubeconfig, accept_delay=4):
        try:
            procs.append(start(config, kubeconfig, first_log))
            await eventually(lambda: _logged(first_log, "synced"), within=30, what="sync")
            await kube.create_pod(offloaded, "train", gpus=4, complete_after="3s")
            await eventually(seen, within=60, what="a slice")
            _kill(procs[0])
            assert not events(first_log, "unit_ready")

            procs.append(start(config, kubeconfig, second_log))
            await eventually(
                lambda: _logged(second_log, "adoption_done"), within=30, what="adoption"
            )
            assert set(events(second_log, "adoption_done")[0]["units"]) == names

            async def done() -> bool:
                await seen()
                (p,) = await kube.pods(offloaded)
                return phase(p) == "Succeeded"

            await eventually(done, within=90, what="the pod to complete")

            async def released() -> bool:
                return not await seen() and not await kube.nodes(f"burstd.io/target={target}")

            await eventually(released, within=60, what="the unit given back")
            assert len(names) == 1  # adopted, never made twice
            assert not events(second_log, "liqo_slice_created")
            assert not await liqo.evictions(kube, offloaded)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


async def test_killed_while_draining_waits_for_the_pod_after_restart(
    kube: Kube, donor: Path, offloaded: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(liqo.liqo_rules_yaml(namespace=offloaded, donor=target, ladder=[target]))
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    names: set[str] = set()
    seen = _seen(kube, target, names)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(start(config, kubeconfig, first_log))
        await eventually(lambda: _logged(first_log, "synced"), within=30, what="sync")
        await kube.create_pod(offloaded, "train", gpus=4, complete_after="12s")

        async def running() -> list[dict[str, Any]] | None:
            return await running_on(kube, offloaded, 1)

        (pod,) = await eventually(running, within=90, what="the pod Running")
        node = node_of(pod)
        # The rule is renamed: its unit is an orphan, cordoned and drained while the pod runs.
        config.write_text(
            liqo.liqo_rules_yaml(namespace=offloaded, donor=target, ladder=[target], rule="other")
        )

        async def is_cordoned() -> bool:
            nodes = await kube.nodes(f"burstd.io/target={target}")
            return len(nodes) == 1 and cordoned(nodes[0])

        await eventually(is_cordoned, within=30, what="the unit cordoned")
        assert len(await seen()) == 1
        _kill(procs[0])
        procs.append(start(config, kubeconfig, second_log))
        await eventually(lambda: _logged(second_log, "adoption_done"), within=30, what="adoption")
        assert set(events(second_log, "adoption_done")[0]["units"]) == names

        async def released() -> bool:
            (p,) = await kube.pods(offloaded)
            found = await seen()
            deleting = not found or any("deletionTimestamp" in s["metadata"] for s in found)
            assert not deleting or phase(p) == "Succeeded", phase(p)
            return not found and not await kube.nodes(f"burstd.io/target={target}")

        await eventually(released, within=90, interval=0.1, what="the unit given back")
        (p,) = await kube.pods(offloaded)
        assert (phase(p), node_of(p)) == ("Succeeded", node)
        assert len(names) == 1
        assert not await liqo.evictions(kube, offloaded)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

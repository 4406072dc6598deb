"""burstd is killed mid-burst and started again: it adopts what it made and finishes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.kube import Kube, eventually, name_of, node_of, phase, rules_yaml

pytestmark = pytest.mark.integration

BURSTD = Path(sys.executable).with_name("burstd")


def start(config: Path, kubeconfig: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                str(BURSTD),
                "run",
                "--config",
                str(config),
                "--kubeconfig",
                str(kubeconfig),
                "--log-format",
                "json",
                "--grace-period",
                "5",
                "--adopt-interval",
                "2",
                "--listen",
                "127.0.0.1:0",
                "--state-dir",
                str(log.parent / "state"),
            ],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONWARNINGS": "error"},
        )


def events(log: Path, kind: str) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == kind:
            out.append(record)
    return out


async def test_killed_mid_burst_adopts_and_finishes(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    config = tmp_path / "rules.yaml"
    # Nodes turn Ready 3 s after they are made: the kill lands while units are in flight.
    config.write_text(rules_yaml(target=target, namespace=namespace, node_delay="3s"))
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    selector = f"burstd.io/target={target}"
    seen: set[str] = set()

    async def nodes() -> list[dict[str, Any]]:
        found = await kube.nodes(selector)
        seen.update(name_of(n) for n in found)
        return found

    first = start(config, kubeconfig, first_log)
    second: subprocess.Popen[bytes] | None = None
    try:
        await eventually(
            lambda: asyncio.sleep(0, events(first_log, "synced")), within=30, what="sync"
        )
        # Four pods of 4 GPUs: four units.
        await kube.create_job(namespace, "train", pods=4, gpus=4, complete_after="4s")
        await eventually(nodes, within=60, what="a first node")
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
        in_cluster = {name_of(n) for n in await nodes()}
        assert in_cluster
        assert not any(events(first_log, "unit_ready")), "killed too late: nothing was in flight"

        second = start(config, kubeconfig, second_log)
        await eventually(
            lambda: asyncio.sleep(0, events(second_log, "adoption_done")),
            within=30,
            what="adoption",
        )
        # Everything the first run left is adopted before the second plans anything.
        assert set(events(second_log, "adoption_done")[0]["units"]) >= in_cluster

        async def job_done() -> bool:
            await nodes()
            job = await kube.job(namespace, "train")
            return bool(job.get("status", {}).get("succeeded") == 4)

        await eventually(job_done, within=90, what="the Job to complete")
        pods = await kube.pods(namespace)
        assert all(phase(p) == "Succeeded" for p in pods)
        assert {node_of(p) for p in pods} <= seen

        async def all_released() -> bool:
            return not await nodes()

        await eventually(all_released, within=60, what="every node given back")
        # No duplicates, whatever the timing: each unit made once across both runs, and no
        # more than the four pods need (fewer when burstd starts slowly and the pods run one
        # after another on the nodes already there, as they may under load); the second run
        # adopted what the first made (a create still in flight when it was killed may land
        # after the second run listed: its sweep adopts it), made the rest, gave all back.
        adopted = {e["unit"] for e in events(second_log, "adopted")}
        made_after = {e["unit"] for e in events(second_log, "kwok_node_created")}
        units = adopted | made_after
        assert not adopted & made_after
        assert in_cluster <= adopted
        assert seen <= units
        assert 1 <= len(units) <= 4

        async def all_reported() -> bool:
            released = {e["unit"] for e in events(second_log, "unit_released")}
            return released == units

        # The nodes are gone; burstd reports each unit released once it has seen that too.
        await eventually(all_reported, within=15, what="every unit reported released")

        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
        assert events(second_log, "stopped")
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()

"""Two replicas with ``--leader-elect`` on the real API server: one acts, a failover changes
nothing, and a leader cut off from the API server stops acting before another may start."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.daemon import events, kube_testenv, logged, start, stop
from tests.integration.kube import Kube, eventually, name_of, phase, rules_yaml

pytestmark = pytest.mark.integration

# Shorter than client-go's 15/10/2 so the suite stays quick; the failover test uses those.
TIMING = ("4", "3", "0.5")


def replica(
    config: Path, kubeconfig: Path, log: Path, namespace: str, timing: tuple[str, str, str]
) -> subprocess.Popen[bytes]:
    return start(
        config,
        kubeconfig,
        log,
        log.with_suffix(".state"),
        "--leader-elect",
        "--lease",
        f"{namespace}/burstd",
        "--lease-timing",
        ",".join(timing),
    )


def acted(log: Path) -> list[dict[str, Any]]:
    return events(log, "provider_call")


async def leader_of(logs: list[Path]) -> int:
    async def one() -> list[int]:
        return [i for i, log in enumerate(logs) if events(log, "leader_acquired")]

    leaders = await eventually(one, within=30, what="a leader")
    assert len(leaders) == 1, f"more than one replica acquired the lease: {leaders}"
    return leaders[0]


async def test_two_replicas_exactly_one_acts_and_a_failover_adopts(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(rules_yaml(target=target, namespace=namespace, node_delay="2s"))
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    timing = ("15", "10", "2")  # client-go's defaults, to measure a real failover
    procs = [replica(config, kubeconfig, log, namespace, timing) for log in logs]
    selector = f"burstd.io/target={target}"
    seen: set[str] = set()

    async def nodes() -> list[dict[str, Any]]:
        found = await kube.nodes(selector)
        seen.update(name_of(n) for n in found)
        return found

    try:
        leader = await leader_of(logs)
        follower = 1 - leader
        for log in logs:
            await logged(log, "synced")
        await kube.create_job(namespace, "train", pods=2, gpus=4, complete_after="20s")
        await eventually(nodes, within=30, what="a first node")
        assert acted(logs[leader])
        assert not acted(logs[follower]), "the follower acted"
        # The memory lives beside the lease, for the next leader.
        memory = await kube.raw(kube.core.read_namespaced_config_map, "burstd-memory", namespace)
        assert "memory.json" in memory.get("data", {})

        procs[leader].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        procs[leader].wait(timeout=10)
        await logged(logs[follower], "leader_acquired", within=30)
        failover = time.monotonic() - killed_at
        # Within the lease duration plus one retry (and the poll of this test).
        assert failover <= 15 + 2 + 2, f"failover took {failover:.1f}s"
        await logged(logs[follower], "adoption_done")

        async def done() -> bool:
            await nodes()
            job = await kube.job(namespace, "train")
            return bool(job.get("status", {}).get("succeeded") == 2) and not await nodes()

        await eventually(done, within=120, what="the Job done and the nodes given back")
        assert len(seen) == 2, f"duplicate units: {seen}"
        assert all(phase(p) == "Succeeded" for p in await kube.pods(namespace))
        print(f"failover after SIGKILL of the leader: {failover:.1f}s")
    finally:
        for p in procs:
            stop(p)


async def test_a_leader_cut_off_from_the_api_server_stops_acting(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(rules_yaml(target=target, namespace=namespace))
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [replica(config, kubeconfig, log, namespace, TIMING) for log in logs]
    try:
        leader = await leader_of(logs)
        follower = 1 - leader
        for log in logs:
            await logged(log, "synced")
        await kube_testenv("stop-apiserver", "--kill")
        try:
            stopped = time.monotonic()
            # It gives up within the renew deadline (3 s here), and exits.
            await logged(logs[leader], "leader_lost", within=15)
            assert procs[leader].wait(timeout=15) == 1
            lost_after = time.monotonic() - stopped
            assert lost_after <= 3 + 0.5 + 4, f"stopped acting after {lost_after:.1f}s"
        finally:
            await kube_testenv("start-apiserver")
        # The other replica takes over once the API server is back and bursts.
        await logged(logs[follower], "leader_acquired", within=40)
        await kube.create_job(namespace, "j", pods=1, gpus=4, complete_after="1s")

        async def done() -> bool:
            job = await kube.job(namespace, "j")
            return bool(job.get("status", {}).get("succeeded") == 1)

        await eventually(done, within=60, what="the Job done under the new leader")
        assert acted(logs[follower])
    finally:
        for p in procs:
            stop(p)


async def test_a_clean_shutdown_hands_the_lease_over_at_once(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(rules_yaml(target=target, namespace=namespace))
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    timing = ("15", "10", "1")
    procs = [replica(config, kubeconfig, log, namespace, timing) for log in logs]
    try:
        leader = await leader_of(logs)
        follower = 1 - leader
        await logged(logs[follower], "leader_observed")
        procs[leader].send_signal(signal.SIGTERM)
        assert procs[leader].wait(timeout=30) == 0
        began = time.monotonic()
        await logged(logs[follower], "leader_acquired", within=10)
        # Released, not expired: well within the 15 s lease.
        assert time.monotonic() - began < 8
    finally:
        for p in procs:
            stop(p)
        await asyncio.sleep(0)

"""Offloading to an HPC site through InterLink, end to end: real API server, scheduler and
controller-manager; burstd in the test's event loop (or as a process, to be SIGKILLed).

The one fake is the site's virtual kubelet (``burstd.testing.interlink``): there is no
InterLink API or Slurm here. It registers the Node, runs the pods bound to it after a queue
delay and never deletes its Node, as InterLink's does.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner

from burstd.cli import main
from burstd.model import Abandon, ScaleUp
from burstd.providers.base import NotReadyError, UnitSpec
from burstd.providers.interlink.provider import InterLinkProvider
from burstd.testing.interlink import FAULT_ANNOTATION
from tests.integration.interlink import (
    create_hpc_job,
    deployment,
    emulated,
    interlink_rules,
    node_or_none,
    params_nodes,
    replicas,
    site,
)
from tests.integration.kube import Kube, burstd_in_process, eventually, node_of, phase, rules_yaml
from tests.integration.test_restart import events, start

pytestmark = pytest.mark.integration

T = TypeVar("T")


@contextlib.asynccontextmanager
async def sampling(
    probe: Callable[[], Awaitable[T]], interval: float = 0.2
) -> AsyncIterator[list[T]]:
    """Everything ``probe`` returned, every ``interval``, while the block runs."""
    samples: list[T] = []

    async def loop() -> None:
        while True:
            samples.append(await probe())
            await asyncio.sleep(interval)

    task = asyncio.create_task(loop())
    try:
        yield samples
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def only_pod(kube: Kube, namespace: str) -> dict[str, Any] | None:
    """The one Job pod of the test (the virtual kubelets' own pods, Pending, left out)."""
    pods = [p for p in await kube.pods(namespace) if "job-name" in p["metadata"].get("labels", {})]
    return pods[0] if len(pods) == 1 else None


async def test_tolerating_pods_get_a_virtual_node_run_after_the_queue_delay_and_are_waited_for(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    s = site(target, namespace, scaled=1, queue_delay=3.0)
    (vk,) = s.nodes
    config = tmp_path / "rules.yaml"
    config.write_text(interlink_rules(target=target, namespace=namespace, s=s))

    async def probe() -> tuple[str, str | None, bool, int]:
        pod = await only_pod(kube, namespace)
        node = await node_or_none(kube, vk.node)
        return (
            phase(pod) if pod else "",
            node_of(pod) if pod else None,
            node is not None,
            await replicas(kube, vk),
        )

    async with emulated(kube, s), burstd_in_process(config, kubeconfig) as app:
        async with sampling(probe) as samples:
            await create_hpc_job(kube, namespace, "sim", pods=1, gpus=4, complete_after="20s")
            pod = await eventually(
                lambda: _running(kube, namespace), within=60, what="the job Running"
            )
            assert node_of(pod) == vk.node
            # Bound to the virtual node, it first waited in the Slurm queue.
            assert ("Pending", vk.node, True, 1) in samples
            node = await node_or_none(kube, vk.node)
            assert node is not None
            labels = node["metadata"]["labels"]
            assert labels["virtual-node.interlink/type"] == "virtual-kubelet"
            assert labels["burstd.io/provider"] == "interlink"
            assert labels["burstd.io/target"] == target
            # The rule leaves the file: its unit is drained, waiting for the HPC job.
            config.write_text(
                interlink_rules(target=target, namespace="elsewhere", s=s, rule="other")
            )
            assert app.reload_now()

            async def cordoned() -> bool:
                n = await node_or_none(kube, vk.node)
                return bool(n and n["spec"].get("unschedulable"))

            await eventually(cordoned, within=20, what="the virtual node cordoned")

            async def released() -> bool:
                n = await node_or_none(kube, vk.node)
                return n is None and await replicas(kube, vk) == 0

            await eventually(released, within=60, what="Deployment at 0 and its Node deleted")
        await eventually(lambda: succeeded(kube, namespace, "sim"), within=30, what="Job done")
        # Never scaled down nor deleted while the job was queued or running on it.
        busy = [x for x in samples if x[0] in ("Pending", "Running") and x[1] == vk.node]
        assert busy
        assert all(exists and count == 1 for _, _, exists, count in busy)
        d = await deployment(kube, vk)
        assert "burstd.io/unit" not in (d["metadata"].get("annotations") or {})
        assert sum(a.decision.units for a in app.applied if isinstance(a.decision, ScaleUp)) == 1


async def succeeded(kube: Kube, namespace: str, name: str) -> bool:
    job = await kube.job(namespace, name)
    return bool(job.get("status", {}).get("succeeded") == 1)


async def _running(kube: Kube, namespace: str) -> dict[str, Any] | None:
    pod = await only_pod(kube, namespace)
    return pod if pod and phase(pod) == "Running" else None


async def test_queued_pods_are_covered_demand_not_a_second_burst(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    # Slurm queues the job longer than the target's ready deadline.
    s = site(target, namespace, scaled=2, queue_delay=12.0)
    config = tmp_path / "rules.yaml"
    config.write_text(interlink_rules(target=target, namespace=namespace, s=s, ready_deadline="6s"))
    counts: list[tuple[int, ...]] = []

    async def probe() -> None:
        counts.append(tuple([await replicas(kube, n) for n in s.nodes]))

    async with emulated(kube, s), burstd_in_process(config, kubeconfig) as app, sampling(probe):
        await create_hpc_job(kube, namespace, "queued", pods=1, gpus=4, complete_after="60s")
        await eventually(lambda: _running(kube, namespace), within=60, what="the job Running")
    assert (1, 0) in counts or (0, 1) in counts
    assert all(sum(c) <= 1 for c in counts), "a second virtual node was enabled"
    decisions = [a.decision for a in app.applied]
    assert sum(d.units for d in decisions if isinstance(d, ScaleUp)) == 1
    assert not [d for d in decisions if isinstance(d, Abandon)]


async def test_pods_that_do_not_tolerate_the_taint_never_land_and_validate_warns(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    s = site(target, namespace, static=1, scaled=0)
    config = tmp_path / "rules.yaml"
    config.write_text(interlink_rules(target=target, namespace=namespace, s=s))
    out = CliRunner().invoke(main, ["validate", str(config)])
    assert out.exit_code == 0
    assert f"rule 'hpc-burst' bursts to InterLink target '{target}'" in out.output
    assert "virtual-node.interlink/no-schedule=true:NoSchedule" in out.output
    async with emulated(kube, s), burstd_in_process(config, kubeconfig):
        await create_hpc_job(
            kube, namespace, "plain", pods=1, gpus=4, complete_after="5s", tolerate=False
        )
        for _ in range(20):
            pod = await only_pod(kube, namespace)
            assert pod is None or (phase(pod) == "Pending" and node_of(pod) is None)
            await asyncio.sleep(0.5)


async def test_lost_connectivity_is_not_ready_rolls_back_and_takes_the_next_rung(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    s = site(target, namespace, scaled=1, fault="connectivity")
    (vk,) = s.nodes
    cloud = f"{target}k"
    kwok = rules_yaml(target=cloud, namespace=namespace).split("targets:\n", 1)[1]
    kwok_target = kwok.split("rules:\n", 1)[0]
    config = tmp_path / "rules.yaml"
    config.write_text(
        interlink_rules(
            target=target,
            namespace=namespace,
            s=s,
            ready_deadline="5s",
            extra_targets=kwok_target,
            ladder=f"{target}, {cloud}",
        )
    )
    saw_enabled: list[bool] = []

    async def probe() -> None:
        saw_enabled.append(await replicas(kube, vk) == 1)

    try:
        async with emulated(kube, s), burstd_in_process(config, kubeconfig) as app:
            async with sampling(probe):
                await create_hpc_job(kube, namespace, "j", pods=1, gpus=4, complete_after="60s")
                pod = await eventually(
                    lambda: _running(kube, namespace), within=90, what="the job Running"
                )
            assert node_of(pod) != vk.node
            assert any(saw_enabled)

            async def rolled_back() -> bool:
                n = await node_or_none(kube, vk.node)
                return n is None and await replicas(kube, vk) == 0

            await eventually(rolled_back, within=30, what="the virtual node disabled again")
            targets = [a.decision.target for a in app.applied if isinstance(a.decision, ScaleUp)]
            assert targets[:1] == [target]
            assert cloud in targets
    finally:
        await kube.delete_nodes(f"burstd.io/target={cloud}")


async def test_connectivity_condition_false_keeps_an_enabled_node_from_counting_ready(
    kube: Kube, namespace: str, target: str
) -> None:
    """The emulator's fault can be flipped at run time: a Ready node that then loses its
    InterLink ping is no longer reported ready by list_units."""
    s = site(target, namespace, static=1, scaled=0)
    (static,) = s.nodes
    async with emulated(kube, s):
        provider = InterLinkProvider(
            kube.api, target, {"nodes": params_nodes(s), "poll_interval": 0.1}
        )
        unit = await provider.create(
            UnitSpec(id=f"{target}-1", target=target, rule="r", gpus=4, ready_deadline=60)
        )
        assert unit.ready
        await kube.raw(
            kube.core.patch_node,
            static.node,
            {"metadata": {"annotations": {FAULT_ANNOTATION: "connectivity"}}},
        )

        async def unready() -> bool:
            (seen,) = await provider.list_units()
            return not seen.ready

        await eventually(unready, within=30, what="the unit reported not ready")
        await provider.delete(unit.id, unit.node)
        node = await node_or_none(kube, static.node)
        assert node is not None, "a site's own node is cordoned, never deleted"
        assert node["spec"].get("unschedulable")
        assert "burstd.io/unit" not in node["metadata"]["labels"]


async def test_killed_mid_enable_and_mid_drain_adopts_and_completes(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    s = site(target, namespace, scaled=1, queue_delay=1.0)
    s = replace(s, ping_after=4.0)  # slow to register: the kill lands mid-enable
    (vk,) = s.nodes
    config = tmp_path / "rules.yaml"
    config.write_text(interlink_rules(target=target, namespace=namespace, s=s))
    logs = [tmp_path / f"burstd-{i}.log" for i in range(3)]
    procs: list[subprocess.Popen[bytes]] = []

    def kill(proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL

    async def logged(i: int, kind: str) -> bool:
        return bool(events(logs[i], kind))

    try:
        async with emulated(kube, s):
            procs.append(start(config, kubeconfig, logs[0]))
            await eventually(lambda: logged(0, "synced"), within=30, what="sync")
            await create_hpc_job(kube, namespace, "long", pods=1, gpus=4, complete_after="12s")
            await eventually(lambda: logged(0, "interlink_enabled"), within=30, what="enable")
            kill(procs[0])  # mid-enable: scaled to 1, the Node not ready yet
            assert not events(logs[0], "unit_ready")

            procs.append(start(config, kubeconfig, logs[1]))
            await eventually(lambda: logged(1, "adoption_done"), within=30, what="adoption")
            (unit,) = events(logs[0], "interlink_enabled")
            assert events(logs[1], "adoption_done")[0]["units"] == [unit["unit"]]
            await eventually(lambda: _running(kube, namespace), within=60, what="job Running")

            # The rule leaves the file: the unit drains while the job runs; kill mid-drain.
            config.write_text(
                interlink_rules(target=target, namespace="elsewhere", s=s, rule="other")
            )
            procs[1].send_signal(signal.SIGHUP)

            async def cordoned() -> bool:
                n = await node_or_none(kube, vk.node)
                return bool(n and n["spec"].get("unschedulable"))

            await eventually(cordoned, within=30, what="the virtual node cordoned")
            kill(procs[1])
            pod = await only_pod(kube, namespace)
            assert pod is not None
            assert phase(pod) == "Running"

            procs.append(start(config, kubeconfig, logs[2]))
            await eventually(lambda: logged(2, "adoption_done"), within=30, what="adoption")
            assert events(logs[2], "adoption_done")[0]["units"] == [unit["unit"]]

            async def released() -> bool:
                n = await node_or_none(kube, vk.node)
                return n is None and await replicas(kube, vk) == 0

            await eventually(released, within=90, what="the unit released after the job")
            await eventually(lambda: succeeded(kube, namespace, "long"), within=30, what="done")
            # One unit across three runs: nothing enabled twice.
            assert not events(logs[1], "interlink_enabled")
            assert not events(logs[2], "interlink_enabled")
            procs[2].send_signal(signal.SIGTERM)
            assert procs[2].wait(timeout=30) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


async def test_a_site_node_stuck_not_ready_is_cordoned_again_past_the_deadline(
    kube: Kube, namespace: str, target: str
) -> None:
    s = site(target, namespace, static=1, scaled=0, fault="notready")
    (static,) = s.nodes
    async with emulated(kube, s):
        provider = InterLinkProvider(
            kube.api, target, {"nodes": params_nodes(s), "poll_interval": 0.1}
        )
        spec = UnitSpec(id=f"{target}-1", target=target, rule="r", gpus=4, ready_deadline=2)
        with pytest.raises(NotReadyError, match="not Ready"):
            await provider.create(spec)
        node = await node_or_none(kube, static.node)
        assert node is not None
        assert node["spec"].get("unschedulable")
        assert "burstd.io/unit" not in node["metadata"]["labels"]
        assert not await provider.list_units()

"""Bursting to a Liqo donor, end to end, on two real control planes.

The consumer (where burstd runs) and the donor are independent control planes started by
``kube-testenv up --donor``; Liqo itself cannot run here, so the Liqo emulator
(``burstd.testing.liqo``, its docstring says where it departs from Liqo) plays its controllers
and virtual kubelet between them: it answers slices from the donor's real free GPUs, makes the
virtual node, and runs the offloaded pods as real pods on the donor's kwok GPU nodes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from burstd.model import ScaleUp
from burstd.providers.base import CapacityError, NotReadyError, ProviderError, UnitSpec
from tests.conftest import MANAGED
from tests.integration import liqo
from tests.integration.kube import (
    GPU,
    Kube,
    burstd_in_process,
    eventually,
    name_of,
    node_of,
    phase,
)

pytestmark = pytest.mark.integration

CONSUMER_ID = liqo.CONSUMER_ID


@pytest.fixture
async def offloaded(kube: Kube, target: str, donor: Path) -> AsyncIterator[str]:
    """A fresh namespace Liqo offloads (it has a NamespaceOffloading); at the end it, the
    test target's slices and any node of the test's targets are deleted."""
    name = await kube.create_namespace("lq")
    await liqo.offload(kube, name)
    try:
        yield name
    finally:
        await kube.delete_namespace(name)
        await liqo.cleanup(kube, target)
        await kube.delete_nodes(f"{MANAGED},burstd.io/target={target}")
        await kube.delete_nodes(f"{MANAGED},burstd.io/target={target}k")
        async with Kube(donor) as d:
            remote = f"{name}-{CONSUMER_ID}"
            found = await d.raw(d.core.list_namespace, field_selector=f"metadata.name={remote}")
            if found.get("items"):
                await d.delete_namespace(remote)


def scale_ups(app: Any) -> list[ScaleUp]:
    return [a.decision for a in app.applied if isinstance(a.decision, ScaleUp)]


async def running_on(kube: Kube, namespace: str, n: int) -> list[dict[str, Any]] | None:
    pods = await kube.pods(namespace)
    ok = len(pods) == n and all(phase(p) == "Running" and node_of(p) for p in pods)
    return pods if ok else None


async def test_pods_get_a_slice_a_virtual_node_and_run_on_the_donor(
    kube: Kube, donor: Path, offloaded: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(liqo.liqo_rules_yaml(namespace=offloaded, donor=target, ladder=[target]))
    async with burstd_in_process(config, kubeconfig) as app:
        await kube.create_job(offloaded, "train", pods=2, gpus=2, complete_after="never")

        async def two_running() -> list[dict[str, Any]] | None:
            return await running_on(kube, offloaded, 2)

        pods = await eventually(two_running, within=90, what="2 pods Running")
        # Two 2-GPU pods fit one 4-GPU unit: one slice.
        (rs,) = await liqo.slices(kube, f"burstd.io/target={target}")
        meta = rs["metadata"]
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "burstd"
        assert meta["labels"]["burstd.io/provider"] == "liqo"
        assert meta["labels"]["liqo.io/remote-cluster-id"] == liqo.DONOR_ID
        assert meta["annotations"]["liqo.io/create-virtual-node"] == "true"
        assert rs["spec"]["resources"][GPU] == "4"
        assert {c["type"]: c["status"] for c in rs["status"]["conditions"]} == {
            "Authentication": "Accepted",
            "Resources": "Accepted",
        }
        assert [name_of(v) for v in await liqo.virtual_nodes(kube)].count(name_of(rs)) == 1
        (node,) = await kube.nodes(f"burstd.io/target={target}")
        assert name_of(node) == name_of(rs)
        assert node["metadata"]["labels"]["liqo.io/type"] == "virtual-node"
        assert {"key": "virtual-node.liqo.io/not-allowed", "value": "true"}.items() <= next(
            t for t in node["spec"]["taints"] if t["key"] == "virtual-node.liqo.io/not-allowed"
        ).items()
        assert {node_of(p) for p in pods} == {name_of(node)}
        # The pods were left unchanged but for the toleration Liqo's webhook gives them.
        for p in pods:
            assert any(
                t["key"] == "virtual-node.liqo.io/not-allowed" for t in p["spec"]["tolerations"]
            )

        # The work really runs in the donor: its reflections are Running on donor nodes.
        async with Kube(donor) as d:

            async def reflected() -> list[dict[str, Any]] | None:
                return await running_on(d, f"{offloaded}-{CONSUMER_ID}", 2)

            remote = await eventually(reflected, within=30, what="2 reflections Running")
        assert {name_of(p) for p in remote} == {name_of(p) for p in pods}
        assert all(str(node_of(p)).startswith("donor-gpu-") for p in remote)
        assert [d.target for d in scale_ups(app)] == [target]


async def test_a_denied_slice_walks_down_the_ladder_to_kwok(
    kube: Kube, donor: Path, offloaded: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    config = tmp_path / "rules.yaml"
    kw = f"{target}k"
    config.write_text(
        liqo.liqo_rules_yaml(namespace=offloaded, donor=target, kwok=kw, ladder=[target, kw])
    )
    async with (
        liqo.faults(kubeconfig, deny=True),
        burstd_in_process(config, kubeconfig) as app,
    ):
        await kube.create_pod(offloaded, "work", gpus=4)

        async def one_running() -> list[dict[str, Any]] | None:
            return await running_on(kube, offloaded, 1)

        (pod,) = await eventually(one_running, within=90, what="the pod Running")
        (node,) = await kube.nodes(f"burstd.io/target={kw}")
        assert node_of(pod) == name_of(node)
        ups = scale_ups(app)
        assert [d.target for d in ups] == [target, kw]
        # Why the ladder moved on is in the decision (what burstd explain prints).
        assert "denied" in ups[1].reason
        assert not await liqo.slices(kube, f"burstd.io/target={target}")


async def test_accepted_without_gpus_is_rolled_back_after_the_deadline(
    kube: Kube, donor: Path, offloaded: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    config = tmp_path / "rules.yaml"
    kw = f"{target}k"
    config.write_text(
        liqo.liqo_rules_yaml(
            namespace=offloaded, donor=target, kwok=kw, ladder=[target, kw], ready_deadline="4s"
        )
    )
    async with (
        liqo.faults(kubeconfig, no_gpus=True),
        burstd_in_process(config, kubeconfig) as app,
    ):
        await kube.create_pod(offloaded, "work", gpus=4)

        async def one_running() -> list[dict[str, Any]] | None:
            return await running_on(kube, offloaded, 1)

        (pod,) = await eventually(one_running, within=90, what="the pod Running")
        assert node_of(pod) in {name_of(n) for n in await kube.nodes(f"burstd.io/target={kw}")}
        ups = scale_ups(app)
        # The planner abandons the unit at the same deadline the provider keeps; in that pass
        # it may try the donor once more before the backoff it just set applies.
        assert ups[-1].target == kw
        assert {d.target for d in ups[:-1]} == {target}
        assert "ready deadline" in ups[-1].reason or "allocatable" in ups[-1].reason

        async def rolled_back() -> bool:
            gone = not await liqo.slices(kube, f"burstd.io/target={target}")
            return gone and not await kube.nodes(f"burstd.io/target={target}")

        await eventually(rolled_back, within=60, what="the slice and its node deleted")


async def test_release_waits_for_the_running_pod_and_never_evicts(
    kube: Kube, donor: Path, offloaded: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(
        liqo.liqo_rules_yaml(namespace=offloaded, donor=target, ladder=[target], idle_for="1s")
    )
    async with burstd_in_process(config, kubeconfig):
        await kube.create_pod(offloaded, "train", gpus=4, complete_after="6s")

        async def started() -> list[dict[str, Any]] | None:
            return await running_on(kube, offloaded, 1)

        (pod,) = await eventually(started, within=90, what="the pod Running")
        node = node_of(pod)

        async def released() -> bool:
            (p,) = await kube.pods(offloaded)
            found = await liqo.slices(kube, f"burstd.io/target={target}")
            deleting = not found or any("deletionTimestamp" in rs["metadata"] for rs in found)
            # Whenever the slice is being deleted, the pod on its node has finished.
            assert not deleting or phase(p) == "Succeeded", (phase(p), found)
            return not found and not await kube.nodes(f"burstd.io/target={target}")

        await eventually(released, within=90, interval=0.1, what="the unit given back")
        (p,) = await kube.pods(offloaded)
        assert phase(p) == "Succeeded"
        assert node_of(p) == node
        assert not await liqo.evictions(kube, offloaded)


async def test_delete_refuses_while_a_pod_runs_on_the_virtual_node(
    kube: Kube, donor: Path, offloaded: str, target: str
) -> None:
    provider = liqo.provider(kube, target)
    unit = await provider.create(_spec(target, "r1"))
    assert unit.node is not None
    body = {
        "metadata": {"name": "pinned"},
        "spec": {
            "nodeName": unit.node,
            "containers": [{"name": "w", "image": "x", "resources": {"limits": {GPU: 1}}}],
        },
    }
    await kube.raw(kube.core.create_namespaced_pod, offloaded, body)

    async def pinned_running() -> list[dict[str, Any]] | None:
        return await running_on(kube, offloaded, 1)

    await eventually(pinned_running, within=30, what="the pinned pod Running")
    with pytest.raises(ProviderError, match="still run on node"):
        await provider.delete(unit.id, unit.node)
    assert await liqo.slices(kube, f"burstd.io/target={target}")
    await kube.delete_pod(offloaded, "pinned")

    async def pod_gone() -> bool:
        return not await kube.pods(offloaded)

    await eventually(pod_gone, within=30, what="the pod gone")
    await provider.delete(unit.id, unit.node)
    assert not await liqo.slices(kube, f"burstd.io/target={target}")
    assert not await liqo.evictions(kube, offloaded)


async def test_a_node_left_behind_is_deleted(
    kube: Kube, donor: Path, offloaded: str, target: str, kubeconfig: Path
) -> None:
    provider = liqo.provider(kube, target)
    unit = await provider.create(_spec(target, "n1"))
    async with liqo.faults(kubeconfig, leave_node=True):
        await provider.delete(unit.id, unit.node)
    assert not await liqo.slices(kube, f"burstd.io/target={target}")
    assert not await kube.nodes(f"burstd.io/target={target}")


async def test_no_peering_is_a_clear_error_that_is_not_retried(
    kube: Kube, donor: Path, target: str
) -> None:
    provider = liqo.provider(kube, target, remote_cluster_id="nowhere")
    with pytest.raises(ProviderError, match="no peering with donor 'nowhere'") as err:
        await provider.create(_spec(target, "p1"))
    assert not err.value.retryable
    assert not await liqo.slices(kube, f"burstd.io/target={target}")


async def test_the_target_reports_a_missing_peering_and_a_namespace_not_offloaded(
    kube: Kube, donor: Path, offloaded: str, target: str
) -> None:
    [problem] = await liqo.provider(kube, target, remote_cluster_id="nowhere").problems()
    assert problem.startswith("no peering with donor 'nowhere': no ForeignCluster for it")
    provider = liqo.provider(kube, target)
    plain = await kube.create_namespace("lqx")
    try:
        # More GPUs than any node has: the pods stay pending.
        await kube.create_pod(plain, "waits", gpus=64)
        await kube.create_pod(offloaded, "waits", gpus=64)
        problems = await provider.problems()
        assert (
            f"namespace {plain} has pending GPU pods but no NamespaceOffloading: Liqo will not "
            f"offload them to donor {liqo.DONOR_ID} (liqoctl offload namespace {plain})"
        ) in problems
        assert not [p for p in problems if f"namespace {offloaded} " in p]
    finally:
        await kube.delete_namespace(plain)


async def test_the_donor_taking_its_gpus_back_denies_new_slices_only(
    kube: Kube, donor: Path, offloaded: str, target: str
) -> None:
    provider = liqo.provider(kube, target)
    unit = await provider.create(_spec(target, "g1"))
    body = {
        "metadata": {"name": "kept"},
        "spec": {
            "nodeName": unit.node,
            "tolerations": [{"key": "virtual-node.liqo.io/not-allowed", "operator": "Exists"}],
            "containers": [{"name": "w", "image": "x", "resources": {"limits": {GPU: 4}}}],
        },
    }
    await kube.raw(kube.core.create_namespaced_pod, offloaded, body)
    async with Kube(donor) as d:
        ns = await d.create_namespace("local")
        try:

            async def kept_running() -> list[dict[str, Any]] | None:
                return await running_on(kube, offloaded, 1)

            await eventually(kept_running, within=30, what="the offloaded pod Running")
            # The donor's own work grows onto the 12 GPUs it had left.
            for i in range(3):
                await d.create_pod(ns, f"own-{i}", gpus=4)

            async def own_running() -> list[dict[str, Any]] | None:
                return await running_on(d, ns, 3)

            await eventually(own_running, within=30, what="the donor's own pods Running")
            with pytest.raises(CapacityError, match="denied"):
                await provider.create(_spec(target, "g2"))
            # The unit lent before is untouched: its slice, node and pod are all still there.
            (rs,) = await liqo.slices(kube, f"burstd.io/target={target}")
            assert name_of(rs) == unit.node
            (p,) = await kube.pods(offloaded)
            assert phase(p) == "Running"
            assert [u.id for u in await provider.list_units() if u.ready] == [unit.id]
            assert not await liqo.evictions(kube, offloaded)
        finally:
            # Give the donor its GPUs back before the next test asks for them.
            for i in range(3):
                await d.delete_pod(ns, f"own-{i}")

            async def own_gone() -> bool:
                return not await d.pods(ns)

            await eventually(own_gone, within=30, what="the donor's own pods gone")
            await d.delete_namespace(ns)
    await kube.delete_pod(offloaded, "kept")

    async def pod_gone() -> bool:
        return not await kube.pods(offloaded)

    await eventually(pod_gone, within=30, what="the pod gone")
    await provider.delete(unit.id, unit.node)


def _spec(target: str, uid: str, deadline: float = 60) -> UnitSpec:
    unit = f"{target}-{uid}"
    return UnitSpec(
        id=unit,
        target=target,
        rule="r",
        gpus=4,
        labels={"app.kubernetes.io/managed-by": "burstd", "burstd.io/unit": unit},
        ready_deadline=deadline,
    )


async def test_a_slow_donor_is_waited_for_within_the_deadline(
    kube: Kube, donor: Path, target: str, kubeconfig: Path
) -> None:
    provider = liqo.provider(kube, target)
    async with liqo.faults(kubeconfig, accept_delay=2):
        unit = await provider.create(_spec(target, "s1"))
    try:
        assert unit.ready
        (rs,) = await liqo.slices(kube, f"burstd.io/target={target}")
        assert rs["status"]["resources"][GPU] == "4"
    finally:
        await provider.delete(unit.id, unit.node)


async def test_a_dead_virtual_kubelet_is_not_ready_and_rolled_back(
    kube: Kube, donor: Path, target: str, kubeconfig: Path
) -> None:
    provider = liqo.provider(kube, target)
    async with liqo.faults(kubeconfig, kubelet_dead=True):
        with pytest.raises(NotReadyError, match="not Ready"):
            await provider.create(_spec(target, "k1", deadline=4))
    assert not await liqo.slices(kube, f"burstd.io/target={target}")
    assert not await kube.nodes(f"burstd.io/target={target}")


async def test_a_donor_without_peering_never_blocks_another(
    kube: Kube, donor: Path, offloaded: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    config = tmp_path / "rules.yaml"
    ghost = f"{target}k"  # named so the fixture's cleanup covers it
    rules = liqo.liqo_rules_yaml(namespace=offloaded, donor=target, ladder=[ghost, target])
    # A second Liqo target whose donor was never peered, first on the ladder.
    ghost_target = rules.split("targets:\n", 1)[1].split("rules:\n", 1)[0]
    ghost_target = ghost_target.replace(f"  {target}:", f"  {ghost}:", 1)
    ghost_target = ghost_target.replace("remote_cluster_id: donor", "remote_cluster_id: nowhere")
    config.write_text(rules.replace("rules:\n", ghost_target + "rules:\n", 1))
    async with burstd_in_process(config, kubeconfig) as app:
        await kube.create_pod(offloaded, "work", gpus=4)

        async def one_running() -> list[dict[str, Any]] | None:
            return await running_on(kube, offloaded, 1)

        (pod,) = await eventually(one_running, within=90, what="the pod Running")
        (node,) = await kube.nodes(f"burstd.io/target={target}")
        assert node_of(pod) == name_of(node)
        ups = scale_ups(app)
        assert [d.target for d in ups] == [ghost, target]
        assert "no peering with donor 'nowhere'" in ups[1].reason
        assert not await liqo.slices(kube, f"burstd.io/target={ghost}")

"""The kwok provider against the real API server and kwok: the Provider contract."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from burstd.providers.base import NotReadyError, ProviderError, UnitSpec
from burstd.providers.kwok.provider import KwokProvider
from tests.integration.kube import Kube, eventually, name_of, node_of, phase

pytestmark = pytest.mark.integration


def spec(target: str, uid: str, **kw: object) -> UnitSpec:
    base = UnitSpec(
        id=f"{target}-{uid}",
        target=target,
        rule="contract",
        gpus=2,
        gpu_model="NVIDIA-L4",
        labels={"app.kubernetes.io/managed-by": "burstd", "burstd.io/unit": f"{target}-{uid}"},
        ready_deadline=30,
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


async def test_create_is_idempotent_and_lists_cordons_evicts_deletes(
    kube: Kube, namespace: str, target: str, kubeconfig: Path
) -> None:
    p = KwokProvider(kube.api, target, {"poll_interval": 0.1})
    s = spec(target, "a1")
    made = await p.create(s)
    assert made.ready
    assert made.node == s.id
    assert made.gpus == 2
    # Same id again: the same node, not a second one.
    again = await p.create(s)
    assert again.node == made.node
    (listed,) = await p.list_units()
    assert (listed.id, listed.rule, listed.gpus, listed.gpu_model) == (
        s.id,
        "contract",
        2,
        "NVIDIA-L4",
    )

    await kube.create_pod(namespace, "w", gpus=1)

    async def running() -> bool:
        pods = await kube.pods(namespace)
        return bool(pods) and phase(pods[0]) == "Running" and node_of(pods[0]) == made.node

    await eventually(running, within=30, what="the pod on the kwok node")
    await p.cordon(s.id, made.node)
    await p.cordon(s.id, made.node)
    (listed,) = await p.list_units()
    assert listed.cordoned
    await p.uncordon(s.id, made.node)
    assert not (await p.list_units())[0].cordoned

    await p.evict(s.id, made.node, [f"{namespace}/w", f"{namespace}/already-gone"])

    async def evicted() -> bool:
        return not await kube.pods(namespace)

    await eventually(evicted, within=30, what="the pod evicted")

    await p.delete(s.id, made.node)
    await p.delete(s.id, made.node)  # idempotent
    assert await p.list_units() == []


async def test_not_ready_by_the_deadline_leaves_nothing_behind(
    kube: Kube, namespace: str, target: str
) -> None:
    slow = {"node_template": {"annotations": {"node-initialize.stage.kwok.x-k8s.io/delay": "1h"}}}
    p = KwokProvider(kube.api, target, {"poll_interval": 0.1, **slow})
    with pytest.raises(NotReadyError):
        await p.create(spec(target, "slow", ready_deadline=1.5))
    assert await kube.nodes(f"burstd.io/target={target}") == []


async def test_delete_refuses_a_node_that_is_not_the_units(
    kube: Kube, namespace: str, target: str
) -> None:
    p = KwokProvider(kube.api, target, {"poll_interval": 0.1})
    made = await p.create(spec(target, "b1"))
    with pytest.raises(ProviderError, match="not unit"):
        await p.delete(f"{target}-other", made.node)
    assert [name_of(n) for n in await kube.nodes(f"burstd.io/target={target}")] == [made.node]
    await p.delete(f"{target}-b1", made.node)

"""Release and adoption never evict a running job by accident and never leave a unit behind,
on a real control plane, in both drain modes. ``max_wait`` is 1 s throughout: were a drain's
clock to carry over, or an operator's cordon be read as burstd's, ``evict`` mode would strike
at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from burstd.app import App
from burstd.model import Evict, ScaleUp, Uncordon, UnitPhase
from tests.integration.kube import (
    Kube,
    burstd_in_process,
    cordoned,
    eventually,
    name_of,
    node_of,
    passes,
    phase,
    rules_yaml,
)

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("mode", ["wait", "evict"])]

MIG = "nvidia.com/mig-1g.10gb"


def rules(target: str, namespace: str, mode: str, *, rule: str = "burst", shape: str = "") -> str:
    return rules_yaml(
        target=target,
        namespace=namespace,
        rule=rule,
        shape=shape,
        idle_for="2s",
        drain=mode,
        max_wait="1s",
    )


async def running_on(kube: Kube, namespace: str, name: str) -> str:
    async def check() -> str | None:
        pod = await kube.pod(namespace, name)
        return node_of(pod) if phase(pod) == "Running" else None

    return await eventually(check, within=60, what=f"{name} running")


async def node_state(kube: Kube, name: str) -> dict[str, object] | None:
    for n in await kube.nodes():
        if name_of(n) == name:
            return n
    return None


def evicted(app: App) -> list[Evict]:
    return [a.decision for a in app.applied if isinstance(a.decision, Evict)]


async def still_running(kube: Kube, namespace: str, name: str, node: str) -> None:
    pod = await kube.pod(namespace, name)
    assert phase(pod) == "Running"
    assert node_of(pod) == node
    assert not pod["metadata"].get("deletionTimestamp")


async def gone(kube: Kube, node: str) -> None:
    async def check() -> bool:
        return await node_state(kube, node) is None

    await eventually(check, within=60, what=f"node {node} given back")


async def test_rule_renamed_and_back_takes_the_unit_back(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path, mode: str
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(rules(target, namespace, mode))
    async with burstd_in_process(config, kubeconfig) as app:
        await kube.create_pod(namespace, "job", gpus=4)
        node = await running_on(kube, namespace, "job")
        (uid,) = app.actuator.units

        config.write_text(rules(target, namespace, mode, rule="renamed"))
        assert app.reload_now()

        async def orphan_draining() -> bool:
            unit = app.actuator.units[uid]
            n = await node_state(kube, node)
            return unit.phase is UnitPhase.DRAINING and n is not None and cordoned(n)

        await eventually(orphan_draining, within=30, what="the orphan cordoned and draining")
        await passes(app, 3)  # well past max_wait: the orphan's drain never evicts
        await still_running(kube, namespace, "job", node)

        config.write_text(rules(target, namespace, mode))
        assert app.reload_now()

        async def back_in_service() -> bool:
            n = await node_state(kube, node)
            ready = app.actuator.units[uid].phase is UnitPhase.READY
            return ready and n is not None and not cordoned(n)

        await eventually(back_in_service, within=30, what="the unit uncordoned")
        await passes(app, 5)
        await still_running(kube, namespace, "job", node)
        assert not evicted(app)
        assert any(isinstance(a.decision, Uncordon) for a in app.applied)
        assert not n_annotated(await node_state(kube, node))

        await kube.delete_pod(namespace, "job")
        await gone(kube, node)


def n_annotated(node: dict[str, object] | None) -> bool:
    assert node is not None
    meta = node["metadata"]
    assert isinstance(meta, dict)
    return "burstd.io/cordoned-at" in (meta.get("annotations") or {})


async def test_an_operators_cordon_is_held_across_a_restart(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path, mode: str
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(rules(target, namespace, mode))
    async with burstd_in_process(config, kubeconfig) as app:
        await kube.create_pod(namespace, "job", gpus=4)
        node = await running_on(kube, namespace, "job")
        (uid,) = app.actuator.units
        await kube.cordon_node(node)

        async def held() -> bool:
            return app.actuator.units[uid].held

        await eventually(held, within=30, what="burstd to see the operator's cordon")
        await passes(app, 3)
        assert not evicted(app)

    async with burstd_in_process(config, kubeconfig) as app:
        (adopted,) = app.adopted
        assert adopted.held
        assert adopted.phase is UnitPhase.READY
        await passes(app, 8)
        await still_running(kube, namespace, "job", node)
        n = await node_state(kube, node)
        assert n is not None
        assert cordoned(n), "burstd must not undo an operator's cordon"
        assert not evicted(app)
        assert not any(isinstance(a.decision, Uncordon) for a in app.applied)
        # Its free room is not counted: a new pending pod gets a unit of its own.
        await kube.create_pod(namespace, "more", gpus=1)
        assert await running_on(kube, namespace, "more") != node

        # Once nothing runs on it and it has been idle for idle_for, it is given back.
        await kube.delete_pod(namespace, "job")
        await gone(kube, node)


async def test_units_of_a_target_gone_while_down_are_adopted_and_given_back(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path, mode: str
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(rules(target, namespace, mode))
    async with burstd_in_process(config, kubeconfig):
        await kube.create_pod(namespace, "job", gpus=4)
        node = await running_on(kube, namespace, "job")

    renamed = f"{target}x"
    config.write_text(rules(renamed, namespace, mode))
    try:
        async with burstd_in_process(config, kubeconfig) as app:
            (adopted,) = app.adopted
            assert adopted.target == target
            assert target in app.providers

            async def cordoned_orphan() -> bool:
                n = await node_state(kube, node)
                return n is not None and cordoned(n)

            await eventually(cordoned_orphan, within=30, what="the orphan target's unit cordoned")
            await passes(app, 5)
            await still_running(kube, namespace, "job", node)
            assert not evicted(app)
            await kube.delete_pod(namespace, "job")
            await gone(kube, node)
    finally:
        await kube.delete_nodes(f"burstd.io/target={renamed}")


async def test_an_adopted_unit_keeps_the_shape_it_was_made_with(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path, mode: str
) -> None:
    """Made as 4 whole GPUs, adopted after the target became MIG: still 4 whole GPUs, so MIG
    pods get a MIG unit instead of waiting on a node that cannot hold them."""
    config = tmp_path / "rules.yaml"
    config.write_text(rules(target, namespace, mode))
    async with burstd_in_process(config, kubeconfig):
        await kube.create_pod(namespace, "job", gpus=4)
        whole = await running_on(kube, namespace, "job")

    config.write_text(rules(target, namespace, mode, shape="mig: {1g.10gb: 7}"))
    async with burstd_in_process(config, kubeconfig) as app:
        (adopted,) = app.adopted
        assert (adopted.gpus, adopted.mig) == (4, ())
        # Seven slices: one GPU's worth, so the pending trigger (1 GPU) fires.
        await kube.create_pod(namespace, "slice", gpus=7, resource=MIG)
        sliced = await running_on(kube, namespace, "slice")
        assert sliced != whole
        n = await node_state(kube, sliced)
        assert n is not None
        status = n["status"]
        assert isinstance(status, dict)
        assert status["allocatable"][MIG] == "7"
        made = [a for a in app.applied if isinstance(a.decision, ScaleUp)]
        assert len(made) == 1
        mig_unit = app.actuator.units[made[0].units[0]]
        assert mig_unit.mig == (("1g.10gb", 7),)

    # Adopted again, the MIG unit keeps its slices.
    async with burstd_in_process(config, kubeconfig) as app:
        shapes: Callable[[], dict[str, object]] = lambda: {  # noqa: E731
            u.node or "": u.mig for u in app.adopted
        }
        assert shapes()[sliced] == (("1g.10gb", 7),)
        await kube.delete_pod(namespace, "job")
        await kube.delete_pod(namespace, "slice")
        await gone(kube, whole)
        await gone(kube, sliced)

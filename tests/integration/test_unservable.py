"""Demand is only what a new unit would really take, on a real kube-scheduler: pods whose
required node affinity no unit meets are never bursted for (the loop of empty nodes seen in
the field), and the safety net stops the loop for what burstd's model cannot see."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from burstd.model import ScaleUp
from tests.integration.kube import (
    Kube,
    burstd_in_process,
    eventually,
    name_of,
    node_of,
    passes,
    phase,
    rules_yaml,
    unschedulable,
)

pytestmark = pytest.mark.integration

MODEL = "NVIDIA-A100-SXM4-80GB"


def required(*expressions: dict[str, Any]) -> dict[str, Any]:
    return {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": list(expressions)}]
                }
            }
        }
    }


async def test_pods_no_unit_can_take_get_no_unit(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(rules_yaml(target=target, namespace=namespace, idle_for="2s"))
    async with burstd_in_process(config, kubeconfig) as app:
        zone = {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["z9"]}
        not_model = {"key": "nvidia.com/gpu.product", "operator": "NotIn", "values": [MODEL]}
        await kube.create_pod(namespace, "zone", gpus=4, spec=required(zone))
        await kube.create_pod(namespace, "model", gpus=4, spec=required(not_model))
        await kube.create_pod(namespace, "fine", gpus=4)

        async def fine_running() -> str | None:
            pod = await kube.pod(namespace, "fine")
            return node_of(pod) if phase(pod) == "Running" else None

        node = await eventually(fine_running, within=60, what="the servable pod running")

        async def reported() -> bool:
            return {f"{namespace}/zone", f"{namespace}/model"} <= set(app.unservable)

        await eventually(reported, within=30, what="both pods reported unservable")
        assert "topology.kubernetes.io/zone In [z9]" in app.unservable[f"{namespace}/zone"]
        assert "NotIn" in app.unservable[f"{namespace}/model"]
        # Pass after pass, nothing more is made for them.
        await passes(app, 15)
        nodes = await kube.nodes(f"burstd.io/target={target}")
        assert [name_of(n) for n in nodes] == [node]
        for name in ("zone", "model"):
            pod = await kube.pod(namespace, name)
            assert unschedulable(pod)
        scale_ups = [a.decision for a in app.applied if isinstance(a.decision, ScaleUp)]
        assert [d.pods for d in scale_ups] == [(f"{namespace}/fine",)]

        # The unservable pods do not keep the unit: once the servable one is gone, it goes.
        await kube.delete_pod(namespace, "fine")

        async def released() -> bool:
            return not await kube.nodes(f"burstd.io/target={target}")

        await eventually(released, within=60, what="the unit given back")


async def test_the_safety_net_stops_the_loop_for_what_the_model_cannot_see(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    """A required pod affinity to pods that do not exist: burstd does not model inter-pod
    affinity, so it bursts once; the scheduler does not place the pod on the new unit, which
    after the grace period is marked, goes idle and is given back, and no second unit
    follows."""
    config = tmp_path / "rules.yaml"
    config.write_text(rules_yaml(target=target, namespace=namespace, idle_for="2s"))
    affinity = {
        "affinity": {
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": {"app": "nothing-has-this"}},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        }
    }
    async with burstd_in_process(config, kubeconfig) as app:
        await kube.create_pod(namespace, "picky", gpus=1, spec=affinity)

        async def misfit() -> bool:
            return any(m.pod == f"{namespace}/picky" for m in app.actuator.misfits.values())

        await eventually(misfit, within=120, what="the safety net to mark the pod")

        async def released() -> bool:
            return not await kube.nodes(f"burstd.io/target={target}")

        await eventually(released, within=60, what="the empty unit given back")
        await passes(app, 10)
        assert not await kube.nodes(f"burstd.io/target={target}")
        scale_ups = [a for a in app.applied if isinstance(a.decision, ScaleUp)]
        assert len(scale_ups) == 1
        assert f"{namespace}/picky" in app.unservable
        assert "the scheduler did not place it" in app.unservable[f"{namespace}/picky"]
        assert unschedulable(await kube.pod(namespace, "picky"))

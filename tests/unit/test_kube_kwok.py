"""The kwok provider's Node objects and how it reads them back (no API server here; the
integration tests drive it against a real one)."""

from __future__ import annotations

from typing import Any

from burstd.providers import kube
from burstd.providers.base import Provider, UnitSpec
from burstd.providers.kwok.provider import KwokProvider

SPEC = UnitSpec(
    id="kw-abc123",
    target="kw",
    rule="jobs",
    gpus=4,
    gpu_model="NVIDIA-A100",
    labels={"app.kubernetes.io/managed-by": "burstd", "burstd.io/unit": "kw-abc123"},
)


def provider(**params: Any) -> KwokProvider:
    return KwokProvider(object(), "kw", params)


def test_is_a_provider() -> None:
    assert isinstance(provider(), Provider)


def test_manifest() -> None:
    p = provider(
        name_prefix="kwok-",
        node_template={
            "labels": {"zone": "a", "burstd.io/unit": "spoofed"},
            "annotations": {"note": "x"},
            "taints": [{"key": "burst", "value": "yes", "effect": "NoSchedule"}, {"bad": 1}],
            "cpu": 16,
            "memory": "64Gi",
            "resources": {"example.com/fpga": 1},
        },
    )
    node = p.manifest(SPEC)
    meta = node["metadata"]
    assert meta["name"] == "kwok-kw-abc123"
    assert meta["annotations"]["kwok.x-k8s.io/node"] == "fake"
    assert meta["annotations"]["burstd.io/unit"] == "kw-abc123"
    assert meta["annotations"]["burstd.io/gpus"] == "4"
    assert meta["annotations"]["note"] == "x"
    labels = meta["labels"]
    assert labels["zone"] == "a"
    assert labels["burstd.io/unit"] == "kw-abc123"
    assert labels["burstd.io/target"] == "kw"
    assert labels["burstd.io/rule"] == "jobs"
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-A100"
    assert labels["app.kubernetes.io/managed-by"] == "burstd"
    capacity = node["status"]["capacity"]
    assert capacity == node["status"]["allocatable"]
    assert capacity["nvidia.com/gpu"] == "4"
    assert capacity["cpu"] == "16"
    assert capacity["memory"] == "64Gi"
    assert capacity["pods"] == "110"
    assert capacity["example.com/fpga"] == "1"
    assert node["spec"]["taints"] == [{"key": "burst", "value": "yes", "effect": "NoSchedule"}]


def test_mig_manifest_offers_slices() -> None:
    spec = UnitSpec(id="kw-1", target="kw", rule="r", gpus=4, mig={"1g.10gb": 28})
    capacity = provider().manifest(spec)["status"]["capacity"]
    assert capacity["nvidia.com/mig-1g.10gb"] == "28"
    assert "nvidia.com/gpu" not in capacity


def ready_node(**status: Any) -> dict[str, Any]:
    node = provider().manifest(SPEC)
    node["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    node["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    node["status"].update(status)
    return node


def test_ready_needs_the_condition_the_gpus_and_no_startup_taint() -> None:
    need = kube.gpu_need(SPEC.gpus, SPEC.mig)
    assert kube.node_ready(ready_node(), need)
    assert not kube.node_ready(ready_node(conditions=[]), need)
    assert not kube.node_ready(ready_node(allocatable={"nvidia.com/gpu": "2"}), need)
    tainted = ready_node()
    tainted["spec"]["taints"] = [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]
    assert not kube.node_ready(tainted, need)


def test_found_reads_back_the_unit() -> None:
    node = ready_node()
    node["spec"]["unschedulable"] = True
    unit = provider()._found(node)
    assert unit.id == "kw-abc123"
    assert (unit.target, unit.rule, unit.gpus, unit.gpu_model) == ("kw", "jobs", 4, "NVIDIA-A100")
    assert unit.ready
    assert unit.cordoned
    assert unit.node == "kw-abc123"
    assert unit.created_at == 1767225600.0


def test_only_its_own_nodes_are_owned() -> None:
    node = ready_node()
    assert kube.owned(node, "kw-abc123")
    assert not kube.owned(node, "kw-other")
    node["metadata"]["labels"].pop("app.kubernetes.io/managed-by")
    assert not kube.owned(node, "kw-abc123")

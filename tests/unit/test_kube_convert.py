"""Raw pod and node JSON to the model: what counts as GPU demand, and what is kept."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from burstd.model import GpuRequest, PodPhase
from burstd.model.quantity import parse_quantity
from burstd.sources.kube.convert import (
    accepted_models,
    node_from_raw,
    parse_time,
    pod_from_raw,
    pod_gpu_resources,
)

T0 = "2026-01-02T03:04:05Z"


def raw_pod(
    name: str = "p",
    *,
    gpus: object = 1,
    unschedulable: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "metadata": {
            "name": name,
            "namespace": "ml",
            "labels": {"team": "vision"},
            "creationTimestamp": "2026-01-02T03:00:00Z",
        },
        "spec": {
            "containers": [
                {"name": "c", "resources": {"limits": {"nvidia.com/gpu": gpus, "cpu": "2"}}}
            ]
        },
        "status": {"phase": "Pending", "qosClass": "Burstable"},
    }
    if unschedulable:
        pod["status"]["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "lastTransitionTime": T0,
                "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
            }
        ]
    for path, value in extra.items():
        section, _, key = path.partition("__")
        pod[section][key] = value
    return pod


def test_unschedulable_gpu_pod_is_demand() -> None:
    pod = pod_from_raw(raw_pod(gpus="2"))
    assert pod is not None
    assert pod.is_demand
    assert pod.gpu == GpuRequest(gpus=2)
    assert pod.pending_since == parse_time(T0)
    assert pod.created_at == parse_time("2026-01-02T03:00:00Z")
    assert pod.labels == {"team": "vision"}
    assert pod.qos == "Burstable"
    assert pod.key == "ml/p"


def test_pending_without_the_schedulers_verdict_is_not_demand() -> None:
    pod = pod_from_raw(raw_pod(unschedulable=False))
    assert pod is not None
    assert not pod.is_demand
    assert pod.pending_since is None


def test_scheduled_condition_true_is_not_demand() -> None:
    raw = raw_pod()
    raw["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"}]
    pod = pod_from_raw(raw)
    assert pod is not None
    assert not pod.is_demand


def test_other_scheduling_failures_are_not_demand() -> None:
    raw = raw_pod()
    raw["status"]["conditions"][0]["reason"] = "SchedulerError"
    pod = pod_from_raw(raw)
    assert pod is not None
    assert not pod.is_demand


def test_pod_being_deleted_is_not_demand() -> None:
    raw = raw_pod()
    raw["metadata"]["deletionTimestamp"] = T0
    pod = pod_from_raw(raw)
    assert pod is not None
    assert not pod.is_demand


def test_nominated_pod_waits_for_preemption_not_for_burstd() -> None:
    pod = pod_from_raw(raw_pod(status__nominatedNodeName="gpu-1"))
    assert pod is not None
    assert not pod.is_demand


def test_daemonset_pods_are_not_kept() -> None:
    raw = raw_pod()
    raw["metadata"]["ownerReferences"] = [{"kind": "DaemonSet", "name": "dcgm-exporter"}]
    assert pod_from_raw(raw) is None
    raw["spec"]["nodeName"] = "gpu-1"
    assert pod_from_raw(raw) is None


def test_job_owned_pods_are_kept() -> None:
    raw = raw_pod()
    raw["metadata"]["ownerReferences"] = [{"kind": "Job", "name": "train"}]
    assert pod_from_raw(raw) is not None


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_finished_pods_are_not_kept(phase: str) -> None:
    raw = raw_pod(unschedulable=False, status__phase=phase)
    raw["spec"]["nodeName"] = "gpu-1"
    assert pod_from_raw(raw) is None


def test_running_gpu_pod() -> None:
    raw = raw_pod(unschedulable=False, status__phase="Running")
    raw["spec"]["nodeName"] = "gpu-1"
    pod = pod_from_raw(raw)
    assert pod is not None
    assert pod.phase is PodPhase.RUNNING
    assert pod.node == "gpu-1"
    assert pod.is_running
    assert not pod.is_demand


def test_bound_pod_is_not_demand_even_with_a_stale_condition() -> None:
    raw = raw_pod()
    raw["spec"]["nodeName"] = "gpu-1"
    pod = pod_from_raw(raw)
    assert pod is not None
    assert not pod.is_demand


def test_cpu_pods_are_kept_slim_only_when_bound() -> None:
    raw = raw_pod()
    raw["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "1"}}
    assert pod_from_raw(raw) is None
    raw["spec"]["nodeName"] = "node-1"
    raw["status"]["phase"] = "Running"
    pod = pod_from_raw(raw)
    assert pod is not None
    assert not pod.gpu.is_gpu
    assert pod.labels == {}
    assert pod.is_running


def test_never_evict_annotation() -> None:
    raw = raw_pod()
    raw["metadata"]["annotations"] = {"burstd.io/never-evict": "true"}
    pod = pod_from_raw(raw)
    assert pod is not None
    assert pod.never_evict
    raw["metadata"]["annotations"] = {"burstd.io/never-evict": "false"}
    pod = pod_from_raw(raw)
    assert pod is not None
    assert not pod.never_evict


def test_priority_and_class() -> None:
    raw = raw_pod()
    raw["spec"]["priority"] = 1000
    raw["spec"]["priorityClassName"] = "high"
    pod = pod_from_raw(raw)
    assert pod is not None
    assert (pod.priority, pod.priority_class) == (1000, "high")


def container(name: str, **resources: dict[str, object]) -> dict[str, Any]:
    return {"name": name, "resources": resources}


def test_requests_win_over_limits_and_containers_add_up() -> None:
    spec = {
        "containers": [
            container("a", requests={"nvidia.com/gpu": "1"}, limits={"nvidia.com/gpu": "1"}),
            container("b", limits={"nvidia.com/gpu": 2}),
            container("c", requests={"cpu": "1"}),
        ]
    }
    assert pod_gpu_resources(spec) == {"nvidia.com/gpu": 3}


def test_init_containers_count_as_a_maximum() -> None:
    spec = {
        "initContainers": [
            container("warmup", limits={"nvidia.com/gpu": 4}),
            container("small", limits={"nvidia.com/gpu": 1}),
        ],
        "containers": [container("main", limits={"nvidia.com/gpu": 2})],
    }
    assert pod_gpu_resources(spec) == {"nvidia.com/gpu": 4}
    spec["containers"] = [container("main", limits={"nvidia.com/gpu": 6})]
    assert pod_gpu_resources(spec) == {"nvidia.com/gpu": 6}


def test_sidecar_init_containers_add_to_everything_after_them() -> None:
    sidecar = container("proxy", limits={"nvidia.com/gpu": 1})
    sidecar["restartPolicy"] = "Always"
    spec = {
        "initContainers": [sidecar, container("warmup", limits={"nvidia.com/gpu": 3})],
        "containers": [container("main", limits={"nvidia.com/gpu": 2})],
    }
    # warmup runs beside the sidecar (1 + 3), main does too (1 + 2).
    assert pod_gpu_resources(spec) == {"nvidia.com/gpu": 4}


def test_mig_resources() -> None:
    raw = raw_pod()
    raw["spec"]["containers"] = [
        container("a", limits={"nvidia.com/mig-1g.10gb": 1}),
        container("b", limits={"nvidia.com/mig-1g.10gb": "1", "nvidia.com/mig-3g.40gb": 1}),
    ]
    pod = pod_from_raw(raw)
    assert pod is not None
    assert pod.gpu.gpus == 0
    assert dict(pod.gpu.mig) == {"1g.10gb": 2, "3g.40gb": 1}
    assert pod.is_demand


def test_zero_gpu_request_is_not_a_gpu_pod() -> None:
    assert pod_from_raw(raw_pod(gpus="0")) is None


def affinity(*terms: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": t} for t in terms]
            }
        }
    }


def model_in(*models: str) -> dict[str, Any]:
    return {"key": "nvidia.com/gpu.product", "operator": "In", "values": list(models)}


def test_models_from_node_selector() -> None:
    spec = {"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100"}}
    assert accepted_models(spec) == (frozenset({"NVIDIA-A100"}), True)


def test_models_from_affinity_terms_are_alternatives() -> None:
    spec = {"affinity": affinity([model_in("A100")], [model_in("H100", "L40S")])}
    assert accepted_models(spec) == (frozenset({"A100", "H100", "L40S"}), True)


def test_a_term_without_a_model_constraint_accepts_any_model() -> None:
    other = {"key": "zone", "operator": "In", "values": ["a"]}
    spec = {"affinity": affinity([model_in("A100")], [other])}
    assert accepted_models(spec) == (frozenset(), True)


def test_expressions_of_one_term_all_hold() -> None:
    spec = {"affinity": affinity([model_in("A100", "H100"), model_in("H100", "L4")])}
    assert accepted_models(spec) == (frozenset({"H100"}), True)


def test_not_in_is_left_to_the_scheduler() -> None:
    expr = {"key": "nvidia.com/gpu.product", "operator": "NotIn", "values": ["T4"]}
    assert accepted_models({"affinity": affinity([expr])}) == (frozenset(), True)


def test_selector_and_affinity_both_hold() -> None:
    spec = {
        "nodeSelector": {"nvidia.com/gpu.product": "H100"},
        "affinity": affinity([model_in("A100", "H100")]),
    }
    assert accepted_models(spec) == (frozenset({"H100"}), True)


def test_contradicting_constraints_are_never_demand() -> None:
    raw = raw_pod()
    raw["spec"]["nodeSelector"] = {"nvidia.com/gpu.product": "H100"}
    raw["spec"]["affinity"] = affinity([model_in("A100")])
    assert accepted_models(raw["spec"])[1] is False
    pod = pod_from_raw(raw)
    assert pod is not None
    assert not pod.is_demand


def test_pod_models_reach_the_request() -> None:
    raw = raw_pod()
    raw["spec"]["nodeSelector"] = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    pod = pod_from_raw(raw)
    assert pod is not None
    assert pod.gpu.models == frozenset({"NVIDIA-H100-80GB-HBM3"})


def test_malformed_fields_do_not_raise() -> None:
    raw = raw_pod(gpus="lots")
    assert pod_from_raw(raw) is None
    weird = copy.deepcopy(raw_pod())
    weird["spec"]["containers"] = "nope"
    weird["metadata"]["labels"] = None
    weird["status"]["conditions"] = [None, 3]
    assert pod_from_raw(weird) is None
    assert pod_from_raw({}) is None
    assert node_from_raw({}) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2", Decimal(2)),
        (3, Decimal(3)),
        ("500m", Decimal("0.5")),
        ("1Gi", Decimal(2**30)),
        ("1k", Decimal(1000)),
        ("1e3", Decimal(1000)),
        ("1.5", Decimal("1.5")),
        ("", None),
        ("abc", None),
        (True, None),
        (None, None),
        ("1Zi", None),
    ],
)
def test_parse_quantity(text: object, value: Decimal | None) -> None:
    assert parse_quantity(text) == value


def raw_node(name: str = "gpu-1", **extra: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "metadata": {
            "name": name,
            "labels": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
            "creationTimestamp": T0,
        },
        "spec": {},
        "status": {
            "capacity": {"cpu": "64", "nvidia.com/gpu": "8"},
            "allocatable": {"cpu": "63", "nvidia.com/gpu": "7"},
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True"},
            ],
        },
    }
    node["spec"].update(extra)
    return node


def test_gpu_node() -> None:
    node = node_from_raw(raw_node(taints=[{"key": "gpu", "value": "x", "effect": "NoExecute"}]))
    assert node is not None
    assert node.name == "gpu-1"
    assert node.gpu_model == "NVIDIA-A100-SXM4-80GB"
    assert (node.gpu_capacity, node.gpu_allocatable) == (8, 7)
    assert node.ready
    assert not node.unschedulable
    assert node.unit is None
    assert node.taints[0].key == "gpu"
    assert node.taints[0].effect == "NoExecute"
    assert node.created_at == parse_time(T0)


def test_not_ready_cordoned_unit_node() -> None:
    raw = raw_node(unschedulable=True)
    raw["metadata"]["labels"]["burstd.io/unit"] = "kwok-1"
    raw["status"]["conditions"][1]["status"] = "Unknown"
    node = node_from_raw(raw)
    assert node is not None
    assert not node.ready
    assert node.unschedulable
    assert node.unit == "kwok-1"


def test_mig_node() -> None:
    raw = raw_node()
    raw["status"]["capacity"] = {"nvidia.com/mig-1g.10gb": "14"}
    raw["status"]["allocatable"] = {"nvidia.com/mig-1g.10gb": "14", "nvidia.com/mig-2g.20gb": 0}
    node = node_from_raw(raw)
    assert node is not None
    assert node.gpu_capacity == 0
    assert dict(node.mig_allocatable) == {"1g.10gb": 14}


def test_cpu_nodes_are_not_kept_unless_they_are_units() -> None:
    raw = raw_node()
    raw["status"]["capacity"] = raw["status"]["allocatable"] = {"cpu": "8"}
    assert node_from_raw(raw) is None
    raw["metadata"]["labels"]["burstd.io/unit"] = "kwok-1"
    assert node_from_raw(raw) is not None

"""The Liqo kind as burstd knows it before any unit exists: the params a rules file may give
(checked with file:line:col), the virtual node a unit brings (Liqo's labels and taint), and the
problems the provider reports of its target (a missing peering, a namespace not offloaded)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from burstd.model import Taint
from burstd.providers import kube
from burstd.providers.base import ProviderError, UnitShape
from burstd.providers.kube import ApiError
from burstd.providers.liqo import node, resources
from burstd.providers.liqo.provider import LiqoProvider, slice_name
from burstd.rules.loader import RulesError, parse_rules

RULES = """\
version: 1
targets:
  donor:
    provider: liqo
    gpu_model: A100
    gpus_per_unit: 4
    params: {params}
rules:
  - name: r
    match: {{}}
    triggers: [{{pending: {{gpus: 1}}}}]
    burst: {{ladder: [donor]}}
"""


def test_params_get_their_defaults() -> None:
    rules = parse_rules(RULES.format(params="{remote_cluster_id: unimi}"), "r.yaml")
    params = rules.targets["donor"].params
    assert params["remote_cluster_id"] == "unimi"
    assert params["resource_slice_class"] == "default"
    assert (params["poll_interval"], params["delete_timeout"], params["node_grace"]) == (
        0.25,
        120.0,
        10.0,
    )
    assert "namespace" not in params


def test_bad_params_are_reported_by_line_and_column() -> None:
    with pytest.raises(RulesError) as err:
        parse_rules(RULES.format(params="{remote_cluster: x, memory: [1]}"), "r.yaml")
    problems = [str(p) for p in err.value.problems]
    assert "r.yaml:7:5: targets.donor.params: missing required key 'remote_cluster_id'" in problems
    assert any(
        p.startswith("r.yaml:7:14:") and "did you mean 'remote_cluster_id'" in p for p in problems
    )
    assert any(p.startswith("r.yaml:7:41: targets.donor.params.memory:") for p in problems)


def test_a_unit_brings_a_tainted_virtual_node_with_the_resources_asked() -> None:
    shape = UnitShape(target="donor", gpus=4, gpu_model="A100")
    params = {"remote_cluster_id": "unimi", "cpu": "8", "memory": "32Gi"}
    template = node(shape, params)
    assert template.taints == (
        Taint(key="virtual-node.liqo.io/not-allowed", value="true", effect="NoExecute"),
    )
    assert template.labels["liqo.io/type"] == "virtual-node"
    assert template.labels["liqo.io/remote-cluster-id"] == "unimi"
    assert template.labels["burstd.io/target"] == "donor"
    assert template.labels["nvidia.com/gpu.product"] == "A100"
    assert template.allocatable == {"nvidia.com/gpu": 4, "cpu": 8000, "memory": 32 * 2**30}


def test_mig_units_ask_for_slices_not_whole_gpus() -> None:
    shape = UnitShape(target="donor", gpus=0, mig={"1g.10gb": 7})
    assert resources(shape, {}) == {"nvidia.com/mig-1g.10gb": "7"}


def test_slice_names_are_dns_labels() -> None:
    assert slice_name("Donor_A-3fa9c1") == "donor-a-3fa9c1"
    assert len(slice_name("x" * 80)) == 63


def stubbed(monkeypatch: pytest.MonkeyPatch, answers: dict[str, Any]) -> LiqoProvider:
    """The provider with its API calls answered from ``answers`` by API method name (the
    integration suite runs it against real control planes)."""

    async def call(fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> Any:
        answer = answers[getattr(fn, "__name__", "")]
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(kube, "call", call)
    return LiqoProvider(object(), UnitShape(target="donor", gpus=4), {"remote_cluster_id": "unimi"})


def gpu_pod(namespace: str, gpus: int = 1) -> dict[str, Any]:
    limits = {"nvidia.com/gpu": gpus} if gpus else {}
    return {
        "metadata": {"namespace": namespace, "name": "p"},
        "spec": {"containers": [{"name": "c", "resources": {"limits": limits}}]},
    }


HEALTHY = {
    "status": {"modules": {"authentication": {"enabled": True}, "offloading": {"enabled": True}}}
}


async def test_a_namespace_that_is_not_offloaded_is_a_problem_of_the_target(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    liqo = stubbed(
        monkeypatch,
        {
            "get_cluster_custom_object": HEALTHY,
            "list_cluster_custom_object": {"items": [{"metadata": {"namespace": "lab"}}]},
            "list_pod_for_all_namespaces": {
                "items": [gpu_pod("lab"), gpu_pod("ml"), gpu_pod("ml"), gpu_pod("web", gpus=0)]
            },
        },
    )
    assert await liqo.problems() == [
        "namespace ml has pending GPU pods but no NamespaceOffloading: Liqo will not offload "
        "them to donor unimi (liqoctl offload namespace ml)"
    ]


async def test_only_the_namespaces_that_burst_to_the_target_are_its_problems(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    liqo = stubbed(
        monkeypatch,
        {
            "get_cluster_custom_object": HEALTHY,
            "list_cluster_custom_object": {"items": []},
            "list_pod_for_all_namespaces": {"items": [gpu_pod("lab"), gpu_pod("ml")]},
        },
    )
    [problem] = await liqo.problems(frozenset({"ml", "web"}))
    assert problem.startswith("namespace ml has pending GPU pods")
    assert await liqo.problems(frozenset({"web"})) == []
    assert len(await liqo.problems(None)) == 2


async def test_no_peering_is_a_problem_of_the_target_before_any_unit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    liqo = stubbed(
        monkeypatch,
        {
            "get_cluster_custom_object": ApiError(404, "not found"),
            "list_cluster_custom_object": {"items": []},
        },
    )
    [problem] = await liqo.problems()
    assert problem.startswith("no peering with donor 'unimi': no ForeignCluster for it")
    with pytest.raises(ProviderError, match="no peering with donor 'unimi'") as err:
        await liqo.check_peering()
    assert not err.value.retryable

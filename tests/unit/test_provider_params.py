"""Provider params are checked against the schema each provider kind declares, with the same
file:line:col errors as the rest of the rules file, and reach the provider with defaults."""

from __future__ import annotations

import textwrap

import pytest

from burstd.model import Taint
from burstd.model.params import Param, ParamType, with_defaults
from burstd.providers import registry
from burstd.providers.base import ProviderKind, bare_node
from burstd.providers.kwok import PARAMS as KWOK_PARAMS
from burstd.providers.registry import KINDS, factories
from burstd.rules.loader import RulesError, parse_rules
from burstd.rules.types import RuleSet

TEMPLATE = """\
version: 1
targets:
  k:
    provider: kwok
    gpu_model: A100
    gpus_per_unit: 4
    params:
{params}
rules:
  - name: r
    match: {{}}
    triggers: [{{pending: {{gpus: 1}}}}]
    burst: {{ladder: [k]}}
"""


def load(params: str) -> RuleSet:
    body = textwrap.indent(textwrap.dedent(params).strip("\n"), " " * 6)
    return parse_rules(TEMPLATE.format(params=body), "r.yaml")


def problems(params: str) -> list[str]:
    with pytest.raises(RulesError) as err:
        load(params)
    return [str(p) for p in err.value.problems]


def test_defaults_are_filled_in() -> None:
    target = load("name_prefix: kw-").targets["k"]
    assert target.params["name_prefix"] == "kw-"
    assert target.params["poll_interval"] == 0.25
    assert target.params["delete_timeout"] == 60.0


def test_durations_become_seconds_and_quantities_stay_text() -> None:
    target = load(
        """
        delete_timeout: 2m
        node_template: {memory: 64Gi, cpu: 8}
        """
    ).targets["k"]
    assert target.params["delete_timeout"] == 120.0
    assert target.params["node_template"]["memory"] == "64Gi"
    assert target.params["node_template"]["cpu"] == "8"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            "name_prefx: x",
            "r.yaml:8:7: targets.k.params: unknown key 'name_prefx' "
            "(hint: did you mean 'name_prefix'?)",
        ),
        ("poll_interval: 0", "r.yaml:8:22: targets.k.params.poll_interval: must be at least 10ms"),
        (
            "delete_timeout: soon",
            "r.yaml:8:23: targets.k.params.delete_timeout: invalid duration 'soon'",
        ),
        (
            "node_template: {memory: lots}",
            "r.yaml:8:31: targets.k.params.node_template.memory: must be a resource quantity "
            "like 32, 500m or 256Gi, got 'lots'",
        ),
        (
            "node_template: {taints: [{value: x}]}",
            "r.yaml:8:32: targets.k.params.node_template.taints[0]: missing required key 'key'",
        ),
        (
            "node_template: {taints: [{key: a, effect: Never}]}",
            "r.yaml:8:49: targets.k.params.node_template.taints[0].effect: must be one of "
            "NoSchedule, PreferNoSchedule, NoExecute, got 'Never'",
        ),
        (
            "node_template: {labels: {zone: 3}}",
            "r.yaml:8:38: targets.k.params.node_template.labels.zone: must be a string, got 3",
        ),
        ("node_template: [1]", "r.yaml:8:22: targets.k.params.node_template: must be a mapping"),
    ],
)
def test_bad_params_are_reported_precisely(params: str, expected: str) -> None:
    found = problems(params)
    assert any(p.startswith(expected) for p in found), found


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        """
        name_prefx: x
        poll_interval: -1
        node_template: {memory: lots}
        """
    )
    assert len(found) == 3, found


def test_the_node_template_is_what_the_provider_describes() -> None:
    target = load(
        """
        node_template:
          labels: {topology.kubernetes.io/zone: z1}
          taints: [{key: gpu, value: "yes", effect: NoSchedule}]
          cpu: 500m
          memory: 1Gi
        """
    ).targets["k"]
    node = target.node
    assert node is not None
    assert node.labels["topology.kubernetes.io/zone"] == "z1"
    assert node.labels["nvidia.com/gpu.product"] == "A100"
    assert node.labels["burstd.io/target"] == "k"
    assert node.taints == (Taint(key="gpu", value="yes", effect="NoSchedule"),)
    assert node.allocatable["cpu"] == 500
    assert node.allocatable["memory"] == 2**30
    assert node.allocatable["pods"] == 110


def test_kinds_not_declaring_params_pass_them_through(monkeypatch: pytest.MonkeyPatch) -> None:
    free = ProviderKind(name="kwok", doc="a kind with no schema", params=None, node=bare_node)
    monkeypatch.setitem(registry.KINDS, "kwok", free)
    ruleset = parse_rules(TEMPLATE.format(params="      anything: [1]"), "r.yaml")
    assert ruleset.targets["k"].params == {"anything": [1]}


def test_the_registry_lists_every_kind_and_builds_only_what_runs() -> None:
    assert {"kwok", "liqo", "terraform", "interlink"} <= set(KINDS)
    assert "kwok" in factories()
    for name, kind in KINDS.items():
        assert kind.name == name
        assert (name in factories()) == (kind.implementation is not None)


def test_with_defaults_fills_nested_mappings() -> None:
    schema = {
        "a": Param(type=ParamType.INTEGER, doc="", default=3),
        "m": Param(
            type=ParamType.MAPPING,
            doc="",
            fields={"b": Param(type=ParamType.STRING, doc="", default="x")},
        ),
    }
    assert with_defaults(schema, {}) == {"a": 3, "m": {"b": "x"}}
    assert with_defaults(schema, {"m": {}}) == {"a": 3, "m": {"b": "x"}}
    assert with_defaults(KWOK_PARAMS, {})["poll_interval"] == 0.25


def test_a_terraform_target_without_its_module_is_refused_where_it_is_written() -> None:
    text = TEMPLATE.replace("provider: kwok", "provider: terraform").format(
        params="      workdir: /var/lib/burstd/tf"
    )
    with pytest.raises(RulesError) as err:
        parse_rules(text, "r.yaml")
    assert [str(p) for p in err.value.problems] == [
        "r.yaml:7:5: targets.k.params: missing required key 'module'"
    ]

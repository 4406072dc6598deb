"""The InterLink kind without a cluster: its params are checked by the loader, its template
node carries InterLink's taint and labels, ``validate`` warns of the taint, the provider never
evicts, the planner takes Slurm-queued pods for covered demand, and the emulator's site file
is checked."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from burstd.cli import main
from burstd.model import (
    GpuRequest,
    Pod,
    PodPhase,
    ScaleUp,
    Snapshot,
    Uncordon,
    UnitPhase,
)
from burstd.plan.planner import plan
from burstd.providers.base import UnitShape
from burstd.providers.interlink import TAINT, node
from burstd.providers.interlink.provider import InterLinkProvider
from burstd.rules.loader import RulesError, parse_rules
from burstd.testing.interlink import site_from
from tests.unit import builders as b

REPO = Path(__file__).resolve().parents[2]

RULES = """\
version: 1
targets:
  hpc:
    provider: interlink
    gpu_model: A100
    gpus_per_unit: 4
    max_units: 2
    params:
{params}
rules:
  - name: r
    match: {{}}
    triggers: [{{pending: {{gpus: 1}}}}]
    burst: {{ladder: [hpc]}}
"""


def load(params: str) -> dict[str, object]:
    body = textwrap.indent(textwrap.dedent(params).strip("\n"), " " * 6)
    return dict(parse_rules(RULES.format(params=body), "r.yaml").targets["hpc"].params)


def problems(params: str) -> list[str]:
    with pytest.raises(RulesError) as err:
        load(params)
    return [str(p) for p in err.value.problems]


def test_params_get_their_defaults() -> None:
    params = load(
        """
        nodes:
          - node: hpc-1
          - {node: hpc-2, deployment: interlink/vk-2}
        """
    )
    assert params["nodes"] == [
        {"node": "hpc-1"},
        {"node": "hpc-2", "deployment": "interlink/vk-2"},
    ]
    assert params["require_connectivity"] is True
    assert params["poll_interval"] == 1.0


def test_bad_params_are_reported_with_file_line_and_column() -> None:
    assert problems("nodes: [{deployment: a/b}]") == [
        "r.yaml:9:15: targets.hpc.params.nodes[0]: missing required key 'node'"
    ]
    found = problems(
        """
        nodes: [{node: hpc-1, deploy: a/b}]
        require_connectivity: maybe
        """
    )
    assert any("r.yaml:9:" in p and "deploy" in p for p in found)
    assert any("r.yaml:10:" in p and "require_connectivity" in p for p in found)
    assert any("nodes" in p for p in problems("poll_interval: 1s"))


def test_the_template_node_carries_interlinks_taint_and_labels() -> None:
    template = node(UnitShape(target="hpc", gpus=4, gpu_model="A100"), {"cpu": "64"})
    assert template.taints[0] == TAINT
    assert (TAINT.key, TAINT.value, TAINT.effect) == (
        "virtual-node.interlink/no-schedule",
        "true",
        "NoSchedule",
    )
    assert template.labels["virtual-node.interlink/type"] == "virtual-kubelet"
    assert template.labels["nvidia-gpu-type"] == "A100"
    assert template.labels["burstd.io/target"] == "hpc"
    assert template.allocatable["cpu"] == 64_000
    assert template.allocatable["pods"] == 10_000


def test_validate_and_the_example_warn_of_the_taint() -> None:
    out = CliRunner().invoke(main, ["validate", str(REPO / "examples" / "interlink-local.yaml")])
    assert out.exit_code == 0, out.output
    assert "warning: rule 'hpc-jobs' bursts to InterLink target 'hpc'" in out.output
    assert "tolerate" in out.output
    # A rule that names no InterLink target gets no such warning.
    plain = CliRunner().invoke(main, ["validate", str(REPO / "examples" / "kwok.yaml")])
    assert "warning" not in plain.output


def test_explain_warns_too() -> None:
    out = CliRunner().invoke(
        main,
        [
            "explain",
            "--rules",
            str(REPO / "examples" / "university.yaml"),
            "--snapshot",
            str(REPO / "examples" / "snapshots" / "peak.json"),
        ],
    )
    assert out.exit_code == 0, out.output
    assert out.output.startswith(
        "warning: rule 'research' bursts to InterLink target 'hpc-leonardo'"
    )


async def test_the_provider_never_evicts_hpc_jobs() -> None:
    provider = InterLinkProvider(object(), "hpc", {"nodes": [{"node": "hpc-1"}]})
    with pytest.raises(NotImplementedError, match="HPC jobs"):
        await provider.evict("hpc-1", "hpc-1", ["ml/job-0"])
    assert [s.node for s in provider.slots] == ["hpc-1"]


def test_pods_queued_in_slurm_on_the_node_are_covered_not_new_demand() -> None:
    """Bound to the HPC node but Pending (queued in Slurm): not demand, and they keep the
    unit busy, long after the unit became ready."""
    ruleset = b.ruleset(b.target("a", gpus=4, provider="interlink"))
    unit = b.unit("u1", UnitPhase.READY, since=0.0, last_busy_at=0.0)
    assert unit.node is not None
    queued = [
        Pod(namespace="ml", name=f"j{i}", gpu=GpuRequest(gpus=2), node=unit.node) for i in range(2)
    ]
    assert all(p.phase is PodPhase.PENDING and p.is_running and not p.is_demand for p in queued)
    result = plan(Snapshot(pods=tuple(queued), units=(unit,)), ruleset, b.NOW)
    assert not result.actions, [str(d) for d in result.decisions]
    # One more pod that is really unschedulable is new demand, and gets one unit.
    more = (*queued, b.pending("new", gpus=4))
    result = plan(Snapshot(pods=more, units=(unit,)), ruleset, b.NOW)
    (scale_up,) = [d for d in result.actions if isinstance(d, ScaleUp | Uncordon)]
    assert isinstance(scale_up, ScaleUp)
    assert scale_up.units == 1


def test_the_emulators_site_file_is_checked() -> None:
    site = site_from(
        {"queue_delay": "90s", "nodes": [{"node": "a"}, {"node": "b", "deployment": "x/y"}]}
    )
    assert site.queue_delay == 90.0
    assert [n.deployment for n in site.nodes] == [None, ("x", "y")]
    with pytest.raises(ValueError, match="deployment: write namespace/name"):
        site_from({"nodes": [{"node": "a", "deployment": "y"}]})
    with pytest.raises(ValueError, match="fault"):
        site_from({"nodes": [{"node": "a", "fault": "flaky"}]})

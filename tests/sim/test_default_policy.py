"""The bundled default policy on the bundled trace and cluster beats the baselines where it
matters: less GPU waiting than no bursting, no more money than bursting immediately."""

from __future__ import annotations

from importlib import resources

import pytest

from burstd.rules.loader import parse_rules
from burstd.rules.types import RuleSet
from burstd.sim.cluster import load_nodes
from burstd.sim.compare import Setup, compare
from burstd.sim.engine import SimConfig
from burstd.sim.trace import load_trace


def default_rules() -> RuleSet:
    text = (resources.files("burstd") / "data" / "rules" / "sim-default.yaml").read_text()
    return parse_rules(text, "sim-default.yaml")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_rules_beat_the_baselines(seed):
    setup = Setup(
        trace=load_trace(),
        nodes=load_nodes()[0],
        ruleset=default_rules(),
        config=SimConfig(seed=seed),
    )
    runs = {k: v.metrics for k, v in compare(setup).items()}
    burstd, none, immediate = runs["burstd"], runs["no-burst"], runs["burst-immediately"]
    assert burstd["gpu_wait_p95_s"] < none["gpu_wait_p95_s"]
    assert burstd["gpu_wait_mean_s"] < none["gpu_wait_mean_s"] / 10
    assert burstd["burst_cost_usd"] <= immediate["burst_cost_usd"]
    assert burstd["units_alive_at_end"] == 0
    assert setup.meta["baselines"]["burst-immediately"]["target"] == "cloud"

"""``--sweep`` in parallel processes gives the rows the serial run gives, in the same order."""

from __future__ import annotations

from burstd.sim.cluster import parse_spec
from burstd.sim.compare import Setup
from burstd.sim.engine import SimConfig
from burstd.sim.parallel import run_sweep
from burstd.sim.sweep import parse_sweep, variants
from burstd.sim.synthetic import generate, parse_synthetic
from tests.sim.helpers import ONE_TARGET

RULES = ONE_TARGET.format(
    gpus=4,
    max_units=4,
    price=2.0,
    ttr="2m",
    deadline="10m",
    fail=0.1,
    spread=0.3,
    capacity="null",
    minimum="60s",
    wait="1m",
    idle="5m",
    drain="",
)


def test_parallel_sweep_equals_serial():
    nodes = parse_spec("2x4:A")
    trace = generate(parse_synthetic("synthetic:pods=400,load=1.6,seed=2,median=10m"), 8)
    sweeps = [parse_sweep("rules[0].triggers[0].pending.for=0s,1m,5m,20m")]
    chosen = list(variants(RULES, "t.yaml", sweeps))
    setup = Setup(trace=trace, nodes=nodes, ruleset=chosen[0].ruleset, config=SimConfig(seed=3))
    serial = run_sweep(setup, chosen, jobs=1)
    parallel = run_sweep(setup, chosen, jobs=2)
    assert parallel == serial
    assert [r["label"] for r in serial] == [v.label for v in chosen]
    assert len({r["burst_cost_usd"] for r in serial}) > 1  # the runs differ from each other

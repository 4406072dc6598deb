"""The peer's world (``--peer-model starburst``) against the peer's own reference numbers.

The four rows are those of Starburst's reference run on the bundled openb trace (issue 13):
6 nodes x 8 GPUs, every GPU pod including never-scheduled ones, run time = deletion - creation,
shares counted as one GPU, budget 25 % of the total run time.
"""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from burstd.cli import main
from burstd.sim.starburst import (
    Budget,
    Jobs,
    PeerError,
    homogeneous,
    run_peer,
    simulate,
    summarize,
    waits,
)
from burstd.sim.trace import load_trace

# policy: (cloud GPU-h, mean wait s, jobs sent to the cloud)
REFERENCE = {
    "no-burst": (0.0, 7399.8, 0),
    "burst-immediately": (3984.6, 0.0, 124),
    "constant-wait": (3920.1, 478.4, 49),
    "compute-wait": (1727.9, 338.6, 145),
}


def _close(got: float, want: float) -> bool:
    return math.isclose(got, want, rel_tol=0.02, abs_tol=0.05)


def test_reference_rows_reproduced_within_two_percent(tmp_path):
    out = tmp_path / "peer.json"
    args = ["simulate", "--peer-model", "starburst", "--whole-gpus", "--trace", "openb"]
    args += ["--nodes", "6x8", "--compare", "--json", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["meta"]["trace"]["pods"] == 7064
    budget = doc["meta"]["budget"]
    assert budget["constant_wait_s"] == pytest.approx(6793.9, abs=0.05)
    assert budget["compute_wait_k"] == pytest.approx(0.22300, abs=5e-6)
    for name, (gpu_hours, wait, jobs) in REFERENCE.items():
        got = doc["policies"][name]
        assert _close(got["burst_gpu_hours"], gpu_hours), (name, got)
        assert _close(got["gpu_wait_mean_s"], wait), (name, got)
        assert abs(got["cloud_jobs"] - jobs) <= 3, (name, got)


def test_openb_conversion_keeps_every_gpu_pod_and_runs_from_creation():
    trace = load_trace(None, conversion="starburst")
    assert len(trace) == 7064
    assert "never_scheduled" not in trace.meta["skipped"]
    burstd = load_trace(None)
    assert len(burstd) == 6203
    # openb-pod-0001 was created at 427061 and deleted at 12902960.
    i = trace.names.index("openb-pod-0001")
    assert trace.duration[i] == 12902960 - 427061


def _jobs(rows: list[tuple[float, float, int]]) -> Jobs:
    return Jobs(
        arrival=tuple(r[0] for r in rows),
        runtime=tuple(r[1] for r in rows),
        gpus=tuple(r[2] for r in rows),
    )


def test_strict_queue_blocks_and_timeouts_are_events():
    # 1 node x 4 GPUs. A (4 GPUs) runs 0..100; B (4) waits; C (1) arrives behind B.
    jobs = _jobs([(0, 100, 4), (10, 50, 4), (20, 10, 1)])
    strict = simulate(jobs, [30.0] * 3, nodes=1, gpus_per_node=4, queue="strict", policy="x")
    # B times out at 40 (an event of its own); C goes out at its own timeout, 50.
    assert strict.cloud == [False, True, True]
    assert strict.starts == [0, 40, 50]
    loose = simulate(
        jobs, [1000.0, 30.0, 1000.0], nodes=1, gpus_per_node=4, queue="out-of-order", policy="x"
    )
    # C may pass B but the node is full until 100.
    assert loose.starts == [0, 40, 100]
    assert loose.cloud == [False, True, False]


def test_first_fit_by_node_index_on_lowest_free_gpus():
    jobs = _jobs([(0, 10, 3), (0, 10, 2), (0, 10, 2), (5, 10, 1)])
    o = simulate(jobs, [math.inf] * 4, nodes=2, gpus_per_node=4, queue="strict", policy="x")
    assert o.node_of == [0, 1, 1, 0]
    assert o.gpu_indices == [(0, 1, 2), (0, 1), (2, 3), (3,)]


def test_no_wait_job_that_does_not_fit_goes_out_at_once():
    jobs = _jobs([(0, 100, 4), (10, 50, 2)])
    budget = Budget.of(jobs)
    w = waits("burst-immediately", jobs, budget)
    o = simulate(jobs, w, nodes=1, gpus_per_node=4, queue="strict", policy="x")
    assert o.starts == [0, 10]
    assert o.cloud == [False, True]


def test_estimates_are_seeded_and_not_negative():
    jobs = _jobs([(0, 100, 1)] * 50)
    budget = Budget.of(jobs)
    a = waits("compute-wait-estimate", jobs, budget, runtime_error=2.0, seed=3)
    b = waits("compute-wait-estimate", jobs, budget, runtime_error=2.0, seed=3)
    assert a == b
    assert min(a) >= 0
    assert len(set(a)) > 1
    assert waits("compute-wait-estimate", jobs, budget, runtime_error=0.0) == waits(
        "compute-wait", jobs, budget
    )


def test_heterogeneous_nodes_are_refused_clearly():
    with pytest.raises(PeerError, match="homogeneous"):
        homogeneous([8, 4])
    result = CliRunner().invoke(
        main, ["simulate", "--peer-model", "starburst", "--nodes", "1x8,1x4"]
    )
    assert result.exit_code == 1
    assert "homogeneous" in result.output
    assert "Traceback" not in result.output


def test_budget_can_be_swept():
    trace = load_trace(None, conversion="starburst")
    jobs = Jobs.from_trace(trace)
    budgets = [Budget.of(jobs, b) for b in (0.1, 0.25)]
    out = run_peer(
        jobs,
        nodes=6,
        gpus_per_node=8,
        policies=[("burst-immediately", "strict"), ("compute-wait", "out-of-order")],
        budgets=budgets,
    )
    assert list(out) == ["burst-immediately", "compute-wait b=0.1", "compute-wait b=0.25"]
    assert out["compute-wait b=0.25"]["burst_gpu_hours"] == pytest.approx(1727.9, abs=0.05)
    assert (
        out["compute-wait b=0.1"]["gpu_wait_mean_s"] < out["compute-wait b=0.25"]["gpu_wait_mean_s"]
    )


def test_a_job_larger_than_the_cluster_never_starts_without_a_timeout():
    jobs = _jobs([(0, 10, 16), (5, 10, 2)])
    o = simulate(jobs, [math.inf] * 2, nodes=1, gpus_per_node=8, queue="out-of-order", policy="x")
    assert math.isnan(o.starts[0])
    assert o.starts[1] == 5
    m = summarize(jobs, o, 8)
    assert m["pods_never_started"] == 1
    assert m["gpu_wait_mean_s"] == (15 - 0) / 2  # counted with its wait until the end (15)
    out = simulate(jobs, [30.0, 30.0], nodes=1, gpus_per_node=8, queue="strict", policy="x")
    assert out.cloud == [True, False]  # with a timeout it goes to the cloud
    assert out.starts == [30, 30]


def test_options_of_burstds_world_are_refused_in_the_peer_model():
    result = CliRunner().invoke(
        main, ["simulate", "--peer-model", "starburst", "--sweep", "loop.interval=10s,20s"]
    )
    assert result.exit_code == 2
    assert "--sweep: not used by --peer-model starburst" in result.output

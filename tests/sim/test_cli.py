"""``burstd simulate`` end to end: JSON, report files, sweeps, errors without tracebacks."""

from __future__ import annotations

import json

from click.testing import CliRunner

from burstd.cli import main
from burstd.sim.compare import PEER_BASELINES, POLICIES
from burstd.sim.results import METRICS

SMALL_TRACE = "synthetic:pods=300,load=1.5,seed=4,median=10m"


def invoke(*args: str):
    result = CliRunner().invoke(main, ["simulate", *args])
    assert "Traceback" not in result.output
    return result


def test_compare_json_has_every_policy_and_metric(tmp_path):
    out = tmp_path / "out.json"
    result = invoke("--compare", "--json", str(out), "--no-progress")
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert list(doc["policies"]) == [*POLICIES, *PEER_BASELINES]
    for metrics in doc["policies"].values():
        assert set(METRICS) <= set(metrics)
    meta = doc["meta"]
    assert meta["seed"] == 0
    assert meta["rules_digest"]
    assert meta["trace"]["pods"] == 6203
    assert "instead of the trace's 6,212-GPU cluster" in meta["rescaling"]
    assert "burst-immediately" in result.output  # the table


def test_same_seed_same_policies(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for path in (a, b):
        assert (
            invoke(
                "--trace",
                SMALL_TRACE,
                "--nodes",
                "2x4:G2",
                "--compare",
                "--seed",
                "5",
                "--json",
                str(path),
            ).exit_code
            == 0
        )
    assert json.loads(a.read_text())["policies"] == json.loads(b.read_text())["policies"]


def test_report_files_and_plots(tmp_path):
    report = tmp_path / "report"
    result = invoke(
        "--trace", SMALL_TRACE, "--nodes", "2x4:G2", "--compare", "--report", str(report)
    )
    assert result.exit_code == 0, result.output
    text = (report / "report.md").read_text()
    assert "## Comparison" in text
    assert "capacity.png" in text
    for name in ("capacity.png", "wait_cdf.png", "cost.png"):
        data = (report / name).read_bytes()
        assert data.startswith(b"\x89PNG")
        assert len(data) > 10_000


def test_sweep_writes_rows_and_pareto(tmp_path):
    out, report = tmp_path / "s.json", tmp_path / "r"
    result = invoke(
        "--trace",
        SMALL_TRACE,
        "--nodes",
        "2x4:G2",
        "--sweep",
        "rules.interactive.triggers[0].pending.for=0s,10m",
        "--sweep",
        "rules[1].release.idle_for=5m,30m",
        "--json",
        str(out),
        "--report",
        str(report),
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert len(doc["sweep"]) == 4
    settings = [tuple(r["settings"].values()) for r in doc["sweep"]]
    assert settings == [("0s", "5m"), ("0s", "30m"), ("10m", "5m"), ("10m", "30m")]
    assert len({r["rules_digest"] for r in doc["sweep"]}) == 4
    assert (report / "pareto.png").stat().st_size > 10_000
    text = (report / "report.md").read_text()
    assert "Pareto" in text
    assert "| compute-wait |" in text  # the peer policies' points, with who dominates them
    assert "| star-wait |" in text


def test_bad_sweep_and_bad_rows(tmp_path):
    result = invoke("--sweep", "rules.nobody.burst.min_gpus=1")
    assert result.exit_code == 1
    assert "no item named 'nobody'" in result.output
    result = invoke("--sweep", "rules[0].triggers[0].pending.for=-5s")
    assert result.exit_code == 1
    assert "rules[0].triggers[0].pending.for" in result.output
    trace = tmp_path / "trace.csv"
    trace.write_text("submit,duration,gpus\n0,60,1\n5,x,1\n9,60,1\n")
    result = invoke("--trace", str(trace))
    assert result.exit_code == 1
    assert f"{trace}:3:2: duration: expected a number of seconds, got 'x'" in result.output
    result = invoke("--trace", str(trace), "--skip-bad-rows", "--json", str(tmp_path / "o.json"))
    assert result.exit_code == 0
    assert "skipped 1 bad row(s)" in result.output
    meta = json.loads((tmp_path / "o.json").read_text())["meta"]
    assert meta["trace"]["bad_rows_skipped"] == 1


def test_bad_nodes_and_rules(tmp_path):
    assert "expected COUNTxGPUS" in invoke("--nodes", "3xT4").output
    rules = tmp_path / "r.yaml"
    rules.write_text("version: 2\n")
    result = invoke("--rules", str(rules))
    assert result.exit_code == 1
    assert f"{rules}:1:10: version" in result.output

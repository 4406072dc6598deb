"""The command line as a user meets it: exit codes and what is printed."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from burstd.cli import main

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_validate_accepts_the_examples() -> None:
    files = sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    result = CliRunner().invoke(main, ["validate", *files])
    assert result.exit_code == 0, result.output
    assert result.output.count(": ok — ") == len(files)


def test_validate_reports_every_problem_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\n"
        "targets:\n"
        "  a: {provider: kwok, gpus_per_unit: 0}\n"
        "rules:\n"
        "  - name: r\n"
        "    triggers: [{pending: {gpus: 1}}]\n"
        "    burst: {ladder: [b]}\n"
    )
    result = CliRunner().invoke(main, ["validate", str(bad), str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert f"{bad}:3:38: targets.a.gpus_per_unit: " in lines[0]
    assert lines[1].startswith(f"{bad}:7:22: rules[0].burst.ladder[0]: ")
    assert lines[2].startswith(f"{tmp_path / 'missing.yaml'}:1:1: (root): ")
    assert "Traceback" not in result.output


def test_explain_prints_decisions_with_reasons() -> None:
    result = CliRunner().invoke(
        main,
        [
            "explain",
            "--rules",
            str(EXAMPLES / "university.yaml"),
            "--snapshot",
            str(EXAMPLES / "snapshots" / "peak.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "→ [students] scaleup donor-unimi +2 unit(s) x 4 GPU" in result.output
    assert "→ [research] cordon cloud-3: idle 25m" in result.output
    assert "hpc-leonardo in backoff for 15m" in result.output
    assert "target hpc-leonardo: in backoff for 15m after" in result.output


def test_explain_names_a_bad_snapshot_field(tmp_path: Path) -> None:
    snap = tmp_path / "s.json"
    snap.write_text(json.dumps({"now": 1, "pods": [{"namespace": "n", "name": "p", "gpu": 1}]}))
    result = CliRunner().invoke(
        main, ["explain", "--rules", str(EXAMPLES / "university.yaml"), "--snapshot", str(snap)]
    )
    assert result.exit_code == 1
    assert "pods[0].gpu: expected an object, got 1" in result.output


def test_explain_prints_unservable_pods_with_the_reason(tmp_path: Path) -> None:
    zone = {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["elsewhere"]}
    pod = {
        "namespace": "ml",
        "name": "lost",
        "gpu": {"gpus": 1},
        "unschedulable": True,
        "pending_since": 0,
        "placement": {"affinity": [[zone]]},
    }
    snap = tmp_path / "s.json"
    misfit = {"pod": "ml/picky", "target": "kwok-a100", "unit": "kwok-a100-1", "until": 700}
    snap.write_text(json.dumps({"now": 100, "pods": [pod], "misfits": [misfit]}))
    result = CliRunner().invoke(
        main, ["explain", "--rules", str(EXAMPLES / "kwok.yaml"), "--snapshot", str(snap)]
    )
    assert result.exit_code == 0, result.output
    assert "rule gpu-jobs: 0 pod(s) pending" in result.output
    assert (
        "safety net: ml/picky was not placed on unit kwok-a100-1; not bursting for it on "
        "kwok-a100 for 10m (miss 1)"
    ) in result.output
    assert "1 pod(s) unservable" in result.output
    assert (
        "✗ ml/lost: no target on the ladder can take it (kwok-a100: required node affinity "
        "topology.kubernetes.io/zone In [elsewhere] (the node has "
        "topology.kubernetes.io/zone=kwok-zone-a))"
    ) in result.output
    assert "no action" in result.output


def test_explain_shows_what_is_wrong_with_each_target(tmp_path: Path) -> None:
    pod = {"namespace": "ml", "name": "p", "gpu": {"gpus": 4}, "unschedulable": True}
    status = {
        "held_back": "its existing units are unknown: ProviderError: init failed",
        "problems": ["namespace ml has pending GPU pods but no NamespaceOffloading"],
    }
    snap = tmp_path / "s.json"
    snap.write_text(json.dumps({"now": 100, "pods": [pod], "targets": {"kwok-a100": status}}))
    result = CliRunner().invoke(
        main, ["explain", "--rules", str(EXAMPLES / "kwok.yaml"), "--snapshot", str(snap)]
    )
    assert result.exit_code == 0, result.output
    assert (
        "target kwok-a100: held back, nothing is bursted onto it: its existing units are "
        "unknown: ProviderError: init failed"
    ) in result.output
    assert (
        "target kwok-a100: problem: namespace ml has pending GPU pods but no NamespaceOffloading"
    ) in result.output
    assert "kwok-a100 held back: its existing units are unknown" in result.output
    assert "no action" in result.output


def test_explain_shows_a_stale_signal_and_the_unit_it_keeps() -> None:
    result = CliRunner().invoke(
        main,
        [
            "explain",
            "--rules",
            str(EXAMPLES / "inference.yaml"),
            "--snapshot",
            str(EXAMPLES / "snapshots" / "prometheus-down.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "has no data, stale since 2026-11-24 08:56:00Z (4m)" in result.output
    assert "cloud-l4-1a2b3c kept:" in result.output
    assert "no action:" in result.output

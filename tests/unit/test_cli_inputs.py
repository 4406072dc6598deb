"""Every command on every class of bad input: one clear line naming the file (line:column where
the file has lines) and the field, exit code 1 (2 for a usage error), never a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import burstd.sim.trace
from burstd.cli import COMMANDS, main

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"
RULES = EXAMPLES / "university.yaml"
SNAPSHOT = EXAMPLES / "snapshots" / "peak.json"


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    # A SystemExit is the command ending as designed; any other exception is a traceback.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def test_every_command_refuses_a_fifo_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    cases = [
        (["validate", str(fifo)], "rules file"),
        (["explain", "--rules", str(RULES), "--snapshot", str(fifo)], "snapshot"),
        (["explain", "--rules", str(fifo), "--snapshot", str(SNAPSHOT)], "rules file"),
        (["simulate", "--rules", str(fifo)], "rules file"),
        (["simulate", "--trace", str(fifo)], "trace file"),
        (["simulate", "--nodes", str(fifo)], "node list"),
        (["run", "--config", str(fifo)], "rules file"),
        (["run", "--config", str(RULES), "--kubeconfig", str(fifo)], "kubeconfig"),
    ]
    for args, what in cases:
        result = invoke(*args)
        assert result.exit_code == 1, (args, result.output)
        assert f"{fifo}" in result.output
        assert f"is a FIFO (named pipe), not a {what}" in result.output


def test_simulate_does_not_wait_on_a_fifo_for_its_json(tmp_path: Path) -> None:
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    result = invoke("simulate", "--trace", "synthetic:pods=50", "--json", str(fifo))
    assert result.exit_code == 1
    assert f"{fifo}: cannot write: a FIFO with no reader" in result.output


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_devices_are_refused(device: str) -> None:
    for args in (
        ["validate", device],
        ["explain", "--rules", str(RULES), "--snapshot", device],
        ["simulate", "--trace", device],
        ["run", "--config", str(RULES), "--kubeconfig", device],
    ):
        result = invoke(*args)
        assert result.exit_code == 1
        assert result.output.startswith(device)
        assert "is a character device, not a " in result.output


def test_a_huge_rules_file_is_refused_by_size(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("version: 1\n" + "# padding\n" * 200_000)
    result = invoke("validate", str(big))
    assert result.exit_code == 1
    assert f"{big}:1:1: (root): is 1.9 MiB, larger than a rules file may be (512 KiB)" in (
        result.output
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[" * 100_000, "invalid JSON: nested too deeply"),
        ('{"now": NaN}', "now: expected a finite number from 0 to 1e+11, got nan"),
        ('{"now": 1e308}', "now: expected a finite number from 0 to 1e+11, got 1e+308"),
        ('{"now": 1, "x": ' + "9" * 5000 + "}", "invalid JSON: Exceeds the limit"),
        (
            '{"now": 1, "pods": [{"namespace": "a", "name": "p", "gpu": {"gpus": -1}}]}',
            "pods[0].gpu.gpus: expected an integer from 0 to 1024, got -1",
        ),
        (
            '{"now": 1, "pods": [{"name": "p", "gpu": {}}]}',
            "pods[0]: missing required field(s) 'namespace'",
        ),
        (
            '{"now": 1, "pods": [{"namespace": "a", "name": "p", "gpu": {}},'
            ' {"namespace": "a", "name": "p", "gpu": {}}]}',
            "pods[1]: duplicate pod 'a/p' (first at pods[0])",
        ),
        (
            '{"now": 1, "units": [{"id": "u", "target": "cloud", "rule": "r", "gpus": 1},'
            ' {"id": "u", "target": "cloud", "rule": "r", "gpus": 1}]}',
            "units[1].id: duplicate unit id 'u' (first at units[0])",
        ),
        (
            '{"now": 1, "units": [{"id": "u", "target": "cloud", "rule": "r", "gpus": 1,'
            ' "node": "n"}, {"id": "v", "target": "cloud", "rule": "r", "gpus": 1, "node": "n"}]}',
            "units[1].node: node 'n' already belongs to unit 'u' (units[0])",
        ),
        (
            '{"now": 1, "units": [{"id": "u", "target": "gone", "rule": "r", "gpus": 1}]}',
            "units[0].target: unknown target 'gone' (the rules define: cloud, donor-unimi, "
            "hpc-leonardo)",
        ),
        (
            '{"now": 1, "units": [{"id": "u", "target": "cloud", "rule": "r", "gpus": 1, '
            '"mig": [["1g.10gb"]]}]}',
            "units[0].mig[0]: expected a list of 2, got 1",
        ),
        ('{\n  "now": 1,\n  oops\n}', ":3:3: invalid JSON: Expecting property name"),
        ("{}", "now: missing; pass --at"),
    ],
)
def test_explain_names_what_is_wrong_with_a_snapshot(
    tmp_path: Path, body: str, message: str
) -> None:
    snap = tmp_path / "snap.json"
    snap.write_text(body)
    result = invoke("explain", "--rules", str(RULES), "--snapshot", str(snap))
    assert result.exit_code == 1
    assert result.output.startswith(str(snap)), result.output
    assert message in result.output


def test_explain_reads_a_snapshot_with_a_bom_and_refuses_bad_utf8(tmp_path: Path) -> None:
    snap = tmp_path / "snap.json"
    snap.write_bytes(b"\xef\xbb\xbf" + SNAPSHOT.read_bytes())
    assert invoke("explain", "--rules", str(RULES), "--snapshot", str(snap)).exit_code == 0
    snap.write_bytes(b'{"now": 1,\n "x": "caf\xe8"}')
    result = invoke("explain", "--rules", str(RULES), "--snapshot", str(snap))
    assert result.exit_code == 1
    assert f"{snap}:2:11: not valid UTF-8 (byte 0xe8)" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--config", "r.yaml", "--adopt-interval", "0"], "--adopt-interval"),
        (["run", "--config", "r.yaml", "--adopt-interval", "nan"], "--adopt-interval"),
        (["run", "--config", "r.yaml", "--grace-period", "inf"], "--grace-period"),
        (["run", "--config", "r.yaml", "--grace-period", "-1"], "--grace-period"),
        (["run", "--config", "r.yaml", "--prometheus-timeout", "0"], "--prometheus-timeout"),
        (["run", "--config", "r.yaml", "--prometheus-step", "0"], "--prometheus-step"),
        (["run", "--config", "r.yaml", "--signal-grace", "nan"], "--signal-grace"),
        (["simulate", "--utilization-step", "0"], "--utilization-step"),
        (["explain", "--rules", "r", "--snapshot", "s", "--at", "nan"], "--at"),
        (["simulate", "--seed", "-1"], "--seed"),
        (["simulate", "--static-gpus", "1000000000"], "--static-gpus"),
    ],
)
def test_out_of_range_options_are_usage_errors(args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert f"Invalid value for '{message}'" in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the kubeconfig is empty"),
        ("\xff", None),
        ("- a\n", "expected a mapping with clusters, contexts and users"),
        ("a: [\n", ":2:1: invalid YAML"),
        ("clusters: []\n", "current-context: missing"),
        ("current-context: x\ncontexts: []\n", "contexts: no context named 'x'"),
        (
            "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: []\n",
            "clusters: no cluster named 'c'",
        ),
    ],
)
def test_run_names_what_is_wrong_with_a_kubeconfig(
    tmp_path: Path, text: str, message: str | None
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    if message is None:
        kubeconfig.write_bytes(b"\xff\xfe")
        message = ":1:1: not valid UTF-8 (byte 0xff)"
    else:
        kubeconfig.write_text(text)
    result = invoke("run", "--config", str(RULES), "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 1
    assert result.output.startswith(str(kubeconfig))
    assert message in result.output
    missing = invoke("run", "--config", str(RULES), "--kubeconfig", str(tmp_path / "none"))
    assert missing.exit_code == 1
    assert missing.output.strip() == f"{tmp_path / 'none'}: no such file"


def test_trace_and_node_list_classes(tmp_path: Path) -> None:
    bom = tmp_path / "t.csv"
    bom.write_bytes(b"\xef\xbb\xbfsubmit,duration,gpus\n0,60,1\n")
    assert invoke("simulate", "--trace", str(bom)).exit_code == 0
    for cell, message in [
        ("nan", "expected a number of seconds from 0 to 1e+11, got 'nan'"),
        ("inf", "expected a number of seconds from 0 to 1e+11, got 'inf'"),
        ("1e308", "expected a number of seconds from 0 to 1e+11, got '1e308'"),
    ]:
        bom.write_text(f"submit,duration,gpus\n0,{cell},1\n")
        result = invoke("simulate", "--trace", str(bom))
        assert result.exit_code == 1
        assert f"{bom}:2:2: duration: {message}" in result.output
    bom.write_text('submit,duration,gpus\n0,"' + "9" * 200_000 + '",1\n')
    result = invoke("simulate", "--trace", str(bom))
    assert result.exit_code == 1
    assert f"{bom}:2:1: invalid CSV: field larger than field limit" in result.output
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('{"submit": 0, "duration": 1, "gpus": 1}\n' + "[" * 50_000 + "\n")
    result = invoke("simulate", "--trace", str(jsonl))
    assert result.exit_code == 1
    assert f"{jsonl}:2:1: invalid JSON: nested too deeply" in result.output
    jsonl.write_bytes(b'{"submit": 0, "duration": 1, "gpus": 1, "name": "\xe8"}\n')
    result = invoke("simulate", "--trace", str(jsonl))
    assert f"{jsonl}:1:50: not valid UTF-8 (byte 0xe8)" in result.output
    for spec, message in [
        ("1000000x8", "at most 100,000 nodes and 1,000,000 GPUs in all"),
        ("4x100000000", "GPUs per node must be 1 to 1024"),
        ("99999999999999999999x8", "expected COUNTxGPUS"),
    ]:
        result = invoke("simulate", "--nodes", spec)
        assert result.exit_code == 1
        assert message in result.output


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("load=nan", "load: expected a number above 0, at most 1000, got nan"),
        ("load=inf", "load: expected a number above 0, at most 1000, got inf"),
        ("sigma=nan", "sigma: expected a number above 0, at most 5"),
        ("peak=nan", "peak: expected 0 to 24, got nan"),
        ("pods=1e9", "pods: expected a whole number from 0 to 5e+06, got '1e9'"),
        ("pods=100000000", "pods: expected a number above 0, at most 5e+06"),
        ("load=1e-300", "spread 10000 pods over more than 1e+11 seconds"),
        ("load=x", "load: expected a number, got 'x'"),
    ],
)
def test_synthetic_parameters_that_cannot_end_are_refused(spec: str, message: str) -> None:
    result = invoke("simulate", "--trace", f"synthetic:{spec}")
    assert result.exit_code == 1
    assert message in result.output


def test_exact_runs_that_would_not_end_are_refused(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("submit,duration,gpus\n0,60,1\n10000000000,60,1\n")
    result = invoke("simulate", "--trace", str(trace), "--exact")
    assert result.exit_code == 2
    assert "--exact runs every periodic pass" in result.output


def test_params_alias_bomb_is_an_error_at_its_line(tmp_path: Path) -> None:
    # Terraform's ``vars`` are free-form values.
    lines = ["version: 1", "targets:", "  a:", "    provider: terraform", "    params:"]
    lines += ["      module: ./m", "      vars:"]
    lines.append('        l0: &l0 ["x","x","x","x","x","x","x","x","x","x"]')
    lines += [f"        l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    lines += ["rules:", "  - name: r", "    triggers: [{pending: {}}]", "    burst: {ladder: [a]}"]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    assert bomb.stat().st_size < 4000  # 10**9 values once expanded
    result = invoke("validate", str(bomb))
    assert result.exit_code == 1
    assert (
        f"{bomb}:12:13: targets.a.params.vars.l4: too large: more than 100,000 values"
        in result.output
    )


def test_validate_warns_about_a_rule_that_can_never_burst(tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text(
        "version: 1\n"
        "limits: {max_gpus: 16}\n"
        "targets:\n"
        "  a: {provider: kwok, gpus_per_unit: 8, price_per_gpu_hour: 2}\n"
        "  b: {provider: kwok, gpus_per_unit: 4}\n"
        "rules:\n"
        "  - name: small\n"
        "    limits: {max_gpus: 2}\n"
        "    triggers: [{pending: {}}]\n"
        "    burst: {ladder: [a, b]}\n"
        "  - name: cheap\n"
        "    limits: {max_cost_per_hour: 10}\n"
        "    triggers: [{pending: {}}]\n"
        "    burst:\n"
        "      ladder: [a]\n"
        "  - name: fine\n"
        "    triggers: [{pending: {}}]\n"
        "    burst: {ladder: [a, b]}\n"
    )
    result = invoke("validate", str(rules))
    assert result.exit_code == 0
    warnings = [line for line in result.output.splitlines() if "warning" in line]
    assert warnings == [
        f"{rules}:10:21: rules[0].burst.ladder: warning: rule 'small' can never burst: one unit "
        "of 'a' is 8 GPU(s), more than the rule's limits.max_gpus (2); one unit of 'b' is 4 "
        "GPU(s), more than the rule's limits.max_gpus (2)",
        f"{rules}:15:15: rules[1].burst.ladder: warning: rule 'cheap' can never burst: one unit "
        "of 'a' costs 16/h, more than the rule's limits.max_cost_per_hour (10)",
    ]
    assert f"{rules}: ok" in result.output


def test_every_doc_that_help_names_exists() -> None:
    named: set[str] = set()
    for command in [[], *([name] for name in COMMANDS)]:
        result = invoke(*command, "--help")
        assert result.exit_code == 0
        named |= set(re.findall(r"docs/[\w./-]+\.md", " ".join(result.output.split())))
    assert "docs/snapshot.md" in named
    for doc in named:
        assert (ROOT / doc).is_file(), doc


BURSTD = [sys.executable, "-c", "from burstd.cli import main; main()"]


def test_output_that_cannot_be_written_is_one_line_not_a_traceback() -> None:
    """A real process: the failure is in writing to the real stdout, which the runner fakes."""
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [*BURSTD, "validate", str(RULES)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 1
    assert done.stderr.strip() == "burstd: cannot write the output: No space left on device"
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from burstd.cli import main; main()",
            "explain",
            "--rules",
            str(RULES),
            "--snapshot",
            str(SNAPSHOT),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.close()  # the reader is gone before burstd writes: a closed pipe
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 1
    assert "Traceback" not in err
    assert "Exception ignored" not in err


def test_a_trace_over_the_pod_cap_stops_even_when_skipping_bad_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cap (5,000,000 pods) is lowered here, to show what the user sees past it."""
    monkeypatch.setattr(burstd.sim.trace, "MAX_PODS", 3)
    trace = tmp_path / "t.csv"
    trace.write_text("submit,duration,gpus\n" + "1,60,1\n" * 10)
    for extra in ([], ["--skip-bad-rows"]):
        result = invoke("simulate", "--trace", str(trace), *extra)
        assert result.exit_code == 1
        assert result.output.strip() == f"{trace}: more than 3 GPU pods"

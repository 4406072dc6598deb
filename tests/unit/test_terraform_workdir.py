"""The Terraform provider's workdir: atomic var files, the flock that marks a live terraform,
stale state locks, credentials files, redaction, and reading terraform's resource addresses."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from burstd.providers.base import ProviderError
from burstd.providers.terraform.cli import ApplyResult, Diagnostic, Redactor, resource_key
from burstd.providers.terraform.workdir import (
    TF_LOCK_INFO,
    WorkdirLock,
    read_env_file,
    read_units,
    recover_stale_lock,
    root_module,
    var_file,
    write_atomically,
)
from burstd.rules.loader import RulesError, parse_rules

HOLD = """\
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
getattr(fcntl, sys.argv[2])(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(60)
"""


def holding(path: Path, how: str) -> subprocess.Popen[str]:
    """Another process holding ``path`` locked (``flock`` or ``lockf``), as a terraform would."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), how], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def test_the_var_file_is_replaced_whole_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "burstd.auto.tfvars.json"
    units = {"u-2": {"gpus": 4, "labels": {"a": "b"}}, "u-1": {"gpus": 4}}
    assert write_atomically(path, var_file("burstd_units", units, {"region": "x"}))
    assert not write_atomically(path, var_file("burstd_units", units, {"region": "x"}))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    assert read_units(path, "burstd_units") == units
    assert json.loads(path.read_text())["region"] == "x"


def test_the_root_module_passes_every_variable_and_outputs_nodes(tmp_path: Path) -> None:
    root = json.loads(root_module(tmp_path, "pool_units", {"region": "x", "size": 2}))
    assert set(root["variable"]) == {"pool_units", "region", "size"}
    assert root["module"]["pool"]["source"] == str(tmp_path)
    assert root["module"]["pool"]["pool_units"] == "${var.pool_units}"
    assert root["output"]["nodes"]["value"] == "${module.pool.nodes}"


async def test_the_workdir_is_busy_while_another_holder_has_the_flock(tmp_path: Path) -> None:
    lock = WorkdirLock(tmp_path)
    other = holding(lock.path, "flock")
    try:
        with pytest.raises(ProviderError, match="busy"):
            async with lock.held(0.3, poll=0.05):
                pass
    finally:
        stop(other)
    async with lock.held(0.3) as fd:
        assert fd >= 0


def test_a_lock_whose_holder_is_gone_is_removed(tmp_path: Path) -> None:
    (tmp_path / "terraform.tfstate").write_text("{}")
    info = {"ID": "abc", "Operation": "OperationTypeApply", "Who": "root@vm", "Created": "t"}
    (tmp_path / TF_LOCK_INFO).write_text(json.dumps(info))
    found = recover_stale_lock(tmp_path)
    assert found is not None
    assert found["ID"] == "abc"
    assert not (tmp_path / TF_LOCK_INFO).exists()
    assert recover_stale_lock(tmp_path) is None


def test_a_lock_held_by_a_live_terraform_is_left_alone(tmp_path: Path) -> None:
    state = tmp_path / "terraform.tfstate"
    state.write_text("{}")
    (tmp_path / TF_LOCK_INFO).write_text("{}")
    other = holding(state, "lockf")
    try:
        with pytest.raises(ProviderError, match="did not start"):
            recover_stale_lock(tmp_path)
        assert (tmp_path / TF_LOCK_INFO).exists()
    finally:
        stop(other)


def test_env_files_are_read_and_their_values_never_quoted(tmp_path: Path) -> None:
    path = tmp_path / "creds.env"
    path.write_text("# AWS\nexport AWS_ACCESS_KEY_ID=AKIAEXAMPLE\nAWS_SECRET='s3cr3t=x'\n\n")
    assert read_env_file(path) == {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET": "s3cr3t=x"}
    path.write_text("oops s3cr3t\n")
    with pytest.raises(ProviderError) as err:
        read_env_file(path)
    assert "s3cr3t" not in str(err.value)
    assert f"{path}:1" in str(err.value)


def test_secrets_are_redacted_longest_first() -> None:
    redact = Redactor(["s3cr3t", "s3cr3t-long", "ab"])
    assert redact("key s3cr3t-long and s3cr3t, ab") == "key *** and ***, ab"


def test_errors_are_attributed_to_the_unit_their_resource_belongs_to() -> None:
    assert resource_key('module.pool.terraform_data.node["u-1"]') == "u-1"
    assert resource_key('module.pool.aws_instance.gpu["a\\"b"].x') == 'a"b'
    assert resource_key("module.pool.aws_instance.gpu[0]") is None
    result = ApplyResult(
        returncode=1,
        diagnostics=(
            Diagnostic(severity="warning", summary="deprecated"),
            Diagnostic(severity="error", summary="quota", detail="no\n GPUs", address="x"),
        ),
    )
    assert result.message() == "x: quota: no GPUs"
    assert ApplyResult(returncode=1, stderr="lock\nheld").message() == "lock held"


def test_validate_reports_wrong_params_with_file_line_and_column() -> None:
    text = textwrap.dedent(
        """\
        version: 1
        targets:
          cloud:
            provider: terraform
            params:
              module: ./m
              lock_timeout: soon
              count_variable: n
              parallelism: 0
              env_files: /etc/creds
        rules:
          - name: r
            triggers: [pending: {}]
            burst: {ladder: [cloud]}
        """
    )
    with pytest.raises(RulesError) as err:
        parse_rules(text, "r.yaml")
    assert [str(p) for p in err.value.problems] == [
        "r.yaml:7:21: targets.cloud.params.lock_timeout: invalid duration 'soon': write a "
        "number of seconds or number-unit pairs (d, h, m, s, ms) like 30s, 5m, 1h30m or 500ms",
        "r.yaml:8:7: targets.cloud.params: unknown key 'count_variable' "
        "(hint: did you mean 'units_variable'?)",
        "r.yaml:9:20: targets.cloud.params.parallelism: must be an integer >= 1, got 0",
        "r.yaml:10:18: targets.cloud.params.env_files: must be a list, got '/etc/creds' "
        "(hint: write [/etc/creds] for a list of one)",
    ]

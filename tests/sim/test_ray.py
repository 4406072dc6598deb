"""``--sweep`` on Ray (``--ray ADDRESS``) gives the rows and the JSON the serial run gives.

One small local Ray instance serves the module (2 CPUs, no dashboard, Ray's smallest object
store, its files under pytest's temporary directory) and is stopped at the end, with a check
that every process it started is gone and this process's SIGTERM handler is its own again.
The tests without Ray come first, so hiding the ``ray`` module never races the instance's
threads.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from burstd.cli import main
from burstd.sim.parallel import run_sweep, sweep_row
from burstd.sim.ray_backend import connected, require, sweep_metrics
from tests.sim.helpers import small_sweep
from tests.sim.test_cli import SMALL_TRACE

SWEEP = ("--sweep", "rules.interactive.triggers[0].pending.for=0s,2m,10m")
SMALL = ("--trace", SMALL_TRACE, "--nodes", "2x4:G2", "--no-progress")
BURSTD = [sys.executable, "-c", "from burstd.cli import main; main()"]
OBJECT_STORE_BYTES = 80 * 2**20  # Ray refuses less than 75 MiB


def simulate(*args: str):
    result = CliRunner().invoke(main, ["simulate", *args])
    assert "Traceback" not in result.output
    return result


def test_ray_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    result = simulate(*SWEEP, "--ray", "local")
    assert result.exit_code == 2, result.output
    assert "Invalid value for --ray" in result.output
    assert "pip install 'burstd[ray]'" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--ray", "local"), "only --sweep runs go to Ray"),
        ((*SWEEP, "--jobs", "2", "--ray", "local"), "--jobs and --ray"),
        ((*SWEEP, "--ray", "127.0.0.1:1"), "127.0.0.1:1: no Ray cluster answers there"),
        ((*SWEEP, "--ray", "somewhere"), "expected auto, local, host:port or ray://host:port"),
        ((*SWEEP, "--ray", "ray://:10001"), "expected auto, local, host:port or ray://host:port"),
        (("--peer-model", "starburst", "--ray", "local"), "--ray: not used by --peer-model"),
    ],
)
def test_ray_refused_before_any_run(args, message):
    result = simulate(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "simulated" not in result.output  # nothing ran


def _descendants(pid: int) -> set[int]:
    """Live processes below ``pid``, from /proc (zombies count as gone)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if state != "Z":
            children.setdefault(int(ppid), []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The GCS address of a fresh local Ray instance that this process drives."""
    ray = require()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        before = _descendants(os.getpid())
        sigterm = signal.getsignal(signal.SIGTERM)
        with connected(
            "local",
            num_cpus=2,
            object_store_memory=OBJECT_STORE_BYTES,
            _temp_dir=str(tmp_path_factory.mktemp("ray")),
        ):
            started = _descendants(os.getpid()) - before
            yield str(ray.get_runtime_context().gcs_address)
            started |= _descendants(os.getpid()) - before
    assert signal.getsignal(signal.SIGTERM) == sigterm, "Ray's SIGTERM handler outlived it"
    for _ in range(100):  # shutdown has signalled them; give them up to 10 s to exit
        left = started & _descendants(os.getpid())
        if not left:
            break
        time.sleep(0.1)
    assert started, "the instance runs in processes of its own"
    assert not left, f"Ray left processes behind: {sorted(left)}"


def test_ray_sweep_equals_serial(ray_cluster):
    setup, chosen = small_sweep()
    serial = run_sweep(setup, chosen, jobs=1)
    metrics = sweep_metrics(setup, [v.ruleset for v in chosen])
    on_ray = [sweep_row(v, m) for v, m in zip(chosen, metrics, strict=True)]
    assert on_ray == serial
    assert len({r["burst_cost_usd"] for r in serial}) > 1  # the runs differ from each other


def test_ray_cli_joins_a_cluster_and_writes_the_serial_json(ray_cluster, tmp_path):
    """``--ray host:port`` from another process, a driver joining the running instance, as
    on a real cluster; its whole JSON equals the serial run's."""
    serial, on_ray = tmp_path / "serial.json", tmp_path / "ray.json"
    result = simulate(*SMALL, *SWEEP, "--jobs", "1", "--json", str(serial))
    assert result.exit_code == 0, result.output
    done = subprocess.run(
        [*BURSTD, "simulate", *SMALL, *SWEEP, "--ray", ray_cluster, "--json", str(on_ray)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    doc = json.loads(on_ray.read_text())
    assert doc == json.loads(serial.read_text())
    assert [tuple(r["settings"].values()) for r in doc["sweep"]] == [("0s",), ("2m",), ("10m",)]

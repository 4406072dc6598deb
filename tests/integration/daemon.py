"""``burstd run`` as a separate process, as an operator runs it, and what its JSON log says."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.kube import TESTENV, eventually

BURSTD = Path(sys.executable).with_name("burstd")


def start(
    config: Path, kubeconfig: Path, log: Path, state: Path, *extra: str
) -> subprocess.Popen[bytes]:
    """Start ``burstd run``; its output (JSON logs) is appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                str(BURSTD),
                "run",
                "--config",
                str(config),
                "--kubeconfig",
                str(kubeconfig),
                "--log-format",
                "json",
                "--grace-period",
                "5",
                "--adopt-interval",
                "2",
                "--state-dir",
                str(state),
                *extra,
            ],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONWARNINGS": "error"},
            # Its own process group, as under systemd: a kill takes its children with it.
            start_new_session=True,
        )


def events(log: Path, kind: str | None = None) -> list[dict[str, Any]]:
    """The log's JSON records (of event ``kind``), in order."""
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and (kind is None or record.get("event") == kind):
            out.append(record)
    return out


async def logged(log: Path, kind: str, within: float = 30) -> list[dict[str, Any]]:
    return await eventually(
        lambda: asyncio.sleep(0, events(log, kind)), within=within, what=f"{kind} in {log.name}"
    )


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL ``proc`` and whatever it started (a terraform left running)."""
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


async def kube_testenv(*args: str) -> None:
    """Run ``scripts/kube-testenv ARGS`` (stop-apiserver, start-apiserver…)."""
    proc = await asyncio.create_subprocess_exec(
        str(TESTENV),
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise AssertionError(f"kube-testenv {' '.join(args)} failed: {err.decode()[-2000:]}")

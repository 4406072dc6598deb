"""burstd (and the terraform it runs) killed with SIGKILL, then started again: the workdir is
recovered and every unit adopted, none made twice, none left behind.

The whole process group is killed, as systemd (``KillMode=control-group``) or a container
runtime kills a daemon: terraform dies with burstd, mid-apply, and leaves its state lock.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration import terraform
from tests.integration.kube import Kube, eventually, name_of, node_of, phase
from tests.integration.test_restart import events
from tests.integration.test_terraform import rules

pytestmark = pytest.mark.integration

BURSTD = Path(sys.executable).with_name("burstd")


def start(config: Path, kubeconfig: Path, log: Path) -> subprocess.Popen[bytes]:
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
            ],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONWARNINGS": "error"},
            start_new_session=True,
        )


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


async def logged(log: Path, event: str, what: str, **match: Any) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        for record in events(log, event):
            if all(record.get(k) == v for k, v in match.items()):
                return record
        return None

    return await eventually(found, within=120, what=what)


@pytest.mark.parametrize("moment", ["during-apply", "before-ready"])
async def test_killed_with_its_terraform_then_restarted_adopts_and_finishes(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path, moment: str
) -> None:
    workdir = tmp_path / "workdir"
    config = tmp_path / "rules.yaml"
    # during-apply: each create takes 4 s in the module, so the kill lands inside the apply.
    # before-ready: the apply is quick but kwok marks the nodes Ready only 6 s later.
    module_vars = (
        "        create_delay: 4" if moment == "during-apply" else '        ready_delay: "6s"'
    )
    config.write_text(
        rules(
            target=target,
            namespace=namespace,
            kubeconfig=kubeconfig,
            workdir=workdir,
            pending_gpus=8,
            module_vars=module_vars,
        )
    )
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    seen: set[str] = set()

    async def nodes() -> list[dict[str, Any]]:
        found = await kube.nodes(f"burstd.io/target={target}")
        seen.update(name_of(n) for n in found)
        return found

    first = start(config, kubeconfig, first_log)
    second: subprocess.Popen[bytes] | None = None
    try:
        await logged(first_log, "synced", "the first run to sync")
        await kube.create_job(namespace, "train", pods=2, gpus=4, complete_after="3s")
        if moment == "during-apply":
            await logged(first_log, "terraform_progress", "the apply to start", kind="apply_start")
            kill_group(first)
            # terraform died holding the state lock.
            assert (workdir / ".terraform.tfstate.lock.info").exists()
            assert not terraform.in_state(workdir)
        else:
            await logged(first_log, "terraform_applied", "the apply to finish", ok=True)
            kill_group(first)
            assert len(terraform.in_state(workdir)) == 2
            assert not any(events(first_log, "unit_ready")), "killed too late"
        units = terraform.wanted(workdir)
        assert len(units) == 2

        second = start(config, kubeconfig, second_log)
        done = await logged(second_log, "adoption_done", "adoption")
        assert set(done["units"]) == units
        if moment == "during-apply":
            assert events(second_log, "terraform_lock_recovered")
        assert not events(second_log, "terraform_unit_added"), "a unit was made twice"

        async def job_done() -> bool:
            await nodes()
            job = await kube.job(namespace, "train")
            return bool(job.get("status", {}).get("succeeded") == 2)

        await eventually(job_done, within=120, what="the Job to complete")
        pods = await kube.pods(namespace)
        assert all(phase(p) == "Succeeded" for p in pods)
        assert {node_of(p) for p in pods} <= seen
        # Two units, each one node, across both runs.
        assert seen == {f"tf-{u}" for u in units}

        async def all_released() -> bool:
            # Released once burstd says so: its last apply has ended and unlocked the state.
            released = {e["unit"] for e in events(second_log, "unit_released")}
            return (
                released == units
                and not await nodes()
                and not terraform.wanted(workdir)
                and not terraform.in_state(workdir)
            )

        await eventually(all_released, within=90, what="every unit given back")
        assert (workdir / "terraform.tfstate").exists()
        assert not (workdir / ".terraform.tfstate.lock.info").exists()
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                kill_group(proc)
        await asyncio.sleep(0)

"""The Terraform provider end to end: real terraform, real state, the kwok-pool module making
kwok Nodes in the real control plane, burstd in the test's event loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from burstd.app import App
from burstd.model import Snapshot, TargetStatus
from burstd.providers.terraform.provider import TerraformProvider
from tests.conftest import MANAGED
from tests.integration import terraform
from tests.integration.kube import (
    Kube,
    burstd_in_process,
    eventually,
    name_of,
    node_of,
    phase,
)

pytestmark = pytest.mark.integration


def rules(
    *,
    target: str,
    namespace: str,
    kubeconfig: Path,
    workdir: Path,
    pending_gpus: int = 1,
    idle_for: str = "2s",
    ready_deadline: str = "1m",
    module_vars: str = "",
    fallback: bool = False,
    cli: str = "terraform",
) -> str:
    """A rules file with one Terraform target on the kwok-pool module (and, with
    ``fallback``, a kwok target as the ladder's second rung)."""
    second = f"""\
  {target}-kwok:
    provider: kwok
    params: {{poll_interval: 0.1, delete_timeout: 20}}
    gpu_model: NVIDIA-A10G
    gpus_per_unit: 4
    max_units: 6
    max_in_flight: 6
    time_to_ready: 1s
    ready_deadline: 1m
    backoff: 5s
"""
    return f"""\
version: 1
loop: {{interval: 1s, batch_idle: 500ms, batch_max: 3s}}
targets:
  {target}:
    provider: terraform
    params:
      module: {terraform.MODULE}
      workdir: {workdir}
      binary: {terraform.binary(cli)}
      env: {{TF_CLI_CONFIG_FILE: {terraform.offline_cli_config(workdir.parent / "cli")}}}
      poll_interval: 0.1
      delete_timeout: 20s
      vars:
        kubeconfig: {kubeconfig}
        kubectl: {terraform.kubectl()}
        name_prefix: "tf-"
        labels: {{burstd-test: "{target}"}}
{module_vars}
    gpu_model: NVIDIA-A10G
    gpus_per_unit: 4
    max_units: 6
    max_in_flight: 6
    time_to_ready: 2s
    ready_deadline: {ready_deadline}
    backoff: 1h
{second if fallback else ""}
rules:
  - name: burst
    match: {{namespaces: [{namespace}]}}
    triggers:
      - pending: {{gpus: {pending_gpus}}}
    burst:
      ladder: [{target}{f", {target}-kwok" if fallback else ""}]
      max_units_per_step: 6
    release:
      idle_for: {idle_for}
      validation: 1s
      drain: {{mode: wait}}
    cooldown: {{scale_up: 0s, scale_down: 0s}}
"""


async def running_node(kube: Kube, namespace: str) -> str | None:
    """The node of the namespace's first pod once it runs there."""
    pods = await kube.pods(namespace)
    if pods and phase(pods[0]) == "Running" and node_of(pods[0]):
        return node_of(pods[0])
    return None


def provider(app: App, target: str) -> TerraformProvider:
    made = app.providers[target]
    assert isinstance(made, TerraformProvider)
    return made


def status(app: App, target: str) -> TargetStatus:
    empty = Snapshot(pods=(), nodes=(), units=(), synced=True)
    return app.actuator.merged(empty).targets.get(target, TargetStatus())


@pytest.mark.parametrize("cli", terraform.CLIS)
async def test_a_burst_of_six_units_is_one_apply_and_its_pods_run(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path, cli: str
) -> None:
    workdir = tmp_path / "workdir"
    config = tmp_path / "rules.yaml"
    # The trigger fires only once all six 4-GPU pods are pending: one decision of six units.
    config.write_text(
        rules(
            target=target,
            namespace=namespace,
            kubeconfig=kubeconfig,
            workdir=workdir,
            pending_gpus=24,
            idle_for="1h",
            cli=cli,
        )
    )
    async with burstd_in_process(config, kubeconfig) as app:
        await kube.create_job(namespace, "train", pods=6, gpus=4, complete_after="never")

        async def all_running() -> list[dict[str, Any]] | None:
            pods = await kube.pods(namespace)
            ok = len(pods) == 6 and all(phase(p) == "Running" and node_of(p) for p in pods)
            return pods if ok else None

        pods = await eventually(all_running, within=120, what="6 pods Running")
        nodes = await kube.nodes(f"burstd.io/target={target}")
        assert len(nodes) == 6
        assert {node_of(p) for p in pods} == {name_of(n) for n in nodes}
        for node in nodes:
            labels = node["metadata"]["labels"]
            assert labels["burstd.io/provider"] == "terraform"
            assert labels["app.kubernetes.io/managed-by"] == "burstd"
            assert labels["nvidia.com/gpu.product"] == "NVIDIA-A10G"
            assert name_of(node) == f"tf-{labels['burstd.io/unit']}"
            assert node["status"]["allocatable"]["nvidia.com/gpu"] == "4"
        # One apply made all six (adoption at start ran none: there was nothing to converge).
        assert provider(app, target).applies == 1
        units = {n["metadata"]["labels"]["burstd.io/unit"] for n in nodes}
        assert terraform.wanted(workdir) == units
        assert terraform.in_state(workdir) == units


async def test_releasing_the_middle_unit_of_three_removes_exactly_its_key(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "workdir"
    config = tmp_path / "rules.yaml"
    config.write_text(
        rules(
            target=target,
            namespace=namespace,
            kubeconfig=kubeconfig,
            workdir=workdir,
            pending_gpus=12,
        )
    )
    async with burstd_in_process(config, kubeconfig):
        for i in range(3):
            await kube.create_pod(namespace, f"p{i}", gpus=4)

        async def all_running() -> list[dict[str, Any]] | None:
            pods = await kube.pods(namespace)
            ok = len(pods) == 3 and all(phase(p) == "Running" and node_of(p) for p in pods)
            return pods if ok else None

        pods = await eventually(all_running, within=120, what="3 pods Running")
        before = {name_of(n): n for n in await kube.nodes(f"burstd.io/target={target}")}
        keys = sorted(n["metadata"]["labels"]["burstd.io/unit"] for n in before.values())
        assert len(keys) == 3
        middle = keys[1]
        (pod,) = [p for p in pods if node_of(p) == f"tf-{middle}"]
        await kube.delete_pod(namespace, pod["metadata"]["name"])

        async def middle_gone() -> bool:
            return terraform.in_state(workdir) == {keys[0], keys[2]} and not await kube.nodes(
                f"burstd.io/unit={middle}"
            )

        await eventually(middle_gone, within=60, what=f"unit {middle} given back")
        after = {name_of(n): n for n in await kube.nodes(f"burstd.io/target={target}")}
        assert set(after) == {f"tf-{keys[0]}", f"tf-{keys[2]}"}
        # The other two are the very same objects, never replaced.
        for name, node in after.items():
            assert node["metadata"]["uid"] == before[name]["metadata"]["uid"]
        assert terraform.wanted(workdir) == {keys[0], keys[2]}
        assert all(phase(p) == "Running" for p in await kube.pods(namespace))


@pytest.mark.parametrize(
    ("module_vars", "deadline", "error"),
    [
        pytest.param(
            '        fail_with: "quota exceeded: 0 of 0 GPU instances left"',
            "1m",
            "quota exceeded: 0 of 0 gpu instances left",
            id="module-error",
        ),
        pytest.param("        advertise_gpus: false", "6s", "ready", id="ready-without-gpus"),
    ],
)
async def test_a_failed_unit_is_rolled_back_and_the_ladder_moves_on(
    kube: Kube,
    namespace: str,
    target: str,
    kubeconfig: Path,
    tmp_path: Path,
    module_vars: str,
    deadline: str,
    error: str,
) -> None:
    workdir = tmp_path / "workdir"
    config = tmp_path / "rules.yaml"
    config.write_text(
        rules(
            target=target,
            namespace=namespace,
            kubeconfig=kubeconfig,
            workdir=workdir,
            ready_deadline=deadline,
            module_vars=module_vars,
            fallback=True,
            idle_for="1h",
        )
    )
    seen_tf_nodes: set[str] = set()
    try:
        async with burstd_in_process(config, kubeconfig) as app:
            await kube.create_pod(namespace, "p0", gpus=4)

            async def running_on_kwok() -> str | None:
                seen_tf_nodes.update(
                    name_of(n) for n in await kube.nodes(f"burstd.io/target={target}")
                )
                return await running_node(kube, namespace)

            node = await eventually(running_on_kwok, within=120, what="the pod Running")
            kwok_nodes = await kube.nodes(f"burstd.io/target={target}-kwok")
            assert [name_of(n) for n in kwok_nodes] == [node], (node, seen_tf_nodes)
            # The Terraform target failed with terraform's words (or the deadline's: the
            # provider's or the planner's, whichever saw it first) and backs off.
            failed = status(app, target)
            assert failed.consecutive_failures >= 1
            assert error in failed.last_error.lower()

            # Rolled back: nothing wanted, nothing in the state, no node of it left.
            async def rolled_back() -> bool:
                return (
                    not terraform.wanted(workdir)
                    and (workdir / "terraform.tfstate").exists()
                    and not terraform.in_state(workdir)
                    and not await kube.nodes(f"burstd.io/target={target}")
                )

            await eventually(rolled_back, within=30, what="the failed unit rolled back")
            if "advertise_gpus" in module_vars:
                assert seen_tf_nodes, "the GPU-less node should have been made, then removed"
    finally:
        await kube.delete_nodes(f"{MANAGED},burstd.io/target={target}-kwok")


async def test_a_broken_module_holds_only_its_own_target_back(
    kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken-module"
    broken.mkdir()
    (broken / "main.tf").write_text('resource "terraform_data" "unclosed" {\n')
    config = tmp_path / "rules.yaml"
    text = rules(
        target=target,
        namespace=namespace,
        kubeconfig=kubeconfig,
        workdir=tmp_path / "workdir",
        fallback=True,
        idle_for="1h",
    )
    config.write_text(text.replace(f"module: {terraform.MODULE}", f"module: {broken}"))
    try:
        # Planning starts although terraform init fails for the first target.
        async with burstd_in_process(config, kubeconfig) as app:
            assert target in app.adoption.unlisted
            assert "its existing units are unknown" in status(app, target).held_back
            await kube.create_pod(namespace, "p0", gpus=4)

            async def running() -> str | None:
                return await running_node(kube, namespace)

            node = await eventually(running, within=60, what="the pod Running")
            kwok_nodes = await kube.nodes(f"burstd.io/target={target}-kwok")
            assert [name_of(n) for n in kwok_nodes] == [node]
            # Nothing was bursted onto the held-back target; it is still asked, with backoff.
            ups = [a.decision for a in app.applied if a.decision.verb == "scaleup"]
            assert {getattr(d, "target", "") for d in ups} == {f"{target}-kwok"}
            assert f"{target} held back: its existing units are unknown" in ups[0].reason
            assert app.adoption.unlisted[target].failures >= 1
            [record] = [t for t in app.ops.status()["targets"] if t["name"] == target]
            assert record["held_back"].startswith(
                "its existing units are unknown: TerraformError: terraform init failed: "
                "Error: Unclosed configuration block"
            )
    finally:
        await kube.delete_nodes(f"{MANAGED},burstd.io/target={target}-kwok")

"""The Terraform provider on its own, against real terraform and the real control plane: a
cancelled create stops terraform cleanly and is rolled back, and no credential ever reaches
what burstd says."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from burstd.providers.base import ProviderError, UnitSpec
from burstd.providers.terraform.cli import Redactor, Terraform
from burstd.providers.terraform.provider import TerraformProvider
from tests.integration import terraform
from tests.integration.kube import Kube, eventually

pytestmark = pytest.mark.integration


def spec(target: str, uid: str) -> UnitSpec:
    return UnitSpec(id=f"{target}-{uid}", target=target, rule="r", gpus=4, ready_deadline=120)


async def test_a_cancelled_create_interrupts_terraform_and_delete_rolls_it_back(
    kube: Kube, target: str, kubeconfig: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    workdir = tmp_path / "workdir"
    provider = TerraformProvider(
        kube.api, target, terraform.params(kubeconfig, workdir, create_delay=60)
    )
    unit = spec(target, "c1")
    caplog.set_level(logging.INFO)
    create = asyncio.create_task(provider.create(unit))

    async def applying() -> bool:
        return any(
            getattr(r, "event", None) == "terraform_progress"
            and getattr(r, "kind", None) == "apply_start"
            for r in caplog.records
        )

    await eventually(applying, within=60, what="the apply to start")
    create.cancel()
    with pytest.raises(asyncio.CancelledError):
        await create
    assert any(getattr(r, "event", None) == "terraform_interrupt" for r in caplog.records)
    # terraform stopped cleanly: it released its state lock and the workdir's flock.
    assert not (workdir / ".terraform.tfstate.lock.info").exists()
    assert terraform.wanted(workdir) == {unit.id}
    await provider.delete(unit.id, None)
    assert terraform.wanted(workdir) == set()
    assert terraform.in_state(workdir) == set()
    assert not await kube.nodes(f"burstd.io/unit={unit.id}")


async def test_no_credential_reaches_a_log_line_or_an_error(
    kube: Kube, target: str, kubeconfig: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "tok-9f8e7d6c5b4a"
    creds = tmp_path / "cloud.env"
    creds.write_text(f"CLOUD_TOKEN={secret}\n")
    # A cloud API that echoes the credential back in its error, as some do.
    params = terraform.params(
        kubeconfig, tmp_path / "workdir", fail_with=f"401: token {secret} rejected"
    )
    params["env_files"] = [str(creds)]
    provider = TerraformProvider(kube.api, target, params)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ProviderError) as err:
        await provider.create(spec(target, "s1"))
    assert "401: token *** rejected" in str(err.value)
    assert secret not in str(err.value)
    said = [r.getMessage() for r in caplog.records]
    assert any("token *** rejected" in line for line in said)
    assert not [line for line in said if secret in line]


async def test_a_provider_rebuilt_by_a_reload_shares_the_map_with_the_old_one(
    kube: Kube, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "workdir"
    old = TerraformProvider(kube.api, target, terraform.params(kubeconfig, workdir))
    first = await old.create(spec(target, "r1"))
    # The rules changed: the daemon builds a new provider while the old one still works.
    new = TerraformProvider(
        kube.api, target, terraform.params(kubeconfig, workdir, name_prefix="tf-")
    )
    made = await asyncio.gather(old.create(spec(target, "r2")), new.create(spec(target, "r3")))
    assert terraform.wanted(workdir) == {first.id, *(u.id for u in made)}
    assert terraform.in_state(workdir) == terraform.wanted(workdir)
    await new.delete(first.id, first.node)
    assert terraform.in_state(workdir) == {u.id for u in made}
    assert {u.id for u in await old.list_units()} == {u.id for u in made}
    for unit in made:
        await old.delete(unit.id, unit.node)
    assert not await kube.nodes(f"burstd.io/target={target}")


@pytest.mark.parametrize("cli", terraform.CLIS)
async def test_outputs_are_read_past_warnings_the_cli_prints_first(
    tmp_path: Path, cli: str
) -> None:
    (tmp_path / "main.tf.json").write_text('{"output": {"nodes": {"value": {"u-1": "n-1"}}}}')
    # A CLI configuration file that does not exist: OpenTofu warns about it on stdout.
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(tmp_path / "missing.tfrc")}
    tf = Terraform(terraform.binary(cli), tmp_path, env, Redactor())
    await tf.init(within=120, hold=None)
    assert await tf.outputs(within=60, hold=None) == {}
    result = await tf.apply(
        var_file="none.tfvars.json", lock_timeout=5, parallelism=1, within=120, hold=None
    )
    assert not result.ok
    assert "none.tfvars.json" in result.message()
    (tmp_path / "none.tfvars.json").write_text("{}")
    result = await tf.apply(
        var_file="none.tfvars.json", lock_timeout=5, parallelism=1, within=120, hold=None
    )
    assert result.ok, result.message()
    assert await tf.outputs(within=60, hold=None) == {"nodes": {"u-1": "n-1"}}

"""One contract suite over every provider (providers/base.py says what each method promises).

The fake runs always; the kwok, InterLink and Terraform providers run against the real control
plane, the Liqo provider against two (a donor and the Liqo emulator, ``kube-testenv up
--donor``) (marker ``integration``; InterLink's site virtual kubelet and Liqo's controllers are
emulated by ``burstd.testing``, the parts that cannot run here). The Terraform provider runs
with both CLIs (terraform and OpenTofu) on the kwok-pool rehearsal module. The same assertions
hold for the fake the simulator and tests lean on and for the providers users run; a new
provider joins by adding a case to ``factory``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from burstd.model import MANAGED_BY, MANAGED_BY_LABEL, UNIT_LABEL
from burstd.providers.base import CapacityError, Provider, UnitSpec
from burstd.providers.fake import FakeProvider
from burstd.providers.interlink.provider import InterLinkProvider
from burstd.providers.kwok.provider import KwokProvider
from burstd.providers.terraform.provider import TerraformProvider
from tests.conftest import MANAGED
from tests.integration import liqo, terraform
from tests.integration.interlink import emulated, params_nodes, site
from tests.integration.kube import Kube

TARGET = f"contract{secrets.token_hex(3)}"
ProviderFactory = Callable[[], AbstractAsyncContextManager[Provider]]


@asynccontextmanager
async def fake_provider() -> AsyncIterator[Provider]:
    yield FakeProvider(target=TARGET, ready_after=0.01)


def kwok_provider(kubeconfig: Path) -> ProviderFactory:
    @asynccontextmanager
    async def make() -> AsyncIterator[Provider]:
        async with Kube(kubeconfig) as kube:
            try:
                yield KwokProvider(kube.api, TARGET, {"poll_interval": 0.1})
            finally:
                await kube.delete_nodes(f"{MANAGED},burstd.io/target={TARGET}")

    return make


def terraform_provider(kubeconfig: Path, workdir: Path, cli: str) -> ProviderFactory:
    @asynccontextmanager
    async def make() -> AsyncIterator[Provider]:
        async with Kube(kubeconfig) as kube:
            params = terraform.params(kubeconfig, workdir, cli)
            try:
                yield TerraformProvider(kube.api, TARGET, params)
            finally:
                await kube.delete_nodes(f"{MANAGED},burstd.io/target={TARGET}")

    return make


def liqo_provider(kubeconfig: Path) -> ProviderFactory:
    @asynccontextmanager
    async def make() -> AsyncIterator[Provider]:
        async with Kube(kubeconfig) as kube:
            try:
                yield liqo.provider(kube, TARGET)
            finally:
                await liqo.cleanup(kube, TARGET)

    return make


def interlink_provider(kubeconfig: Path) -> ProviderFactory:
    """Two virtual nodes of an emulated HPC site (one the site runs, one burstd scales)."""

    @asynccontextmanager
    async def make() -> AsyncIterator[Provider]:
        async with Kube(kubeconfig) as kube:
            namespace = await kube.create_namespace("il")
            s = site(TARGET, namespace, static=1, scaled=1, gpus=4)
            try:
                async with emulated(kube, s):
                    params = {"nodes": params_nodes(s), "poll_interval": 0.1}
                    yield InterLinkProvider(kube.api, TARGET, params)
            finally:
                await kube.delete_namespace(namespace)

    return make


@pytest.fixture(
    params=[
        pytest.param("fake", id="fake"),
        pytest.param("kwok", id="kwok", marks=pytest.mark.integration),
        pytest.param("liqo", id="liqo", marks=pytest.mark.integration),
        pytest.param("interlink", id="interlink", marks=pytest.mark.integration),
        *(pytest.param(cli, id=cli, marks=pytest.mark.integration) for cli in terraform.CLIS),
    ]
)
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> ProviderFactory:
    if request.param == "kwok":
        return kwok_provider(request.getfixturevalue("kubeconfig"))
    if request.param == "liqo":
        request.getfixturevalue("donor")
        return liqo_provider(request.getfixturevalue("kubeconfig"))
    if request.param == "interlink":
        return interlink_provider(request.getfixturevalue("kubeconfig"))
    if request.param in terraform.CLIS:
        kubeconfig = request.getfixturevalue("kubeconfig")
        return terraform_provider(kubeconfig, tmp_path / "workdir", request.param)
    return fake_provider


def spec(uid: str, gpus: int = 4) -> UnitSpec:
    unit = f"{TARGET}-{uid}"
    return UnitSpec(
        id=unit,
        target=TARGET,
        rule="r",
        gpus=gpus,
        gpu_model="NVIDIA-A100-SXM4-40GB",
        labels={MANAGED_BY_LABEL: MANAGED_BY, UNIT_LABEL: unit},
        ready_deadline=60,
    )


async def test_create_returns_a_ready_unit_with_its_gpus(factory: ProviderFactory) -> None:
    async with factory() as provider:
        unit = await provider.create(spec("c-1", gpus=4))
        try:
            assert unit.ready
            assert unit.node
            assert (unit.id, unit.target, unit.rule, unit.gpus) == (f"{TARGET}-c-1", TARGET, "r", 4)
        finally:
            await provider.delete(unit.id, unit.node)


async def test_create_is_idempotent_by_unit_id(factory: ProviderFactory) -> None:
    async with factory() as provider:
        first = await provider.create(spec("c-2"))
        again = await provider.create(spec("c-2"))
        try:
            assert again.node == first.node
            assert [u.id for u in await provider.list_units()].count(first.id) == 1
        finally:
            await provider.delete(first.id, first.node)


async def test_list_units_finds_what_was_made_so_a_restart_can_adopt_it(
    factory: ProviderFactory,
) -> None:
    async with factory() as provider:
        made = [await provider.create(spec(f"c-3{i}")) for i in range(2)]
        try:
            found = {u.id: u for u in await provider.list_units()}
            for unit in made:
                assert found[unit.id].rule == "r"
                assert found[unit.id].node == unit.node
                assert found[unit.id].ready
        finally:
            for unit in made:
                await provider.delete(unit.id, unit.node)


async def test_cordon_and_uncordon_are_idempotent_and_visible(factory: ProviderFactory) -> None:
    async with factory() as provider:
        unit = await provider.create(spec("c-4"))
        try:
            await provider.cordon(unit.id, unit.node)
            await provider.cordon(unit.id, unit.node)
            (seen,) = [u for u in await provider.list_units() if u.id == unit.id]
            assert seen.cordoned
            # burstd's own cordon is recorded, so a restart never takes it for an operator's.
            assert seen.cordoned_by_burstd
            await provider.uncordon(unit.id, unit.node)
            await provider.uncordon(unit.id, unit.node)
            (seen,) = [u for u in await provider.list_units() if u.id == unit.id]
            assert not seen.cordoned
            assert not seen.cordoned_by_burstd
        finally:
            await provider.delete(unit.id, unit.node)


# Providers that lend nodes a site already has, as they are: a unit's shape is the node's
# (an HPC site's GPUs and model), not what was asked, and InterLink units carry no MIG slices.
AS_THE_SITE_HAS_IT = frozenset({"interlink"})


async def test_list_units_reports_the_shape_a_unit_was_made_with(
    factory: ProviderFactory, request: pytest.FixtureRequest
) -> None:
    async with factory() as provider:
        mig = replace(spec("c-7", gpus=1), mig={"1g.10gb": 7})
        unit = await provider.create(mig)
        try:
            (seen,) = [u for u in await provider.list_units() if u.id == unit.id]
            if request.node.callspec.params["factory"] in AS_THE_SITE_HAS_IT:
                assert seen.gpus >= 1
                assert dict(seen.mig) == {}
                assert seen.gpu_model
            else:
                assert (seen.gpus, dict(seen.mig), seen.gpu_model) == (
                    1,
                    {"1g.10gb": 7},
                    "NVIDIA-A100-SXM4-40GB",
                )
        finally:
            await provider.delete(unit.id, unit.node)


async def test_delete_is_idempotent_and_leaves_nothing(factory: ProviderFactory) -> None:
    async with factory() as provider:
        unit = await provider.create(spec("c-5"))
        await provider.delete(unit.id, unit.node)
        await provider.delete(unit.id, unit.node)
        await provider.delete("never-made", None)
        assert unit.id not in {u.id for u in await provider.list_units()}


async def test_the_fake_takes_an_injected_error_once_and_caps_capacity() -> None:
    fake = FakeProvider(target=TARGET, capacity_units=1)
    fake.fail["create"] = [CapacityError("donor busy")]
    with pytest.raises(CapacityError, match="donor busy"):
        await fake.create(spec("f-1"))
    await fake.delete(f"{TARGET}-f-1", None)
    await fake.create(spec("f-1"))
    with pytest.raises(CapacityError, match="lent out"):
        await fake.create(spec("f-2"))
    assert fake.calls == [
        ("create", f"{TARGET}-f-1"),
        ("delete", f"{TARGET}-f-1"),
        ("create", f"{TARGET}-f-1"),
        ("create", f"{TARGET}-f-2"),
    ]
    fake.reset()
    assert not fake.calls
    assert not fake.units

"""One contract suite over every provider (providers/base.py says what each method promises).

The fake runs always; the kwok and InterLink providers run against the real control plane, the
Liqo provider against two (a donor and the Liqo emulator, ``kube-testenv up --donor``) (marker
``integration``; InterLink's site virtual kubelet and Liqo's controllers are emulated by
``burstd.testing``, the parts that cannot run here). The same assertions hold for the fake the
simulator and tests lean on and for the providers users run; a new provider joins by adding a
case to ``factory``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from burstd.model import MANAGED_BY, MANAGED_BY_LABEL, UNIT_LABEL
from burstd.providers.base import CapacityError, Provider, UnitSpec
from burstd.providers.fake import FakeProvider
from burstd.providers.interlink.provider import InterLinkProvider
from burstd.providers.kwok.provider import KwokProvider
from tests.conftest import MANAGED
from tests.integration import liqo
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
    ]
)
def factory(request: pytest.FixtureRequest) -> ProviderFactory:
    if request.param == "kwok":
        return kwok_provider(request.getfixturevalue("kubeconfig"))
    if request.param == "liqo":
        request.getfixturevalue("donor")
        return liqo_provider(request.getfixturevalue("kubeconfig"))
    if request.param == "interlink":
        return interlink_provider(request.getfixturevalue("kubeconfig"))
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
            await provider.uncordon(unit.id, unit.node)
            await provider.uncordon(unit.id, unit.node)
            (seen,) = [u for u in await provider.list_units() if u.id == unit.id]
            assert not seen.cordoned
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

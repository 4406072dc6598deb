"""One contract suite over every provider (providers/base.py says what each method promises).

The fake runs always. Real providers join through ``PROVIDERS`` with the marker their
environment needs, so the same assertions hold for the fake the simulator and tests lean on
and for the provider users run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from burstd.providers.base import CapacityError, Provider, UnitSpec
from burstd.providers.fake import FakeProvider

ProviderFactory = Callable[[], AbstractAsyncContextManager[Provider]]


@asynccontextmanager
async def fake_provider() -> AsyncIterator[Provider]:
    yield FakeProvider(target="t", ready_after=0.01)


PROVIDERS: list[object] = [pytest.param(fake_provider, id="fake")]


def spec(uid: str, gpus: int = 4) -> UnitSpec:
    return UnitSpec(
        id=uid,
        target="t",
        rule="r",
        gpus=gpus,
        gpu_model="NVIDIA-A100-SXM4-40GB",
        ready_deadline=60,
    )


@pytest.fixture(params=PROVIDERS)
def factory(request: pytest.FixtureRequest) -> ProviderFactory:
    return request.param  # type: ignore[no-any-return]


async def test_create_returns_a_ready_unit_with_its_gpus(factory: ProviderFactory) -> None:
    async with factory() as provider:
        unit = await provider.create(spec("c-1", gpus=4))
        try:
            assert unit.ready
            assert unit.node
            assert (unit.id, unit.target, unit.rule, unit.gpus) == ("c-1", "t", "r", 4)
        finally:
            await provider.delete(unit.id, unit.node)


async def test_create_is_idempotent_by_unit_id(factory: ProviderFactory) -> None:
    async with factory() as provider:
        first = await provider.create(spec("c-2"))
        again = await provider.create(spec("c-2"))
        try:
            assert again.node == first.node
            assert [u.id for u in await provider.list_units()].count("c-2") == 1
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
        assert "c-5" not in {u.id for u in await provider.list_units()}


async def test_the_fake_takes_an_injected_error_once_and_caps_capacity() -> None:
    fake = FakeProvider(target="t", capacity_units=1)
    fake.fail_next = CapacityError("donor busy")
    with pytest.raises(CapacityError, match="donor busy"):
        await fake.create(spec("f-1"))
    await fake.create(spec("f-1"))
    with pytest.raises(CapacityError, match="lent out"):
        await fake.create(spec("f-2"))
    assert fake.calls == [("create", "f-1"), ("create", "f-1"), ("create", "f-2")]
    fake.reset()
    assert not fake.calls
    assert not fake.units

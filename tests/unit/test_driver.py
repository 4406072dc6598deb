"""AsyncDriver: provider calls as tasks, results back to a real Actuator.

The provider here is a fake, but a faithful one for what the driver relies on: ``create``
blocks until released (or cancelled), every call is recorded in order, errors can be
injected per call, and ``delete`` of a unit that does not exist succeeds. Sleeps are
recorded, not slept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from burstd.actuate.actuator import Actuator
from burstd.actuate.driver import (
    AsyncDriver,
    RetryPolicy,
    label_value,
    ownership_labels,
)
from burstd.model import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    Abandon,
    Cordon,
    Evict,
    ScaleUp,
    Snapshot,
    UnitPhase,
)
from burstd.plan.planner import Plan
from burstd.providers.base import NotReadyError, ProviderError
from burstd.providers.fake import FakeProvider
from burstd.state.clock import ManualClock
from tests.unit.builders import ruleset, target

RULES = ruleset(target("a", gpus=4, params={"zone": "z1"}, ready_deadline=120.0))


def held_fake() -> FakeProvider:
    """The shipped fake, its creates held until a test opens the gate."""
    return FakeProvider(target="a", gate=asyncio.Event())


class Rig:
    def __init__(self, provider: FakeProvider) -> None:
        self.provider = provider
        self.clock = ManualClock(1000.0)
        self.sleeps: list[float] = []
        self.driver = AsyncDriver(
            lambda name: provider if name == "a" else None,
            self.clock,
            retry=RetryPolicy(attempts=3, base=1.0, max_delay=4.0),
            sleep=self._sleep,
        )
        self.actuator = Actuator(self.driver)
        self.driver.bind(self.actuator)

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)

    def scale_up(self, units: int = 1) -> list[str]:
        d = ScaleUp(reason="test", rule="r", target="a", units=units, gpus_per_unit=4)
        applied = self.actuator.execute(Plan(decisions=(d,)), RULES, self.clock.now())
        return list(applied[0].units)

    def decide(self, *decisions: object) -> None:
        self.actuator.execute(Plan(decisions=tuple(decisions)), RULES, self.clock.now())  # type: ignore[arg-type]


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = Rig(held_fake())
    async with asyncio.TaskGroup() as tg:
        r.driver.attach(tg)
        yield r
        await r.driver.shutdown(grace=0)


async def test_create_reports_provisioning_then_ready(rig: Rig) -> None:
    (uid,) = rig.scale_up()
    await settle()
    assert rig.actuator.units[uid].phase is UnitPhase.PROVISIONING
    spec = rig.provider.specs[0]
    assert spec.gpus == 4
    assert spec.params == {"zone": "z1"}
    assert spec.ready_deadline == 120.0
    assert spec.labels[MANAGED_BY_LABEL] == MANAGED_BY
    assert spec.labels["burstd.io/unit"] == uid
    rig.clock.advance(30)
    rig.provider.open_gate()
    await settle()
    unit = rig.actuator.units[uid]
    assert unit.phase is UnitPhase.READY
    assert unit.node == f"fake-{uid}"
    assert unit.ready_at == 1030.0
    assert [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("create:")] == []


async def test_calls_are_named_tasks(rig: Rig) -> None:
    (uid,) = rig.scale_up()
    await settle()
    names = {t.get_name() for t in asyncio.all_tasks()}
    assert f"create:{uid}" in names
    assert rig.driver.in_flight == 1


async def test_delete_cancels_the_running_create_first(rig: Rig) -> None:
    (uid,) = rig.scale_up()
    await settle()
    rig.clock.advance(200)
    rig.decide(Abandon(unit=uid, rule="r", reason="past its ready deadline"))
    await settle()
    assert rig.provider.calls == [("create", uid), ("create-cancelled", uid), ("delete", uid)]
    assert uid not in rig.actuator.units
    assert rig.actuator.failed_total == 1
    # The abandon put the target in backoff; the cancelled create did not count twice.
    assert rig.actuator.merged(Snapshot()).target_status("a").consecutive_failures == 1
    assert rig.driver.in_flight == 0


async def test_failed_create_is_cleaned_up_and_reported(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.provider.fail["create"] = [ProviderError("zone out of GPUs")]
    (uid,) = rig.scale_up()
    rig.provider.open_gate()
    with caplog.at_level(logging.ERROR, logger="burstd.actuate.driver"):
        await settle()
    assert rig.provider.calls == [("create", uid), ("delete", uid)]
    assert uid not in rig.actuator.units
    assert rig.actuator.failed_total == 1
    assert any(
        uid in r.getMessage() and "zone out of GPUs" in r.getMessage() for r in caplog.records
    )
    assert any(getattr(r, "unit", None) == uid for r in caplog.records)


async def test_a_failed_create_backs_off_with_the_providers_words_before_its_cleanup(
    rig: Rig,
) -> None:
    rig.provider.fail["create"] = [NotReadyError("a-1: node never became Ready")]
    rig.provider.fail["delete"] = [ProviderError("apiserver busy")] * 50
    (uid,) = rig.scale_up()
    rig.provider.open_gate()
    await settle()
    # The cleanup delete is still being retried; the unit is failed already, not coming.
    assert rig.provider.calls[-1] == ("delete", uid)
    assert rig.actuator.units[uid].phase is UnitPhase.FAILED
    status = rig.actuator.merged(Snapshot()).target_status("a")
    assert status.last_error == "NotReadyError: a-1: node never became Ready"
    assert status.backoff_until > rig.clock.now()
    # Past the deadline meanwhile: nothing is left to abandon, the failure counts once.
    rig.clock.advance(500)
    rig.decide(Abandon(unit=uid, rule="r", reason="past its ready deadline"))
    rig.provider.fail["delete"].clear()
    await settle()
    assert uid not in rig.actuator.units
    assert rig.actuator.failed_total == 1
    assert rig.actuator.merged(Snapshot()).target_status("a").consecutive_failures == 1


async def test_an_unexpected_error_does_not_escape_into_the_task_group(rig: Rig) -> None:
    rig.provider.fail["create"] = [RuntimeError("bug in a provider")]
    (uid,) = rig.scale_up()
    rig.provider.open_gate()
    await settle()
    assert uid not in rig.actuator.units
    # The group is still alive: another unit goes through.
    (other,) = rig.scale_up()
    await settle()
    assert rig.actuator.units[other].phase is UnitPhase.READY


async def test_cordon_is_retried_with_backoff(rig: Rig) -> None:
    (uid,) = rig.scale_up()
    rig.provider.open_gate()
    await settle()
    rig.provider.fail["cordon"] = [OSError("connection reset"), ProviderError("HTTP 503")]
    rig.decide(Cordon(unit=uid, rule="r", reason="idle"))
    await settle()
    assert [c for c in rig.provider.calls if c[0] == "cordon"] == [("cordon", uid)] * 3
    assert rig.sleeps == [1.0, 2.0]
    assert rig.actuator.units[uid].phase is UnitPhase.CORDONED
    # The unit is free for its next call.
    assert rig.driver.in_flight == 0


async def test_cordon_gives_up_after_its_attempts(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    (uid,) = rig.scale_up()
    rig.provider.open_gate()
    await settle()
    rig.provider.fail["cordon"] = [OSError("down")] * 5
    with caplog.at_level(logging.WARNING, logger="burstd.actuate.driver"):
        rig.decide(Cordon(unit=uid, rule="r", reason="idle"))
        await settle()
    assert len([c for c in rig.provider.calls if c[0] == "cordon"]) == 3
    assert any("gave up" in r.getMessage() and uid in r.getMessage() for r in caplog.records)


async def test_non_retryable_errors_are_not_retried(rig: Rig) -> None:
    (uid,) = rig.scale_up()
    rig.provider.open_gate()
    await settle()
    error = ProviderError("forbidden")
    error.retryable = False
    rig.provider.fail["cordon"] = [error]
    rig.decide(Cordon(unit=uid, rule="r", reason="idle"))
    await settle()
    assert len([c for c in rig.provider.calls if c[0] == "cordon"]) == 1
    assert rig.sleeps == []


async def test_delete_is_retried_until_it_succeeds(rig: Rig) -> None:
    (uid,) = rig.scale_up()
    rig.provider.open_gate()
    await settle()
    rig.provider.fail["delete"] = [OSError("down")] * 6
    rig.decide(Abandon(unit=uid, rule="r", reason="test"))
    await settle()
    assert len([c for c in rig.provider.calls if c[0] == "delete"]) == 7
    assert rig.sleeps == [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert uid not in rig.actuator.units


async def test_evict_not_supported_means_waiting(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    (uid,) = rig.scale_up()
    rig.provider.open_gate()
    await settle()
    rig.provider.fail["evict"] = [NotImplementedError()]
    with caplog.at_level(logging.INFO, logger="burstd.actuate.driver"):
        rig.decide(Evict(unit=uid, rule="r", reason="max_wait", pods=("ml/a",)))
        await settle()
    assert ("evict", uid) in rig.provider.calls
    assert any("cannot evict" in r.getMessage() for r in caplog.records)
    assert rig.driver.in_flight == 0


async def test_unknown_target_fails_the_unit(rig: Rig) -> None:
    rules = ruleset(target("a"), target("b"))
    d = ScaleUp(reason="test", rule="r", target="b", units=1, gpus_per_unit=4)
    (applied,) = rig.actuator.execute(Plan(decisions=(d,)), rules, rig.clock.now())
    await settle()
    assert applied.units[0] not in rig.actuator.units
    assert rig.actuator.failed_total == 1


async def test_shutdown_waits_for_the_grace_period_then_cancels() -> None:
    r = Rig(held_fake())
    async with asyncio.TaskGroup() as tg:
        r.driver.attach(tg)
        (uid,) = r.scale_up()
        await settle()
        await r.driver.shutdown(grace=0.01)
    assert r.provider.calls == [("create", uid), ("create-cancelled", uid)]
    assert r.driver.in_flight == 0


async def test_shutdown_lets_quick_calls_finish() -> None:
    r = Rig(held_fake())
    async with asyncio.TaskGroup() as tg:
        r.driver.attach(tg)
        (uid,) = r.scale_up()
        await settle()
        asyncio.get_running_loop().call_soon(r.provider.open_gate)
        await r.driver.shutdown(grace=5)
    assert r.actuator.units[uid].phase is UnitPhase.READY


def test_calls_before_attach_fail_loudly() -> None:
    r = Rig(held_fake())
    with pytest.raises(RuntimeError, match="attach"):
        r.scale_up()


def test_label_values_are_made_valid() -> None:
    assert label_value("gpu-burst") == "gpu-burst"
    assert label_value("My Rule!") == "My-Rule"
    assert len(label_value("x" * 100)) == 63
    from tests.unit.builders import unit

    labels = ownership_labels(unit("u1"))
    assert labels["burstd.io/target"] == "a"

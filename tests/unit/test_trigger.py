"""The trigger on virtual time: batching windows, the backstop, reloads. No real sleeps."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator

import pytest

from burstd.control.trigger import EVENTS, INTERVAL, Batcher, Trigger
from burstd.rules.types import LoopSettings

SETTINGS = LoopSettings(interval=10.0, batch_idle=1.0, batch_max=5.0)


class VirtualTime:
    """A clock and a sleep that move only when the test says ``advance``."""

    def __init__(self) -> None:
        self.t = 0.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.t + seconds, next(self._seq), fut))
        await fut

    async def advance(self, seconds: float) -> None:
        end = self.t + seconds
        await settle()
        while self._timers and self._timers[0][0] <= end:
            at, _, fut = heapq.heappop(self._timers)
            self.t = max(self.t, at)
            if not fut.done():
                fut.set_result(None)
            await settle()
        self.t = end
        await settle()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


# The arithmetic ------------------------------------------------------------------------


def test_idle_window() -> None:
    b = Batcher(last_run=0.0)
    assert b.due(SETTINGS) == (10.0, INTERVAL)
    b.poke(2.0)
    assert b.due(SETTINGS) == (3.0, EVENTS)
    b.poke(2.5)
    assert b.due(SETTINGS) == (3.5, EVENTS)


def test_max_window_bounds_a_busy_batch() -> None:
    b = Batcher(last_run=0.0)
    for i in range(20):
        b.poke(1.0 + i * 0.5)
    assert b.due(SETTINGS) == (6.0, EVENTS)


def test_backstop_first_when_sooner() -> None:
    b = Batcher(last_run=0.0)
    b.poke(9.5)
    assert b.due(SETTINGS) == (10.0, INTERVAL)


def test_ran_closes_the_batch() -> None:
    b = Batcher(last_run=0.0)
    b.poke(1.0)
    b.ran(2.0)
    assert b.first_poke is None
    assert b.due(SETTINGS) == (12.0, INTERVAL)


# The waiting -----------------------------------------------------------------------------


@pytest.fixture
async def vt() -> VirtualTime:
    return VirtualTime()


class Recorder:
    def __init__(self, trigger: Trigger, vt: VirtualTime) -> None:
        self.passes: list[tuple[float, str]] = []
        self._trigger = trigger
        self._vt = vt

    async def run(self) -> None:
        while True:
            why = await self._trigger.wait()
            self.passes.append((self._vt.now(), why))


@pytest.fixture
async def running(vt: VirtualTime) -> AsyncIterator[tuple[Trigger, Recorder, list[LoopSettings]]]:
    settings = [SETTINGS]
    trigger = Trigger(vt, lambda: settings[0], sleep=vt.sleep)
    rec = Recorder(trigger, vt)
    task = asyncio.create_task(rec.run())
    await settle()
    yield trigger, rec, settings
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_periodic_backstop(
    vt: VirtualTime, running: tuple[Trigger, Recorder, list[LoopSettings]]
) -> None:
    _, rec, _ = running
    await vt.advance(35)
    assert rec.passes == [(10.0, INTERVAL), (20.0, INTERVAL), (30.0, INTERVAL)]


async def test_poke_runs_after_the_idle_window(
    vt: VirtualTime, running: tuple[Trigger, Recorder, list[LoopSettings]]
) -> None:
    trigger, rec, _ = running
    await vt.advance(2)
    trigger.poke()
    await vt.advance(0.9)
    assert rec.passes == []
    await vt.advance(0.2)
    assert rec.passes == [(3.0, EVENTS)]
    # The backstop counts from the last pass.
    await vt.advance(10)
    assert rec.passes[-1] == (13.0, INTERVAL)


async def test_pokes_are_coalesced_up_to_the_max_window(
    vt: VirtualTime, running: tuple[Trigger, Recorder, list[LoopSettings]]
) -> None:
    trigger, rec, _ = running
    await vt.advance(1)
    for _ in range(20):
        trigger.poke()
        trigger.poke()  # a second poke in the same instant is absorbed
        await vt.advance(0.5)
    # Pokes every half second never leave the idle window: the max window closes the batch.
    assert next(p for p in rec.passes if p[1] == EVENTS) == (6.0, EVENTS)
    events = [t for t, why in rec.passes if why == EVENTS]
    assert events == [6.0, 11.0]
    assert all(why == EVENTS for _, why in rec.passes)


async def test_poke_never_blocks_without_a_waiter(vt: VirtualTime) -> None:
    trigger = Trigger(vt, lambda: SETTINGS, sleep=vt.sleep)
    for _ in range(1000):
        trigger.poke()
    assert trigger.pending
    vt.t = 1.0
    assert await trigger.wait() == EVENTS
    assert not trigger.pending


async def test_reloaded_settings_apply_to_the_open_wait(
    vt: VirtualTime, running: tuple[Trigger, Recorder, list[LoopSettings]]
) -> None:
    trigger, rec, settings = running
    await vt.advance(1)
    settings[0] = LoopSettings(interval=2.0, batch_idle=0.1, batch_max=1.0)
    trigger.run_now()
    await vt.advance(0)
    assert rec.passes == [(1.0, INTERVAL)]
    await vt.advance(4.5)
    assert [t for t, _ in rec.passes] == [1.0, 3.0, 5.0]
    trigger.poke()
    await vt.advance(0.1)
    at, why = rec.passes[-1]
    assert (round(at, 6), why) == (5.6, EVENTS)


async def test_pokes_during_a_pass_make_another(vt: VirtualTime) -> None:
    trigger = Trigger(vt, lambda: SETTINGS, sleep=vt.sleep)
    trigger.poke()
    vt.t = 1.0
    assert await trigger.wait() == EVENTS
    trigger.poke()  # while the pass runs
    waiter = asyncio.create_task(trigger.wait())
    await vt.advance(1.0)
    assert waiter.done()
    assert waiter.result() == EVENTS
    assert vt.now() == 2.0

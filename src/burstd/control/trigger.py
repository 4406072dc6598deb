"""When the control loop runs: events coalesced into batches, and a periodic backstop.

A source that sees something worth acting on (a pod became unschedulable, a unit's node became
Ready) pokes the trigger. A poke never blocks and never queues: it only opens a batch or
extends it. The loop runs once the pokes have been quiet for ``batch_idle``, or ``batch_max``
after the batch opened, whichever comes first, so fifty pods created together are planned
together; and every ``interval`` regardless, so timers (idle units, deadlines, cooldowns)
advance without events. This is Karpenter's batcher with the Cluster Autoscaler's one-slot
wake-up signal. A pass may also ask to run at a given moment (``wake_at``: the plan's next
schedule window edge or pending threshold), so a lab window opens on time, not up to an
interval late.

``Batcher`` is the arithmetic, pure and testable on numbers; ``Trigger`` adds the waiting,
with the clock and the sleep injected so tests run on virtual time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from burstd.rules.types import LoopSettings
from burstd.state.clock import Clock

EVENTS = "events"
INTERVAL = "interval"
WAKE = "wake_at"


@dataclass(slots=True)
class Batcher:
    """Open batch and last run, in clock seconds."""

    last_run: float
    first_poke: float | None = None
    last_poke: float | None = None
    pokes: int = 0
    wake: float | None = None

    def poke(self, now: float) -> None:
        if self.first_poke is None:
            self.first_poke = now
        self.last_poke = now
        self.pokes += 1

    def due(self, settings: LoopSettings) -> tuple[float, str]:
        """When the next pass is due under ``settings``, and why."""
        at, why = self.last_run + settings.interval, INTERVAL
        if self.first_poke is not None and self.last_poke is not None:
            batch = min(self.last_poke + settings.batch_idle, self.first_poke + settings.batch_max)
            if batch <= at:
                at, why = batch, EVENTS
        if self.wake is not None and self.wake < at:
            at, why = self.wake, WAKE
        return at, why

    def ran(self, now: float) -> None:
        """A pass started at ``now``: pokes before it are served by it."""
        self.last_run = now
        self.first_poke = self.last_poke = self.wake = None
        self.pokes = 0


class Trigger:
    """Coalesces pokes; ``wait`` returns when the loop should run, with the reason.

    ``settings`` is read at every wait, so a reloaded rules file changes the windows at once.
    One task waits; any number may poke.
    """

    def __init__(
        self,
        clock: Clock,
        settings: Callable[[], LoopSettings],
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._settings = settings
        self._sleep = sleep
        self._batcher = Batcher(last_run=clock.now())
        self._signal = asyncio.Event()
        self.passes = 0

    @property
    def pending(self) -> bool:
        """A batch is open: some poke has not been served yet."""
        return self._batcher.first_poke is not None

    def poke(self) -> None:
        """Something happened that may need a decision. Never blocks."""
        self._batcher.poke(self._clock.now())
        self._signal.set()

    def due(self) -> tuple[float, str]:
        return self._batcher.due(self._settings())

    def wake_at(self, at: float | None) -> None:
        """Run a pass at ``at`` (clock seconds) if no other is due before; ``None`` clears.
        Meant to be called after each pass with its plan's ``wake_at``."""
        self._batcher.wake = at
        self._signal.set()

    def run_now(self) -> None:
        """Make the next ``wait`` return at once (after a reload, at start)."""
        self._batcher.last_run = float("-inf")
        self._signal.set()

    async def wait(self) -> str:
        """Wait until a pass is due; mark it started; return ``"events"``, ``"interval"`` or
        ``"wake_at"``."""
        while True:
            now = self._clock.now()
            at, why = self.due()
            if now >= at:
                self._batcher.ran(now)
                self.passes += 1
                return why
            self._signal.clear()
            await self._nap(at - now)

    async def _nap(self, seconds: float) -> None:
        """Sleep ``seconds`` or until poked, whichever comes first."""
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        waker = asyncio.ensure_future(self._signal.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (sleeper, waker):
                t.cancel()
            await asyncio.gather(sleeper, waker, return_exceptions=True)

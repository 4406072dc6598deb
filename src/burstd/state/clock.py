"""What time it is, as one small seam.

Logic never reads the wall clock: the daemon injects a wall clock, tests and the simulator a
virtual one. The protocol lives in the lowest layer that needs time, so the actuate and
control layers and the app can all name it without importing each other.
"""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Implementation required. Seconds since the epoch (the unit of every timestamp in a
        snapshot: Kubernetes times are converted to it). Must not block."""
        ...


class ManualClock:
    """A clock that moves only when told: for tests and replay."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

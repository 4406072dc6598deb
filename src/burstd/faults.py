"""Named fault-injection points, for the crash suite (tests/integration/test_crash.py).

The daemon calls ``hit(POINT)`` at each step of a scale-up and a release. Unless a test armed a
point (``burstd run --fault-point NAME``, a hidden option), ``hit`` is one comparison and does
nothing: the points are inert in production. An armed point acts once, the first time it is
reached:

* ``kill`` — the process SIGKILLs itself: nothing after the point runs, not even ``finally``
  blocks, which is what a crash, an OOM kill or a node failure looks like. A process that
  leads its process group kills the whole group, its children (a ``terraform apply``) with it,
  as systemd (``KillMode=control-group``) or a container runtime does;
* ``pause`` — the process writes the marker file named by ``--fault-mark`` and blocks (the event
  loop included) until the test deletes it, so the test can stop the API server exactly there
  and let burstd carry on into the outage.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Final, Literal

DECIDED: Final = "decided"
"""A pass planned a scale-up or a release step and is about to act on it."""
CREATE_STARTED: Final = "create_started"
"""The driver is about to call the provider's ``create``."""
OBJECT_CREATED: Final = "object_created"
"""The provider's object (a Node, a slice, a state entry) was created, not yet ready."""
READY_OBSERVED: Final = "ready_observed"
"""``create`` returned a ready unit; the actuator has not recorded it yet."""
MEMORY_WRITTEN: Final = "memory_written"
"""burstd's durable memory was just written."""
CORDONED: Final = "cordoned"
"""A unit's cordon call returned."""
UNCORDONED: Final = "uncordoned"
"""A unit's uncordon call returned (it was taken back for new demand)."""
DRAINING: Final = "draining"
"""A unit was marked draining."""
EVICT_SENT: Final = "evict_sent"
"""Evictions for a draining unit's pods were sent."""
DELETE_SENT: Final = "delete_sent"
"""The provider sent the delete of a unit's object and has not seen it gone yet."""
DELETED: Final = "deleted"
"""``delete`` returned; the actuator has not recorded the release yet."""

POINTS: Final = (
    DECIDED,
    CREATE_STARTED,
    OBJECT_CREATED,
    READY_OBSERVED,
    MEMORY_WRITTEN,
    CORDONED,
    UNCORDONED,
    DRAINING,
    EVICT_SENT,
    DELETE_SENT,
    DELETED,
)

Action = Literal["kill", "pause"]

_armed: str | None = None
_action: Action = "kill"
_mark: Path | None = None
_PAUSE_LIMIT_S = 120.0


def arm(point: str, action: Action = "kill", mark: Path | None = None) -> None:
    """Make ``point`` act once when reached. Only tests do this."""
    global _armed, _action, _mark
    if point not in POINTS:
        raise ValueError(f"unknown fault point {point!r} (known: {', '.join(POINTS)})")
    if action == "pause" and mark is None:
        raise ValueError("a pause needs a marker file")
    _armed, _action, _mark = point, action, mark


def disarm() -> None:
    global _armed
    _armed = None


def hit(point: str) -> None:
    """The daemon reached ``point``. Inert unless a test armed it."""
    global _armed
    if _armed != point:
        return
    _armed = None
    if _action == "kill":
        if os.getpgrp() == os.getpid():
            os.killpg(0, signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
        return
    assert _mark is not None
    _mark.write_text(point)
    give_up = time.monotonic() + _PAUSE_LIMIT_S
    while _mark.exists() and time.monotonic() < give_up:
        time.sleep(0.05)

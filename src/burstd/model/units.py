"""Borrowed capacity: units, and what the actuator remembers about targets and rules.

A unit is one piece of borrowed capacity with its own lifecycle (one Liqo ResourceSlice, one
Terraform pool increment, one InterLink or kwok node). The planner reads these records; only the
actuator writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

MAX_BACKOFF_S = 3600.0
"""The longest a target's backoff (or a misfit's wait) grows to."""


class UnitPhase(StrEnum):
    """``requested → provisioning → ready → cordoned → draining → released | failed``."""

    REQUESTED = "requested"
    PROVISIONING = "provisioning"
    READY = "ready"
    CORDONED = "cordoned"
    DRAINING = "draining"
    RELEASED = "released"
    FAILED = "failed"

    @property
    def in_flight(self) -> bool:
        """Asked for but not usable yet."""
        return self in (UnitPhase.REQUESTED, UnitPhase.PROVISIONING)

    @property
    def alive(self) -> bool:
        """Counts against limits and costs money."""
        return self not in (UnitPhase.RELEASED, UnitPhase.FAILED)


@dataclass(frozen=True, slots=True, kw_only=True)
class Unit:
    """One piece of borrowed capacity.

    ``gpus`` is the unit's whole-GPU count (one node of that many GPUs); ``mig`` the MIG slices
    it offers instead, if any. ``last_busy_at`` is the last time a pod was seen running on it
    (its ready time while none has); the actuator keeps it exact while the unit is idle, which
    is when the planner reads it. ``phase_since`` is when it entered its current phase.

    ``held``: its node was cordoned by someone else (an operator), not by burstd. burstd never
    uncordons it, never evicts from it and never counts it as room for pending pods; once
    nothing runs on it and it has been idle for its rule's ``idle_for`` it is given back.
    ``orphaned``: burstd is giving it back because its rule left the rules file; should the
    rule return, the unit is uncordoned rather than drained under the rule's drain mode.
    """

    id: str
    target: str
    rule: str
    gpus: int
    gpu_model: str = ""
    mig: tuple[tuple[str, int], ...] = ()
    phase: UnitPhase = UnitPhase.REQUESTED
    requested_at: float = 0.0
    phase_since: float = 0.0
    ready_at: float | None = None
    last_busy_at: float | None = None
    price_per_gpu_hour: float = 0.0
    node: str | None = None
    held: bool = False
    orphaned: bool = False

    @property
    def cost_per_hour(self) -> float:
        return self.gpus * self.price_per_gpu_hour

    def moved(self, phase: UnitPhase, now: float) -> Unit:
        """This unit in ``phase`` from ``now`` on."""
        ready_at = now if phase is UnitPhase.READY and self.ready_at is None else self.ready_at
        return replace(self, phase=phase, phase_since=now, ready_at=ready_at)

    def __str__(self) -> str:
        return f"{self.id} ({self.target}, {self.gpus} GPU, {self.phase})"


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetStatus:
    """What the actuator learned about a target: failures put it in backoff.

    Besides failures, what the daemon found wrong with it (never remembered across a restart:
    found again): ``held_back`` says why nothing may be bursted onto it although it is not in
    backoff — its existing units could not be listed, so a new one could double what is
    there; ``problems`` are its provider's findings that keep units from serving and that no
    decision would show (a Liqo namespace that is not offloaded, a missing peering). Both
    appear in ``burstd explain`` and ``/status``; only ``held_back`` changes a plan.
    """

    consecutive_failures: int = 0
    backoff_until: float = 0.0
    last_error: str = ""
    held_back: str = ""
    problems: tuple[str, ...] = ()

    def failed(self, error: str, backoff: float, now: float) -> TargetStatus:
        """This status after one more failure at ``now``: backoff ``backoff`` seconds for the
        first failure in a row, doubling with each further one, up to ``MAX_BACKOFF_S``. The
        actuator applies it when a unit fails; the planner, to a unit it abandons, so the rest
        of the same pass already sees the target backing off."""
        failures = self.consecutive_failures + 1
        return replace(
            self,
            consecutive_failures=failures,
            backoff_until=now + min(MAX_BACKOFF_S, backoff * 2.0 ** min(failures - 1, 30)),
            last_error=error,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Misfit:
    """The safety net: pod ``pod`` was packed onto unit ``unit`` of ``target`` but the
    scheduler did not place it there within the grace period after the unit became ready, so
    burstd does not burst for it on ``target`` until ``until`` (``misses`` in a row double the
    wait). Whatever the model of the node missed, this stops a loop of empty units."""

    pod: str
    target: str
    unit: str
    until: float
    misses: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleHistory:
    """When a rule last scaled, for cooldowns."""

    last_scale_up_at: float | None = None
    last_scale_down_at: float | None = None

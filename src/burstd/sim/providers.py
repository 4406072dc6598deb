"""Simulated providers: the actuator's ``Driver`` for the simulated world.

Every target type (liqo, terraform, interlink, kwok) behaves the same here: a unit appears as a
node some time after the create call. What differs is in the target's numbers:

* time to ready: log-normal with median ``Target.time_to_ready`` and sigma
  ``simulation.ready_spread``; a unit that would take longer than ``ready_deadline`` is left to
  the planner, which abandons it (``Abandon``), and ``delete`` then cancels the create;
* failure: with probability ``simulation.failure_probability`` the create fails part-way
  through (at a uniformly drawn 20 to 100 % of its time to ready) and the actuator hears ``failed``;
* finite donors: beyond ``simulation.capacity_units`` live units, a create fails after
  ``CAPACITY_ERROR_S`` like a capacity error;
* billing: per second from the create call until the delete, at least
  ``simulation.billing_minimum`` seconds, at ``price_per_gpu_hour`` times GPUs. A create that fails
  is not billed (the provider delivered nothing); an abandoned one is, until its delete.

Each target draws from its own ``random.Random`` seeded with the run's seed and the target's
name, and draws the same three numbers for every create, so a run is deterministic and one
target's luck does not depend on how often another was called.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from burstd.model import Unit
from burstd.rules.types import Target

if TYPE_CHECKING:
    from burstd.sim.cluster import SimNode

CAPACITY_ERROR_S = 5.0


@dataclass(slots=True)
class UnitRecord:
    """One unit's life at its provider, for billing and the report. ``outcome``: ``pending``,
    ``ready``, ``released``, ``failed``, ``abandoned`` or ``cut`` (alive when the run ended)."""

    id: str
    target: str
    rule: str
    gpus: int
    model: str
    price_per_gpu_hour: float
    billing_minimum: float
    created_at: float
    ready_at: float | None = None
    ended_at: float | None = None
    outcome: str = "pending"
    error: str = ""
    node: SimNode | None = None
    holds_capacity: bool = True

    def billed_seconds(self, until: float | None = None) -> float:
        if self.outcome == "failed":
            return 0.0
        end = self.ended_at if self.ended_at is not None else until
        if end is None:
            return 0.0
        return max(end - self.created_at, self.billing_minimum)

    def cost(self, until: float | None = None) -> float:
        return self.billed_seconds(until) * self.gpus * self.price_per_gpu_hour / 3600.0

    def usable_seconds(self) -> float:
        if self.ready_at is None or self.ended_at is None:
            return 0.0
        return self.ended_at - self.ready_at


class SimWorld:
    """What the driver needs from the simulation: the clock and ways to change the world."""

    now: float

    def schedule(self, at: float, action: Callable[[], None]) -> None:
        raise NotImplementedError

    def unit_ready(self, record: UnitRecord) -> None:
        raise NotImplementedError

    def unit_failed(self, record: UnitRecord, target: Target) -> None:
        raise NotImplementedError

    def node_gone(self, record: UnitRecord) -> None:
        raise NotImplementedError

    def set_cordoned(self, record: UnitRecord, cordoned: bool) -> None:
        raise NotImplementedError

    def evict(self, record: UnitRecord, pods: tuple[str, ...]) -> None:
        raise NotImplementedError

    def released(self, uid: str) -> None:
        raise NotImplementedError

    def done(self, uid: str) -> None:
        raise NotImplementedError

    def provisioning(self, uid: str) -> None:
        raise NotImplementedError


class SimProviders:
    """The ``Driver`` (see ``burstd.actuate.actuator``) of the simulator. Calls return at once;
    results come back as scheduled events, like the daemon's provider tasks."""

    def __init__(self, world: SimWorld, seed: int) -> None:
        self.world = world
        self.seed = seed
        self.records: dict[str, UnitRecord] = {}
        self._rngs: dict[str, random.Random] = {}
        self._holding: dict[str, int] = {}

    def _rng(self, target: str) -> random.Random:
        rng = self._rngs.get(target)
        if rng is None:
            rng = self._rngs[target] = random.Random(f"burstd-sim:{self.seed}:{target}")
        return rng

    def holding(self, target: str) -> int:
        return self._holding.get(target, 0)

    def _let_go(self, record: UnitRecord) -> None:
        if record.holds_capacity:
            record.holds_capacity = False
            self._holding[record.target] -= 1

    def create(self, unit: Unit, target: Target) -> None:
        now = self.world.now
        sim = target.simulation
        record = UnitRecord(
            id=unit.id,
            target=target.name,
            rule=unit.rule,
            gpus=unit.gpus,
            model=unit.gpu_model or target.gpu_model,
            price_per_gpu_hour=unit.price_per_gpu_hour,
            billing_minimum=sim.billing_minimum,
            created_at=now,
        )
        self.records[unit.id] = record
        rng = self._rng(target.name)
        coin, z, part = rng.random(), rng.gauss(0.0, 1.0), rng.random()
        ready_in = target.time_to_ready * math.exp(sim.ready_spread * z)
        self.world.provisioning(unit.id)
        if sim.capacity_units is not None and self.holding(target.name) >= sim.capacity_units:
            record.holds_capacity = False
            record.error = f"capacity: {target.name} lends at most {sim.capacity_units} unit(s)"
            self.world.schedule(now + CAPACITY_ERROR_S, lambda: self._fail(record, target))
            return
        self._holding[target.name] = self.holding(target.name) + 1
        if coin < sim.failure_probability:
            record.error = "create failed (simulated provider error)"
            at = now + ready_in * (0.2 + 0.8 * part)
            self.world.schedule(at, lambda: self._fail(record, target))
        else:
            self.world.schedule(now + ready_in, lambda: self._ready(record))

    def _ready(self, record: UnitRecord) -> None:
        if record.outcome != "pending":
            return  # cancelled by a delete meanwhile
        record.outcome = "ready"
        record.ready_at = self.world.now
        self.world.unit_ready(record)

    def _fail(self, record: UnitRecord, target: Target) -> None:
        if record.outcome != "pending":
            return
        record.outcome = "failed"
        record.ended_at = self.world.now
        self._let_go(record)
        self.world.unit_failed(record, target)

    def cordon(self, unit: Unit, target: Target | None) -> None:
        record = self.records.get(unit.id)
        if record is not None and record.node is not None:
            self.world.set_cordoned(record, True)
        self.world.done(unit.id)

    def uncordon(self, unit: Unit, target: Target | None) -> None:
        record = self.records.get(unit.id)
        if record is not None and record.node is not None:
            self.world.set_cordoned(record, False)
        self.world.done(unit.id)

    def evict(self, unit: Unit, target: Target | None, pods: tuple[str, ...]) -> None:
        record = self.records.get(unit.id)
        if record is not None and record.node is not None:
            self.world.evict(record, pods)
        self.world.done(unit.id)

    def delete(self, unit: Unit, target: Target | None) -> None:
        record = self.records.get(unit.id)
        if record is None:
            self.world.released(unit.id)
            return
        if record.outcome == "pending":
            record.outcome = "abandoned"
        elif record.outcome == "ready":
            record.outcome = "released"
            self.world.node_gone(record)
        record.ended_at = self.world.now
        self._let_go(record)
        self.world.released(unit.id)

    def cut(self, now: float) -> None:
        """End of the run: stop billing whatever is still alive."""
        for record in self.records.values():
            if record.ended_at is None:
                record.outcome = "cut"
                record.ended_at = now

"""A provider with no outside world, kept to the same contract as the real ones.

Shipped code, not a test helper: it stands in for a donor cluster's Liqo controllers or a cloud
API where none can run (a rehearsal, a test). It records every call, raises injected errors,
caps how many units it can lend, and makes a unit ready after a delay or when a test opens a
gate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from burstd.providers.base import CapacityError, NotReadyError, ProvisionedUnit, UnitSpec


@dataclass(slots=True)
class FakeProvider:
    """``ready_after`` seconds from create to ready; at most ``capacity_units`` units at once.

    ``fail[verb]`` holds errors the next calls of ``verb`` raise, one each, in order. With a
    ``gate``, ``create`` waits for it to be set before it finishes (a cancelled wait is recorded
    as ``create-cancelled``). ``calls`` lists ``(method, unit_id)`` in call order, ``specs`` the
    specs ``create`` was given.
    """

    target: str = "fake"
    ready_after: float = 0.0
    capacity_units: int | None = None
    gate: asyncio.Event | None = None
    fail: dict[str, list[BaseException]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    specs: list[UnitSpec] = field(default_factory=list)
    units: dict[str, ProvisionedUnit] = field(default_factory=dict)
    evicted: list[str] = field(default_factory=list)

    async def create(self, spec: UnitSpec) -> ProvisionedUnit:
        self.calls.append(("create", spec.id))
        self.specs.append(spec)
        known = self.units.get(spec.id)
        if known is not None and known.ready:
            return known
        if self.capacity_units is not None and len(self.units) >= self.capacity_units:
            raise CapacityError(f"{self.target}: all {self.capacity_units} unit(s) lent out")
        unit = ProvisionedUnit(
            id=spec.id,
            target=spec.target,
            rule=spec.rule,
            gpus=spec.gpus,
            gpu_model=spec.gpu_model,
            mig=dict(spec.mig),
            node=None,
            ready=False,
        )
        self.units[spec.id] = unit
        try:
            if self.gate is not None:
                await self.gate.wait()
            elif self.ready_after > spec.ready_deadline:
                await asyncio.sleep(spec.ready_deadline)
                del self.units[spec.id]
                raise NotReadyError(f"{spec.id}: not ready within {spec.ready_deadline:g}s")
            await asyncio.sleep(self.ready_after)
        except asyncio.CancelledError:
            self.calls.append(("create-cancelled", spec.id))
            raise
        self._maybe_fail("create")
        unit = replace(unit, node=f"fake-{spec.id}", ready=True)
        self.units[spec.id] = unit
        return unit

    async def cordon(self, unit_id: str, node: str | None) -> None:
        self.calls.append(("cordon", unit_id))
        self._maybe_fail("cordon")
        self._set_cordoned(unit_id, True)

    async def uncordon(self, unit_id: str, node: str | None) -> None:
        self.calls.append(("uncordon", unit_id))
        self._maybe_fail("uncordon")
        self._set_cordoned(unit_id, False)

    async def evict(self, unit_id: str, node: str | None, pods: Sequence[str]) -> None:
        self.calls.append(("evict", unit_id))
        self._maybe_fail("evict")
        self.evicted.extend(pods)

    async def delete(self, unit_id: str, node: str | None) -> None:
        self.calls.append(("delete", unit_id))
        self._maybe_fail("delete")
        self.units.pop(unit_id, None)

    async def list_units(self) -> list[ProvisionedUnit]:
        self.calls.append(("list_units", ""))
        return sorted(self.units.values(), key=lambda u: u.id)

    def open_gate(self) -> None:
        """Let held creates finish (and later ones pass straight through)."""
        if self.gate is not None:
            self.gate.set()

    def reset(self) -> None:
        self.calls.clear()
        self.specs.clear()
        self.units.clear()
        self.evicted.clear()
        self.fail.clear()

    def _maybe_fail(self, verb: str) -> None:
        errors = self.fail.get(verb)
        if errors:
            raise errors.pop(0)

    def _set_cordoned(self, unit_id: str, cordoned: bool) -> None:
        if unit_id in self.units:
            self.units[unit_id] = replace(
                self.units[unit_id], cordoned=cordoned, cordoned_by_burstd=cordoned
            )

"""A provider with no outside world, kept to the same contract as the real ones.

Shipped code, not a test helper: it stands in for a donor cluster's Liqo controllers or a cloud
API where none can run (a rehearsal, a test). It records every call, takes a one-shot injected
error, caps how many units it can lend, and makes a unit ready after a delay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from burstd.providers.base import CapacityError, NotReadyError, ProvisionedUnit, UnitSpec


@dataclass(slots=True)
class FakeProvider:
    """``ready_after`` seconds from create to ready; at most ``capacity_units`` units at once.

    ``fail_next`` is raised by the next ``create`` (then cleared). ``calls`` lists
    ``(method, unit_id)`` in call order.
    """

    target: str = "fake"
    ready_after: float = 0.0
    capacity_units: int | None = None
    fail_next: Exception | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)
    units: dict[str, ProvisionedUnit] = field(default_factory=dict)
    evicted: list[str] = field(default_factory=list)

    async def create(self, spec: UnitSpec) -> ProvisionedUnit:
        self.calls.append(("create", spec.id))
        if spec.id in self.units:
            return self.units[spec.id]
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        if self.capacity_units is not None and len(self.units) >= self.capacity_units:
            raise CapacityError(f"{self.target}: all {self.capacity_units} unit(s) lent out")
        unit = ProvisionedUnit(
            id=spec.id,
            target=spec.target,
            rule=spec.rule,
            gpus=spec.gpus,
            gpu_model=spec.gpu_model,
            node=None,
            ready=False,
        )
        self.units[spec.id] = unit
        if self.ready_after > spec.ready_deadline:
            await asyncio.sleep(spec.ready_deadline)
            del self.units[spec.id]
            raise NotReadyError(f"{spec.id}: not ready within {spec.ready_deadline:g}s")
        await asyncio.sleep(self.ready_after)
        unit = replace(unit, node=f"fake-{spec.id}", ready=True)
        self.units[spec.id] = unit
        return unit

    async def cordon(self, unit_id: str, node: str | None) -> None:
        self.calls.append(("cordon", unit_id))
        self._set_cordoned(unit_id, True)

    async def uncordon(self, unit_id: str, node: str | None) -> None:
        self.calls.append(("uncordon", unit_id))
        self._set_cordoned(unit_id, False)

    async def evict(self, unit_id: str, node: str | None, pods: Sequence[str]) -> None:
        self.calls.append(("evict", unit_id))
        self.evicted.extend(pods)

    async def delete(self, unit_id: str, node: str | None) -> None:
        self.calls.append(("delete", unit_id))
        self.units.pop(unit_id, None)

    async def list_units(self) -> list[ProvisionedUnit]:
        self.calls.append(("list_units", ""))
        return sorted(self.units.values(), key=lambda u: u.id)

    def reset(self) -> None:
        self.calls.clear()
        self.units.clear()
        self.evicted.clear()
        self.fail_next = None

    def _set_cordoned(self, unit_id: str, cordoned: bool) -> None:
        if unit_id in self.units:
            self.units[unit_id] = replace(self.units[unit_id], cordoned=cordoned)

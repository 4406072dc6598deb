"""The daemon's driver: the actuator's provider calls as asyncio tasks.

The actuator is synchronous and only records intent; this driver turns each call into a named
task (``create:<unit>``, ``delete:<unit>``…) in the app's ``TaskGroup`` and reports the
outcome back (``provisioning``, ``ready``, ``failed``, ``done``, ``released``) with the
clock's time. A task never lets an exception escape into the group: every error is logged with
the unit id and reported, so one failed provider call cannot stop the daemon.

Idempotent calls (cordon, uncordon, delete) are retried with exponential backoff; ``delete``
is retried until it succeeds (a unit left behind costs money and nothing else will retry a
failed unit's delete). ``create`` is not retried here: the provider waits up to the ready
deadline itself, and a failure puts the target in backoff (at once, with the provider's error,
before the cleanup delete) so the planner walks down the ladder. Deleting a unit whose create
is still running cancels the create first.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from burstd import faults
from burstd.actuate.actuator import Actuator
from burstd.model import (
    DEFAULT_INSTANCE,
    INSTANCE_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    RULE_LABEL,
    TARGET_LABEL,
    UNIT_LABEL,
    Unit,
)
from burstd.providers.base import Provider, ProviderError, UnitSpec
from burstd.rules.types import Target
from burstd.state.clock import Clock

log = logging.getLogger(__name__)

_LABEL_BAD = re.compile(r"[^A-Za-z0-9._-]+")


def label_value(text: str) -> str:
    """``text`` made a valid label value (63 characters at most, alphanumeric at both
    ends); names that need changing are still recognisable."""
    value = _LABEL_BAD.sub("-", text)[:63]
    return value.strip("-._")


def ownership_labels(unit: Unit, instance: str = DEFAULT_INSTANCE) -> dict[str, str]:
    """The labels every object of ``unit`` carries, so a restarted burstd finds it."""
    return {
        MANAGED_BY_LABEL: MANAGED_BY,
        INSTANCE_LABEL: label_value(instance),
        UNIT_LABEL: label_value(unit.id),
        TARGET_LABEL: label_value(unit.target),
        RULE_LABEL: label_value(unit.rule),
    }


class Spawner(Protocol):
    """Where tasks run: the app's ``asyncio.TaskGroup``."""

    def create_task(
        self, coro: Coroutine[Any, Any, None], *, name: str | None = None
    ) -> asyncio.Task[None]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Retries of idempotent provider calls."""

    attempts: int = 5
    """Tries of a cordon, uncordon or evict before giving up (delete never gives up)."""
    base: float = 0.5
    """Delay after the first failure; doubles each time..."""
    max_delay: float = 30.0
    """...up to this."""

    def delay(self, failures: int) -> float:
        return float(min(self.max_delay, self.base * 2.0 ** (failures - 1)))


class AsyncDriver:
    """Implements the actuator's ``Driver`` protocol on async ``Provider``s.

    ``providers`` maps a target name to its provider (``None``: unknown target). Call
    ``bind`` with the actuator and ``attach`` with the task group before the first call.
    """

    def __init__(
        self,
        providers: Callable[[str], Provider | None],
        clock: Clock,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        before_create: Callable[[], Awaitable[object]] | None = None,
        instance: str = DEFAULT_INSTANCE,
    ) -> None:
        self._instance = instance
        self._providers = providers
        self._before_create = before_create
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._actuator: Actuator | None = None
        self._spawner: Spawner | None = None
        self._creates: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls: list[tuple[str, str]] = []
        self.errors = 0

    def bind(self, actuator: Actuator) -> None:
        self._actuator = actuator

    def attach(self, spawner: Spawner) -> None:
        self._spawner = spawner

    @property
    def actuator(self) -> Actuator:
        if self._actuator is None:
            raise RuntimeError("AsyncDriver used before bind(actuator)")
        return self._actuator

    @property
    def in_flight(self) -> int:
        return sum(1 for t in self._tasks if not t.done())

    # The Driver protocol ----------------------------------------------------------------

    def create(self, unit: Unit, target: Target) -> None:
        task = self._spawn("create", unit, self._create(unit, target))
        self._creates[unit.id] = task

    def cordon(self, unit: Unit, target: Target | None) -> None:
        self._spawn("cordon", unit, self._simple("cordon", unit))

    def uncordon(self, unit: Unit, target: Target | None) -> None:
        self._spawn("uncordon", unit, self._simple("uncordon", unit))

    def evict(self, unit: Unit, target: Target | None, pods: tuple[str, ...]) -> None:
        self._spawn("evict", unit, self._evict(unit, pods))

    def delete(self, unit: Unit, target: Target | None) -> None:
        self._spawn("delete", unit, self._delete(unit, self._creates.get(unit.id)))

    # Lifecycle --------------------------------------------------------------------------

    async def shutdown(self, grace: float) -> None:
        """Let calls in flight finish for up to ``grace`` seconds, then cancel the rest."""
        pending = {t for t in self._tasks if not t.done()}
        if pending:
            log.info(
                "waiting up to %.0fs for %d provider call(s) in flight",
                grace,
                len(pending),
                extra={"event": "shutdown_wait", "calls": len(pending)},
            )
            _, pending = await asyncio.wait(pending, timeout=grace)
        for t in pending:
            log.warning(
                "cancelling provider call %s after the grace period",
                t.get_name(),
                extra={"event": "call_cancelled", "task": t.get_name()},
            )
            t.cancel()
        if pending:
            await asyncio.wait(pending)

    # Tasks --------------------------------------------------------------------------

    def _spawn(self, verb: str, unit: Unit, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        if self._spawner is None:
            coro.close()
            raise RuntimeError("AsyncDriver used before attach(task_group)")
        self.calls.append((verb, unit.id))
        log.info(
            "%s %s",
            verb,
            unit.id,
            extra={
                "event": "provider_call",
                "call": verb,
                "unit": unit.id,
                "target": unit.target,
                "at": self._clock.now(),
            },
        )
        task = self._spawner.create_task(coro, name=f"{verb}:{unit.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _provider(self, unit: Unit) -> Provider | None:
        provider = self._providers(unit.target)
        if provider is None:
            self.errors += 1
            log.error(
                "unit %s: no provider for target %r",
                unit.id,
                unit.target,
                extra={"event": "provider_error", "unit": unit.id, "target": unit.target},
            )
        return provider

    def _failure(self, verb: str, unit: Unit, e: BaseException, level: int) -> str:
        self.errors += 1
        text = f"{type(e).__name__}: {e}"
        log.log(
            level,
            "unit %s: %s failed: %s",
            unit.id,
            verb,
            text,
            extra={"event": "provider_error", "call": verb, "unit": unit.id, "error": text},
        )
        return text

    async def _create(self, unit: Unit, target: Target) -> None:
        uid = unit.id
        try:
            provider = self._provider(unit)
            if provider is None:
                error = f"no provider for target {unit.target}"
                self.actuator.failed(uid, error, target, self._now())
                return
            self.actuator.provisioning(uid, self._now())
            spec = UnitSpec(
                id=uid,
                target=unit.target,
                rule=unit.rule,
                gpus=unit.gpus,
                gpu_model=unit.gpu_model,
                mig=dict(unit.mig),
                params=target.params,
                labels=ownership_labels(unit, self._instance),
                ready_deadline=target.ready_deadline,
            )
            if self._before_create is not None:
                # Write-ahead: the scale-up (and its cooldown) is durable before anything
                # exists that a crash could leave behind.
                await self._before_create()
            faults.hit(faults.CREATE_STARTED)
            try:
                made = await provider.create(spec)
                if not made.ready or made.node is None:
                    raise ProviderError(f"provider returned a unit that is not ready: {made}")
            except asyncio.CancelledError:
                log.info(
                    "unit %s: create cancelled",
                    uid,
                    extra={"event": "create_cancelled", "unit": uid},
                )
                raise
            except Exception as e:
                error = self._failure("create", unit, e, logging.ERROR)
                # Failed now, with the provider's words, however long the cleanup takes: the
                # planner must not count the unit as coming nor abandon it in the meantime.
                self.actuator.failed(uid, error, target, self._now(), gone=False)
                # The provider promises to leave nothing delete could not remove: remove it.
                await self._retrying("delete", unit, lambda: provider.delete(uid, None), None)
                self.actuator.released(uid, self._now())
                return
            log.info(
                "unit %s ready on node %s",
                uid,
                made.node,
                extra={"event": "unit_ready", "unit": uid, "node": made.node},
            )
            faults.hit(faults.READY_OBSERVED)
            self.actuator.ready(uid, made.node, self._now())
        finally:
            if self._creates.get(uid) is asyncio.current_task():
                del self._creates[uid]

    async def _simple(self, verb: str, unit: Unit) -> None:
        try:
            provider = self._provider(unit)
            if provider is not None:
                call = provider.cordon if verb == "cordon" else provider.uncordon
                if await self._retrying(
                    verb, unit, lambda: call(unit.id, unit.node), self._retry.attempts
                ):
                    faults.hit(faults.CORDONED if verb == "cordon" else faults.UNCORDONED)
        finally:
            self.actuator.done(unit.id)

    async def _evict(self, unit: Unit, pods: tuple[str, ...]) -> None:
        try:
            provider = self._provider(unit)
            if provider is None:
                return
            try:
                if await self._retrying(
                    "evict",
                    unit,
                    lambda: provider.evict(unit.id, unit.node, pods),
                    self._retry.attempts,
                ):
                    faults.hit(faults.EVICT_SENT)
            except NotImplementedError:
                log.info(
                    "unit %s: target %s cannot evict; waiting for its pods to finish",
                    unit.id,
                    unit.target,
                    extra={"event": "evict_unsupported", "unit": unit.id},
                )
        finally:
            self.actuator.done(unit.id)

    async def _delete(self, unit: Unit, create: asyncio.Task[None] | None) -> None:
        uid = unit.id
        try:
            if create is not None and not create.done():
                create.cancel()
                await asyncio.wait((create,))
            provider = self._provider(unit)
            if provider is None:
                return
            if await self._retrying("delete", unit, lambda: provider.delete(uid, unit.node), None):
                faults.hit(faults.DELETED)
                log.info("unit %s released", uid, extra={"event": "unit_released", "unit": uid})
                self.actuator.released(uid, self._now())
        finally:
            self.actuator.done(uid)

    async def _retrying(
        self,
        verb: str,
        unit: Unit,
        call: Callable[[], Awaitable[None]],
        attempts: int | None,
    ) -> bool:
        """Run ``call`` until it succeeds, a non-retryable error, or ``attempts`` failures
        (``None``: no limit). ``NotImplementedError`` propagates."""
        failures = 0
        while True:
            try:
                await call()
                return True
            except NotImplementedError:
                raise
            except ProviderError as e:
                if not e.retryable:
                    self._failure(verb, unit, e, logging.ERROR)
                    return False
                error: Exception = e
            except Exception as e:
                error = e
            failures += 1
            if attempts is not None and failures >= attempts:
                what = f"{verb} (gave up after {failures} tries)"
                self._failure(what, unit, error, logging.ERROR)
                return False
            delay = self._retry.delay(failures)
            self._failure(f"{verb} (retry in {delay:.1f}s)", unit, error, logging.WARNING)
            await self._sleep(delay)

    def _now(self) -> float:
        return self._clock.now()

"""The notifier: routes alerts to receivers, deduplicates, retries, and never blocks.

``notify`` is a plain function the control loop may call at any moment: it logs the alert,
drops it if the same event was sent within the dedupe window, and queues one delivery per
routed receiver without waiting (a full queue drops the delivery, counts it and writes it to
the dead-letter file). Workers in ``run`` deliver: retried with exponential backoff on 5xx,
timeouts and connection errors, not on 4xx. A delivery that fails for good is logged, counted
and dead-lettered. A receiver that is down therefore costs the daemon a worker's patience,
never a decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from burstd.alerts.senders import Clock, DeliveryError, Sender, make_sender
from burstd.model.alerts import Alert, AlertsConfig

log = logging.getLogger(__name__)

WORKERS = 4


class Notifier:
    """Delivers alerts by ``config``. ``counts`` has ``(receiver, result)`` → number, with
    result ``delivered``, ``failed`` (given up), ``dropped`` (queue full) or ``deduped``."""

    def __init__(
        self,
        config: AlertsConfig,
        clock: Clock,
        *,
        senders: Mapping[str, Sender] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._queue: asyncio.Queue[tuple[Sender, Alert]] = asyncio.Queue(config.queue_size)
        self._last_sent: dict[str, float] = {}
        self.counts: Counter[tuple[str, str]] = Counter()
        self.config = config
        self._senders: dict[str, Sender] = dict(senders or {})
        self._retired: list[Sender] = []
        self.configure(config)

    def configure(self, config: AlertsConfig) -> None:
        """Use ``config`` from now on (a reloaded rules file). Senders of receivers that are
        unchanged are kept; queued deliveries to removed ones still go out."""
        old = self.config
        self.config = config
        for name, receiver in config.receivers.items():
            if name in self._senders and old.receivers.get(name) == receiver:
                continue
            try:
                sender = make_sender(receiver, self._clock)
            except OSError as e:
                log.error(
                    "alert receiver %s: cannot read its secret file (%s)",
                    name,
                    e.strerror or type(e).__name__,
                    extra={"event": "alert_receiver_error", "receiver": name},
                )
                continue
            previous = self._senders.pop(name, None)
            if previous is not None:
                self._retired.append(previous)
            self._senders[name] = sender

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def notify(self, alert: Alert) -> None:
        """Log ``alert`` and queue its deliveries. Never blocks, never raises."""
        log.warning(
            "alert %s",
            alert,
            extra={"event": "alert", **{f"alert_{k}": v for k, v in alert.to_dict().items()}},
        )
        last = self._last_sent.get(alert.key)
        if last is not None and alert.at - last < self.config.dedupe_window:
            self.counts[("*", "deduped")] += 1
            return
        self._last_sent[alert.key] = alert.at
        for name in self.config.receivers_for(alert):
            sender = self._senders.get(name)
            if sender is None:
                continue
            try:
                self._queue.put_nowait((sender, alert))
            except asyncio.QueueFull:
                self._gave_up(sender.name, alert, "dropped", "the alert queue is full")

    async def run(self) -> None:
        """Deliver until cancelled; on cancel, what is still queued goes to the dead letter."""
        try:
            async with asyncio.TaskGroup() as tg:
                for i in range(WORKERS):
                    tg.create_task(self._worker(), name=f"alerts:{i}")
        finally:
            while not self._queue.empty():
                sender, alert = self._queue.get_nowait()
                self._gave_up(sender.name, alert, "failed", "burstd stopped before delivering it")
            for sender in [*self._senders.values(), *self._retired]:
                with contextlib.suppress(Exception):
                    await sender.close()

    async def _worker(self) -> None:
        while True:
            sender, alert = await self._queue.get()
            try:
                await self._deliver(sender, alert)
            finally:
                self._queue.task_done()

    async def drained(self) -> None:
        """Return once every queued delivery has been tried to the end (for tests)."""
        await self._queue.join()

    async def _deliver(self, sender: Sender, alert: Alert) -> None:
        config = self.config
        for attempt in range(1, config.attempts + 1):
            try:
                await sender.send(alert)
            except DeliveryError as e:
                error = str(e)
                if not e.retryable or attempt == config.attempts:
                    self._gave_up(sender.name, alert, "failed", f"{error} (attempt {attempt})")
                    return
            except Exception as e:  # a sender bug must not kill the worker
                self._gave_up(sender.name, alert, "failed", type(e).__name__)
                return
            else:
                self.counts[(sender.name, "delivered")] += 1
                log.info(
                    "alert %s delivered to %s",
                    alert.id,
                    sender.name,
                    extra={"event": "alert_delivered", "receiver": sender.name, "id": alert.id},
                )
                return
            delay = min(config.max_backoff, config.backoff * 2.0 ** (attempt - 1))
            log.warning(
                "alert %s to %s: %s; retry in %.1fs",
                alert.id,
                sender.name,
                error,
                delay,
                extra={"event": "alert_retry", "receiver": sender.name, "id": alert.id},
            )
            await self._sleep(delay)

    def _gave_up(self, receiver: str, alert: Alert, result: str, why: str) -> None:
        self.counts[(receiver, result)] += 1
        log.error(
            "alert %s (%s) not delivered to %s: %s",
            alert.id,
            alert.kind,
            receiver,
            why,
            extra={"event": "alert_undelivered", "receiver": receiver, "id": alert.id},
        )
        path = self.config.dead_letter
        if path is not None:
            _append(path, {"receiver": receiver, "error": why, "alert": alert.to_dict()})


def _append(path: Path, record: dict[str, object]) -> None:
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
    except OSError as e:
        log.error(
            "cannot write the dead-letter file %s: %s",
            path,
            e.strerror,
            extra={"event": "dead_letter_error"},
        )

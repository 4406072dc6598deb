"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection does.

Replicas race to hold the Lease; the holder renews it every ``retry_period``. A replica takes
over only after it has watched the same record go unrenewed for a whole ``lease_duration``,
measured on its own monotonic clock from when it last saw the record change — never by
comparing its clock with the holder's ``renewTime``, which would trust two machines' clocks to
agree. The holder gives up leading if it could not renew for ``renew_deadline``, which is
shorter than ``lease_duration``: it stops acting before anyone else may start.

Defaults are client-go's: 15 s lease, 10 s renew deadline, 2 s retry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client

from burstd.model import MANAGED_BY, MANAGED_BY_LABEL
from burstd.sources.kube.objects import ApiError, request

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseSettings:
    name: str = "burstd"
    namespace: str = "burstd"
    lease_duration: float = 15.0
    """How long a record must go unrenewed before another replica takes over."""
    renew_deadline: float = 10.0
    """How long the leader keeps trying to renew before it stops leading."""
    retry_period: float = 2.0
    """Time between tries to acquire or renew."""

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leader election needs 0 < retry_period < renew_deadline < lease_duration"
            )


def _rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Holds or waits for the Lease. ``leading`` is set while this replica may act; the
    ``on_change`` callback hears every change of holder (for logs and alerts)."""

    def __init__(
        self,
        api: Any,
        identity: str,
        settings: LeaseSettings,
        *,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        on_change: Callable[[str | None, bool], None] | None = None,
    ) -> None:
        coordination: Any = client.CoordinationV1Api
        self._api = coordination(api)
        self.identity = identity
        self.settings = settings
        self._wall = wall
        self._mono = monotonic
        self._on_change = on_change
        self.leading = asyncio.Event()
        self.lost = asyncio.Event()
        self.holder: str | None = None
        self.transitions = 0
        self._observed: dict[str, Any] | None = None
        self._observed_at = 0.0
        self._renewed_at = 0.0

    async def run(self) -> None:
        """Acquire, then renew until renewal fails for ``renew_deadline``; then set ``lost``
        and return. Never raises for API errors: they only delay acquiring or renewing."""
        s = self.settings
        while not self.leading.is_set():
            await self._try()
            if not self.leading.is_set():
                await asyncio.sleep(s.retry_period)
        while True:
            await asyncio.sleep(s.retry_period)
            if await self._try():
                continue
            if self._mono() - self._renewed_at >= s.renew_deadline:
                log.error(
                    "lost the lease %s/%s: could not renew it for %.0fs; stopping acting",
                    s.namespace,
                    s.name,
                    s.renew_deadline,
                    extra={"event": "leader_lost", "identity": self.identity},
                )
                self.leading.clear()
                self.lost.set()
                self._changed(None)
                return

    async def release(self) -> None:
        """Give the lease up on a clean shutdown, so a follower need not wait it out."""
        if not self.leading.is_set() or self._observed is None:
            return
        body = dict(self._observed)
        spec = dict(body.get("spec") or {})
        spec.update(holderIdentity=None, leaseDurationSeconds=1)
        body["spec"] = spec
        try:
            await request(
                self._api.replace_namespaced_lease,
                self.settings.name,
                self.settings.namespace,
                body,
            )
        except ApiError as e:
            log.warning("could not release the lease: %s", e, extra={"event": "lease_error"})
        self.leading.clear()

    async def _try(self) -> bool:
        """One try to acquire or renew; whether this replica holds the lease now."""
        s = self.settings
        try:
            current: dict[str, Any] | None = await request(
                self._api.read_namespaced_lease, s.name, s.namespace
            )
        except ApiError as e:
            if e.status != 404:
                log.warning("reading the lease: %s", e, extra={"event": "lease_error"})
                return False
            current = None
        now_wall, now = self._wall(), self._mono()
        if current is not None:
            spec = current.get("spec") or {}
            seen = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("acquireTime"))
            old = self._observed.get("spec") or {} if self._observed else {}
            if seen != (old.get("holderIdentity"), old.get("renewTime"), old.get("acquireTime")):
                self._observed, self._observed_at = current, now
            self._observed = current  # keep its resourceVersion fresh
            holder = spec.get("holderIdentity") or None
            duration = float(spec.get("leaseDurationSeconds") or s.lease_duration)
            if (
                holder is not None
                and holder != self.identity
                and now - self._observed_at < duration
            ):
                self._note_holder(holder)
                return False
        mine = (
            current is not None
            and (current.get("spec") or {}).get("holderIdentity") == self.identity
        )
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(s.lease_duration),
            "renewTime": _rfc3339(now_wall),
        }
        if mine and current is not None:
            old_spec = current.get("spec") or {}
            spec["acquireTime"] = old_spec.get("acquireTime") or _rfc3339(now_wall)
            spec["leaseTransitions"] = int(old_spec.get("leaseTransitions") or 0)
        else:
            spec["acquireTime"] = _rfc3339(now_wall)
            previous = (current.get("spec") or {}) if current is not None else {}
            spec["leaseTransitions"] = int(previous.get("leaseTransitions") or 0) + (
                1 if current is not None else 0
            )
        body: dict[str, Any] = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": s.name,
                "namespace": s.namespace,
                "labels": {MANAGED_BY_LABEL: MANAGED_BY},
            },
            "spec": spec,
        }
        try:
            if current is None:
                written = await request(self._api.create_namespaced_lease, s.namespace, body)
            else:
                body["metadata"]["resourceVersion"] = (current.get("metadata") or {}).get(
                    "resourceVersion"
                )
                written = await request(
                    self._api.replace_namespaced_lease, s.name, s.namespace, body
                )
        except ApiError as e:
            if e.status != 409:  # 409: another replica wrote first; it leads
                log.warning("writing the lease: %s", e, extra={"event": "lease_error"})
            return False
        self._observed, self._observed_at, self._renewed_at = written, now, now
        if not self.leading.is_set():
            self.transitions = int(spec["leaseTransitions"])
            log.info(
                "acquired the lease %s/%s as %s",
                s.namespace,
                s.name,
                self.identity,
                extra={"event": "leader_acquired", "identity": self.identity},
            )
            self.leading.set()
            self._changed(self.identity)
        return True

    def _note_holder(self, holder: str) -> None:
        if holder != self.holder:
            log.info(
                "following: %s holds the lease",
                holder,
                extra={"event": "leader_observed", "holder": holder},
            )
            self._changed(holder)

    def _changed(self, holder: str | None) -> None:
        self.holder = holder
        if self._on_change is not None:
            self._on_change(holder, holder == self.identity)

"""Alerts as data: what happened that a person should hear of, and where to send it.

The daemon turns what it sees (a burst starting, a unit failing, a drain that waits too long)
into ``Alert`` records; the ``alerts:`` section of the rules file becomes an ``AlertsConfig``;
``burstd.alerts`` delivers. They live in the model because three layers share them: the rules
loader builds the configuration, the daemon builds the alerts, and the alert senders (which may
import only the model) read both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class AlertKind(StrEnum):
    BURST_STARTED = "burst_started"
    """A rule borrowed capacity while it had none: with the reason and cost per hour."""
    BURST_FINISHED = "burst_finished"
    """A rule gave its last unit back."""
    UNIT_FAILED = "unit_failed"
    """A unit's create failed at the provider."""
    UNIT_ABANDONED = "unit_abandoned"
    """A unit missed its ready deadline and was rolled back."""
    TARGET_BACKOFF = "target_backoff"
    """A target failed and is not used until its backoff ends."""
    TARGET_PROBLEM = "target_problem"
    """A target is held back (its existing units could not be listed) or its provider found
    something that keeps its units from serving (a Liqo namespace not offloaded, no peering)."""
    CAP_REACHED = "cap_reached"
    """A GPU or budget limit stops a rule from serving pending demand."""
    DRAIN_WAITING = "drain_waiting"
    """A draining unit still runs pods past the configured threshold."""
    RULES_INVALID = "rules_invalid"
    """The rules file changed and does not validate; the last good rules stay in force."""
    SIGNAL_STALE = "signal_stale"
    """A metrics source stopped answering (Prometheus down). Defined for the sources to emit."""
    LEADER_CHANGED = "leader_changed"
    """Another replica took the lead. Defined for leader election to emit."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One event for people. ``key`` says which events are "the same" for deduplication
    (kind and subject, not the wording of the reason); ``id`` is stable for this event, so a
    receiver can drop a delivery it got twice."""

    kind: AlertKind
    reason: str
    at: float
    rule: str = ""
    target: str = ""
    unit: str = ""
    cost_per_hour: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.kind}|{self.rule}|{self.target}|{self.unit}"

    @property
    def id(self) -> str:
        return hashlib.sha256(f"{self.key}|{self.at:.3f}".encode()).hexdigest()[:24]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "kind": str(self.kind),
            "rule": self.rule,
            "target": self.target,
            "unit": self.unit,
            "reason": self.reason,
            "time": self.at,
        }
        if self.cost_per_hour is not None:
            out["cost_per_hour"] = self.cost_per_hour
        if self.details:
            out["details"] = dict(self.details)
        return out

    def __str__(self) -> str:
        subject = " ".join(s for s in (self.rule, self.target, self.unit) if s)
        return f"{self.kind}{f' [{subject}]' if subject else ''}: {self.reason}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackReceiver:
    """A Slack incoming webhook; its URL is a secret, so it is read from ``url_file``."""

    name: str
    url_file: Path
    timeout: float = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookReceiver:
    """A JSON POST to ``url``, signed with the secret in ``secret_file`` when one is given."""

    name: str
    url: str
    secret_file: Path | None = None
    timeout: float = 10.0


Receiver = SlackReceiver | WebhookReceiver


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """Send events of ``kinds`` about ``rules`` (empty: any) to ``receivers``."""

    receivers: tuple[str, ...]
    kinds: frozenset[AlertKind] = frozenset()
    rules: frozenset[str] = frozenset()

    def matches(self, alert: Alert) -> bool:
        return (not self.kinds or alert.kind in self.kinds) and (
            not self.rules or alert.rule in self.rules
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertsConfig:
    """The ``alerts:`` section. With no receivers nothing is sent (events are still logged).

    Delivery is retried ``attempts`` times on 5xx answers, timeouts and connection errors, after
    ``backoff``, doubling up to ``max_backoff``; a 4xx answer is not retried. The same event
    (``Alert.key``) is sent once per ``dedupe_window``. At most ``queue_size`` deliveries wait;
    beyond that new ones are dropped, counted and dead-lettered, never waited for.
    ``drain_warning`` is how long a draining unit may still run pods before ``drain_waiting``."""

    receivers: Mapping[str, Receiver] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    dedupe_window: float = 300.0
    attempts: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0
    queue_size: int = 1000
    dead_letter: Path | None = None
    drain_warning: float = 3600.0

    def receivers_for(self, alert: Alert) -> tuple[str, ...]:
        """Receiver names ``alert`` goes to, each once, in route order."""
        out: dict[str, None] = {}
        for route in self.routes:
            if route.matches(alert):
                out.update(dict.fromkeys(route.receivers))
        return tuple(out)

"""The operator's view of a running daemon: metrics, status, alerts, health, systemd.

``Ops`` is fed by small hooks in ``app.py`` — each applied decision (the actuator's
``listeners``), each pass, each watch event, each rules load — plus an instrumented wrapper
around every provider. From those it keeps Prometheus metrics, builds the ``/status``
document, and turns what a person should hear of into ``Alert`` records for the notifier.
``Ops.run`` is one long-running task of the app: the HTTP API, the alert workers and the
systemd watchdog.

Everything here only reads the daemon's state; nothing in it decides or acts on the cluster.
Gauges are computed when scraped, from the same objects ``/status`` reads, so the two agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from burstd.actuate.actuator import Actuator, Applied
from burstd.alerts.notifier import Notifier
from burstd.api.sdnotify import SystemdNotifier
from burstd.control.loop import Controller
from burstd.model import Abandon, Decision, NoOp, ScaleUp, Snapshot, Unit, UnitPhase
from burstd.model.alerts import Alert, AlertKind
from burstd.model.events import (
    NODES,
    PODS,
    Desynced,
    Event,
    NodeDeleted,
    NodeUpserted,
    PodDeleted,
    PodUpserted,
    SignalStaleNotice,
    Synced,
)
from burstd.plan.planner import Plan
from burstd.providers.base import Provider, ProvisionedUnit, UnitSpec
from burstd.rules.types import RuleSet
from burstd.state.clock import Clock
from burstd.state.cluster import ClusterState

log = logging.getLogger(__name__)

# Words in a decision's reason that say a limit (not a cooldown or a trigger) held demand back.
_CAP_WORDS = ("max_gpus", "max_cost_per_hour", "max_units ")
DECISIONS_KEPT = 200


class Daemon(Protocol):
    """What ``Ops`` reads of the app (``burstd.app.App`` has all of it)."""

    clock: Clock
    state: ClusterState
    actuator: Actuator
    controller: Controller
    rules: RuleSet
    passes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiSettings:
    """The HTTP API. ``listen`` is ``host:port`` (port 0: any free one) or ``None`` for no API.
    ``token``, when set, is required as ``Authorization: Bearer <token>`` on ``/metrics`` and
    ``/status``; the page shell and the probes carry no data and stay open."""

    listen: str | None = None
    token: str | None = None
    stall_after: float = 120.0
    """/healthz fails once planning started and no pass ran for this long."""


@dataclass(slots=True)
class _Seen:
    """What earlier passes saw, to notice changes."""

    alive_by_rule: dict[str, int] = field(default_factory=dict)
    backoff_until: dict[str, float] = field(default_factory=dict)
    problems: dict[str, set[str]] = field(default_factory=dict)
    last_now: float | None = None


class Ops:
    def __init__(self, daemon: Daemon, settings: ApiSettings | None = None) -> None:
        self.daemon = daemon
        self.settings = settings or ApiSettings()
        self.registry = CollectorRegistry(auto_describe=True)
        self.notifier = Notifier(daemon.rules.alerts, daemon.clock)
        self.systemd = SystemdNotifier()
        self.rules_valid = True
        self.rules_problems: tuple[str, ...] = ()
        self.planning = False
        self.role = "leader"
        """``leader`` (also without leader election) or ``follower``."""
        self.leader: str | None = None
        self.cost_so_far = 0.0
        self.decisions: deque[dict[str, Any]] = deque(maxlen=DECISIONS_KEPT)
        self.last_event_at: dict[str, float] = {}
        self.address: tuple[str, int] | None = None
        self._seen = _Seen()
        self._last_pass_mono: float | None = None
        # ``*_created`` series double the output and no dashboard reads them.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        r = self.registry
        self.decisions_total = Counter(
            "burstd_decisions",
            "Decisions carried out (or recorded, in dry run), by rule and kind.",
            ["rule", "kind"],
            registry=r,
        )
        self.provider_calls = Counter(
            "burstd_provider_calls",
            "Provider calls by target, call and result (ok, error, cancelled, unsupported).",
            ["target", "call", "result"],
            registry=r,
        )
        self.provider_seconds = Histogram(
            "burstd_provider_call_duration_seconds",
            "Duration of provider calls; create includes waiting for the node to be ready.",
            ["target", "call"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900),
            registry=r,
        )
        self.decision_latency = Histogram(
            "burstd_decision_latency_seconds",
            "From a pod marked Unschedulable to the provider call that makes room for it.",
            buckets=(0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.watch_restarts = Counter(
            "burstd_watch_restarts",
            "Times a watch lost its view (error, 410 Gone) and had to list again.",
            ["resource"],
            registry=r,
        )
        r.register(_StateCollector(self))

    # Hooks the app calls -------------------------------------------------------------------

    def applied(self, applied: Applied) -> None:
        """The actuator's listener: count, remember and maybe alert on a decision."""
        d = applied.decision
        now = self.daemon.clock.now()
        self.decisions_total.labels(rule=d.rule, kind=d.verb).inc()
        self.decisions.appendleft(_decision_record(d, applied, now))
        if not applied.acted:
            return
        if isinstance(d, ScaleUp):
            for key in d.pods:
                pod = self.daemon.state.pods.get(key)
                if pod is not None and pod.pending_since is not None:
                    self.decision_latency.observe(max(0.0, now - pod.pending_since))
            units = self.daemon.actuator.units
            earlier = [
                u
                for u in units.values()
                if u.rule == d.rule and u.phase.alive and u.id not in applied.units
            ]
            if not earlier:
                target = self.daemon.rules.targets.get(d.target)
                price = target.price_per_gpu_hour if target else 0.0
                self.alert(
                    AlertKind.BURST_STARTED,
                    str(d),
                    rule=d.rule,
                    target=d.target,
                    cost_per_hour=d.units * d.gpus_per_unit * price,
                    details={"units": list(applied.units), "pods": list(d.pods)},
                )
        elif isinstance(d, Abandon):
            unit = self.daemon.actuator.units.get(d.unit)
            self.alert(
                AlertKind.UNIT_ABANDONED,
                d.reason,
                rule=d.rule,
                target=unit.target if unit else "",
                unit=d.unit,
            )

    def passed(self, now: float, plan: Plan) -> None:
        """After each pass: health, cost so far, and alerts that depend on state over time."""
        self.planning = True
        self._last_pass_mono = time.monotonic()
        units = list(self.daemon.actuator.units.values())
        rate = sum(u.cost_per_hour for u in units if u.phase.alive)
        seen = self._seen
        if seen.last_now is not None and now > seen.last_now:
            self.cost_so_far += rate * (now - seen.last_now) / 3600.0
        seen.last_now = now
        self._check_bursts(units)
        self._check_backoffs(now)
        self._check_problems()
        self._check_caps(plan)
        self._check_drains(units, now)

    def event(self, event: Event) -> None:
        """Each event of a source (the app's source callback)."""
        if isinstance(event, SignalStaleNotice):
            self.alert(
                AlertKind.SIGNAL_STALE,
                str(event),
                details={"query": event.query, "since": event.since},
            )
            return
        if isinstance(event, PodUpserted | PodDeleted):
            kind = PODS
        elif isinstance(event, NodeUpserted | NodeDeleted):
            kind = NODES
        elif isinstance(event, Synced | Desynced):
            kind = event.kind
            if isinstance(event, Desynced):
                self.watch_restarts.labels(resource=event.kind).inc()
        else:
            return  # metric samples: their freshness is the Prometheus source's to judge
        self.last_event_at[kind] = self.daemon.clock.now()

    def rules_loaded(self, rules: RuleSet) -> None:
        """A rules file loaded and validated (the new rules may equal the old)."""
        self.rules_valid = True
        self.rules_problems = ()
        self.notifier.configure(rules.alerts)

    def rules_invalid(self, problems: Sequence[object]) -> None:
        self.rules_valid = False
        self.rules_problems = tuple(str(p) for p in problems)
        self.alert(
            AlertKind.RULES_INVALID,
            f"{self.daemon.rules.source or 'the rules file'} does not validate "
            f"({len(problems)} problem(s)); the last good rules stay in force",
            details={"problems": list(self.rules_problems[:20])},
        )

    def alert(self, kind: AlertKind, reason: str, **fields: Any) -> None:
        self.notifier.notify(Alert(kind=kind, reason=reason, at=self.daemon.clock.now(), **fields))

    def instrument(self, target: str, provider: Provider) -> Provider:
        """``provider`` with its calls counted and timed, and failed creates alerted."""
        return _Instrumented(self, target, provider)

    # Alert checks over time ----------------------------------------------------------------

    def _check_bursts(self, units: list[Unit]) -> None:
        alive: dict[str, int] = defaultdict(int)
        for u in units:
            if u.phase.alive:
                alive[u.rule] += 1
        for rule, before in self._seen.alive_by_rule.items():
            if before and not alive.get(rule):
                self.alert(
                    AlertKind.BURST_FINISHED,
                    "every unit of the rule has been given back",
                    rule=rule,
                    cost_per_hour=0.0,
                )
        self._seen.alive_by_rule = dict(alive)

    def _check_backoffs(self, now: float) -> None:
        targets = self.daemon.actuator.merged(Snapshot()).targets
        for name, status in targets.items():
            if status.backoff_until > now and self._seen.backoff_until.get(name) != (
                status.backoff_until
            ):
                self.alert(
                    AlertKind.TARGET_BACKOFF,
                    f"{status.consecutive_failures} failure(s) in a row, not used for "
                    f"{status.backoff_until - now:.0f}s; last error: {status.last_error}",
                    target=name,
                    details={"backoff_until": status.backoff_until},
                )
        self._seen.backoff_until = {n: s.backoff_until for n, s in targets.items()}

    def _check_problems(self) -> None:
        """One alert when a target is held back or its provider finds a problem, again only
        for a problem it did not have at the pass before."""
        targets = self.daemon.actuator.merged(Snapshot()).targets
        now_seen: dict[str, set[str]] = {}
        for name, status in sorted(targets.items()):
            problems = [f"held back: {status.held_back}"] if status.held_back else []
            problems.extend(status.problems)
            if not problems:
                continue
            now_seen[name] = set(problems)
            new = [p for p in problems if p not in self._seen.problems.get(name, set())]
            if new:
                self.alert(
                    AlertKind.TARGET_PROBLEM, "; ".join(new), target=name, details={"new": new}
                )
        self._seen.problems = now_seen

    def _check_caps(self, plan: Plan) -> None:
        demand = {v.rule.name: v for v in plan.views}
        for d in plan.decisions:
            view = demand.get(d.rule)
            if view is None or not view.demand or not any(w in d.reason for w in _CAP_WORDS):
                continue
            if isinstance(d, NoOp | ScaleUp):
                self.alert(
                    AlertKind.CAP_REACHED,
                    f"{len(view.demand)} pod(s) pending: {d.reason}",
                    rule=d.rule,
                )

    def _check_drains(self, units: list[Unit], now: float) -> None:
        threshold = self.daemon.rules.alerts.drain_warning
        late = [
            u
            for u in units
            if u.phase is UnitPhase.DRAINING and now - u.phase_since >= threshold and u.node
        ]
        if not late:
            return  # the usual case: no scan of every pod each pass
        nodes = {u.node for u in late}
        running: dict[str, int] = defaultdict(int)
        for pod in self.daemon.state.pods.values():
            if pod.node is not None and pod.node in nodes and pod.is_running:
                running[pod.node] += 1
        for u in late:
            pods = running.get(u.node or "", 0)
            if pods:
                self.alert(
                    AlertKind.DRAIN_WAITING,
                    f"draining for {now - u.phase_since:.0f}s, still running {pods} pod(s)",
                    rule=u.rule,
                    target=u.target,
                    unit=u.id,
                )

    # Health --------------------------------------------------------------------------------

    def health(self) -> tuple[bool, str]:
        """Alive: before planning, always (waiting for the cluster is readiness' business);
        after, while passes keep coming."""
        if not self.planning or self._last_pass_mono is None:
            return True, "starting"
        idle = time.monotonic() - self._last_pass_mono
        if idle > self.settings.stall_after:
            return False, f"no control-loop pass for {idle:.0f}s"
        return True, "ok"

    def leadership(self, holder: str | None, mine: bool) -> None:
        """The Lease changed hands (``holder`` ``None``: this replica lost it)."""
        previous = self.leader
        self.role = "leader" if mine else "follower"
        self.leader = holder
        if holder != previous:
            self.alert(
                AlertKind.LEADER_CHANGED,
                f"{holder} leads" if holder else "this replica lost the lease and stops acting",
                details={"leader": holder, "previous": previous, "this_replica": mine},
            )

    def readiness(self) -> tuple[bool, str]:
        """Ready: synced, rules valid, and leading with planning started — or a warm follower
        (synced, ready to take over at once)."""
        if not self.daemon.state.synced:
            return False, "cluster view not synced"
        if self.role == "follower":
            if not self.rules_valid:
                return False, "rules file invalid (the last good rules are in force)"
            return True, f"warm follower ({self.leader or 'nobody'} leads)"
        if not self.planning:
            return False, "adopting units, planning not started"
        if not self.rules_valid:
            return False, "rules file invalid (the last good rules are in force)"
        return True, "ok"

    # The long-running task -----------------------------------------------------------------

    async def run(self) -> None:
        """Serve the API, deliver alerts and ping the systemd watchdog until cancelled."""
        from burstd.api.server import serve  # aiohttp's web module is only needed here

        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.notifier.run(), name="alerts")
                if self.settings.listen:
                    try:
                        self.address = await serve(self, tg, self.settings.listen)
                    except OSError as e:
                        # Deciding matters more than being watched: keep running, say so loudly
                        # (Prometheus sees the target down).
                        log.error(
                            "cannot serve the API on %s (%s); running without it",
                            self.settings.listen,
                            e.strerror or e,
                            extra={"event": "api_unavailable", "listen": self.settings.listen},
                        )
                self.systemd.notify(READY="1", STATUS="waiting for the cluster view")
                tg.create_task(self._watchdog(), name="watchdog")
        finally:
            self.systemd.notify(STOPPING="1")

    async def _watchdog(self) -> None:
        interval = self.systemd.watchdog_interval
        status = ""
        while True:
            ok, why = self.health()
            if ok and interval is not None:
                self.systemd.notify(WATCHDOG="1")
            text = "planning" if self.planning and ok else why
            if text != status:
                self.systemd.notify(STATUS=text)
                status = text
            await asyncio.sleep(interval if interval is not None else 5.0)

    # The status document -------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Everything ``/status`` serves. Secrets are never in it: receivers by name only."""
        d = self.daemon
        now = d.clock.now()
        rules = d.rules
        units = sorted(d.actuator.units.values(), key=lambda u: (u.target, u.id))
        alive = [u for u in units if u.phase.alive]
        snapshot = d.actuator.merged(Snapshot())
        plan = d.controller.last_plan
        views = {v.rule.name: v for v in plan.views} if plan is not None else {}
        ready, why_not = self.readiness()
        healthy, health = self.health()
        rate = sum(u.cost_per_hour for u in alive)
        return {
            "now": now,
            "healthy": healthy,
            "health": health,
            "ready": ready,
            "readiness": why_not,
            "role": self.role,
            "leader": self.leader,
            "synced": d.state.synced,
            "passes": d.passes,
            "rules": {
                "source": rules.source,
                "digest": rules.digest,
                "valid": self.rules_valid,
                "problems": list(self.rules_problems),
                "dry_run": rules.dry_run,
            },
            "rule_status": [
                _rule_status(r.name, views.get(r.name), alive, r.limits.max_gpus)
                for r in rules.rules
            ],
            "units": [_unit_record(u, now) for u in units],
            "targets": [
                _target_record(name, rules, snapshot, alive, now)
                for name in sorted({*rules.targets, *(u.target for u in units)})
            ],
            "cost": {"per_hour": rate, "so_far": self.cost_so_far},
            "budget": {
                "max_gpus": rules.limits.max_gpus,
                "gpus": sum(u.gpus for u in alive),
                "max_cost_per_hour": rules.limits.max_cost_per_hour,
                "cost_per_hour": rate,
            },
            "signals": {
                kind: {
                    "synced": d.state.is_synced(kind),
                    "last_event_age_s": (now - at) if at is not None else None,
                }
                for kind in ("pods", "nodes")
                for at in [self.last_event_at.get(kind)]
            },
            "decisions": list(self.decisions)[:50],
            "alerts": {
                "receivers": sorted(rules.alerts.receivers),
                "queued": self.notifier.queued,
                "counts": [
                    {"receiver": rcv, "result": res, "count": n}
                    for (rcv, res), n in sorted(self.notifier.counts.items())
                ],
            },
        }


def _decision_record(d: Decision, applied: Applied, now: float) -> dict[str, Any]:
    out: dict[str, Any] = {
        "at": now,
        "rule": d.rule,
        "kind": d.verb,
        "reason": d.reason,
        "acted": applied.acted,
        "dry_run": d.dry_run,
        "units": list(applied.units),
        "text": str(d),
    }
    if isinstance(d, ScaleUp):
        out["target"] = d.target
    return out


def _unit_record(u: Unit, now: float) -> dict[str, Any]:
    return {
        "id": u.id,
        "target": u.target,
        "rule": u.rule,
        "phase": str(u.phase),
        "gpus": u.gpus,
        "gpu_model": u.gpu_model,
        "node": u.node,
        "age_s": now - u.requested_at,
        "phase_age_s": now - u.phase_since,
        "cost_per_hour": u.cost_per_hour,
    }


def _rule_status(name: str, view: Any, alive: list[Unit], max_gpus: int | None) -> dict[str, Any]:
    mine = [u for u in alive if u.rule == name]
    demand = view.demand if view is not None else ()
    return {
        "name": name,
        "pending_pods": len(demand),
        "pending_gpus": sum(p.gpu.gpu_equivalent for p in demand),
        "pending": [p.key for p in demand[:20]],
        "fired": view.fired if view is not None else False,
        "why": view.why if view is not None else "not evaluated yet",
        "units": len(mine),
        "gpus": sum(u.gpus for u in mine),
        "max_gpus": max_gpus,
        "cost_per_hour": sum(u.cost_per_hour for u in mine),
    }


def _target_record(
    name: str, rules: RuleSet, snapshot: Snapshot, alive: list[Unit], now: float
) -> dict[str, Any]:
    target = rules.targets.get(name)
    status = snapshot.target_status(name)
    mine = [u for u in alive if u.target == name]
    return {
        "name": name,
        "provider": target.provider if target else "",
        "in_rules": target is not None,
        "units": len(mine),
        "gpus": sum(u.gpus for u in mine),
        "max_units": target.max_units if target else None,
        "in_backoff": status.backoff_until > now,
        "backoff_left_s": max(0.0, status.backoff_until - now),
        "consecutive_failures": status.consecutive_failures,
        "last_error": status.last_error,
        "held_back": status.held_back,
        "problems": list(status.problems),
    }


class _StateCollector(Collector):
    """Gauges read from the daemon's state at scrape time."""

    def __init__(self, ops: Ops) -> None:
        self._ops = ops

    def describe(self) -> Iterator[Metric]:
        return iter(())  # computed per scrape; names are documented in docs/operating.md

    def collect(self) -> Iterator[Metric]:
        d = self._ops.daemon
        rules = d.rules
        units = list(d.actuator.units.values())
        alive = [u for u in units if u.phase.alive]
        plan = d.controller.last_plan
        pending = GaugeMetricFamily(
            "burstd_pending_gpus",
            "GPUs asked for by pending Unschedulable pods a rule serves.",
            labels=["rule"],
        )
        views = {v.rule.name: v for v in plan.views} if plan is not None else {}
        for rule in rules.rules:
            view = views.get(rule.name)
            value = sum(p.gpu.gpu_equivalent for p in view.demand) if view else 0.0
            pending.add_metric([rule.name], value)
        yield pending
        by_phase = GaugeMetricFamily(
            "burstd_units", "Units burstd holds, by target and phase.", labels=["target", "phase"]
        )
        counts: dict[tuple[str, str], int] = defaultdict(int)
        targets = sorted({*rules.targets, *(u.target for u in units)})
        for t in targets:
            for p in UnitPhase:
                if p.alive:
                    counts[(t, str(p))] += 0
        for u in units:
            counts[(u.target, str(u.phase))] += 1
        for (t, phase), n in sorted(counts.items()):
            by_phase.add_metric([t, phase], n)
        yield by_phase
        borrowed = GaugeMetricFamily(
            "burstd_borrowed_gpus",
            "GPUs of units that are alive (requested through draining), by target.",
            labels=["target"],
        )
        for t in targets:
            borrowed.add_metric([t], sum(u.gpus for u in alive if u.target == t))
        yield borrowed
        yield GaugeMetricFamily(
            "burstd_cost_per_hour",
            "What the alive units cost per hour, in the rules file's currency.",
            value=sum(u.cost_per_hour for u in alive),
        )
        yield GaugeMetricFamily(
            "burstd_cost_so_far",
            "What units have cost since this burstd started, in the rules file's currency.",
            value=self._ops.cost_so_far,
        )
        yield GaugeMetricFamily(
            "burstd_rules_valid",
            "1 if the rules file on disk validates, 0 if the last good rules are kept.",
            value=1.0 if self._ops.rules_valid else 0.0,
        )
        yield GaugeMetricFamily(
            "burstd_ready", "1 if /readyz answers ready.", value=float(self._ops.readiness()[0])
        )
        yield GaugeMetricFamily(
            "burstd_alerts_queued", "Alert deliveries waiting.", value=self._ops.notifier.queued
        )
        alerts = GaugeMetricFamily(
            "burstd_alerts",
            "Alert deliveries by receiver and result (delivered, failed, dropped, deduped).",
            labels=["receiver", "result"],
        )
        for (rcv, res), n in sorted(self._ops.notifier.counts.items()):
            alerts.add_metric([rcv, res], n)
        yield alerts


class _Instrumented:
    """A provider whose calls are counted and timed; a failed create raises an alert."""

    def __init__(self, ops: Ops, target: str, inner: Provider) -> None:
        self._ops = ops
        self._target = target
        self._inner = inner

    @contextlib.contextmanager
    def _call(self, call: str, unit: str = "") -> Iterator[None]:
        start = time.perf_counter()
        result = "ok"
        try:
            yield
        except asyncio.CancelledError:
            result = "cancelled"
            raise
        except NotImplementedError:
            result = "unsupported"
            raise
        except Exception as e:
            result = "error"
            if call == "create":
                self._ops.alert(
                    AlertKind.UNIT_FAILED,
                    f"create failed: {type(e).__name__}: {e}",
                    target=self._target,
                    unit=unit,
                )
            raise
        finally:
            ops = self._ops
            ops.provider_calls.labels(target=self._target, call=call, result=result).inc()
            ops.provider_seconds.labels(target=self._target, call=call).observe(
                time.perf_counter() - start
            )

    async def create(self, spec: UnitSpec) -> ProvisionedUnit:
        with self._call("create", spec.id):
            return await self._inner.create(spec)

    async def cordon(self, unit_id: str, node: str | None) -> None:
        with self._call("cordon"):
            await self._inner.cordon(unit_id, node)

    async def uncordon(self, unit_id: str, node: str | None) -> None:
        with self._call("uncordon"):
            await self._inner.uncordon(unit_id, node)

    async def evict(self, unit_id: str, node: str | None, pods: Sequence[str]) -> None:
        with self._call("evict"):
            await self._inner.evict(unit_id, node, pods)

    async def delete(self, unit_id: str, node: str | None) -> None:
        with self._call("delete"):
            await self._inner.delete(unit_id, node)

    async def list_units(self) -> list[ProvisionedUnit]:
        with self._call("list_units"):
            return await self._inner.list_units()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def read_token(path: str | Path) -> str:
    """The API token in ``path`` (surrounding whitespace dropped); raises ``ValueError``."""
    text = Path(path).read_text(encoding="utf-8").strip()
    if len(text) < 16:
        raise ValueError(f"{path}: the API token must be at least 16 characters")
    return text

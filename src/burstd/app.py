"""The one wiring point: sources → state → control loop → actuator → providers.

``App.run`` owns one ``asyncio.TaskGroup`` with named long-running tasks:

* ``source:pods``, ``source:nodes`` — the watches, feeding ``ClusterState`` through a
  callback that also pokes the trigger;
* ``source:prometheus``, ``source:nvml`` — with ``Settings.prometheus`` / ``Settings.nvml``,
  the utilization triggers' queries (``nvml:…`` ones from NVML, the rest from Prometheus),
  through the same callback; queries no source serves are marked stale, never low;
* ``control`` — waits for the first sync, adopts the units found in the cluster, then runs
  ``Controller.run_once`` whenever the trigger says so;
* ``adopt`` — looks again now and then for units burstd made but does not know, and, with
  backoff, for the units of a target that could not list them at start (held back till then);
* ``targets`` — asks the providers that can what is wrong with their targets (a Liqo peering
  missing), for the status and alerts;
* ``rules`` — reloads the rules file on SIGHUP or when it changes; a file that does not
  validate is reported problem by problem and the last good rules stay in force;
* ``stop`` — on SIGTERM/SIGINT (or ``App.stop``) stops planning, gives provider calls in
  flight a grace period, and cancels the rest;
* ``create:<unit>``, ``delete:<unit>``… — provider calls, started by the driver.

If any long-running task dies, the group cancels the others and ``run`` raises; nothing is
left running. Time comes from an injected ``Clock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from burstd import faults
from burstd.actuate.actuator import Actuator, Applied
from burstd.actuate.adoption import ADOPT_RETRY_MAX_S, Adoption
from burstd.actuate.driver import AsyncDriver, RetryPolicy
from burstd.actuate.memory import (
    FileStore,
    Memory,
    MemoryStore,
    MemoryUnreadable,
    Store,
    decode,
    encode,
)
from burstd.api.ops import ApiSettings, Ops
from burstd.control.loop import Controller
from burstd.control.trigger import Trigger
from burstd.model import (
    DEFAULT_INSTANCE,
    INSTANCE_LABEL,
    PROVIDER_LABEL,
    TARGET_LABEL,
    NoOp,
    ScaleUp,
    Snapshot,
    Unit,
    UnitPhase,
)
from burstd.model.events import Event, MetricMissing, PodDeleted, PodUpserted
from burstd.model.params import with_defaults
from burstd.plan.planner import Plan
from burstd.providers.base import (
    Provider,
    ProviderContext,
    ProviderFactory,
    ProvisionedUnit,
    ReportsProblems,
    UnitShape,
)
from burstd.providers.registry import KINDS, factories
from burstd.rules.loader import RulesError, load_rules
from burstd.rules.types import RuleSet, Target, UtilizationTrigger
from burstd.sources.kube.client import connect
from burstd.sources.kube.lease import LeaderElector, LeaseSettings
from burstd.sources.kube.objects import ConfigMapStore
from burstd.sources.kube.source import KubeSource
from burstd.sources.kube.watch import WatchSettings
from burstd.sources.nvml import NvmlSource, is_nvml_query
from burstd.sources.prometheus import MetricQuery, PrometheusSettings, PrometheusSource
from burstd.state.clock import Clock
from burstd.state.cluster import ClusterState

log = logging.getLogger("burstd")

MEMORY_WRITE_TIMEOUT = 10.0


def default_state_dir() -> Path:
    """``$STATE_DIRECTORY`` (systemd's ``StateDirectory=``), else ``~/.local/state/burstd``."""
    given = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(given) if given else Path.home() / ".local" / "state" / "burstd"


class WallClock:
    """The real time, in seconds since the epoch (Kubernetes timestamps use the same)."""

    def now(self) -> float:
        return time.time()


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """How the daemon runs (what it decides is in the rules file)."""

    config: Path
    """The rules file."""
    kubeconfig: str | None = None
    """Kubeconfig to use; default ``$KUBECONFIG``, ``~/.kube/config``, else in-cluster."""
    grace_period: float = 30.0
    """On shutdown, how long provider calls in flight may still run before being cancelled."""
    reload_check: float = 2.0
    """Seconds between checks of the rules file for changes (0: reload on SIGHUP only)."""
    handle_signals: bool = True
    """Install SIGTERM/SIGINT (stop) and SIGHUP (reload) handlers."""
    watch: WatchSettings = field(default_factory=WatchSettings)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    adopt_retry: float = 2.0
    """Seconds before a target that could not list its existing units at start is asked
    again; doubles with each failure, up to ``adopt_retry_max``. Meanwhile burstd plans on the
    other targets and bursts nothing onto that one."""
    adopt_retry_max: float = ADOPT_RETRY_MAX_S
    instance: str = DEFAULT_INSTANCE
    """This burstd installation's name, on every object it makes (``burstd.io/instance``):
    units of targets gone from the rules file are adopted only from its own objects, so two
    installations in one cluster never give back each other's capacity."""
    state_dir: Path = field(default_factory=lambda: default_state_dir())
    """Where providers keep files of their own (one folder a target): ``StateDirectory=`` under
    systemd, a volume in a Deployment."""
    problems_check: float = 30.0
    """Seconds between asking each provider that can (``ReportsProblems``) what is wrong with
    its target, for ``/status``, the status page and alerts."""
    adopt_interval: float = 60.0
    """Seconds between looks for units burstd made but does not know (a create that landed
    after a crash, once the restarted daemon had listed)."""
    api: ApiSettings = field(default_factory=ApiSettings)
    """The HTTP API (metrics, health, status page); none unless ``api.listen`` is set."""
    prometheus: PrometheusSettings | None = None
    """Where utilization triggers' queries are evaluated; without it they have no data."""
    nvml: bool = False
    """Read ``nvml:`` queries from the local GPUs (a single GPU host)."""
    leader_election: LeaseSettings | None = None
    """Run as one of several replicas: only the holder of this Lease plans and acts."""
    memory: str = "file"
    """Where burstd keeps its memory (cooldowns, backoffs, unit timers) across restarts:
    ``file`` (``memory.json`` in ``state_dir``), ``configmap:NAMESPACE/NAME``, or ``none``."""
    memory_check: float = 0.5
    """Seconds between checks whether the memory changed and must be written."""
    fault_point: str | None = None
    """Tests only: a fault point of ``burstd.faults`` to trigger (inert when ``None``)."""
    fault_action: faults.Action = "kill"
    fault_mark: Path | None = None


def metric_queries(ruleset: RuleSet) -> list[MetricQuery]:
    """The queries the utilization triggers of ``ruleset`` read, each with its window."""
    return [
        MetricQuery(query=t.query, window=t.for_s)
        for rule in ruleset.rules
        for t in rule.triggers
        if isinstance(t, UtilizationTrigger)
    ]


def unique_ids(taken: Callable[[], Mapping[str, Unit]]) -> Callable[[str], str]:
    """Unit ids ``<target>-<6 hex>``: unique across restarts (a restarted burstd must not
    hand out the id of a unit it adopted), short enough for node names and label values."""

    def new_id(target: str) -> str:
        while True:
            uid = f"{target}-{secrets.token_hex(3)}"
            if uid not in taken():
                return uid

    return new_id


class App:
    """The daemon. ``rules`` is the rules in force; tests may read every attribute."""

    def __init__(
        self,
        settings: Settings,
        *,
        rules: RuleSet | None = None,
        clock: Clock | None = None,
        providers: Mapping[str, ProviderFactory] | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or WallClock()
        self.rules = rules if rules is not None else load_rules(settings.config)
        self._factories = providers if providers is not None else factories()
        self._rules_stamp = _stamp(settings.config)
        self._bad_stamp: tuple[int, int] | None = None
        self.state = ClusterState()
        self.trigger = Trigger(self.clock, lambda: self.rules.loop)
        self.providers: dict[str, Provider] = {}
        self.driver = AsyncDriver(
            self._provider_for,
            self.clock,
            retry=settings.retry,
            before_create=self.flush_memory,
            instance=settings.instance,
        )
        self.actuator = Actuator(self.driver, new_id=unique_ids(lambda: self.actuator.units))
        self.driver.bind(self.actuator)
        self.actuator.listeners.append(self._applied)
        self.controller = Controller(self.state, lambda: self.rules, self.actuator)
        self.applied: deque[Applied] = deque(maxlen=1000)
        self.adopted: list[Unit] = []
        self.adoption = Adoption(settings.adopt_retry, settings.adopt_retry_max)
        self._adopt_poke = asyncio.Event()
        self._memory_at_start: Memory | None = None
        self.unservable: dict[str, str] = {}  # pod -> reason, as last logged
        self._misfits_logged: set[tuple[str, str, float]] = set()
        self.source: KubeSource | None = None
        self.passes = 0
        self.reloads = 0
        self.reload_failures = 0
        # Metrics, /status, alerts: fed by the hooks marked "ops" below.
        self.ops = Ops(self, settings.api)
        self.actuator.listeners.append(self.ops.applied)
        self._api: Any = None
        self.elector: LeaderElector | None = None
        self.memory_store: Store | None = None
        self.memory_writes = 0
        self.memory_errors = 0
        self.lost_leadership = False
        self._memory_text: str | None = None
        self._memory_poke = asyncio.Event()
        self._memory_lock = asyncio.Lock()
        self._stop_grace = settings.grace_period
        self._stop = asyncio.Event()
        self._hup = asyncio.Event()
        self._synced = asyncio.Event()
        self._planning = asyncio.Event()

    # Control from outside -----------------------------------------------------------------

    def stop(self) -> None:
        """Shut down gracefully (what SIGTERM and SIGINT do)."""
        if not self._stop.is_set():
            log.info("stopping", extra={"event": "stopping"})
        self._stop.set()

    def request_reload(self) -> None:
        """Reload the rules file (what SIGHUP does)."""
        self._hup.set()

    @property
    def leading(self) -> bool:
        """This replica plans and acts (always, without leader election)."""
        return self.elector is None or self.elector.leading.is_set()

    async def wait_planning(self) -> None:
        """Return once units are adopted and planning has started."""
        await self._planning.wait()

    # Wiring -----------------------------------------------------------------------------

    def _build_providers(self, ruleset: RuleSet) -> None:
        """Providers for the targets of ``ruleset``. Targets that left the file keep their
        provider, so their units can still be given back."""
        for name, target in ruleset.targets.items():
            factory = self._factories.get(target.provider)
            if factory is None:
                log.error(
                    "target %s: provider %r is not available in this daemon; bursting to it "
                    "will fail and the ladder moves on",
                    name,
                    target.provider,
                    extra={"event": "provider_unavailable", "target": name},
                )
                self.providers.pop(name, None)
                continue
            self.providers[name] = factory(self._context(target))

    def _context(self, target: Target) -> ProviderContext:
        shape = UnitShape(
            target=target.name,
            gpus=target.gpus_per_unit,
            gpu_model=target.gpu_model,
            mig=dict(target.mig),
        )
        state_dir = self.settings.state_dir / "targets" / target.name
        return ProviderContext(
            api=self._api, shape=shape, params=target.params, state_dir=state_dir
        )

    def _orphan_providers(self) -> None:
        """Providers for targets no rules file names any more but whose nodes are still there
        (found by burstd's labels in the watched nodes, ``burstd.io/provider`` saying the
        kind), built with the kind's default params, so their units are adopted and given
        back like any orphan. A provider whose units have no node (a Terraform pool still
        applying) is not found this way."""
        for node in self.state.nodes.values():
            name = node.labels.get(TARGET_LABEL)
            # Nodes made before burstd.io/provider existed: the kwok provider labels its own
            # ``type: kwok``.
            kind_name = node.labels.get(PROVIDER_LABEL) or (
                "kwok" if node.labels.get("type") == "kwok" else None
            )
            if node.unit is None or not name or name in self.providers or not kind_name:
                continue
            if node.labels.get(INSTANCE_LABEL, DEFAULT_INSTANCE) != self.settings.instance:
                continue  # another burstd installation's: never ours to give back
            factory = self._factories.get(kind_name)
            kind = KINDS.get(kind_name)
            if factory is None:
                log.error(
                    "node %s of unit %s: target %s is not in the rules file and provider %r is "
                    "not available in this daemon; the unit cannot be given back",
                    node.name,
                    node.unit,
                    name,
                    kind_name,
                    extra={"event": "orphan_target_unavailable", "target": name},
                )
                continue
            params = with_defaults(kind.params or {}, {}) if kind is not None else {}
            target = Target(name=name, provider=kind_name, params=params)
            self.providers[name] = factory(self._context(target))
            log.warning(
                "target %s is not in the rules file but burstd's node %s (unit %s) is there: "
                "adopting its units with %s's default params, to give them back",
                name,
                node.name,
                node.unit,
                kind_name,
                extra={"event": "orphan_target", "target": name, "provider": kind_name},
            )

    def _provider_for(self, target: str) -> Provider | None:
        provider = self.providers.get(target)
        return None if provider is None else self.ops.instrument(target, provider)

    def _on_event(self, event: Event) -> None:
        self.ops.event(event)
        if isinstance(event, PodUpserted | PodDeleted):
            self._note_busy(event.pod.key if isinstance(event, PodUpserted) else event.key)
        if self.state.apply(event):
            self.trigger.poke()
        if not self._synced.is_set() and self.state.synced:
            self._synced.set()

    def _note_busy(self, key: str) -> None:
        """A pod running on a unit is about to change or leave: it ran until now. Passes only
        see snapshots, so without this a unit would look idle since the last pass that saw the
        pod, up to ``loop.interval`` too early."""
        old = self.state.pods.get(key)
        if old is None or not old.is_running or old.node is None:
            return
        node = self.state.nodes.get(old.node)
        if node is not None and node.unit is not None:
            self.actuator.saw_running(old.node, self.clock.now())

    def _applied(self, applied: Applied) -> None:
        self.applied.append(applied)
        d = applied.decision
        extra: dict[str, Any] = {
            "event": "decision",
            "verb": d.verb,
            "rule": d.rule,
            "reason": d.reason,
            "acted": applied.acted,
            "dry_run": d.dry_run,
            "units": list(applied.units),
            "at": applied.at,
        }
        if isinstance(d, ScaleUp):
            extra.update(target=d.target, pods=list(d.pods), gpus_per_unit=d.gpus_per_unit)
        log.info("%s", d, extra=extra)

    async def run(self) -> None:
        """Run until stopped. Raises if a long-running task fails."""
        self._api = await connect(self.settings.kubeconfig)
        loop = asyncio.get_running_loop()
        signals: list[signal.Signals] = []
        if self.settings.fault_point is not None:
            faults.arm(
                self.settings.fault_point, self.settings.fault_action, self.settings.fault_mark
            )
        try:
            self.memory_store = self._memory_store()
            if self.settings.leader_election is not None:
                self.elector = LeaderElector(
                    self._api,
                    _identity(),
                    self.settings.leader_election,
                    on_change=self.ops.leadership,
                )
                self.ops.role = "follower"
            self._build_providers(self.rules)
            self.source = KubeSource(self._api, self._on_event, self.settings.watch)
            signal_sources = self._signals()
            if self.settings.handle_signals:
                for sig, handler in (
                    (signal.SIGTERM, self.stop),
                    (signal.SIGINT, self.stop),
                    (signal.SIGHUP, self.request_reload),
                ):
                    loop.add_signal_handler(sig, handler)
                    signals.append(sig)
            log.info(
                "burstd starting: %d target(s), %d rule(s) from %s",
                len(self.rules.targets),
                len(self.rules.rules),
                self.settings.config,
                extra={"event": "starting", "rules_digest": self.rules.digest},
            )
            async with asyncio.TaskGroup() as tg:
                self.driver.attach(tg)
                daemons = [
                    tg.create_task(w.run(), name=f"source:{w.name}") for w in self.source.watches
                ]
                daemons.extend(
                    tg.create_task(src.run(), name=f"source:{src.name}") for src in signal_sources
                )
                daemons.append(tg.create_task(self._reloader(), name="rules"))
                daemons.append(tg.create_task(self._sweep(), name="adopt"))
                daemons.append(tg.create_task(self._check_targets(), name="targets"))
                daemons.append(tg.create_task(self.ops.run(), name="ops"))
                daemons.append(tg.create_task(self._memory_writer(), name="memory"))
                if self.elector is not None:
                    daemons.append(tg.create_task(self._leadership(), name="lease"))
                control = tg.create_task(self._control(), name="control")
                tg.create_task(self._stopper(control, daemons), name="stop")
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            await self._api.close()
            log.info("burstd stopped", extra={"event": "stopped"})

    def _signals(self) -> list[PrometheusSource | NvmlSource]:
        """The configured metric sources; queries none serves are marked missing."""
        self._unserved(self.rules)
        sources: list[PrometheusSource | NvmlSource] = []
        if self.settings.prometheus is not None:
            sources.append(
                PrometheusSource(
                    self.settings.prometheus,
                    self._prometheus_queries,
                    self._interval,
                    self._on_event,
                    now=self.clock.now,
                )
            )
        if self.settings.nvml:
            sources.append(
                NvmlSource(self._nvml_queries, self._interval, self._on_event, now=self.clock.now)
            )
        return sources

    def _interval(self) -> float:
        return self.rules.loop.interval

    def _prometheus_queries(self) -> list[MetricQuery]:
        return [q for q in metric_queries(self.rules) if not is_nvml_query(q.query)]

    def _nvml_queries(self) -> list[tuple[str, float]]:
        return [(q.query, q.window) for q in metric_queries(self.rules)]

    def _served(self, query: str) -> bool:
        if is_nvml_query(query):
            return self.settings.nvml
        return self.settings.prometheus is not None

    def _unserved(self, ruleset: RuleSet) -> None:
        """Utilization queries with no source: stale from the start (never low), said once."""
        now = self.clock.now()
        for q in metric_queries(ruleset):
            if self._served(q.query) or q.query in self.state.stale:
                continue
            log.error(
                "query %r has no metrics source (start burstd with --prometheus-url, or --nvml "
                "for nvml: queries); its trigger never fires and its rule's units are kept",
                q.query,
                extra={"event": "signal_unconfigured", "query": q.query},
            )
            self._on_event(MetricMissing(query=q.query, at=now, reason="no metrics source"))

    async def _stopper(
        self, control: asyncio.Task[None], daemons: list[asyncio.Task[None]]
    ) -> None:
        await self._stop.wait()
        control.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await control
        await self.driver.shutdown(min(self.settings.grace_period, self._stop_grace))
        if self.elector is not None and not self.lost_leadership:
            await self.elector.release()
        for t in daemons:
            t.cancel()

    # The control loop -----------------------------------------------------------------

    async def _control(self) -> None:
        await self._synced.wait()
        log.info("cluster view synced", extra={"event": "synced"})
        if self.elector is not None:
            await self.elector.leading.wait()
        remembered = await self._read_memory()
        await self._adopt()
        self._restore(remembered)
        self._planning.set()
        self.trigger.run_now()
        while True:
            why = await self.trigger.wait()
            self._pass(why)

    def _pass(self, why: str) -> None:
        now = self.clock.now()
        result = self.controller.run_once(now)
        self.trigger.wake_at(result.wake_at)
        self.passes += 1
        self._report_unservable(result)
        self.ops.passed(now, result)
        self._memory_poke.set()
        if log.isEnabledFor(logging.DEBUG):
            for d in result.decisions:
                if isinstance(d, NoOp):
                    log.debug("%s", d, extra={"event": "noop", "rule": d.rule, "why": why})

    def _report_unservable(self, result: Plan) -> None:
        """Log each unservable pod once (again only if its reason changes), and each
        safety-net record once."""
        now_unservable = {u.pod: u.reason for u in result.unservable}
        for u in result.unservable:
            if self.unservable.get(u.pod) != u.reason:
                log.warning(
                    "[%s] pod %s is unservable, not bursting for it: %s",
                    u.rule,
                    u.pod,
                    u.reason,
                    extra={"event": "unservable", "pod": u.pod, "rule": u.rule, "reason": u.reason},
                )
        self.unservable = now_unservable
        for m in self.actuator.misfits.values():
            key = (m.pod, m.target, m.until)
            if key not in self._misfits_logged:
                self._misfits_logged.add(key)
                log.warning(
                    "pod %s was packed onto unit %s but the scheduler did not place it there: "
                    "not bursting for it on %s for %.0fs (miss %d)",
                    m.pod,
                    m.unit,
                    m.target,
                    m.until - self.clock.now(),
                    m.misses,
                    extra={
                        "event": "misfit",
                        "pod": m.pod,
                        "unit": m.unit,
                        "target": m.target,
                        "until": m.until,
                        "misses": m.misses,
                    },
                )
        if len(self._misfits_logged) > 10_000:
            self._misfits_logged.clear()

    async def _adopt(self, *, initial: bool = True, sweep: bool = True) -> None:
        """Take over units burstd made that it does not know: at start, before the first plan,
        and then every ``adopt_interval`` (``sweep``) to catch a create that completed after a
        crash, once the restarted daemon had listed. A target that cannot list its units at
        start holds none of the others up: it is held back (nothing is bursted onto it) and
        asked again, with backoff, until it can (``burstd.actuate.adoption``)."""
        known = set(self.actuator.units)
        found: list[Unit] = []
        late: list[Unit] = []
        self._orphan_providers()
        now = asyncio.get_running_loop().time()
        for name, provider in sorted(self.providers.items()):
            unlisted = name in self.adoption.unlisted
            if not initial and not (self.adoption.due(name, now) if unlisted else sweep):
                continue
            units = await self._list_units(name, provider, first=initial or unlisted)
            if units is None:
                continue
            target = self.rules.targets.get(name)
            for pu in units:
                # Known before the list or since (created or released meanwhile): ours already.
                if pu.id in known or pu.id in self.actuator.units:
                    continue
                unit = self._unit_from(pu, target)
                (late if unlisted and not initial else found).append(unit)
                self._log_adopted(unit)
        self.actuator.adopt(found)
        if late:
            said = self.actuator.adopt_late(late, self._memory_at_start)
            log.info(
                "adopted %d unit(s) of target(s) that could list them only now; memory: %d note(s)",
                len(late),
                len(said),
                extra={"event": "adopted_late", "units": [u.id for u in late], "notes": said},
            )
        self.adopted.extend(found + late)
        if initial:
            log.info(
                "adopted %d unit(s)%s",
                len(found),
                f"; held back until their units are known: {', '.join(self.adoption.unlisted)}"
                if self.adoption.unlisted
                else "",
                extra={
                    "event": "adoption_done",
                    "units": [u.id for u in found],
                    "held_back": sorted(self.adoption.unlisted),
                },
            )
        for unit in found + late:
            target = self.rules.targets.get(unit.target)
            if unit.phase.in_flight and target is not None:
                # Not ready yet: wait for it as its create would have (create is idempotent).
                self.driver.create(unit, target)
        if (found or late) and not initial:
            self.trigger.poke()

    async def _list_units(
        self, name: str, provider: Provider, *, first: bool
    ) -> list[ProvisionedUnit] | None:
        """The units ``provider`` lists, or ``None`` if it cannot. ``first``: its units are
        not known yet, so a failure holds the target back until a later try succeeds; the
        first failure is logged as an error and alerted, later ones quietly unless the error
        changes. A failed sweep of a target already adopted is only logged."""
        try:
            units = await provider.list_units()
        except Exception as e:
            error = f"{type(e).__name__}: {e}"
            if not first:
                log.warning(
                    "target %s: cannot list existing units (%s)",
                    name,
                    error,
                    extra={"event": "adopt_error", "target": name, "error": error},
                )
                return None
            before = self.adoption.unlisted.get(name)
            record = self.adoption.failed(name, error, asyncio.get_running_loop().time())
            self.actuator.hold_back(name, f"its existing units are unknown: {error}")
            level = (
                logging.ERROR
                if before is None
                else logging.WARNING
                if before.error != error
                else logging.DEBUG
            )
            log.log(
                level,
                "target %s: cannot list its existing units (%s); bursting nothing onto it, "
                "the other targets carry on; asking again in %.0fs (failure %d)",
                name,
                error,
                record.delay,
                record.failures,
                extra={
                    "event": "adopt_error",
                    "target": name,
                    "error": error,
                    "failures": record.failures,
                    "retry_in": record.delay,
                },
            )
            return None
        was = self.adoption.listed(name)
        if was is not None:
            self.actuator.hold_back(name, "")
            log.info(
                "target %s: existing units listed after %d failed tr%s; planning on it again",
                name,
                was.failures,
                "y" if was.failures == 1 else "ies",
                extra={"event": "adopt_recovered", "target": name, "failures": was.failures},
            )
        return units

    def _log_adopted(self, unit: Unit) -> None:
        how = (
            "; cordoned by an operator: held (never uncordoned nor evicted from)"
            if unit.held
            else ""
        )
        if unit.target not in self.rules.targets:
            how += f"; target {unit.target} is not in the rules file: it will be given back"
        log.info(
            "adopted unit %s (%s, %d GPU%s) on node %s%s",
            unit.id,
            unit.phase,
            unit.gpus,
            f", MIG {dict(unit.mig)}" if unit.mig else "",
            unit.node,
            how,
            extra={
                "event": "adopted",
                "unit": unit.id,
                "phase": str(unit.phase),
                "held": unit.held,
                "gpus": unit.gpus,
                "mig": dict(unit.mig),
            },
        )

    async def _sweep(self) -> None:
        """Every ``adopt_interval`` look again for units of every target; between sweeps, ask
        a target that could not list its units again when its backoff ends (at once after a
        rules reload rebuilt its provider)."""
        await self._planning.wait()
        loop = asyncio.get_running_loop()
        sweep_at = loop.time() + self.settings.adopt_interval
        while True:
            retry_at = self.adoption.next_try()
            wake = sweep_at if retry_at is None else min(sweep_at, retry_at)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._adopt_poke.wait(), max(0.0, wake - loop.time()))
            self._adopt_poke.clear()
            sweep = loop.time() >= sweep_at
            if sweep:
                sweep_at = loop.time() + self.settings.adopt_interval
            await self._adopt(initial=False, sweep=sweep)

    async def _check_targets(self) -> None:
        """Every ``problems_check`` seconds, ask each provider that can what is wrong with its
        target; a new problem is logged once (and alerted by ``Ops``), a solved one noted."""
        await self._planning.wait()
        while True:
            await self.check_targets()
            await asyncio.sleep(self.settings.problems_check)

    async def check_targets(self) -> None:
        """One round of ``_check_targets``."""
        for name, provider in sorted(self.providers.items()):
            if not isinstance(provider, ReportsProblems):
                continue
            try:
                problems = await provider.problems(self._namespaces_bursting_to(name))
            except Exception as e:
                log.warning(
                    "target %s: cannot check it for problems (%s: %s)",
                    name,
                    type(e).__name__,
                    e,
                    extra={"event": "target_check_error", "target": name},
                )
                continue
            before = set(self.actuator.merged(Snapshot()).target_status(name).problems)
            for problem in problems:
                if problem not in before:
                    log.warning(
                        "target %s: %s",
                        name,
                        problem,
                        extra={"event": "target_problem", "target": name, "problem": problem},
                    )
            for solved in before - set(problems):
                log.info(
                    "target %s: no longer: %s",
                    name,
                    solved,
                    extra={"event": "target_problem_solved", "target": name, "problem": solved},
                )
            self.actuator.found(name, problems)

    def _namespaces_bursting_to(self, target: str) -> frozenset[str] | None:
        """Where the pods of the rules whose ladder names ``target`` live (``None``: a rule
        matches every namespace)."""
        found: set[str] = set()
        for rule in self.rules.rules:
            if target in rule.burst.ladder:
                if not rule.match.namespaces:
                    return None
                found |= rule.match.namespaces
        return frozenset(found)

    def _unit_from(self, pu: ProvisionedUnit, target: Target | None) -> Unit:
        """The unit as found. Its shape is read from the object (the target may have changed
        since). A cordon burstd recorded on it resumes giving it back; a cordon without
        burstd's record is an operator's: the unit is held."""
        now = self.clock.now()
        held = pu.cordoned and not pu.cordoned_by_burstd
        if pu.cordoned and not held:
            phase = UnitPhase.CORDONED
        elif pu.ready:
            phase = UnitPhase.READY
        else:
            phase = UnitPhase.PROVISIONING
        ready = phase is not UnitPhase.PROVISIONING
        return Unit(
            id=pu.id,
            target=pu.target,
            rule=pu.rule,
            gpus=pu.gpus,
            gpu_model=pu.gpu_model or (target.gpu_model if target else ""),
            mig=tuple(sorted(pu.mig.items())),
            held=held and ready,
            phase=phase,
            requested_at=pu.created_at or now,
            # Timers restart: an adopted unit is not released sooner than a fresh one.
            phase_since=now,
            ready_at=now if ready else None,
            last_busy_at=now if ready else None,
            price_per_gpu_hour=target.price_per_gpu_hour if target else 0.0,
            node=pu.node if ready else None,
        )

    # Durable memory and leadership -------------------------------------------------------

    def _memory_store(self) -> Store:
        where = self.settings.memory
        if where == "none":
            return MemoryStore()
        if where == "file":
            return FileStore(self.settings.state_dir / "memory.json")
        namespace, _, name = where.removeprefix("configmap:").partition("/")
        return ConfigMapStore(self._api, namespace, name)

    async def _read_memory(self) -> str | None:
        """The stored memory's text ("" when nothing was ever stored), or ``None`` when it
        cannot be read; retried while the store cannot be reached, as adoption is."""
        assert self.memory_store is not None
        while True:
            try:
                text = await self.memory_store.read()
                return "" if text is None else text
            except MemoryUnreadable as e:
                self._memory_problem(f"{self.memory_store}: {e}")
                return None
            except Exception as e:
                log.warning(
                    "cannot read the memory from %s (%s: %s); retrying",
                    self.memory_store,
                    type(e).__name__,
                    e,
                    extra={"event": "memory_error"},
                )
                await asyncio.sleep(self.settings.adopt_retry)

    def _restore(self, text: str | None) -> None:
        memory = None
        if text:
            try:
                memory = decode(text)
            except MemoryUnreadable as e:
                self._memory_problem(f"{self.memory_store}: {e}")
        elif text == "":
            log.info(
                "no memory stored yet in %s", self.memory_store, extra={"event": "memory_empty"}
            )
            memory = Memory()
        said = self.actuator.restore(memory, (r.name for r in self.rules.rules), self.clock.now())
        self._memory_at_start = memory
        self._memory_text = text or None
        log.info(
            "memory restored from %s: %d note(s)",
            self.memory_store,
            len(said),
            extra={"event": "memory_restored", "notes": said},
        )

    def _memory_problem(self, why: str) -> None:
        self.memory_errors += 1
        log.error(
            "memory is unreadable (%s); carrying on cautiously: every cooldown in force, "
            "no release before a fresh idle period",
            why,
            extra={"event": "memory_unreadable", "error": why},
        )

    async def _memory_writer(self) -> None:
        """Write the memory whenever it changed: after each pass and as provider calls end."""
        await self._planning.wait()
        failures = 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._memory_poke.wait(), self.settings.memory_check)
            self._memory_poke.clear()
            if await self.flush_memory():
                failures = 0
            else:
                failures += 1
                await asyncio.sleep(min(30.0, 0.5 * 2.0 ** min(failures, 6)))

    async def flush_memory(self) -> bool:
        """Write the memory if it changed since the last write; whether it is durable now.
        Never raises: a store that cannot be reached is logged and tried again later."""
        store = self.memory_store
        if store is None or not self.leading or not self._planning.is_set():
            return True
        async with self._memory_lock:
            text = encode(self.actuator.memory(self.clock.now()))
            if text == self._memory_text:
                return True
            try:
                await asyncio.wait_for(store.write(text), MEMORY_WRITE_TIMEOUT)
            except Exception as e:
                self.memory_errors += 1
                log.warning(
                    "cannot write the memory to %s (%s: %s)",
                    store,
                    type(e).__name__,
                    e,
                    extra={"event": "memory_error"},
                )
                return False
            self._memory_text = text
            self.memory_writes += 1
        if self.actuator.units:
            faults.hit(faults.MEMORY_WRITTEN)
        return True

    async def _leadership(self) -> None:
        """Hold the lease; once it is lost, stop: a leader that cannot renew must not act
        while another may. Provider calls in flight get what is left of the lease to finish
        (``lease_duration - renew_deadline``, less one retry), then are cancelled; the
        restarted process (systemd ``Restart=``, the Deployment) comes back as a follower and
        adopts afresh if it leads again — as kube-controller-manager does."""
        assert self.elector is not None
        await self.elector.run()
        self.lost_leadership = True
        s = self.elector.settings
        self._stop_grace = max(0.0, s.lease_duration - s.renew_deadline - s.retry_period)
        self.stop()

    # Rules reload -------------------------------------------------------------------------

    async def _reloader(self) -> None:
        check = self.settings.reload_check
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hup.wait(), timeout=check if check > 0 else None)
            forced = self._hup.is_set()
            self._hup.clear()
            stamp = _stamp(self.settings.config)
            if self._wants_reload(stamp, forced=forced):
                # Parsed in a thread: a large rules file takes seconds to read, and the watch
                # and the control loop must not stall meanwhile.
                loaded = await asyncio.to_thread(_load, self.settings.config)
                self._reloaded(stamp, loaded)

    def reload_now(self, *, forced: bool = True) -> bool:
        """Reload the rules file if ``forced`` or it changed; return whether new rules are in
        force. A bad file is logged with every problem and changes nothing."""
        stamp = _stamp(self.settings.config)
        if not self._wants_reload(stamp, forced=forced):
            return False
        return self._reloaded(stamp, _load(self.settings.config))

    def _wants_reload(self, stamp: tuple[int, int] | None, *, forced: bool) -> bool:
        return forced or stamp not in (self._rules_stamp, self._bad_stamp)

    def _reloaded(self, stamp: tuple[int, int] | None, loaded: RuleSet | RulesError) -> bool:
        if isinstance(loaded, RulesError):
            e = loaded
            self._bad_stamp = stamp
            self.reload_failures += 1
            self.ops.rules_invalid(e.problems)
            log.error(
                "rules file %s is invalid; keeping the rules in force (%s)",
                self.settings.config,
                self.rules.digest[:12],
                extra={
                    "event": "rules_invalid",
                    "problems": [str(p) for p in e.problems],
                },
            )
            for problem in e.problems:
                log.error("%s", problem, extra={"event": "rules_problem"})
            return False
        rules = loaded
        self._rules_stamp = stamp
        self._bad_stamp = None
        self.ops.rules_loaded(rules)
        if rules.digest == self.rules.digest:
            return False
        self.rules = rules
        self.reloads += 1
        self._build_providers(rules)
        if self.adoption.unlisted:
            self.adoption.retry_now()
            self._adopt_poke.set()
        self._unserved(rules)
        log.info(
            "rules reloaded from %s: %d target(s), %d rule(s)",
            self.settings.config,
            len(rules.targets),
            len(rules.rules),
            extra={"event": "rules_reloaded", "rules_digest": rules.digest},
        )
        self.trigger.run_now()
        return True


def _load(path: Path) -> RuleSet | RulesError:
    try:
        return load_rules(path)
    except RulesError as e:
        return e


def _identity() -> str:
    """A replica's name in the Lease: the pod's (or host's) name and a random suffix, so two
    processes on one host never share an identity."""
    host = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{host}_{secrets.token_hex(4)}"


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


# Logging ------------------------------------------------------------------------------------

_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message and the record's extra fields
    (``event``, ``unit``, ``reason``…), for log pipelines and for tests to read."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(fmt: str = "text", level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())

"""The simulation: an event loop over a virtual clock that drives burstd's own control loop.

Pods arrive from a trace, the scheduler in ``cluster.py`` binds them, they run for their trace
duration and complete. burstd decides through the very same
``burstd.control.loop.Controller.run_once(now)`` as the daemon, reading this simulation as its
``ClusterView`` and acting through the simulated providers (``providers.py``) as its ``Driver``.
Nothing here plans.

Time is absolute: ``now = start_epoch + trace time``, so schedule triggers see real weekdays.
The loop is event-driven. Events at the same instant are handled in this order: pod completions
and provider results, then arrivals, then a control-loop pass. Passes are timed by the daemon's
own ``burstd.control.trigger.Batcher``, poked on what the daemon's state layer pokes on (a pod
marked unschedulable, a pod leaving a burst unit's node, a unit's node appearing or going):

* a batch of pokes runs a pass once they have been quiet for ``loop.batch_idle``, or
  ``loop.batch_max`` after the first;
* otherwise a pass runs ``loop.interval`` after the last one, except passes that could not
  decide anything new (see ``wakeups.py``), which are skipped. Skipping keeps the daemon's
  rhythm: a skipped pass would have been due exactly ``interval`` after the previous one, so the
  next pass that runs is on the same chain of ticks. A skipped pass would only have refreshed
  the actuator's "last busy" time of units running pods; that time matters only once a unit's
  last pod ends, and then the simulator tells the actuator (``saw_running``), exactly as the
  daemon's event handler does, so idle timers agree with the daemon's to the second.

``exact=True`` runs every periodic pass instead; the tests check both give the same results.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from heapq import heappop, heappush
from itertools import chain
from typing import Any

from burstd.actuate.actuator import Actuator
from burstd.control.loop import Controller
from burstd.control.trigger import Batcher
from burstd.model import GpuRequest, Pod, PodPhase, Sample, Snapshot, UnitPhase
from burstd.plan.packing import Shape
from burstd.rules.types import RuleSet, Target, UtilizationTrigger
from burstd.sim.cluster import NodeSpec, Scheduler, SimNode, SimPod
from burstd.sim.providers import SimProviders, SimWorld, UnitRecord
from burstd.sim.trace import Trace
from burstd.sim.wakeups import Thresholds, has_utilization

DEFAULT_START_EPOCH = datetime(2023, 7, 3, tzinfo=UTC).timestamp()  # a Monday, 00:00 UTC
INF = math.inf
_EPS = 1e-3
# Order of simultaneous events: completions and provider results before arrivals before passes.
_COMPLETE = 0
_ACTION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    """How to run. ``drain_horizon``: after the last pod ends, how long burst units may still
    take to be given back before the run is cut (and their billing with it). ``series_points``:
    resolution of the time series kept for the report. ``utilization``: what utilization
    triggers read, a replayed series (percent, one value every ``utilization_step`` seconds
    from the run's start, repeating), or, when empty, the share of local GPUs allocated."""

    seed: int = 0
    start_epoch: float = DEFAULT_START_EPOCH
    exact: bool = False
    drain_horizon: float = 86_400.0
    series_points: int = 1200
    utilization: tuple[float, ...] = ()
    utilization_step: float = 60.0


@dataclass(slots=True)
class Series:
    """Time series for the report: per bucket, the highest value seen in it."""

    start: float
    step: float
    demand: list[float]
    local: list[float]
    borrowed_capacity: list[float]
    borrowed_used: list[float]
    pending: list[float]
    touched: list[bool]

    @classmethod
    def empty(cls, start: float, span: float, points: int) -> Series:
        step = max(span, 1.0) / points
        zeros = [0.0] * points
        return cls(
            start,
            step,
            list(zeros),
            list(zeros),
            list(zeros),
            list(zeros),
            list(zeros),
            [False] * points,
        )

    def fill(self) -> None:
        """Carry values into buckets in which nothing changed."""
        columns = (
            self.demand,
            self.local,
            self.borrowed_capacity,
            self.borrowed_used,
            self.pending,
        )
        for i in range(1, len(self.touched)):
            if not self.touched[i]:
                for c in columns:
                    c[i] = c[i - 1]


@dataclass(slots=True)
class Outcome:
    """What one run produced: raw numbers for ``results.py`` and the report."""

    policy: str
    waits: list[float]
    jct_sum: float
    jct_count: int
    never_fit: int
    never_started: int
    evicted: int
    local_gpus: int
    local_gpu_seconds: float
    borrowed_gpu_seconds: float
    start: float
    work_end: float
    end: float
    units: list[UnitRecord]
    static_gpus: int = 0
    static_price: float = 0.0
    peak_borrowed: float = 0.0
    passes: int = 0
    virtual_passes: int = 0
    events: int = 0
    series: Series | None = None
    extra: dict[str, Any] = field(default_factory=dict)


Checker = Callable[["Simulation"], None]
Progress = Callable[[int, int], None]


class Simulation(SimWorld):
    """One policy over one trace. ``ruleset`` None runs no control loop (the ``no-burst`` and
    ``static`` baselines); ``static`` adds fixed borrowed nodes for the whole run.
    ``reachable`` lists the targets against which "could this pod ever run" is judged (by
    default the ruleset's), so every policy of a comparison excludes the same pods."""

    def __init__(
        self,
        trace: Trace,
        nodes: Iterable[NodeSpec],
        ruleset: RuleSet | None,
        *,
        policy: str = "burstd",
        config: SimConfig = SimConfig(),
        static: Iterable[NodeSpec] = (),
        static_price: float = 0.0,
        reachable: Iterable[Target] | None = None,
        checker: Checker | None = None,
        progress: Progress | None = None,
        runtimes: Sequence[float] | None = None,
    ) -> None:
        self.trace = trace
        # The run time each pod declares (Pod.declared_runtime), by trace index; None: none do.
        self.runtimes = runtimes
        self.policy = policy
        self.config = config
        self.ruleset = ruleset
        self.checker = checker
        self.progress = progress
        self.epoch = config.start_epoch
        self.now = self.epoch
        self.sched = Scheduler()
        self.local_gpus = 0
        shapes: set[tuple[str, int]] = set()
        for spec in nodes:
            self.sched.home.add(SimNode(spec.name, spec.gpus, spec.model))
            self.local_gpus += spec.gpus
            shapes.add((spec.model, spec.gpus))
        self.static_gpus = 0
        self.static_price = static_price
        for spec in static:
            node = SimNode(spec.name, spec.gpus, spec.model, unit=f"static:{spec.name}")
            self.sched.borrowed.add(node)
            self.static_gpus += spec.gpus
        targets = (
            list(reachable)
            if reachable is not None
            else (list(ruleset.targets.values()) if ruleset is not None else [])
        )
        self._reach = [Shape(gpus=m_g[1], model=m_g[0]) for m_g in sorted(shapes)] + [
            Shape(gpus=t.gpus_per_unit, model=t.gpu_model, mig=t.mig) for t in targets
        ]
        self._fit_cache: dict[tuple[int, int, frozenset[str]], bool] = {}
        self._requests: dict[tuple[int, int, frozenset[str]], GpuRequest] = {}

        # Events.
        self._heap: list[tuple[float, int, int, int, Any]] = []
        self._seq = 0
        self._pod_seq = 0
        self._next_arrival = 0

        # Accounting.
        n = len(trace)
        self.waits: list[float] = [math.nan] * n
        self._never_fit: list[bool] = [False] * n
        self.never_fit = 0
        self.never_fit_pending = 0
        self.running = 0
        self.evicted = 0
        self.jct_sum = 0.0
        self.jct_count = 0
        self.local_gpu_seconds = 0.0
        self.borrowed_gpu_seconds = 0.0
        self.demand_gpus = 0.0
        self.pending_gpus = 0.0
        self.local_used = 0.0
        self.borrowed_used = 0.0
        self.borrowed_capacity = float(self.static_gpus)
        self.peak_borrowed = float(self.static_gpus)
        self.work_end: float | None = None
        self.events = 0
        self.passes = 0
        self.virtual_passes = 0
        span = max((s + d for s, d in zip(trace.submit, trace.duration, strict=True)), default=0.0)
        self.series = Series.empty(self.epoch, span, max(1, config.series_points))
        self._mark_series()

        # Control loop.
        self.providers = SimProviders(self, config.seed)
        self.actuator: Actuator | None = None
        self.controller: Controller | None = None
        self._demand: dict[SimPod, None] = {}
        self._on_units: dict[SimPod, None] = {}
        self._pods_view: tuple[Pod, ...] | None = ()
        self._metrics: dict[str, tuple[Sample, ...]] = {}
        self._util_queries: list[tuple[str, float]] = []
        self.last_pass = -INF
        self._dirty_at = INF
        self._wake = INF
        self._pass_at: float | None = None
        self.batcher = Batcher(last_run=-INF)
        self._need_round = False
        self.interval = 10.0
        self.exact = config.exact
        if ruleset is not None:
            self.actuator = Actuator(self.providers)
            self.controller = Controller(self, lambda: ruleset, self.actuator)
            self.interval = ruleset.loop.interval
            self.thresholds = Thresholds(ruleset)
            if has_utilization(ruleset):
                self.exact = True
                for rule in ruleset.rules:
                    for t in rule.triggers:
                        if isinstance(t, UtilizationTrigger):
                            self._util_queries.append((t.query, t.for_s))
            # The daemon runs a first pass as soon as it has synced.
            self._dirty_at = self.epoch

    # ClusterView ---------------------------------------------------------------------------

    def snapshot(self, now: float) -> Snapshot:
        pods = self._pods_view
        if pods is None:
            view = [p.model_pod for p in self._demand]
            view += [p.model_pod for p in self._on_units]
            pods = self._pods_view = tuple(p for p in view if p is not None)
        return Snapshot(pods=pods, metrics=self._metrics, synced=True)

    # SimWorld (the providers' side) --------------------------------------------------------

    def schedule(self, at: float, action: Callable[[], None]) -> None:
        self._seq += 1
        heappush(self._heap, (at, _ACTION, self._seq, _ACTION, action))

    def provisioning(self, uid: str) -> None:
        assert self.actuator is not None
        self.actuator.provisioning(uid, self.now)
        self._dirty()

    def unit_ready(self, record: UnitRecord) -> None:
        assert self.actuator is not None
        node = SimNode(f"vk-{record.id}", record.gpus, record.model, unit=record.id)
        record.node = node
        self.sched.borrowed.add(node)
        self.borrowed_capacity += record.gpus
        if self.borrowed_capacity > self.peak_borrowed:
            self.peak_borrowed = self.borrowed_capacity
        self._mark_series()
        self.actuator.ready(record.id, node.name, self.now)
        self._poke()
        self._round()

    def unit_failed(self, record: UnitRecord, target: Target) -> None:
        assert self.actuator is not None
        self.actuator.failed(record.id, record.error, target, self.now)
        self._dirty()

    def node_gone(self, record: UnitRecord) -> None:
        node = record.node
        assert node is not None
        if node.pods:  # the planner releases empty units only; keep the books straight anyway
            for pod in list(node.pods):
                self._evict_pod(pod)
        self.sched.borrowed.remove(node)
        self.borrowed_capacity -= record.gpus
        self._mark_series()
        self._poke()

    def set_cordoned(self, record: UnitRecord, cordoned: bool) -> None:
        assert record.node is not None
        self.sched.borrowed.cordon(record.node, cordoned)
        if not cordoned:
            self._need_round = True
        self._dirty()

    def evict(self, record: UnitRecord, pods: tuple[str, ...]) -> None:
        node = record.node
        assert node is not None
        wanted = set(pods)
        for pod in list(node.pods):
            mp = pod.model_pod
            if mp is not None and mp.key in wanted:
                self._evict_pod(pod)
        self._dirty()

    def released(self, uid: str) -> None:
        assert self.actuator is not None
        self.actuator.released(uid, self.now)
        self._dirty()

    def done(self, uid: str) -> None:
        assert self.actuator is not None
        self.actuator.done(uid)

    # Pods ----------------------------------------------------------------------------------

    def _request(self, pod: SimPod) -> GpuRequest:
        key = (pod.gpus, pod.milli, pod.models)
        req = self._requests.get(key)
        if req is None:
            req = self._requests[key] = GpuRequest(
                gpus=pod.gpus, milli=pod.milli, models=pod.models
            )
        return req

    def _model_pod(self, pod: SimPod, node: SimNode | None) -> Pod:
        t = self.trace
        prof = t.profiles[t.profile[pod.index]]
        return Pod(
            namespace=prof.namespace,
            name=t.name(pod.index),
            gpu=self._request(pod),
            phase=PodPhase.PENDING if node is None else PodPhase.RUNNING,
            unschedulable=node is None,
            node=None if node is None else node.name,
            labels=prof.labels,
            priority=prof.priority,
            priority_class=prof.priority_class,
            qos=prof.qos,
            created_at=pod.arrival,
            pending_since=pod.pending_since,
            declared_runtime=None if self.runtimes is None else self.runtimes[pod.index],
        )

    def _can_ever_fit(self, pod: SimPod) -> bool:
        key = (pod.gpus, pod.milli, pod.models)
        ok = self._fit_cache.get(key)
        if ok is None:
            req = self._request(pod)
            ok = self._fit_cache[key] = any(s.can_ever_fit(req) for s in self._reach)
        return ok

    def _arrive(self, i: int) -> None:
        t = self.trace
        now = self.now
        self._pod_seq += 1
        pod = SimPod(
            i,
            now,
            t.duration[i],
            t.gpus[i],
            t.milli[i],
            t.profiles[t.profile[i]].models,
            t.profiles[t.profile[i]].priority,
            self._pod_seq,
        )
        if not self._can_ever_fit(pod):
            self._never_fit[i] = True
            self.never_fit += 1
            self.never_fit_pending += 1
            self._wait(pod)
            return
        self.demand_gpus += pod.gpu_equivalent
        node = None if self.sched.blocked(pod) else self.sched.place(pod)
        if node is None:
            self._wait(pod)
        else:
            self.waits[i] = 0.0
            self._start(pod, node)
        self._mark_series()

    def _wait(self, pod: SimPod) -> None:
        """The scheduler found no room: the pod is marked unschedulable and burstd is told."""
        now = self.now
        pod.pending_since = now
        self.sched.enqueue(pod)
        if not self._never_fit[pod.index]:
            self.pending_gpus += pod.gpu_equivalent
        if self.controller is not None:
            pod.model_pod = self._model_pod(pod, None)
            self._demand[pod] = None
            self._pods_view = None
            self._poke()

    def _start(self, pod: SimPod, node: SimNode) -> None:
        now = self.now
        pod.started = now
        self.running += 1
        g = pod.gpu_equivalent
        if node.unit is None:
            self.local_used += g
        else:
            self.borrowed_used += g
            if self.controller is not None and not node.unit.startswith("static:"):
                if len(node.pods) == 1:
                    node.busy_since = now
                pod.model_pod = self._model_pod(pod, node)
                self._on_units[pod] = None
                self._pods_view = None
                if self._matters(node, stays_busy=len(node.pods) > 1):
                    self._dirty()
        self._seq += 1
        heappush(self._heap, (now + pod.duration, _COMPLETE, self._seq, _COMPLETE, pod))

    def _bound_from_queue(self, pod: SimPod, node: SimNode) -> None:
        now = self.now
        assert pod.pending_since is not None
        pod.waited += now - pod.pending_since
        self.waits[pod.index] = pod.waited
        self.pending_gpus -= pod.gpu_equivalent
        pod.pending_since = None
        if self.controller is not None:
            del self._demand[pod]
            self._pods_view = None
            self._dirty()
        self._start(pod, node)

    def _round(self) -> None:
        self._need_round = False
        bound = False
        for pod, node in self.sched.round():
            self._bound_from_queue(pod, node)
            bound = True
        if bound:
            self._mark_series()

    def _finish(self, pod: SimPod, evicted: bool = False) -> SimNode:
        """Take a running pod off its node (completion or eviction) and do the books."""
        now = self.now
        node = self.sched.release(pod)
        self.running -= 1
        g = pod.gpu_equivalent
        ran = now - pod.started
        if node.unit is None:
            self.local_used -= g
            self.local_gpu_seconds += g * ran
        else:
            self.borrowed_used -= g
            self.borrowed_gpu_seconds += g * ran
            if pod in self._on_units:
                del self._on_units[pod]
                self._pods_view = None
                if not node.pods and self.actuator is not None:
                    # As the daemon's state layer does when a pod leaves a unit's node.
                    self.actuator.saw_running(node.name, now)
                self._poke(self._matters(node, stays_busy=bool(node.pods)))
        return node

    def _matters(self, node: SimNode, *, stays_busy: bool) -> bool:
        """Whether a pod starting or ending on a unit's node can change a decision. It cannot
        when nothing is pending and the unit stays busy in a phase in which the planner only
        asks whether pods run on it (ready: keep it; cordoned: drain it once validated)."""
        if self._demand or not stays_busy or self.actuator is None or node.unit is None:
            return True
        unit = self.actuator.units.get(node.unit)
        return unit is None or unit.phase not in (UnitPhase.READY, UnitPhase.CORDONED)

    def _complete(self, pod: SimPod) -> None:
        self._finish(pod)
        self.demand_gpus -= pod.gpu_equivalent
        self.jct_sum += self.now - pod.arrival
        self.jct_count += 1
        if self.sched.pending:
            self._round()
        self._mark_series()

    def _evict_pod(self, pod: SimPod) -> None:
        """Evicted pods start over: back in the queue, their work lost."""
        self._finish(pod, evicted=True)
        self.evicted += 1
        self._pod_seq += 1
        pod.seq = self._pod_seq
        if self.sched.blocked(pod):
            self._wait(pod)
            return
        node = self.sched.place(pod)
        if node is None:
            self._wait(pod)
        else:
            self._start(pod, node)

    def _tick_at_or_after(self, t: float) -> float:
        """The first periodic pass at or after ``t`` on the chain ``last pass + k·interval``."""
        last = self.last_pass
        k = max(1, math.ceil((t - last) / self.interval - 1e-9))
        return last + k * self.interval

    def _dirty(self) -> None:
        """Something the planner reads changed: the next periodic pass must run."""
        if self.now < self._dirty_at:
            self._dirty_at = self.now
            self._pass_at = None

    def _poke(self, matters: bool = True) -> None:
        """What the daemon's state layer pokes the trigger for."""
        if self.controller is None:
            return
        self.batcher.poke(self.now)
        self._pass_at = None
        if matters:
            self._dirty()

    def _next_pass(self) -> float:
        if self._pass_at is None:
            self._pass_at = self._compute_next_pass()
        return self._pass_at

    def _compute_next_pass(self) -> float:
        assert self.ruleset is not None
        loop = self.ruleset.loop
        at = INF
        b = self.batcher
        if b.first_poke is not None and b.last_poke is not None:
            at = min(b.last_poke + loop.batch_idle, b.first_poke + loop.batch_max)
            # While a batch is open the daemon's next periodic pass serves it, whether or not
            # that pass can decide anything: it must happen here too (perhaps only virtually).
            if self.last_pass > -INF:
                at = min(at, self._tick_at_or_after(b.first_poke))
        if self.exact:
            periodic = self.last_pass + self.interval if self.last_pass > -INF else self.epoch
        else:
            soonest = min(self._dirty_at, self._wake)
            if soonest == INF:
                return at
            periodic = soonest if self.last_pass == -INF else self._tick_at_or_after(soonest)
        return min(at, periodic)

    def _pass(self) -> None:
        assert self.controller is not None
        assert self.actuator is not None
        now = self.now
        self.batcher.ran(now)
        self.last_pass = now
        self._pass_at = None
        if not (self.exact or self._dirty_at <= now or self._wake <= now + _EPS):
            # A batch pass the daemon runs, over inputs that cannot change any decision: only
            # its bookkeeping (the chain of periodic passes, units' last-busy times) is kept.
            self.actuator.observe(self.snapshot(now), now)
            self.virtual_passes += 1
            return
        self._dirty_at = INF
        self.passes += 1
        if self._util_queries:
            self._sample_utilization(now)
        self.controller.run_once(now)
        if self.controller.last_applied:
            self._dirty()
        if self._need_round:
            self._round()
        if not self.exact:
            self._wake = self._next_wake(now)

    def _next_wake(self, now: float) -> float:
        """The earliest time at which the next pass could decide differently without any
        event: the first threshold ahead (one at ``now`` itself, for a strict comparison,
        means the next tick)."""
        assert self.actuator is not None
        a = self.actuator
        base = a.merged(Snapshot())
        busy = {p.node.name for p in self._on_units if p.node is not None}
        best = INF
        # The triggers' own thresholds (pending waits, schedule windows) come with the plan.
        last = self.controller.last_plan if self.controller is not None else None
        triggers = (last.wake_at,) if last is not None and last.wake_at is not None else ()
        planner = self.thresholds.candidates(
            a.units.values(), dict(base.targets), dict(base.history), bool(self._demand), busy, now
        )
        for c in chain(planner, triggers):
            if c < now - _EPS:
                continue
            at = now + self.interval if c <= now + _EPS else c - _EPS
            if at < best:
                best = at
        return best

    def _sample_utilization(self, now: float) -> None:
        series = self.config.utilization
        if series:
            pct = series[int((now - self.epoch) / self.config.utilization_step) % len(series)]
        else:
            pct = 100.0 * self.local_used / self.local_gpus if self.local_gpus else 0.0
        metrics = dict(self._metrics)
        for query, window in self._util_queries:
            old = metrics.get(query, ())
            kept = tuple(s for s in old if s.at >= now - window - 2 * self.interval)
            metrics[query] = (*kept, Sample(at=now, value=pct))
        self._metrics = metrics

    # Main loop -----------------------------------------------------------------------------

    def _mark_series(self) -> None:
        s = self.series
        b = int((self.now - s.start) / s.step)
        if b >= len(s.touched):
            b = len(s.touched) - 1
        s.touched[b] = True
        if self.demand_gpus > s.demand[b]:
            s.demand[b] = self.demand_gpus
        if self.local_used > s.local[b]:
            s.local[b] = self.local_used
        if self.borrowed_capacity > s.borrowed_capacity[b]:
            s.borrowed_capacity[b] = self.borrowed_capacity
        if self.borrowed_used > s.borrowed_used[b]:
            s.borrowed_used[b] = self.borrowed_used
        if self.pending_gpus > s.pending[b]:
            s.pending[b] = self.pending_gpus

    def run(self) -> Outcome:
        trace = self.trace
        submit = trace.submit
        n = len(submit)
        epoch = self.epoch
        heap = self._heap
        controlled = self.controller is not None
        horizon = INF
        tick_progress = 0
        while True:
            t_arr = epoch + submit[self._next_arrival] if self._next_arrival < n else INF
            t_ev = heap[0][0] if heap else INF
            t_pass = self._next_pass() if controlled else INF
            t = min(t_arr, t_ev, t_pass)
            if self._next_arrival >= n and self.running == 0:
                # Nothing runs and nothing will arrive: pods still pending can only start on
                # burst units, and units can only be given back. Give that a bounded time.
                if self.work_end is None:
                    self.work_end = self.now
                    horizon = self.now + self.config.drain_horizon
                if self.actuator is None or (
                    self.sched.pending == self.never_fit_pending and not self.actuator.units
                ):
                    break
                if t > horizon:
                    self.now = horizon
                    break
            elif self.work_end is not None:
                self.work_end = None
                horizon = INF
            if t == INF:
                break
            self.now = t
            self.events += 1
            if t_ev <= t_arr and t_ev <= t_pass:
                _, _, _, kind, obj = heappop(heap)
                if kind == _COMPLETE:
                    self._complete(obj)
                else:
                    obj()
            elif t_arr <= t_pass:
                i = self._next_arrival
                self._next_arrival = i + 1
                self._arrive(i)
                if self.progress is not None:
                    tick_progress += 1
                    if tick_progress >= 4096:
                        tick_progress = 0
                        self.progress(i + 1, n)
            else:
                self._pass()
            if self.checker is not None:
                self.checker(self)
        if self.progress is not None:
            self.progress(n, n)
        return self._outcome()

    def _outcome(self) -> Outcome:
        end = self.now
        work_end = self.work_end if self.work_end is not None else end
        self.providers.cut(end)
        # Pods still running or pending when the run was cut.
        never_started = 0
        for pod in list(self.sched.pending_pods()):
            if self._never_fit[pod.index]:
                continue
            never_started += 1
            assert pod.pending_since is not None
            self.waits[pod.index] = pod.waited + (end - pod.pending_since)
        waits = [
            w for i, w in enumerate(self.waits) if not self._never_fit[i] and not math.isnan(w)
        ]
        for _, _, _, kind, obj in self._heap:
            if kind == _COMPLETE and obj.node is not None:
                g = obj.gpu_equivalent * (end - obj.started)
                if obj.node.unit is None:
                    self.local_gpu_seconds += g
                else:
                    self.borrowed_gpu_seconds += g
        self.series.fill()
        return Outcome(
            policy=self.policy,
            waits=waits,
            jct_sum=self.jct_sum,
            jct_count=self.jct_count,
            never_fit=self.never_fit,
            never_started=never_started,
            evicted=self.evicted,
            local_gpus=self.local_gpus,
            local_gpu_seconds=self.local_gpu_seconds,
            borrowed_gpu_seconds=self.borrowed_gpu_seconds,
            start=self.epoch,
            work_end=work_end,
            end=end,
            units=list(self.providers.records.values()),
            static_gpus=self.static_gpus,
            static_price=self.static_price,
            peak_borrowed=self.peak_borrowed,
            passes=self.passes,
            virtual_passes=self.virtual_passes,
            events=self.events,
            series=self.series,
        )

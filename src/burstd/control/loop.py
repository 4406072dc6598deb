"""One pass of the control loop, shared by the daemon and the simulator.

``run_once(now)`` reads the cluster view, adds the actuator's memory, plans, and acts. Time is
passed in: the daemon passes the wall clock, the simulator its virtual clock, so a policy
tested in the simulator is the policy the daemon runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from burstd import faults
from burstd.actuate.actuator import Actuator, Applied
from burstd.model import Snapshot
from burstd.plan.planner import Plan, plan
from burstd.rules.types import RuleSet


class ClusterView(Protocol):
    """Where pods, nodes and metrics come from: the watched cluster or the simulated one."""

    def snapshot(self, now: float) -> Snapshot:
        """Implementation required. Pods that request GPUs, nodes that offer them, metric
        samples, and whether the view is synced. Must not block."""
        ...


class Controller:
    """Plans and acts, one pass at a time. ``rules`` is called each pass, so a reloaded rules
    file takes effect at the next pass (a file that failed to load keeps the last good one)."""

    def __init__(self, view: ClusterView, rules: Callable[[], RuleSet], actuator: Actuator) -> None:
        self.view = view
        self.rules = rules
        self.actuator = actuator
        self.last_plan: Plan | None = None
        self.last_applied: list[Applied] = []

    def run_once(self, now: float) -> Plan:
        base = self.view.snapshot(now)
        if base.synced:
            self.actuator.observe(base, now)
        ruleset = self.rules()
        result = plan(self.actuator.merged(base), ruleset, now)
        if base.synced and result.actions:
            faults.hit(faults.DECIDED)
        self.last_applied = self.actuator.execute(result, ruleset, now) if base.synced else []
        self.last_plan = result
        return result

"""What the planner decides. Every decision says why, in words a person can check.

The actuator carries decisions out; ``burstd explain``, the logs and the alerts print them.
A decision made under dry-run is still made and explained, and marked so.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    reason: str
    rule: str = ""
    dry_run: bool = False

    @property
    def verb(self) -> str:
        return type(self).__name__.lower()

    def _subject(self) -> str:
        return ""

    def __str__(self) -> str:
        head = f"[{self.rule}] " if self.rule else ""
        tail = " (dry run)" if self.dry_run else ""
        subject = self._subject()
        verb = f"{self.verb} {subject}" if subject else self.verb
        return f"{head}{verb}: {self.reason}{tail}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScaleUp(Decision):
    """Ask ``target`` for ``units`` more units of ``gpus_per_unit`` GPUs, to place ``pods``."""

    target: str
    units: int
    gpus_per_unit: int
    pods: tuple[str, ...] = ()

    def _subject(self) -> str:
        return f"{self.target} +{self.units} unit(s) x {self.gpus_per_unit} GPU"


@dataclass(frozen=True, slots=True, kw_only=True)
class UnitDecision(Decision):
    unit: str

    def _subject(self) -> str:
        return self.unit


@dataclass(frozen=True, slots=True, kw_only=True)
class Cordon(UnitDecision):
    """Stop new pods landing on the unit; the first step of giving it back. ``orphan``: because
    its rule left the rules file (it is taken back into service if the rule returns)."""

    orphan: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Uncordon(UnitDecision):
    """Take a cordoned or draining unit back into service: cheaper than a new one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Drain(UnitDecision):
    """The release is confirmed after the validation delay: let running pods finish."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Evict(UnitDecision):
    """The drain deadline passed in ``evict`` mode: evict these pods (never never-evict ones)."""

    pods: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Release(UnitDecision):
    """The unit is empty: delete it at the provider."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Abandon(UnitDecision):
    """The unit missed its ready deadline: roll it back and put its target in backoff."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NoOp(Decision):
    """Nothing to do, and why (a trigger not firing, a limit binding, a cooldown)."""

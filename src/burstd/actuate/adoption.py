"""Which targets could not list their units when burstd started, and when to ask them again.

At start burstd adopts what every target's provider lists before it plans. A target whose
provider cannot list (a Terraform module whose ``terraform init`` fails, a donor's API that
refuses) must neither hold the other targets up nor be bursted onto: its existing units are
unknown, so a new one could double them. It is asked again after a delay that starts at
``base`` and doubles with each failure up to ``cap``; the daemon reports its first failure
once (a log line naming the target and the error, an alert) and holds its planning back
until a list succeeds. The times are the caller's: this class reads no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

ADOPT_RETRY_MAX_S = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Unlisted:
    """A target whose units are not known yet: ``failures`` lists failed in a row, the last
    with ``error``; asked again at ``retry_at``."""

    failures: int
    error: str
    retry_at: float
    delay: float


class Adoption:
    """The targets still to be adopted, each with its own backoff."""

    def __init__(self, base: float, cap: float = ADOPT_RETRY_MAX_S) -> None:
        self._base = base
        self._cap = max(cap, base)
        self._unlisted: dict[str, Unlisted] = {}

    @property
    def unlisted(self) -> Mapping[str, Unlisted]:
        return self._unlisted

    def failed(self, target: str, error: str, now: float) -> Unlisted:
        """``target`` could not list its units at ``now``; its record, with the next try."""
        old = self._unlisted.get(target)
        failures = old.failures + 1 if old is not None else 1
        delay = min(self._cap, self._base * 2.0 ** min(failures - 1, 30))
        record = Unlisted(failures=failures, error=error, retry_at=now + delay, delay=delay)
        self._unlisted[target] = record
        return record

    def listed(self, target: str) -> Unlisted | None:
        """``target`` listed its units: it is adopted. Its record until then, if it had one."""
        return self._unlisted.pop(target, None)

    def due(self, target: str, now: float) -> bool:
        """Whether ``target`` is still to be adopted and its next try has come."""
        record = self._unlisted.get(target)
        return record is not None and record.retry_at <= now

    def retry_now(self) -> None:
        """Ask every target still to be adopted again at once (its provider was rebuilt from a
        reloaded rules file, which may have fixed it); the backoff goes on from where it was."""
        for name, record in self._unlisted.items():
            self._unlisted[name] = replace(record, retry_at=float("-inf"))

    def next_try(self) -> float | None:
        """When the earliest target still to be adopted is due, or ``None`` if none is."""
        return min((r.retry_at for r in self._unlisted.values()), default=None)

"""Cron expressions with standard crontab weekdays.

APScheduler's ``CronTrigger.from_crontab`` counts weekdays from Monday = 0, so ``1`` would mean
Tuesday and ``7`` is rejected. Users write crontab, where 0 and 7 are Sunday and 1 is Monday;
this module rewrites numeric weekdays into names before APScheduler sees them.
"""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_INDEX = {name: i for i, name in enumerate(_NAMES)}


def _day(token: str) -> int:
    token = token.strip().lower()
    if token.isdigit():
        value = int(token)
        if not 0 <= value <= 7:
            raise ValueError(f"day of week {value} is out of range 0-7")
        return value % 7
    if token[:3] in _INDEX:
        return _INDEX[token[:3]]
    raise ValueError(f"unknown day of week {token!r}")


def weekdays(field: str) -> str:
    """The crontab day-of-week ``field`` as an explicit list of day names."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step {step_text!r} must be at least 1")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            a, b = span.split("-", 1)
            first, last = _day(a), _day(b)
            if b.strip() == "7":
                last = 7  # 5-7 is Friday to Sunday
        else:
            first = last = _day(span)
            if step_text:
                last = 6
        if last < first:
            raise ValueError(f"day range {span!r} runs backwards")
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(_NAMES[d] for d in sorted(days))


@lru_cache(maxsize=128)
def cron_trigger(expr: str, timezone: str = "UTC") -> CronTrigger:
    """A trigger for the five-field crontab ``expr`` in ``timezone``; ValueError if invalid."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"Wrong number of fields; got {len(fields)}, expected 5")
    fields[4] = weekdays(fields[4])
    return CronTrigger.from_crontab(" ".join(fields), timezone=ZoneInfo(timezone))

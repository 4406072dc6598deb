"""Durations as people write them (``30s``, ``1h30m``, ``500ms``) and as burstd prints them.

Rules files, logs and decision reasons all speak in the same short form, so an operator can
copy a number from a reason straight into a rules file. Both directions live here, free of
dependencies, because the loader reads durations and the planner prints them.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from functools import lru_cache

# Largest first: that is both the order a duration must be written in and the order it is
# printed in.
_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}
_UNIT_RANK = {unit: rank for rank, unit in enumerate(_UNIT_MS)}

# "ms" must be tried before "m" and "s", or "500ms" would read as 500 minutes and a stray "s".
_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ms|d|h|m|s)")
_PLAIN = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")

_EXAMPLES = "like 30s, 5m, 1h30m or 500ms"


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a plain number of seconds (``90``, ``1.5``) or number-unit pairs
    from largest to smallest unit (``1d``, ``2h``, ``1h30m``, ``1.5h``, ``500ms``).

    Raises ``ValueError`` whose message says what is wrong, for a person to read. Negative,
    infinite and not-a-number durations are refused: no setting takes one.
    """
    raw = text.strip()
    if not raw:
        raise ValueError(f"invalid duration {_show(text)}: empty; write one {_EXAMPLES}")
    try:
        seconds = _sum_parts(text, raw)
    except ArithmeticError:
        # Only a number with about a million digits overflows Decimal; it is too long anyway.
        seconds = Decimal("Infinity")
    value = float(seconds)
    if math.isinf(value):
        raise ValueError(f"invalid duration {_show(text)}: too long")
    return value


def _sum_parts(text: str, raw: str) -> Decimal:
    if _PLAIN.fullmatch(raw):
        return Decimal(raw)
    total = Decimal(0)
    pos = 0
    last_rank = -1
    for part in _PART.finditer(raw):
        if part.start() != pos:
            break
        number, unit = part.groups()
        rank = _UNIT_RANK[unit]
        if rank <= last_rank:
            raise ValueError(
                f"invalid duration {_show(text)}: write each unit once, largest first, like 1h30m"
            )
        last_rank = rank
        # Decimal keeps "1d1h1m1s1ms" exact, so printing and reading a duration round-trips.
        total += Decimal(number) * _UNIT_MS[unit] / 1000
        pos = part.end()
    if pos != len(raw) or last_rank < 0:
        if raw.startswith("-"):
            raise ValueError(f"invalid duration {_show(text)}: durations cannot be negative")
        raise ValueError(
            f"invalid duration {_show(text)}: write a number of seconds or number-unit pairs "
            f"(d, h, m, s, ms) {_EXAMPLES}"
        )
    return total


def _show(text: str) -> str:
    # The message quotes what was written, but a pasted paragraph should not flood a log line.
    return repr(text if len(text) <= 40 else text[:37] + "...")


@lru_cache(maxsize=4096)
def format_duration(seconds: float) -> str:
    """``seconds`` in the short form ``parse_duration`` reads: 90 → ``1m30s``, 0.5 →
    ``500ms``, 3600 → ``1h``, 0 → ``0s``.

    Rounded to the millisecond; a negative value gets a leading ``-`` (it reads well in a
    reason such as "ready 2m ago", but ``parse_duration`` will not take it back). Infinity and
    not-a-number print as ``inf``, ``-inf`` and ``nan`` rather than raise: this runs inside
    log lines and decision reasons, which must never fail.
    """
    if not math.isfinite(seconds):
        return str(float(seconds))
    sign = "-" if seconds < 0 else ""
    # Through Decimal because a float near the top of its range overflows when multiplied.
    left = round(Decimal(abs(seconds)) * 1000)
    if left == 0:
        return "0s"
    parts = []
    for unit, size in _UNIT_MS.items():
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)

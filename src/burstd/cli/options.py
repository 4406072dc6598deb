"""Option types that refuse what a command cannot run with, as usage errors (exit code 2),
and the reading of options more than one command takes.

click's ``FloatRange`` lets ``nan`` through (every comparison with it is false) and ``inf`` is a
float like any other, so an interval of ``nan`` or ``0`` would make the daemon spin. Each
bounded option says its range in the error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import click

from burstd.rules.loader import RulesError, load_rules
from burstd.rules.types import RuleSet

_F = TypeVar("_F", bound=Callable[..., Any])

# Times a snapshot or ``--at`` may carry, in seconds since the epoch: up to the year 5138, far
# past any real clock, and small enough that adding a duration stays exact to the millisecond.
MAX_TIME = 1e11


class Number(click.ParamType[float, object]):
    """A finite float from ``minimum`` (excluded if ``open_min``) to ``maximum``."""

    name = "number"

    def __init__(
        self, minimum: float, maximum: float, *, open_min: bool = False, unit: str = ""
    ) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.open_min = open_min
        self.unit = unit

    def _range(self) -> str:
        what = f"a number of {self.unit}" if self.unit else "a number"
        if self.open_min:
            return f"{what} above {self.minimum:g} and at most {self.maximum:g}"
        return f"{what} from {self.minimum:g} to {self.maximum:g}"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float) and math.isfinite(value):
            number = value
        else:
            try:
                number = float(str(value))
            except ValueError:
                self.fail(f"expected {self._range()}, got {value!r}", param, ctx)
        too_low = number <= self.minimum if self.open_min else number < self.minimum
        if not math.isfinite(number) or too_low or number > self.maximum:
            self.fail(f"expected {self._range()}, got {value!r}", param, ctx)
        return number


def seconds_option(
    flag: str,
    minimum: float,
    maximum: float,
    *,
    default: float | None = None,
    open_min: bool = False,
    help: str,
) -> Callable[[_F], _F]:
    """A ``click.option`` taking a ``Number`` of seconds, its default shown in ``--help``."""
    return click.option(
        flag,
        type=Number(minimum, maximum, open_min=open_min, unit="seconds"),
        default=default,
        show_default=default is not None,
        help=help,
    )


def load_rules_or_exit(path: str) -> RuleSet:
    """The rules file at ``path``; else every problem in it on stderr and exit code 1."""
    try:
        return load_rules(path)
    except RulesError as e:
        for problem in e.problems:
            click.echo(str(problem), err=True)
        raise SystemExit(1) from None

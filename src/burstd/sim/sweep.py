"""Sweeps: the same simulation over several values of rule parameters.

A sweep is written ``PATH=V1,V2,...``. ``PATH`` names a field of the rules file the way
``burstd validate`` prints it, with one convenience: a rule may be named instead of numbered::

    rules.interactive.triggers[0].pending.for=0s,2m,10m
    rules[1].release.idle_for=5m,15m
    targets.cloud.price_per_gpu_hour=1.5,3.06
    loop.interval=10s,30s

Each value is written into the rules file's YAML (keys that are not there yet are added) and the
file is loaded again with burstd's own loader, so a sweep value is checked exactly like a value
in a file. Several sweeps combine as a cartesian product.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from burstd.rules.loader import RulesError, parse_rules
from burstd.rules.types import RuleSet

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
MAX_VARIANTS = 200


class SweepError(ValueError):
    """A sweep that cannot be applied; the message says which part and why."""


@dataclass(frozen=True, slots=True)
class Sweep:
    path: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Variant:
    """One point of a sweep: its settings (path → value as written) and the rules they give."""

    settings: tuple[tuple[str, str], ...]
    ruleset: RuleSet

    @property
    def label(self) -> str:
        shorts = [_short(p) for p, _ in self.settings]
        if len(set(shorts)) < len(shorts):  # two rules' same field: keep the full paths
            shorts = [p for p, _ in self.settings]
        return ", ".join(f"{s}={v}" for s, (_, v) in zip(shorts, self.settings, strict=True))


def _short(path: str) -> str:
    return path.rsplit(".", 2)[-2] + "." + path.rsplit(".", 1)[-1] if path.count(".") > 1 else path


def parse_sweep(text: str) -> Sweep:
    path, eq, values = text.partition("=")
    path = path.strip()
    items = tuple(v.strip() for v in values.split(",") if v.strip())
    if not eq or not path or not items:
        raise SweepError(
            f"--sweep {text!r}: expected PATH=V1,V2,... like rules[0].release.idle_for=5m,15m"
        )
    _segments(path)
    return Sweep(path=path, values=items)


def _segments(path: str) -> list[str | int]:
    out: list[str | int] = []
    pos = 0
    while pos < len(path):
        if path[pos] == "." and out:
            pos += 1
        m = _SEGMENT.match(path, pos)
        if m is None:
            raise SweepError(f"--sweep path {path!r}: cannot read it at column {pos + 1}")
        out.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    return out


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.width = 4096
    return y


def _scalar(text: str) -> Any:
    try:
        return YAML(typ="safe").load(text)
    except Exception:
        return text


def apply(text: str, source: str, settings: Sequence[tuple[str, str]]) -> RuleSet:
    """The rules of ``text`` with each ``(path, value)`` of ``settings`` written in."""
    doc = _yaml().load(text)
    for path, value in settings:
        _set(doc, path, _scalar(value))
    out = io.StringIO()
    _yaml().dump(doc, out)
    label = ", ".join(f"{p}={v}" for p, v in settings)
    try:
        return parse_rules(out.getvalue(), f"{source} [{label}]")
    except RulesError as e:
        first = e.problems[0]
        raise SweepError(f"--sweep {label}: {first.path}: {first.message}") from None


def _set(doc: Any, path: str, value: Any) -> None:
    segs = _segments(path)
    node = doc
    for i, seg in enumerate(segs):
        last = i == len(segs) - 1
        where = path if last else f"{path} (at {seg!r})"
        if isinstance(seg, int):
            if not isinstance(node, list) or seg >= len(node):
                raise SweepError(f"--sweep path {where}: no item {seg} here")
            if last:
                node[seg] = value
            else:
                node = node[seg]
            continue
        if isinstance(node, list):
            # A rule (or any named list item) by its name.
            found = [item for item in node if isinstance(item, dict) and item.get("name") == seg]
            if not found:
                names = [str(item.get("name")) for item in node if isinstance(item, dict)]
                raise SweepError(
                    f"--sweep path {where}: no item named {seg!r} (names: {', '.join(names)})"
                )
            if last:
                raise SweepError(f"--sweep path {path}: names an item, not a field")
            node = found[0]
            continue
        if not isinstance(node, dict):
            raise SweepError(f"--sweep path {where}: {seg!r} is not inside a mapping")
        if last:
            node[seg] = value
        else:
            if seg not in node or node[seg] is None:
                node[seg] = CommentedMap()
            node = node[seg]


def variants(text: str, source: str, sweeps: Sequence[Sweep]) -> Iterator[Variant]:
    """Every combination of the sweeps' values, as rules."""
    combos = list(itertools.product(*[[(s.path, v) for v in s.values] for s in sweeps]))
    if len(combos) > MAX_VARIANTS:
        raise SweepError(f"--sweep: {len(combos)} combinations, at most {MAX_VARIANTS}")
    for combo in combos:
        yield Variant(settings=tuple(combo), ruleset=apply(text, source, combo))


def pareto(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indexes of the points no other point beats on both cost and wait (lower is better),
    ordered by cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front: list[int] = []
    best = float("inf")
    for i in order:
        if points[i][1] < best:
            front.append(i)
            best = points[i][1]
    return front

"""Snapshots to and from JSON, so a moment of a cluster can be saved and explained later.

The JSON mirrors the dataclasses field by field; fields left out take their defaults. Errors name
the field path (``pods[3].gpu.gpus: expected an integer, got 'two'``).

A snapshot is checked before anything plans on it, as a hand-edited file may say what no
cluster can: numbers must be finite and in range (no negative GPUs, no time of NaN or 1e308),
and the whole must be consistent (pods, nodes and units each named once, one unit a node).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from collections.abc import Collection, Mapping
from functools import cache
from typing import Any, Final, TypeVar

from burstd.model.snapshot import Snapshot

T = TypeVar("T")

MAX_TIME: Final = 1e11
"""The largest time (and any other float) a snapshot may hold: seconds since the epoch up to the
year 5138, past any real clock and far from where float arithmetic loses whole seconds."""
MAX_GPUS: Final = 1024
"""The most GPUs (or MIG slices of one profile) one pod, node or unit may have: the planner
packs GPU by GPU, and no machine has more."""
MAX_INT: Final = 2**53
# Integer fields that may be negative, with their range (a pod priority is a Kubernetes int32).
_SIGNED: Final = {"priority": (-(2**31), 2**31 - 1)}
_GPU_COUNTS: Final = frozenset(
    {"gpus", "gpu_capacity", "gpu_allocatable", "mig", "mig_allocatable"}
)
# Float fields that may be negative (a metric sample can be anything finite).
_SIGNED_FLOATS: Final = frozenset({"value"})


class SnapshotError(ValueError):
    """A snapshot document that does not fit the model; the message names the field."""


def snapshot_from_dict(data: object) -> tuple[Snapshot, float | None]:
    """The snapshot in ``data`` and its ``now`` field (when the snapshot was taken), if any."""
    if not isinstance(data, dict):
        raise SnapshotError("(root): expected an object")
    body = dict(data)
    now = body.pop("now", None)
    if now is not None:
        now = _convert(float, now, "now", "now")
    snapshot = _build(Snapshot, body, "")
    _check(snapshot)
    return snapshot, now


def check_targets(snapshot: Snapshot, targets: Collection[str]) -> None:
    """Raise ``SnapshotError`` if a unit belongs to none of ``targets`` (the rules' targets)."""
    for i, unit in enumerate(snapshot.units):
        if unit.target not in targets:
            known = ", ".join(sorted(targets)) or "none"
            raise SnapshotError(
                f"units[{i}].target: unknown target {unit.target!r} (the rules define: {known})"
            )


def _check(snapshot: Snapshot) -> None:
    """Raise ``SnapshotError`` where the snapshot contradicts itself."""
    _once("pods", "", "pod", [pod.key for pod in snapshot.pods])
    _once("nodes", ".name", "node", [node.name for node in snapshot.nodes])
    _once("units", ".id", "unit id", [unit.id for unit in snapshot.units])
    on_node: dict[str, int] = {}
    for i, unit in enumerate(snapshot.units):
        if unit.node is not None:
            first = on_node.setdefault(unit.node, i)
            if first != i:
                raise SnapshotError(
                    f"units[{i}].node: node {unit.node!r} already belongs to unit "
                    f"{snapshot.units[first].id!r} (units[{first}])"
                )


def _once(field: str, suffix: str, what: str, names: list[str]) -> None:
    """Raise ``SnapshotError`` at the second of two equal ``names`` in list ``field``."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        first = seen.setdefault(name, i)
        if first != i:
            raise SnapshotError(
                f"{field}[{i}]{suffix}: duplicate {what} {name!r} (first at {field}[{first}])"
            )


def snapshot_to_dict(snapshot: Snapshot, now: float | None = None) -> dict[str, Any]:
    out = _dump(snapshot)
    assert isinstance(out, dict)
    if now is not None:
        out = {"now": now, **out}
    return out


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(cls: type[T], data: object, path: str) -> T:
    if not isinstance(data, dict):
        raise SnapshotError(f"{path or '(root)'}: expected an object, got {_show(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = _hints(cls)  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in fields:
            raise SnapshotError(f"{where}: unknown field (known: {', '.join(sorted(fields))})")
        kwargs[key] = _convert(hints[key], value, where, str(key))
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise SnapshotError(
            f"{path or '(root)'}: missing required field(s) {', '.join(map(repr, missing))}"
        )
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise SnapshotError(f"{path or '(root)'}: {e}") from None


def _convert(tp: Any, value: object, path: str, name: str = "") -> Any:
    """``value`` as type ``tp``; ``name`` is the dataclass field it is (part of), which sets
    the range of a number."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, path, name)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _build(tp, value, path)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except (ValueError, TypeError):
            names = ", ".join(str(m.value) for m in tp)
            raise SnapshotError(f"{path}: expected one of {names}, got {_show(value)}") from None
    if tp is bool:
        if not isinstance(value, bool):
            raise SnapshotError(f"{path}: expected true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SnapshotError(f"{path}: expected an integer, got {_show(value)}")
        low, high = _int_range(name)
        if not low <= value <= high:
            raise SnapshotError(
                f"{path}: expected an integer from {low} to {high}, got {_show(value)}"
            )
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SnapshotError(f"{path}: expected a number, got {_show(value)}")
        least = -MAX_TIME if name in _SIGNED_FLOATS else 0.0
        real = float(value) if -MAX_TIME <= value <= MAX_TIME else math.nan
        if not least <= real <= MAX_TIME:
            raise SnapshotError(
                f"{path}: expected a finite number from {least:g} to {MAX_TIME:g}, "
                f"got {_show(value)}"
            )
        return real
    if tp is str:
        if not isinstance(value, str):
            raise SnapshotError(f"{path}: expected a string, got {_show(value)}")
        return value
    if origin in (tuple, frozenset, list):
        if not isinstance(value, list):
            raise SnapshotError(f"{path}: expected a list, got {_show(value)}")
        item = args[0]
        if origin is tuple and len(args) == 2 and args[1] is not Ellipsis:
            # A pair such as (profile, count), written as a two-element list.
            if len(value) != len(args):
                raise SnapshotError(f"{path}: expected a list of {len(args)}, got {len(value)}")
            return tuple(
                _convert(a, v, f"{path}[{i}]", name)
                for i, (a, v) in enumerate(zip(args, value, strict=True))
            )
        items = [_convert(item, v, f"{path}[{i}]", name) for i, v in enumerate(value)]
        return frozenset(items) if origin is frozenset else tuple(items)
    if origin in (Mapping, dict) or tp is Mapping:
        if not isinstance(value, dict):
            raise SnapshotError(f"{path}: expected an object, got {_show(value)}")
        return {str(k): _convert(args[1], v, f"{path}.{k}", name) for k, v in value.items()}
    raise SnapshotError(f"{path}: cannot read a value of type {tp}")  # pragma: no cover


def _int_range(name: str) -> tuple[int, int]:
    if name in _SIGNED:
        return _SIGNED[name]
    return (0, MAX_GPUS) if name in _GPU_COUNTS else (0, MAX_INT)


def _show(value: object) -> str:
    """A value as an error quotes it, short: a 4,000-digit number is not printed whole."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**15:
        return "a very large integer"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _dump(value: object) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            default = f.default
            if f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            if default is not dataclasses.MISSING and v == default:
                continue
            out[f.name] = _dump(v)
        return out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, frozenset):
        return sorted(_dump(v) for v in value)
    if isinstance(value, tuple | list):
        return [_dump(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _dump(v) for k, v in value.items()}
    return value

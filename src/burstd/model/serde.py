"""Snapshots to and from JSON, so a moment of a cluster can be saved and explained later.

The JSON mirrors the dataclasses field by field; fields left out take their defaults. Errors name
the field path (``pods[3].gpu.gpus: expected an integer, got 'two'``).
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar

from burstd.model.snapshot import Snapshot

T = TypeVar("T")


class SnapshotError(ValueError):
    """A snapshot document that does not fit the model; the message names the field."""


def snapshot_from_dict(data: object) -> tuple[Snapshot, float | None]:
    """The snapshot in ``data`` and its ``now`` field (when the snapshot was taken), if any."""
    if not isinstance(data, dict):
        raise SnapshotError("(root): expected an object")
    body = dict(data)
    now = body.pop("now", None)
    if now is not None and (isinstance(now, bool) or not isinstance(now, int | float)):
        raise SnapshotError(f"now: expected a number, got {now!r}")
    return _build(Snapshot, body, ""), (float(now) if now is not None else None)


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
        raise SnapshotError(f"{path or '(root)'}: expected an object, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = _hints(cls)  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in fields:
            raise SnapshotError(f"{where}: unknown field (known: {', '.join(sorted(fields))})")
        kwargs[key] = _convert(hints[key], value, where)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise SnapshotError(f"{path or '(root)'}: {e}") from None


def _convert(tp: Any, value: object, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, path)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _build(tp, value, path)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            names = ", ".join(str(m.value) for m in tp)
            raise SnapshotError(f"{path}: expected one of {names}, got {value!r}") from None
    if tp is bool:
        if not isinstance(value, bool):
            raise SnapshotError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SnapshotError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SnapshotError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise SnapshotError(f"{path}: expected a string, got {value!r}")
        return value
    if origin in (tuple, frozenset, list):
        if not isinstance(value, list):
            raise SnapshotError(f"{path}: expected a list, got {value!r}")
        item = args[0]
        if origin is tuple and len(args) == 2 and args[1] is not Ellipsis:
            # A pair such as (profile, count), written as a two-element list.
            return tuple(
                _convert(a, v, f"{path}[{i}]")
                for i, (a, v) in enumerate(zip(args, value, strict=False))
            )
        items = [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return frozenset(items) if origin is frozenset else tuple(items)
    if origin in (Mapping, dict) or tp is Mapping:
        if not isinstance(value, dict):
            raise SnapshotError(f"{path}: expected an object, got {value!r}")
        return {str(k): _convert(args[1], v, f"{path}.{k}") for k, v in value.items()}
    raise SnapshotError(f"{path}: cannot read a value of type {tp}")  # pragma: no cover


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

"""burstd's durable memory: what the planner reads besides the cluster, kept across restarts.

The cluster tells a restarted burstd which units exist (adoption), but not when a rule last
scaled, which target is in backoff, how long a unit has been idle or when its drain began.
Without those, a crash loop could scale up on every restart and a unit idle for an hour would
look fresh. The actuator exports them as a ``Memory``; the daemon writes it on change to a
``Store`` (a ConfigMap in the cluster, or a file under the state directory) and reads it back
before its first pass.

The stored form is versioned JSON (``{"kind": "burstd-memory", "version": 1, ...}``), bounded in
size. A reader takes only versions it knows; anything else — corrupt text, a future version, an
unreadable store — is reported and replaced by the cautious default: every rule's cooldowns in
force from now, every unit's timers started afresh. Missing data never releases capacity early.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from burstd.model import RuleHistory, TargetStatus, UnitPhase

KIND: Final = "burstd-memory"
VERSION: Final = 1
MAX_UNITS: Final = 5000
MAX_RULES: Final = 1000
MAX_ERROR_CHARS: Final = 300
MAX_BYTES: Final = 900 * 1024
"""A ConfigMap holds at most 1 MiB; stay clear of it."""


class MemoryUnreadable(ValueError):
    """Stored memory that cannot be used; the message says why (never its secrets: it holds
    none)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UnitMemory:
    """A unit's timers: enough to carry on its lifecycle where it was."""

    phase: UnitPhase
    phase_since: float
    requested_at: float
    ready_at: float | None = None
    last_busy_at: float | None = None
    orphaned: bool = False
    """Being given back because its rule left the rules file (so its rule's return takes it
    back, and a later drain's ``max_wait`` starts afresh)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Memory:
    rules: Mapping[str, RuleHistory] = field(default_factory=dict)
    targets: Mapping[str, TargetStatus] = field(default_factory=dict)
    units: Mapping[str, UnitMemory] = field(default_factory=dict)
    written_at: float = 0.0


def encode(memory: Memory) -> str:
    """The stored form: compact, sorted (equal memories encode equally, so unchanged memory is
    not rewritten), bounded."""
    units = dict(sorted(memory.units.items())[:MAX_UNITS])
    rules = dict(sorted(memory.rules.items())[:MAX_RULES])
    doc: dict[str, Any] = {
        "kind": KIND,
        "version": VERSION,
        "rules": {
            name: {
                "last_scale_up_at": h.last_scale_up_at,
                "last_scale_down_at": h.last_scale_down_at,
            }
            for name, h in rules.items()
        },
        "targets": {
            name: {
                "consecutive_failures": s.consecutive_failures,
                "backoff_until": s.backoff_until,
                "last_error": s.last_error[:MAX_ERROR_CHARS],
            }
            for name, s in sorted(memory.targets.items())[:MAX_RULES]
        },
        "units": {
            uid: {
                "phase": str(u.phase),
                "phase_since": u.phase_since,
                "requested_at": u.requested_at,
                "ready_at": u.ready_at,
                "last_busy_at": u.last_busy_at,
                "orphaned": u.orphaned,
            }
            for uid, u in units.items()
        },
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True, allow_nan=False)


def decode(text: str) -> Memory:
    """Memory from its stored form; ``MemoryUnreadable`` says what is wrong."""
    if len(text) > MAX_BYTES:
        raise MemoryUnreadable(f"{len(text)} bytes, more than the {MAX_BYTES} a memory may hold")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise MemoryUnreadable(f"not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise MemoryUnreadable(f"not a {KIND} document")
    version = doc.get("version")
    if version != VERSION:
        raise MemoryUnreadable(f"version {version!r}; this burstd reads version {VERSION}")
    return Memory(
        rules={
            str(k): RuleHistory(
                last_scale_up_at=_time(v, "last_scale_up_at", f"rules.{k}", optional=True),
                last_scale_down_at=_time(v, "last_scale_down_at", f"rules.{k}", optional=True),
            )
            for k, v in _object(doc, "rules").items()
        },
        targets={
            str(k): TargetStatus(
                consecutive_failures=_count(v, "consecutive_failures", f"targets.{k}"),
                backoff_until=_time(v, "backoff_until", f"targets.{k}") or 0.0,
                last_error=str(_field(v, "last_error", f"targets.{k}", ""))[:MAX_ERROR_CHARS],
            )
            for k, v in _object(doc, "targets").items()
        },
        units={str(k): _unit(v, f"units.{k}") for k, v in _object(doc, "units").items()},
    )


def _object(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise MemoryUnreadable(f"{key}: expected an object")
    return value


def _field(obj: Any, key: str, where: str, default: Any = None) -> Any:
    if not isinstance(obj, dict):
        raise MemoryUnreadable(f"{where}: expected an object")
    return obj.get(key, default)


def _time(obj: Any, key: str, where: str, *, optional: bool = False) -> float | None:
    value = _field(obj, key, where)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MemoryUnreadable(f"{where}.{key}: expected a time, got {value!r}")
    return float(value)


def _count(obj: Any, key: str, where: str) -> int:
    value = _field(obj, key, where, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MemoryUnreadable(f"{where}.{key}: expected a count, got {value!r}")
    return value


def _unit(obj: Any, where: str) -> UnitMemory:
    phase = _field(obj, "phase", where)
    try:
        parsed = UnitPhase(phase)
    except ValueError:
        raise MemoryUnreadable(f"{where}.phase: unknown phase {phase!r}") from None
    return UnitMemory(
        phase=parsed,
        phase_since=_time(obj, "phase_since", where) or 0.0,
        requested_at=_time(obj, "requested_at", where) or 0.0,
        ready_at=_time(obj, "ready_at", where, optional=True),
        last_busy_at=_time(obj, "last_busy_at", where, optional=True),
        orphaned=_flag(obj, "orphaned", where),
    )


def _flag(obj: Any, key: str, where: str) -> bool:
    value = _field(obj, key, where, False)
    if not isinstance(value, bool):
        raise MemoryUnreadable(f"{where}.{key}: expected true or false, got {value!r}")
    return value


class Store(Protocol):
    """Where memory is kept. ``read`` returns the stored text or ``None`` when nothing was ever
    stored; both raise ``OSError`` (or the store's own error) when the store cannot be
    reached, and the caller decides what that means."""

    async def read(self) -> str | None: ...

    async def write(self, text: str) -> None:
        """Replace the stored memory. Implementations use optimistic concurrency where the
        store has it (a ConfigMap's ``resourceVersion``)."""
        ...


class FileStore:
    """Memory in a file (for a daemon under systemd: ``StateDirectory=``), replaced atomically:
    written to a temporary file in the same folder, flushed to disk, renamed over the old one.
    A crash leaves the old memory or the new, never half of one."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __str__(self) -> str:
        return f"file {self.path}"

    async def read(self) -> str | None:
        try:
            with self.path.open("rb") as f:
                data = f.read(MAX_BYTES + 1)
        except FileNotFoundError:
            return None
        try:
            return data.decode()
        except UnicodeDecodeError:
            raise MemoryUnreadable("not UTF-8 text") from None

    async def write(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".memory-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


class MemoryStore:
    """Memory kept in RAM only (``--memory none``, tests)."""

    def __init__(self, text: str | None = None) -> None:
        self.text = text
        self.writes = 0

    def __str__(self) -> str:
        return "memory (not durable)"

    async def read(self) -> str | None:
        return self.text

    async def write(self, text: str) -> None:
        self.text = text
        self.writes += 1

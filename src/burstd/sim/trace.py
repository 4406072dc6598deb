"""Workload traces: what pods arrive when, what GPUs they ask for and how long they run.

A ``Trace`` is columnar (one list per field) because a synthetic trace has a million pods and a
Python object per pod would cost more memory than the simulation itself. Pods are ordered by
submit time. Three sources produce one:

* the openb trace (Alibaba GPU cluster trace v2023), bundled with burstd and the default;
* a generic CSV or JSON Lines file in burstd's own format (documented in docs/simulator.md);
* the synthetic generator in ``synthetic.py``.

Bad input never produces a traceback: a ``TraceError`` names the file, line and column
(``trace.csv:17:5: gpu_milli: expected an integer, got 'x'``), or, when bad rows may be
skipped, the trace counts what it skipped.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, Any

from burstd.model import FULL_GPU_MILLI, GpuRequest

OPENB_COLUMNS = (
    "name",
    "cpu_milli",
    "memory_mib",
    "num_gpu",
    "gpu_milli",
    "gpu_spec",
    "qos",
    "pod_phase",
    "creation_time",
    "deletion_time",
    "scheduled_time",
)
GENERIC_COLUMNS = (
    "submit",
    "duration",
    "gpus",
    "share",
    "models",
    "namespace",
    "labels",
    "priority",
    "priority_class",
    "qos",
    "name",
)
BUNDLED_OPENB = "openb_pod_list_default.csv.gz"
# How an openb pod list becomes pods: burstd's own reading, or the one of Starburst's reference
# run (every GPU pod, run time from creation; see ``read_openb``).
OPENB_CONVERSIONS = ("burstd", "starburst")
# Messages about skipped rows are kept for the first few only: a broken file has thousands.
_KEEP_MESSAGES = 20


class TraceError(ValueError):
    """A trace that cannot be read; the message says where (file:line:column) and why."""


@dataclass(frozen=True, slots=True)
class Profile:
    """What pods share besides their size and timing: interned, so a million pods need a
    handful of these."""

    namespace: str = "default"
    labels: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0
    priority_class: str = ""
    qos: str = ""
    models: frozenset[str] = frozenset()

    def key(self) -> tuple[object, ...]:
        return (
            self.namespace,
            tuple(sorted(self.labels.items())),
            self.priority,
            self.priority_class,
            self.qos,
            self.models,
        )


@dataclass(slots=True)
class Trace:
    """Pods in submit order, one list per field. ``names`` may be empty: pods are then named
    ``<name_prefix><index>``. ``meta`` says where the trace came from and what was skipped."""

    source: str
    submit: list[float] = field(default_factory=list)
    duration: list[float] = field(default_factory=list)
    gpus: list[int] = field(default_factory=list)
    milli: list[int] = field(default_factory=list)
    profile: list[int] = field(default_factory=list)
    profiles: list[Profile] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    name_prefix: str = "pod-"
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.submit)

    def name(self, i: int) -> str:
        return self.names[i] if self.names else f"{self.name_prefix}{i}"

    def request(self, i: int) -> GpuRequest:
        return GpuRequest(
            gpus=self.gpus[i], milli=self.milli[i], models=self.profiles[self.profile[i]].models
        )

    def gpu_equivalent(self, i: int) -> float:
        return self.gpus[i] + self.milli[i] / FULL_GPU_MILLI

    def whole_gpus(self) -> Trace:
        """A copy in which every share of a GPU asks for one whole GPU (``--whole-gpus``)."""
        return Trace(
            source=self.source,
            submit=list(self.submit),
            duration=list(self.duration),
            gpus=[g if not m else 1 for g, m in zip(self.gpus, self.milli, strict=True)],
            milli=[0] * len(self.milli),
            profile=list(self.profile),
            profiles=list(self.profiles),
            names=list(self.names),
            name_prefix=self.name_prefix,
            meta={**self.meta, "whole_gpus": sum(1 for m in self.milli if m)},
        )

    def sort(self) -> None:
        """Order pods by submit time, keeping file order among equal times."""
        order = sorted(range(len(self.submit)), key=self.submit.__getitem__)
        if all(a < b for a, b in itertools.pairwise(order)):
            return
        for name in ("submit", "duration", "gpus", "milli", "profile"):
            column = getattr(self, name)
            setattr(self, name, [column[i] for i in order])
        if self.names:
            self.names = [self.names[i] for i in order]


class _Builder:
    """Appends pods to a trace, interning profiles, and keeps the skip counts."""

    def __init__(self, source: str, skip_bad_rows: bool) -> None:
        self.trace = Trace(source=source)
        self.skip_bad_rows = skip_bad_rows
        self._profiles: dict[tuple[object, ...], int] = {}
        self.skipped: dict[str, int] = {}
        self.bad_rows = 0
        self.messages: list[str] = []

    def add(
        self, name: str, submit: float, duration: float, gpus: int, milli: int, profile: Profile
    ) -> None:
        key = profile.key()
        index = self._profiles.get(key)
        if index is None:
            index = self._profiles[key] = len(self.trace.profiles)
            self.trace.profiles.append(profile)
        t = self.trace
        t.submit.append(submit)
        t.duration.append(duration)
        t.gpus.append(gpus)
        t.milli.append(milli)
        t.profile.append(index)
        t.names.append(name)

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1

    def bad(self, error: TraceError) -> None:
        if not self.skip_bad_rows:
            raise error
        self.bad_rows += 1
        if len(self.messages) < _KEEP_MESSAGES:
            self.messages.append(str(error))

    def finish(self, fmt: str) -> Trace:
        t = self.trace
        t.sort()
        t.meta.update(
            {
                "trace": t.source,
                "format": fmt,
                "pods": len(t),
                "skipped": dict(sorted(self.skipped.items())),
                "bad_rows_skipped": self.bad_rows,
            }
        )
        if self.messages:
            t.meta["bad_row_examples"] = list(self.messages)
        return t


# Opening files ---------------------------------------------------------------------------------


def _open_text(path: Path) -> IO[str]:
    try:
        if path.suffix == ".gz":
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
        return path.open(encoding="utf-8", newline="")
    except OSError as e:
        raise TraceError(f"{path}: cannot read: {e.strerror or e}") from None


def bundled_openb_text() -> IO[str]:
    """The bundled openb pod list, decompressed on the fly."""
    ref = resources.files("burstd") / "data" / "traces" / "openb" / BUNDLED_OPENB
    return io.StringIO(gzip.decompress(ref.read_bytes()).decode("utf-8"), newline="")


def load_trace(
    path: str | Path | None = None, *, skip_bad_rows: bool = False, conversion: str = "burstd"
) -> Trace:
    """The trace in ``path`` (openb CSV, generic CSV or JSON Lines, optionally gzipped), or the
    bundled openb trace when ``path`` is None or ``"openb"``. ``conversion`` says how an openb
    pod list is read (``OPENB_CONVERSIONS``, see ``read_openb``); other formats ignore it."""
    if path is None or str(path) == "openb":
        with bundled_openb_text() as f:
            trace = read_openb(
                f, "openb (bundled)", skip_bad_rows=skip_bad_rows, conversion=conversion
            )
        trace.meta["trace"] = "openb_pod_list_default.csv (bundled)"
        return trace
    p = Path(path)
    if not p.exists():
        raise TraceError(f"{p}: no such file")
    if p.is_dir():
        raise TraceError(f"{p}: is a directory, not a trace file")
    stem = p.name.removesuffix(".gz")
    try:
        with _open_text(p) as f:
            if stem.endswith((".jsonl", ".ndjson", ".json")):
                return read_jsonl(f, str(p), skip_bad_rows=skip_bad_rows)
            head = f.readline()
            f.seek(0)
            columns = [c.strip() for c in head.strip().split(",")]
            if "num_gpu" in columns:
                return read_openb(f, str(p), skip_bad_rows=skip_bad_rows, conversion=conversion)
            return read_generic_csv(f, str(p), skip_bad_rows=skip_bad_rows)
    except UnicodeDecodeError as e:
        raise TraceError(f"{p}: not valid UTF-8 text ({e.reason})") from None
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise TraceError(f"{p}: cannot read: {e}") from None


# Field parsing ---------------------------------------------------------------------------------


def _where(source: str, line: int, column: int, name: str) -> str:
    return f"{source}:{line}:{column}: {name}"


def _int(text: str, where: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = text.strip()
    try:
        value = int(raw)
    except ValueError:
        # openb writes some integers as floats ("1000.0"); accept those that are whole.
        try:
            f = float(raw)
        except ValueError:
            raise TraceError(f"{where}: expected an integer, got {text!r}") from None
        if not f.is_integer():
            raise TraceError(f"{where}: expected an integer, got {text!r}") from None
        value = int(f)
    if value < minimum or (maximum is not None and value > maximum):
        top = f"..{maximum}" if maximum is not None else " or more"
        raise TraceError(f"{where}: expected {minimum}{top}, got {value}")
    return value


def _seconds(text: str, where: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise TraceError(f"{where}: expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise TraceError(f"{where}: expected a number of seconds ≥ 0, got {text!r}")
    return value


def _models(text: str) -> frozenset[str]:
    return frozenset(m.strip() for m in text.split("|") if m.strip())


class _Cells:
    """One CSV row's cells by column name, each with where it is (file:line:column: name)."""

    __slots__ = ("cols", "line", "row", "source")

    def __init__(self, source: str, line: int, row: list[str], cols: dict[str, int]) -> None:
        self.source, self.line, self.row, self.cols = source, line, row, cols

    def __call__(self, name: str) -> tuple[str, str]:
        i = self.cols.get(name)
        if i is None:
            return "", name
        return self.row[i], _where(self.source, self.line, i + 1, name)

    def int_or_zero(self, name: str, maximum: int | None = None, minimum: int = 0) -> int:
        text, where = self(name)
        if not text.strip():
            return 0
        return _int(text, where, minimum=minimum, maximum=maximum)


def _header(reader: Iterator[list[str]], source: str, required: Iterable[str]) -> dict[str, int]:
    try:
        header = next(reader)
    except StopIteration:
        raise TraceError(f"{source}:1:1: empty file, expected a header line") from None
    columns = {name.strip(): i for i, name in enumerate(header)}
    for name in required:
        if name not in columns:
            raise TraceError(
                f"{source}:1:1: missing column {name!r} (columns: {', '.join(columns) or 'none'})"
            )
    return columns


# openb ------------------------------------------------------------------------------------------


def read_openb(
    f: IO[str], source: str, *, skip_bad_rows: bool = False, conversion: str = "burstd"
) -> Trace:
    """Read an openb pod list.

    ``conversion="burstd"``: a pod's arrival is its ``creation_time`` and its run time
    ``deletion_time - scheduled_time`` (the trace's own scheduling delay is what the simulation
    replaces). Skipped and counted in ``meta["skipped"]``: pods with no GPU (``cpu_only``) and
    pods the original cluster never scheduled (no ``scheduled_time``: ``never_scheduled``).

    ``conversion="starburst"``: as Starburst's reference run read it: every GPU pod, including
    never-scheduled ones, runs ``deletion_time - creation_time`` from its ``creation_time``.
    """
    if conversion not in OPENB_CONVERSIONS:
        raise ValueError(f"unknown openb conversion {conversion!r}")
    peer = conversion == "starburst"
    b = _Builder(source, skip_bad_rows)
    reader = csv.reader(f)
    cols = _header(
        reader, source, ("name", "num_gpu", "gpu_milli", "creation_time", "deletion_time")
    )
    n_columns = len(cols)
    profiles: dict[tuple[str, str], Profile] = {}
    for row in reader:
        line = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        try:
            if len(row) != n_columns:
                raise TraceError(f"{source}:{line}:1: expected {n_columns} fields, got {len(row)}")
            cell = _Cells(source, line, row, cols)
            num_gpu = _int(*cell("num_gpu"), maximum=64)
            gpu_milli = _int(*cell("gpu_milli"), maximum=FULL_GPU_MILLI)
            created = _seconds(*cell("creation_time"))
            scheduled_text, scheduled_at = cell("scheduled_time")
            deleted_text, deleted_at = cell("deletion_time")
            if num_gpu == 0:
                b.skip("cpu_only")
                continue
            if not scheduled_text.strip() and not peer:
                b.skip("never_scheduled")
                continue
            if not deleted_text.strip():
                b.skip("never_deleted")
                continue
            if peer:
                scheduled, scheduled_name = created, "creation_time"
            else:
                scheduled, scheduled_name = _seconds(scheduled_text, scheduled_at), "scheduled_time"
            deleted = _seconds(deleted_text, deleted_at)
            if deleted < scheduled:
                raise TraceError(
                    f"{deleted_at}: {deleted:g} is before {scheduled_name} {scheduled:g}"
                )
            if num_gpu == 1 and 0 < gpu_milli < FULL_GPU_MILLI:
                gpus, milli = 0, gpu_milli
            elif gpu_milli == 0:
                raise TraceError(f"{cell('gpu_milli')[1]}: 0 for a pod with num_gpu={num_gpu}")
            else:
                gpus, milli = num_gpu, 0
            spec = cell("gpu_spec")[0].strip()
            qos = cell("qos")[0].strip()
            profile = profiles.get((spec, qos))
            if profile is None:
                profile = profiles[(spec, qos)] = Profile(
                    namespace="openb", qos=qos, models=_models(spec if spec != "nan" else "")
                )
            name = cell("name")[0].strip() or f"row-{line}"
            b.add(name, created, deleted - scheduled, gpus, milli, profile)
        except TraceError as e:
            b.bad(e)
    trace = b.finish("openb")
    trace.meta["conversion"] = conversion
    return trace


# Generic CSV and JSON Lines --------------------------------------------------------------------


def _labels_text(text: str, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise TraceError(f"{where}: expected key=value pairs separated by ';', got {text!r}")
        out[key.strip()] = value.strip()
    return out


class _Generic:
    """Turns one generic record (CSV cells or JSON values) into a pod; shared by both formats."""

    def __init__(self, b: _Builder) -> None:
        self.b = b
        self.profiles: dict[tuple[object, ...], Profile] = {}

    def add(
        self,
        *,
        line: int,
        submit: float,
        duration: float,
        gpus: int,
        share: int,
        share_at: str,
        models: frozenset[str],
        namespace: str,
        labels: dict[str, str],
        priority: int,
        priority_class: str,
        qos: str,
        name: str,
    ) -> None:
        if gpus and share:
            raise TraceError(f"{share_at}: a pod asks for whole GPUs or a share of one, not both")
        if not gpus and not share:
            self.b.skip("cpu_only")
            return
        profile = Profile(
            namespace=namespace or "default",
            labels=labels,
            priority=priority,
            priority_class=priority_class,
            qos=qos,
            models=models,
        )
        profile = self.profiles.setdefault(profile.key(), profile)
        self.b.add(name or f"line-{line}", submit, duration, gpus, share, profile)


def read_generic_csv(f: IO[str], source: str, *, skip_bad_rows: bool = False) -> Trace:
    """Read burstd's generic CSV trace format (see docs/simulator.md)."""
    b = _Builder(source, skip_bad_rows)
    g = _Generic(b)
    reader = csv.reader(f)
    cols = _header(reader, source, ("submit", "duration"))
    if "gpus" not in cols and "share" not in cols:
        raise TraceError(f"{source}:1:1: needs a 'gpus' or a 'share' column")
    unknown = [c for c in cols if c not in GENERIC_COLUMNS]
    if unknown:
        raise TraceError(
            f"{source}:1:{cols[unknown[0]] + 1}: unknown column {unknown[0]!r} "
            f"(known: {', '.join(GENERIC_COLUMNS)})"
        )
    n_columns = len(cols)
    for row in reader:
        line = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        try:
            if len(row) != n_columns:
                raise TraceError(f"{source}:{line}:1: expected {n_columns} fields, got {len(row)}")
            cell = _Cells(source, line, row, cols)
            int_or = cell.int_or_zero

            g.add(
                line=line,
                submit=_seconds(*cell("submit")),
                duration=_seconds(*cell("duration")),
                gpus=int_or("gpus", maximum=64),
                share=int_or("share", maximum=FULL_GPU_MILLI - 1),
                share_at=cell("share")[1],
                models=_models(cell("models")[0]),
                namespace=cell("namespace")[0].strip(),
                labels=_labels_text(*cell("labels")),
                priority=int_or("priority", minimum=-(2**31)),
                priority_class=cell("priority_class")[0].strip(),
                qos=cell("qos")[0].strip(),
                name=cell("name")[0].strip(),
            )
        except TraceError as e:
            b.bad(e)
    return b.finish("csv")


def _json_column(text: str, key: str) -> int:
    at = text.find(f'"{key}"')
    return at + 1 if at >= 0 else 1


def read_jsonl(f: IO[str], source: str, *, skip_bad_rows: bool = False) -> Trace:
    """Read burstd's JSON Lines trace format: one object a line, the generic CSV's fields
    (``labels`` an object, ``models`` a list or a ``|``-separated string)."""
    b = _Builder(source, skip_bad_rows)
    g = _Generic(b)
    for line, text in enumerate(f, start=1):
        if not text.strip():
            continue
        try:
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                raise TraceError(f"{source}:{line}:{e.colno}: invalid JSON: {e.msg}") from None
            if not isinstance(obj, dict):
                raise TraceError(f"{source}:{line}:1: expected a JSON object")
            unknown = [k for k in obj if k not in GENERIC_COLUMNS]
            if unknown:
                raise TraceError(
                    f"{source}:{line}:{_json_column(text, unknown[0])}: unknown field "
                    f"{unknown[0]!r} (known: {', '.join(GENERIC_COLUMNS)})"
                )

            def at(key: str, text: str = text, line: int = line) -> str:
                return _where(source, line, _json_column(text, key), key)

            def number(
                key: str, obj: dict[str, Any] = obj, line: int = line, required: bool = True
            ) -> float:
                if key not in obj:
                    if required:
                        raise TraceError(f"{source}:{line}:1: {key}: missing")
                    return 0.0
                v = obj[key]
                if isinstance(v, bool) or not isinstance(v, int | float):
                    raise TraceError(f"{at(key)}: expected a number, got {v!r}")
                return _seconds(str(v), at(key))

            def integer(
                key: str, obj: dict[str, Any] = obj, maximum: int | None = None, minimum: int = 0
            ) -> int:
                v = obj.get(key, 0)
                if isinstance(v, bool) or not isinstance(v, int):
                    raise TraceError(f"{at(key)}: expected an integer, got {v!r}")
                return _int(str(v), at(key), minimum=minimum, maximum=maximum)

            def string(key: str, obj: dict[str, Any] = obj) -> str:
                v = obj.get(key, "")
                if not isinstance(v, str):
                    raise TraceError(f"{at(key)}: expected a string, got {v!r}")
                return v

            models_raw = obj.get("models", "")
            if isinstance(models_raw, list) and all(isinstance(m, str) for m in models_raw):
                models = frozenset(models_raw)
            elif isinstance(models_raw, str):
                models = _models(models_raw)
            else:
                raise TraceError(f"{at('models')}: expected a list of model names")
            labels_raw = obj.get("labels", {})
            if not isinstance(labels_raw, dict) or not all(
                isinstance(v, str) for v in labels_raw.values()
            ):
                raise TraceError(f"{at('labels')}: expected an object of strings")
            g.add(
                line=line,
                submit=number("submit"),
                duration=number("duration"),
                gpus=integer("gpus", maximum=64),
                share=integer("share", maximum=FULL_GPU_MILLI - 1),
                share_at=at("share"),
                models=models,
                namespace=string("namespace"),
                labels={str(k): v for k, v in labels_raw.items()},
                priority=integer("priority", minimum=-(2**31)),
                priority_class=string("priority_class"),
                qos=string("qos"),
                name=string("name"),
            )
        except TraceError as e:
            b.bad(e)
    return b.finish("jsonl")

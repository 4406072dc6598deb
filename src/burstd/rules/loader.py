"""Read a rules file into a ``RuleSet``, or say precisely what is wrong with it.

A rules file decides when burstd spends money, so a mistake must stop it before it runs, and
the operator must be able to fix every mistake in one pass: the loader reports all problems at
once, each as ``file:line:column: field.path: message``, pointing at the value when a value is
wrong and at the key when a key is. No input, however broken, produces a traceback.

The file is read with ruamel.yaml's round-trip loader because it remembers where every key and
value came from; the typed rules model in ``types.py`` never sees any of that.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import math
import re
import zoneinfo
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, TypeVar

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, TaggedScalar
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarbool import ScalarBoolean

from burstd.inputs import RULES_MAX_BYTES, InputError, read_text
from burstd.model.alerts import AlertsConfig
from burstd.model.durations import format_duration, parse_duration
from burstd.model.params import Param, ParamSchema, ParamType
from burstd.model.quantity import parse_quantity
from burstd.providers.base import UnitShape
from burstd.providers.registry import KINDS
from burstd.rules.cron import cron_trigger
from burstd.rules.types import (
    Burst,
    Cooldown,
    DrainMode,
    LabelRequirement,
    Limits,
    LoopSettings,
    Match,
    OldestPendingTrigger,
    PendingTrigger,
    Release,
    Rule,
    RuleSet,
    ScheduleTrigger,
    SimulationProfile,
    Target,
    Trigger,
    TriggerKind,
    UtilizationTrigger,
)

__all__ = [
    "Problem",
    "RulesError",
    "format_duration",
    "load_rules",
    "parse_duration",
    "parse_rules",
]

ROOT: Final = "(root)"
SUPPORTED_VERSION: Final = 1
OPERATORS: Final = ("In", "NotIn", "Exists", "DoesNotExist")

_T = TypeVar("_T")
# (line, column), both 0-based as ruamel counts them; made 1-based only when reported.
_Pos = tuple[int, int]

_ROOT_KEYS = ("version", "dry_run", "limits", "loop", "targets", "rules", "cooldown", "alerts")
_TARGET_KEYS = (
    "provider",
    "params",
    "gpu_model",
    "gpus_per_unit",
    "mig",
    "max_units",
    "max_in_flight",
    "price_per_gpu_hour",
    "time_to_ready",
    "ready_deadline",
    "backoff",
    "simulation",
)
_SIMULATION_KEYS = ("failure_probability", "ready_spread", "capacity_units", "billing_minimum")
_RULE_KEYS = ("name", "match", "triggers", "burst", "release", "limits", "cooldown", "dry_run")
_MATCH_KEYS = (
    "namespaces",
    "labels",
    "selector",
    "priority_classes",
    "gpu_models",
    "mig_profiles",
    "qos",
)
_SELECTOR_KEYS = ("key", "operator", "values")
_TRIGGER_KEYS: Mapping[str, tuple[str, ...]] = {
    TriggerKind.PENDING: ("gpus", "for", "per_gpu", "per_gpu_hour", "max_for", "default_runtime"),
    TriggerKind.OLDEST_PENDING: ("older_than",),
    TriggerKind.UTILIZATION: ("query", "above", "for"),
    TriggerKind.SCHEDULE: ("cron", "duration", "timezone"),
}
_TRIGGER_REQUIRED: Mapping[str, tuple[str, ...]] = {
    TriggerKind.PENDING: (),
    TriggerKind.OLDEST_PENDING: ("older_than",),
    TriggerKind.UTILIZATION: ("query", "above"),
    TriggerKind.SCHEDULE: ("cron", "duration"),
}
_KINDS = tuple(str(kind) for kind in TriggerKind)
PROVIDERS: Final = tuple(KINDS)
# The planner packs a unit GPU by GPU (and MIG slice by slice): no machine has more than this.
MAX_GPUS_PER_UNIT: Final = 1024
_BURST_KEYS = ("ladder", "max_units_per_step", "min_gpus")
_RELEASE_KEYS = ("idle_for", "validation", "drain")
_DRAIN_KEYS = ("mode", "max_wait")
_DRAIN_MODES = tuple(str(mode) for mode in DrainMode)
_LIMIT_KEYS = ("max_gpus", "max_cost_per_hour")
_COOLDOWN_KEYS = ("scale_up", "scale_down")
_LOOP_KEYS = ("interval", "batch_idle", "batch_max")

# Target and rule names end up in node labels, metric labels and unit ids, so they follow the
# strictest of those: an RFC 1123 DNS label.
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_NAME_RULE = (
    "use lowercase letters, digits and '-', starting and ending with a letter or digit, "
    "at most 63 characters"
)
# NVIDIA profile names: <slices>g.<memory>gb, optionally with +me / +gfx style suffixes.
_MIG = re.compile(r"[1-7]g\.[0-9]+gb(\+[a-z]+)*")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_LABEL_PREFIX = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NULLS = ("~", "null", "Null", "NULL")
_SIMPLE_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_DURATION_EXAMPLES = "like 30s, 5m or 1h30m"
_CRON_FIELDS = "five fields: minute hour day-of-month month day-of-week"
# Any fixed instant will do: whether a cron expression can ever fire does not depend on when
# you ask, and the loader must not read the clock.
_CRON_PROBE = datetime(2000, 1, 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One thing wrong with a rules file, where it is, and (maybe) how to fix it.

    ``line`` and ``column`` are 1-based. ``path`` is the dotted field path, such as
    ``rules[0].triggers[1].pending.for``, or ``(root)`` for the document itself.
    """

    source: str
    line: int
    column: int
    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.source}:{self.line}:{self.column}: {self.path}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class RulesError(Exception):
    """A rules file cannot be used. ``problems`` lists every problem found, in file order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def load_rules(path: str | Path) -> RuleSet:
    """The rules in the file at ``path``; raises ``RulesError`` if it cannot be read or used."""
    source = str(path)
    try:
        text = read_text(path, limit=RULES_MAX_BYTES, what="rules file")
    except InputError as err:
        problem = Problem(
            source=source,
            line=max(err.line, 1),
            column=max(err.column, 1),
            path=ROOT,
            message=err.reason,
            hint="save the file as UTF-8" if "UTF-8" in err.reason else "",
        )
        raise RulesError([problem]) from None
    return parse_rules(text, source)


def parse_rules(text: str, source: str) -> RuleSet:
    """The rules in ``text``, read from ``source`` (used in messages and kept on the result).

    Raises ``RulesError`` with every problem found.
    """
    report = _Report(source, text)
    doc = _read_yaml(text, report)
    ruleset: RuleSet | None = None
    if doc is not _UNREADABLE:
        with contextlib.suppress(_Bad):
            ruleset = _Loader(report).document(doc)
    if report.problems or ruleset is None:
        raise RulesError(sorted(report.problems, key=lambda p: (p.line, p.column)))
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return replace(ruleset, source=source, digest=digest)


# --- reading YAML ----------------------------------------------------------------------------

_UNREADABLE: Final = object()


def _read_yaml(text: str, report: _Report) -> Any:
    """The document in ``text``, or ``_UNREADABLE`` once the reason has been reported."""
    try:
        return _yaml(allow_duplicate_keys=False).load(text)
    except DuplicateKeyError as err:
        duplicate = err
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        at = (mark.line, mark.column) if mark is not None else (0, 0)
        message = f"invalid YAML: {err.problem or err.context or err}"
        context = err.context_mark
        if err.problem and err.context and context is not None and context is not mark:
            # "while parsing a flow sequence" says which bracket was never closed.
            where = f"line {context.line + 1}, column {context.column + 1}"
            message += f" ({err.context} at {where})"
        hint = "indent with spaces, not tabs" if "'\\t'" in message else ""
        report.add(at, ROOT, message, hint)
        return _UNREADABLE
    except ReaderError as err:
        # A character YAML refuses (a control character, say); it carries an offset only.
        offset = max(0, min(err.position, len(text)))
        line = text.count("\n", 0, offset)
        column = offset - (text.rfind("\n", 0, offset) + 1)
        char = err.character
        shown = f"#x{char:04x}" if isinstance(char, int) else repr(char)
        report.add((line, column), ROOT, f"invalid YAML: unacceptable character {shown}")
        return _UNREADABLE
    except RecursionError:
        report.add((0, 0), ROOT, "invalid YAML: nested too deeply")
        return _UNREADABLE
    except Exception as err:
        # ruamel raises bare ValueErrors and worse for some tagged scalars (``!!int x``); the
        # promise is no traceback for any input, so anything it throws is a problem to report.
        report.add((0, 0), ROOT, f"invalid YAML: {err}")
        return _UNREADABLE

    # ruamel stops at the first duplicate key. Read the file again keeping the first of each
    # duplicate, so every other problem in the file is reported in the same pass.
    try:
        doc = _yaml(allow_duplicate_keys=True).load(text)
    except Exception:
        doc = _UNREADABLE
    report.add(*_duplicate_problem(duplicate, doc))
    return doc


def _yaml(*, allow_duplicate_keys: bool) -> YAML:
    # A fresh instance per read: a YAML object keeps parser state and caches its constructor.
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = allow_duplicate_keys
    return yaml


def _duplicate_problem(err: DuplicateKeyError, doc: Any) -> tuple[_Pos, str, str]:
    mark = err.problem_mark
    at = (mark.line, mark.column) if mark is not None else (0, 0)
    found = re.match(r'found duplicate key "(.*)" with value', err.problem or "", re.DOTALL)
    owner = err.context_mark
    path, mapping = ROOT, None
    if owner is not None and doc is not _UNREADABLE:
        path, mapping = _find_mapping(doc, ROOT, (owner.line, owner.column))
    if found and isinstance(mapping, CommentedMap):
        for key in mapping:
            if str(key) == found.group(1):
                first = _key_pos(mapping, key, at)
                return at, path, f"duplicate key {_describe(key)} (first at line {first[0] + 1})"
    return at, path, f"duplicate key: {err.problem}"


def _find_mapping(node: Any, path: str, at: _Pos, seen: set[int] | None = None) -> tuple[str, Any]:
    """The path of, and the mapping that starts at ``at``, searching depth first. Each node is
    visited once: an alias is a second way to the same node, and following every one is
    exponential in a file of aliases of aliases."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return ROOT, None
    seen.add(id(node))
    if isinstance(node, CommentedMap):
        if _node_pos(node, (-1, -1)) == at:
            return path, node
        children: Iterator[tuple[str, Any]] = ((_child(path, k), v) for k, v in node.items())
    elif isinstance(node, list):
        children = ((f"{path}[{i}]", v) for i, v in enumerate(node))
    else:
        return ROOT, None
    for child_path, child in children:
        found_path, found = _find_mapping(child, child_path, at, seen)
        if found is not None:
            return found_path, found
    return ROOT, None


# --- positions and paths ---------------------------------------------------------------------


def _node_pos(node: Any, fallback: _Pos) -> _Pos:
    lc = getattr(node, "lc", None)
    line, col = getattr(lc, "line", None), getattr(lc, "col", None)
    if isinstance(line, int) and isinstance(col, int):
        return line, col
    return fallback


def _lc_entry(mapping: Any, key: Any, depth: int = 0) -> list[int] | None:
    """ruamel's ``[key line, key col, value line, value col]`` for ``key``, looking through
    ``<<`` merges: a merged key is reported where it is written, under the anchor."""
    data = getattr(getattr(mapping, "lc", None), "data", None)
    if isinstance(data, dict) and key in data:
        entry = data[key]
        if isinstance(entry, list) and len(entry) >= 4:
            return entry
    if depth < 32:
        for source in _merged(mapping):
            found = _lc_entry(source, key, depth + 1)
            if found is not None:
                return found
    return None


def _merged(mapping: Any) -> list[Any]:
    """The mappings ``mapping`` merges in with ``<<``, nearest first."""
    merge = getattr(mapping, "merge", None)
    try:
        # ruamel 0.18 lists (position, mapping) pairs; 0.19 a MergeValue of mappings.
        return [m[1] if isinstance(m, tuple) and len(m) == 2 else m for m in merge or ()]
    except Exception:
        return []


def _key_pos(mapping: Any, key: Any, fallback: _Pos) -> _Pos:
    entry = _lc_entry(mapping, key)
    return (entry[0], entry[1]) if entry is not None else fallback


def _item_pos(seq: Any, index: int, fallback: _Pos) -> _Pos:
    data = getattr(getattr(seq, "lc", None), "data", None)
    if isinstance(data, dict) and isinstance(data.get(index), list) and len(data[index]) >= 2:
        return data[index][0], data[index][1]
    return fallback


def _child(path: str, key: Any) -> str:
    text = key if isinstance(key, str) else _describe(key)
    if _SIMPLE_SEGMENT.fullmatch(text):
        return text if path == ROOT else f"{path}.{text}"
    # Keys with dots, slashes or spaces (MIG profiles, label keys) are quoted so the path stays
    # one unambiguous, space-free word.
    quoted = json.dumps(text).replace(" ", "\\u0020")
    return f"[{quoted}]" if path == ROOT else f"{path}[{quoted}]"


# --- describing values -----------------------------------------------------------------------


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_bool(value: Any) -> bool:
    # ScalarBoolean is what ruamel makes of an anchored ``true``; it is an int subclass.
    return isinstance(value, bool | ScalarBoolean)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not _is_bool(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not _is_bool(value)


def _as_float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _show_number(number: float) -> str:
    value = float(number)  # an int passes for a float but has no is_integer() before 3.12
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _describe(value: Any) -> str:
    """A value as a message quotes it: as it would be written in YAML, or what kind it is."""
    if value is None:
        return "null"
    if _is_bool(value):
        return "true" if value else "false"
    if isinstance(value, int):
        return _clip(str(int(value))) if value.bit_length() < 256 else "a very large integer"
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return _clip(_show_number(float(value)))
    if isinstance(value, str):
        return repr(_clip(str(value)))
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, TaggedScalar):
        return f"a value tagged {_clip(str(value.tag))}"
    return f"a {type(value).__name__}"


def _suggest(word: Any, choices: Sequence[str], noun: str, *, always_list: bool = False) -> str:
    """A hint: the closest choice if one is close, else (or also) the choices."""
    close: list[str] = []
    if isinstance(word, str):
        by_lower = {choice.lower(): choice for choice in choices}
        if word.lower() in by_lower:
            close = [by_lower[word.lower()]]
        else:
            close = difflib.get_close_matches(word[:100], choices, n=1)
    listing = f"{noun}: {', '.join(choices)}" if choices else f"no {noun} are defined"
    if not close:
        return listing
    guess = f"did you mean '{close[0]}'?"
    return f"{guess} {listing}" if always_list else guess


@lru_cache(maxsize=1)
def _timezones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


PLAIN_MAX_VALUES: Final = 100_000
"""Values a free-form map (``params``) may hold, counting each alias where it is used."""


class _TooLarge(Exception):
    """A free-form value holds more than ``PLAIN_MAX_VALUES`` values once aliases expand."""


def _plain(value: Any, budget: list[int] | None = None) -> Any:
    """``value`` without ruamel's wrapper types, for provider params: providers get plain
    dicts, lists, strings and numbers.

    ruamel shares an aliased node, but a plain copy repeats it at every use, so a few KB of
    aliases of aliases expand to 10**8 values: ``budget`` (one counter, shared by the whole
    walk) counts the values made and raises ``_TooLarge`` past ``PLAIN_MAX_VALUES``.
    """
    budget = [PLAIN_MAX_VALUES] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooLarge
    if value is None or _is_bool(value):
        return None if value is None else bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {_plain_key(k, budget): _plain(v, budget) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, budget) for v in value]
    if isinstance(value, TaggedScalar):
        return str(value.value)
    return value


def _plain_key(key: Any, budget: list[int]) -> Any:
    plain = _plain(key, budget)
    return plain if plain is None or isinstance(plain, str | int | float) else str(key)


# --- reporting -------------------------------------------------------------------------------


class _Bad(Exception):
    """A value was wrong and has been reported; the caller carries on without it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Node:
    """A value in the document, what it is called, and where to point at it."""

    value: Any
    path: str
    at: _Pos
    key_at: _Pos


class _Report:
    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.lines = text.splitlines()
        self.problems: list[Problem] = []

    def add(self, at: _Pos, path: str, message: str, hint: str = "") -> None:
        # Exception texts from the YAML parser span lines; a problem is always one line.
        self.problems.append(
            Problem(
                source=self.source,
                line=max(at[0], 0) + 1,
                column=max(at[1], 0) + 1,
                path=path,
                message=" ".join(message.split()) or "invalid",
                hint=" ".join(hint.split()),
            )
        )

    def bad(self, node: _Node, message: str, hint: str = "") -> _Bad:
        """Report a wrong value; the caller raises what this returns."""
        self.add(node.at, node.path, message, hint)
        return _Bad()

    def written_null(self, at: _Pos) -> bool:
        line, col = at
        if 0 <= line < len(self.lines):
            return self.lines[line][col:].startswith(_NULLS)
        return False


class _Fields:
    """The keys of one mapping in the file. ``ok`` holds the values that were read and valid,
    for checks that compare two fields."""

    def __init__(self, report: _Report, node: _Node, mapping: Any) -> None:
        self.report = report
        self.node = node
        self.mapping = mapping
        self.ok: dict[str, Any] = {}

    def __contains__(self, key: str) -> bool:
        return key in self.mapping

    def get(self, key: str) -> _Node | None:
        if key not in self.mapping:
            return None
        return _entry(self.report, self.node, self.mapping, key)

    def take(self, key: str, read: Callable[[_Node], _T], default: _T) -> _T:
        node = self.get(key)
        if node is None:
            return default
        try:
            value = read(node)
        except _Bad:
            return default
        self.ok[key] = value
        return value

    def take_many(self, key: str, read: Callable[[_Node], tuple[_T, ...]]) -> tuple[_T, ...]:
        """``take`` for a list setting, which defaults to empty."""
        empty: tuple[_T, ...] = ()
        return self.take(key, read, empty)

    def point(self, key: str) -> _Node:
        node = self.get(key)
        return node if node is not None else self.node


def _entry(report: _Report, parent: _Node, mapping: Any, key: Any) -> _Node:
    key_at = _key_pos(mapping, key, parent.at)
    entry = _lc_entry(mapping, key)
    value = mapping[key]
    at = (entry[2], entry[3]) if entry is not None else key_at
    # For a value left empty ruamel gives the position of whatever comes next, often the next
    # line; the key is the better place to point.
    if value is None and not report.written_null(at):
        at = key_at
    return _Node(value=value, path=_child(parent.path, key), at=at, key_at=key_at)


# --- reading values --------------------------------------------------------------------------


class _Loader:
    """Walks the document once, building the typed rules and reporting every problem."""

    def __init__(self, report: _Report) -> None:
        self.r = report
        self.global_limits = Limits()
        self.default_cooldown = Cooldown()
        self.target_names: tuple[str, ...] | None = None
        self.rule_names: dict[str, str] = {}

    # Generic shapes.

    def fields(
        self, node: _Node, keys: Sequence[str], required: Sequence[str] = (), *, section: bool
    ) -> _Fields:
        """The mapping at ``node``, its unknown and missing keys reported. A ``section`` may be
        left empty (``match:`` with everything under it commented out)."""
        mapping = node.value
        if mapping is None and section:
            mapping = CommentedMap()
        if not isinstance(mapping, dict):
            raise self.r.bad(node, f"must be a mapping, got {_describe(mapping)}")
        for key in mapping:
            if not (isinstance(key, str) and key in keys):
                self.r.add(
                    _key_pos(mapping, key, node.at),
                    node.path,
                    f"unknown key {_describe(key)}",
                    _suggest(key, keys, "known keys"),
                )
        for key in required:
            if key not in mapping:
                self.r.add(node.key_at, node.path, f"missing required key '{key}'")
        return _Fields(self.r, node, mapping)

    def entries(self, node: _Node) -> Iterator[tuple[Any, _Node]]:
        for key in node.value:
            yield key, _entry(self.r, node, node.value, key)

    def items(self, node: _Node) -> Iterator[_Node]:
        for index, value in enumerate(node.value):
            at = _item_pos(node.value, index, node.at)
            yield _Node(value=value, path=f"{node.path}[{index}]", at=at, key_at=at)

    def list_of(self, node: _Node, what: str) -> list[Any]:
        value = node.value
        if isinstance(value, list):
            return value
        hint = f"write [{value}] for a list of one" if isinstance(value, str) else ""
        raise self.r.bad(node, f"must be a list{what}, got {_describe(value)}", hint)

    # Scalars.

    def integer(self, node: _Node, minimum: int, maximum: int | None = None) -> int:
        if _is_int(node.value) and node.value >= minimum:
            if maximum is None or node.value <= maximum:
                return int(node.value)
            raise self.r.bad(
                node,
                f"must be an integer from {minimum} to {maximum}, got {_describe(node.value)}",
            )
        raise self.r.bad(node, f"must be an integer >= {minimum}, got {_describe(node.value)}")

    def integer_or_null(self, node: _Node, minimum: int) -> int | None:
        if node.value is None:
            return None
        if _is_int(node.value) and node.value >= minimum:
            return int(node.value)
        raise self.r.bad(
            node, f"must be an integer >= {minimum} or null, got {_describe(node.value)}"
        )

    def number(
        self, node: _Node, *, above: float | None = None, maximum: float | None = None
    ) -> float:
        """A finite number >= 0 (or > ``above``), at most ``maximum``. An integer will do."""
        value = node.value
        if above is not None:
            wanted = f"a number > {_show_number(above)}"
        elif maximum is not None:
            wanted = f"a number from 0 to {_show_number(maximum)}"
        else:
            wanted = "a number >= 0"
        if not _is_number(value):
            raise self.r.bad(node, f"must be {wanted}, got {_describe(value)}")
        number = _as_float(value)
        if not math.isfinite(number):
            raise self.r.bad(node, f"must be a finite number, got {_describe(value)}")
        low_ok = number > above if above is not None else number >= 0
        if not low_ok or (maximum is not None and number > maximum):
            raise self.r.bad(node, f"must be {wanted}, got {_describe(value)}")
        return number

    def number_or_null(self, node: _Node) -> float | None:
        if node.value is None:
            return None
        if _is_number(node.value) and math.isfinite(_as_float(node.value)) and node.value >= 0:
            return _as_float(node.value)
        raise self.r.bad(node, f"must be a number >= 0 or null, got {_describe(node.value)}")

    def boolean(self, node: _Node) -> bool:
        if _is_bool(node.value):
            return bool(node.value)
        raise self.r.bad(node, f"must be true or false, got {_describe(node.value)}")

    def string(self, node: _Node) -> str:
        value = node.value
        if isinstance(value, str):
            if not value.strip():
                raise self.r.bad(node, "must not be empty")
            return str(value)
        hint = "" if isinstance(value, dict | list) else "put it in quotes to make it text"
        raise self.r.bad(node, f"must be a string, got {_describe(value)}", hint)

    def duration(self, node: _Node, *, positive: bool = False) -> float:
        value = node.value
        if isinstance(value, str):
            try:
                seconds = parse_duration(value)
            except ValueError as err:
                raise self.r.bad(node, str(err)) from None
        elif _is_number(value):
            seconds = _as_float(value)
            if math.isnan(seconds) or seconds < 0:
                raise self.r.bad(node, f"must be a duration >= 0, got {_describe(value)}")
            if math.isinf(seconds):
                raise self.r.bad(node, f"must be a finite duration, got {_describe(value)}")
        else:
            raise self.r.bad(
                node, f"must be a duration {_DURATION_EXAMPLES}, got {_describe(value)}"
            )
        if positive and seconds == 0:
            raise self.r.bad(node, f"must be a duration > 0, got {_describe(value)}")
        return seconds

    def choice(self, node: _Node, choices: Sequence[str], noun: str) -> str:
        value = node.value
        if isinstance(value, str) and value in choices:
            return str(value)
        raise self.r.bad(
            node,
            f"must be one of {', '.join(choices)}, got {_describe(value)}",
            _suggest(value, choices, noun) if isinstance(value, str) else "",
        )

    def strings(
        self, node: _Node, check: Callable[[_Node, str], bool] | None = None
    ) -> tuple[str, ...]:
        """A list of strings; items that are not (or fail ``check``) are reported and left out."""
        out: list[str] = []
        self.list_of(node, " of strings")
        for item in self.items(node):
            try:
                text = self.string(item)
            except _Bad:
                continue
            if check is None or check(item, text):
                out.append(text)
        return tuple(out)

    def _order(
        self,
        f: _Fields,
        low_key: str,
        high_key: str,
        low: float,
        high: float,
        show: Callable[[float], str],
        *,
        point_at_high: bool,
    ) -> None:
        """Report ``low > high``, pointing at whichever of the two was written, preferring the
        one ``point_at_high`` says; a value not written is named as the default."""
        if low <= high or not (low_key in f.ok or high_key in f.ok):
            return
        if any(key in f and key not in f.ok for key in (low_key, high_key)):
            return  # one of them is wrong in itself, and already reported
        at_high = high_key in f.ok if point_at_high else low_key not in f.ok
        if at_high:
            default = "" if low_key in f.ok else ", the default"
            message = f"must be at least {low_key} ({show(low)}{default}), got {show(high)}"
            node = f.point(high_key)
        else:
            default = "" if high_key in f.ok else ", the default"
            message = f"must be at most {high_key} ({show(high)}{default}), got {show(low)}"
            node = f.point(low_key)
        self.r.add(node.at, node.path, message)

    # The document.

    def document(self, doc: Any) -> RuleSet:
        at = _node_pos(doc, (0, 0))
        root = _Node(value=doc, path=ROOT, at=at, key_at=at)
        if doc is None:
            raise self.r.bad(
                root,
                "the rules file is empty",
                "start with 'version: 1', then define targets and rules",
            )
        if not isinstance(doc, dict):
            raise self.r.bad(
                root, f"must be a mapping with version, targets and rules, got {_describe(doc)}"
            )
        f = self.fields(root, _ROOT_KEYS, ("version", "targets", "rules"), section=False)
        version = f.take("version", self.version, SUPPORTED_VERSION)
        dry_run = f.take("dry_run", self.boolean, False)
        self.global_limits = f.take("limits", lambda n: self.limits(n, outer=None), Limits())
        loop = f.take("loop", self.loop, LoopSettings())
        self.default_cooldown = f.take(
            "cooldown", lambda n: self.cooldown(n, Cooldown()), Cooldown()
        )
        targets: dict[str, Target] = f.take("targets", self.targets, {})
        rules = f.take_many("rules", self.rules)
        alerts = f.take("alerts", self.alerts, AlertsConfig())
        return RuleSet(
            targets=targets,
            rules=rules,
            limits=self.global_limits,
            loop=loop,
            dry_run=dry_run,
            version=version,
            alerts=alerts,
        )

    def alerts(self, node: _Node) -> AlertsConfig:
        from burstd.rules.alerts import read_alerts  # it reads through this module's helpers

        return read_alerts(self, node)

    def version(self, node: _Node) -> int:
        if _is_int(node.value) and node.value == SUPPORTED_VERSION:
            return SUPPORTED_VERSION
        raise self.r.bad(
            node,
            f"must be {SUPPORTED_VERSION} (the only version this burstd reads), "
            f"got {_describe(node.value)}",
        )

    def limits(self, node: _Node, *, outer: Limits | None) -> Limits:
        f = self.fields(node, _LIMIT_KEYS, section=True)
        max_gpus = f.take("max_gpus", lambda n: self.integer_or_null(n, 0), None)
        max_cost = f.take("max_cost_per_hour", self.number_or_null, None)
        if outer is not None:
            # A rule cannot be allowed more than the whole file is: that limit would never bind
            # and suggests a typo in one of the two.
            if max_gpus is not None and outer.max_gpus is not None and max_gpus > outer.max_gpus:
                at = f.point("max_gpus")
                self.r.add(
                    at.at,
                    at.path,
                    f"must be at most the global limits.max_gpus ({outer.max_gpus}), "
                    f"got {max_gpus}",
                )
            if (
                max_cost is not None
                and outer.max_cost_per_hour is not None
                and max_cost > outer.max_cost_per_hour
            ):
                at = f.point("max_cost_per_hour")
                self.r.add(
                    at.at,
                    at.path,
                    "must be at most the global limits.max_cost_per_hour "
                    f"({_show_number(outer.max_cost_per_hour)}), got {_show_number(max_cost)}",
                )
        return Limits(max_gpus=max_gpus, max_cost_per_hour=max_cost)

    def loop(self, node: _Node) -> LoopSettings:
        f = self.fields(node, _LOOP_KEYS, section=True)
        base = LoopSettings()
        loop = LoopSettings(
            interval=f.take("interval", lambda n: self.duration(n, positive=True), base.interval),
            batch_idle=f.take("batch_idle", self.duration, base.batch_idle),
            batch_max=f.take(
                "batch_max", lambda n: self.duration(n, positive=True), base.batch_max
            ),
        )
        self._order(
            f,
            "batch_idle",
            "batch_max",
            loop.batch_idle,
            loop.batch_max,
            format_duration,
            point_at_high=False,
        )
        return loop

    def cooldown(self, node: _Node, base: Cooldown) -> Cooldown:
        f = self.fields(node, _COOLDOWN_KEYS, section=True)
        return Cooldown(
            scale_up=f.take("scale_up", self.duration, base.scale_up),
            scale_down=f.take("scale_down", self.duration, base.scale_down),
        )

    # Targets.

    def targets(self, node: _Node) -> dict[str, Target]:
        if not isinstance(node.value, dict):
            hint = "write each target as 'name:' with its settings under it"
            raise self.r.bad(
                node,
                f"must be a mapping of target names to targets, got {_describe(node.value)}",
                hint if isinstance(node.value, list) else "",
            )
        if not node.value:
            raise self.r.bad(node, "must define at least one target")
        self.target_names = tuple(name for name in node.value if isinstance(name, str))
        out: dict[str, Target] = {}
        for name, child in self.entries(node):
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                self.r.add(
                    child.key_at, node.path, f"invalid target name {_describe(name)}", _NAME_RULE
                )
                if not isinstance(name, str):
                    continue
            with contextlib.suppress(_Bad):
                out[name] = self.target(name, child)
        return out

    def target(self, name: str, node: _Node) -> Target:
        f = self.fields(node, _TARGET_KEYS, ("provider",), section=False)
        base = Target(name=name, provider="")
        max_units = f.take("max_units", lambda n: self.integer(n, 1), base.max_units)
        provider = f.take("provider", self.provider, "")
        kind = KINDS.get(provider)
        schema = kind.params if kind is not None else None
        target = Target(
            name=name,
            provider=provider,
            params=f.take("params", lambda n: self.params(n, schema), {}),
            gpu_model=f.take("gpu_model", self.string, ""),
            gpus_per_unit=f.take(
                "gpus_per_unit", lambda n: self.integer(n, 1, MAX_GPUS_PER_UNIT), 1
            ),
            mig=f.take("mig", self.mig, {}),
            max_units=max_units,
            # Unset, every unit may be requested at once: the provider is trusted to cope.
            max_in_flight=f.take("max_in_flight", lambda n: self.integer(n, 1), max_units),
            price_per_gpu_hour=f.take("price_per_gpu_hour", self.number, 0.0),
            time_to_ready=f.take("time_to_ready", self.duration, base.time_to_ready),
            ready_deadline=f.take(
                "ready_deadline", lambda n: self.duration(n, positive=True), base.ready_deadline
            ),
            backoff=f.take("backoff", self.duration, base.backoff),
            simulation=f.take("simulation", self.simulation, base.simulation),
        )
        if kind is not None:
            shape = UnitShape(
                target=name,
                gpus=target.gpus_per_unit,
                gpu_model=target.gpu_model,
                mig=dict(target.mig),
            )
            target = replace(target, node=kind.node(shape, target.params))
        self._order(
            f,
            "max_in_flight",
            "max_units",
            target.max_in_flight,
            target.max_units,
            str,
            point_at_high=False,
        )
        # A unit is abandoned at its deadline, so a deadline shorter than the usual time to
        # become ready abandons every unit.
        self._order(
            f,
            "time_to_ready",
            "ready_deadline",
            target.time_to_ready,
            target.ready_deadline,
            format_duration,
            point_at_high=True,
        )
        return target

    def simulation(self, node: _Node) -> SimulationProfile:
        f = self.fields(node, _SIMULATION_KEYS, section=True)
        base = SimulationProfile()
        return SimulationProfile(
            failure_probability=f.take(
                "failure_probability", lambda n: self.number(n, maximum=1), base.failure_probability
            ),
            ready_spread=f.take("ready_spread", self.number, base.ready_spread),
            capacity_units=f.take(
                "capacity_units", lambda n: self.integer_or_null(n, 0), base.capacity_units
            ),
            billing_minimum=f.take("billing_minimum", self.duration, base.billing_minimum),
        )

    def provider(self, node: _Node) -> str:
        value = node.value
        if isinstance(value, str) and value in PROVIDERS:
            return str(value)
        if isinstance(value, str):
            raise self.r.bad(
                node,
                f"unknown provider {_describe(value)}",
                _suggest(value, PROVIDERS, "providers"),
            )
        raise self.r.bad(node, f"must be a provider name, got {_describe(value)}")

    def params(self, node: _Node, schema: ParamSchema | None) -> dict[str, Any]:
        """A target's ``params``, checked against its provider's schema when it declares one;
        missing keys get the schema's defaults."""
        if schema is not None:
            checked: dict[str, Any] = self.param_fields(node, schema)
            return checked
        if node.value is None:
            return {}
        if isinstance(node.value, dict):
            plain: dict[str, Any] = self.plain(node)
            return plain
        raise self.r.bad(node, f"must be a mapping, got {_describe(node.value)}")

    def plain(self, node: _Node) -> Any:
        """A free-form value as plain data, bounded (see ``_plain``)."""
        try:
            return _plain(node.value)
        except (_TooLarge, RecursionError):
            raise self.r.bad(
                node,
                f"too large: more than {PLAIN_MAX_VALUES:,} values (each alias counted "
                "where it is used) or nested too deeply",
                "params are a provider's settings; write them out without nested aliases",
            ) from None

    def param_fields(self, node: _Node, schema: ParamSchema) -> dict[str, Any]:
        required = [key for key, p in schema.items() if p.required]
        f = self.fields(node, tuple(schema), required, section=True)
        out: dict[str, Any] = {}
        bad = False
        for key, param in schema.items():
            child = f.get(key)
            if child is None:
                if param.type is ParamType.MAPPING and param.fields and param.default is None:
                    nested = self.param_fields(
                        _Node(value=None, path=_child(node.path, key), at=node.at, key_at=node.at),
                        param.fields,
                    )
                    if nested:
                        out[key] = nested
                elif param.default is not None:
                    out[key] = param.default
                continue
            try:
                out[key] = self.param(child, param)
            except _Bad:
                bad = True
        if bad:
            raise _Bad()
        return out

    def param(self, node: _Node, param: Param) -> Any:
        """One value of a provider's params, of the type its schema says."""
        kind = param.type
        value = node.value
        if kind is ParamType.ANY:
            return self.plain(node)
        if kind is ParamType.MAPPING:
            return self.param_fields(node, param.fields)
        if kind is ParamType.MAP:
            if value is None:
                return {}
            if not isinstance(value, dict):
                raise self.r.bad(node, f"must be a mapping, got {_describe(value)}")
            item = param.item or Param(type=ParamType.ANY, doc="")
            out: dict[str, Any] = {}
            for key, child in self.entries(node):
                if not isinstance(key, str):
                    self.r.add(child.key_at, node.path, f"key {_describe(key)} must be a string")
                    continue
                with contextlib.suppress(_Bad):
                    out[key] = self.param(child, item)
            return out
        if kind is ParamType.LIST:
            if value is None:
                return []
            self.list_of(node, "")
            item = param.item or Param(type=ParamType.ANY, doc="")
            items: list[Any] = []
            for child in self.items(node):
                with contextlib.suppress(_Bad):
                    items.append(self.param(child, item))
            return items
        if kind is ParamType.STRING:
            if value == "" and param.default == "":
                return ""
            text = self.choice(node, param.choices, "choices") if param.choices else None
            return text if text is not None else self.string(node)
        if kind is ParamType.BOOLEAN:
            return self.boolean(node)
        if kind is ParamType.QUANTITY:
            if isinstance(value, str | int | float) and not _is_bool(value):
                q = parse_quantity(value)
                if q is not None and q >= 0:
                    return str(value)
            raise self.r.bad(
                node,
                f"must be a resource quantity like 32, 500m or 256Gi, got {_describe(value)}",
            )
        minimum = param.minimum
        if kind is ParamType.INTEGER:
            return self.integer(node, math.ceil(minimum) if minimum is not None else 0)
        number = self.duration(node) if kind is ParamType.DURATION else self.number(node)
        if minimum is not None and number < minimum:
            shown = format_duration(minimum) if kind is ParamType.DURATION else minimum
            raise self.r.bad(node, f"must be at least {shown}, got {_describe(value)}")
        return number

    def mig(self, node: _Node) -> dict[str, int]:
        out: dict[str, int] = {}
        for profile, child in self.entries_of_mapping(node):
            if not self.mig_profile(child.key_at, node.path, profile):
                continue
            with contextlib.suppress(_Bad):
                out[profile] = self.integer(child, 1, MAX_GPUS_PER_UNIT)
        return out

    def mig_profile(self, at: _Pos, path: str, profile: Any) -> bool:
        if isinstance(profile, str) and _MIG.fullmatch(profile):
            return True
        self.r.add(
            at,
            path,
            f"invalid MIG profile {_describe(profile)}",
            "expected a form like 1g.10gb or 3g.40gb",
        )
        return False

    def entries_of_mapping(self, node: _Node) -> Iterator[tuple[Any, _Node]]:
        if node.value is None:
            return iter(())
        if not isinstance(node.value, dict):
            raise self.r.bad(node, f"must be a mapping, got {_describe(node.value)}")
        return self.entries(node)

    # Rules.

    def rules(self, node: _Node) -> tuple[Rule, ...]:
        if isinstance(node.value, dict):
            raise self.r.bad(
                node, "must be a list of rules, got a mapping", "start each rule with '- name:'"
            )
        self.list_of(node, " of rules")
        if not node.value:
            raise self.r.bad(node, "must have at least one rule")
        out: list[Rule] = []
        for item in self.items(node):
            with contextlib.suppress(_Bad):
                out.append(self.rule(item))
        return tuple(out)

    def rule(self, node: _Node) -> Rule:
        f = self.fields(node, _RULE_KEYS, ("name", "triggers", "burst"), section=False)
        name = f.take("name", self.rule_name, "")
        limits = f.take("limits", lambda n: self.limits(n, outer=self.global_limits), Limits())
        return Rule(
            name=name,
            match=f.take("match", self.match, Match()),
            triggers=f.take_many("triggers", self.triggers),
            burst=f.take("burst", lambda n: self.burst(n, limits), Burst(ladder=())),
            release=f.take("release", self.release, Release()),
            limits=limits,
            # A rule inherits the file's cooldown, field by field.
            cooldown=f.take(
                "cooldown", lambda n: self.cooldown(n, self.default_cooldown), self.default_cooldown
            ),
            dry_run=f.take("dry_run", self.boolean, False),
        )

    def rule_name(self, node: _Node) -> str:
        name = self.string(node)
        if not _NAME.fullmatch(name):
            raise self.r.bad(node, f"invalid rule name {_describe(name)}", _NAME_RULE)
        if name in self.rule_names:
            raise self.r.bad(
                node, f"duplicate rule name '{name}' (first used by {self.rule_names[name]})"
            )
        self.rule_names[name] = node.path.rsplit(".", 1)[0]
        return name

    def match(self, node: _Node) -> Match:
        f = self.fields(node, _MATCH_KEYS, section=True)
        namespaces = f.take_many("namespaces", lambda n: self.strings(n, self.namespace))
        labels = f.take_many("labels", self.labels)
        selector = f.take_many("selector", self.selector)

        def mig_check(item: _Node, profile: str) -> bool:
            return self.mig_profile(item.at, item.path, profile)

        return Match(
            namespaces=frozenset(namespaces),
            labels=labels + selector,
            priority_classes=frozenset(f.take_many("priority_classes", self.strings)),
            gpu_models=frozenset(f.take_many("gpu_models", self.strings)),
            mig_profiles=frozenset(
                f.take_many("mig_profiles", lambda n: self.strings(n, mig_check))
            ),
            qos=frozenset(f.take_many("qos", self.strings)),
        )

    def namespace(self, node: _Node, name: str) -> bool:
        if _NAME.fullmatch(name):
            return True
        self.r.add(node.at, node.path, f"invalid namespace name {_describe(name)}", _NAME_RULE)
        return False

    def label_key(self, at: _Pos, path: str, key: Any) -> bool:
        if isinstance(key, str):
            prefix, _, name = key.rpartition("/")
            if _LABEL_NAME.fullmatch(name) and (
                not prefix or (len(prefix) <= 253 and _LABEL_PREFIX.fullmatch(prefix))
            ):
                return True
        self.r.add(
            at,
            path,
            f"invalid label key {_describe(key)}",
            "a label key is an optional DNS prefix and '/', then up to 63 letters, digits, "
            "'-', '_' or '.'",
        )
        return False

    def labels(self, node: _Node) -> tuple[LabelRequirement, ...]:
        out: list[LabelRequirement] = []
        for key, child in self.entries_of_mapping(node):
            if not self.label_key(child.key_at, node.path, key):
                continue
            try:
                value = self.label_value(child)
            except _Bad:
                continue
            out.append(LabelRequirement(key=key, operator="In", values=frozenset({value})))
        return tuple(out)

    def label_value(self, node: _Node) -> str:
        value = node.value
        if not isinstance(value, str):
            hint = "" if isinstance(value, dict | list) else "put it in quotes to make it text"
            raise self.r.bad(node, f"must be a string, got {_describe(value)}", hint)
        if value and not _LABEL_NAME.fullmatch(value):
            raise self.r.bad(
                node,
                f"invalid label value {_describe(value)}",
                "up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter "
                "or digit",
            )
        return str(value)

    def selector(self, node: _Node) -> tuple[LabelRequirement, ...]:
        self.list_of(node, " of label requirements")
        out: list[LabelRequirement] = []
        for item in self.items(node):
            with contextlib.suppress(_Bad):
                out.append(self.requirement(item))
        return tuple(out)

    def requirement(self, node: _Node) -> LabelRequirement:
        f = self.fields(node, _SELECTOR_KEYS, ("key", "operator"), section=False)
        key = f.take("key", self.string, "")
        key_node = f.point("key")
        if "key" in f.ok and not self.label_key(key_node.at, key_node.path, key):
            del f.ok["key"]
        operator = f.take("operator", lambda n: self.choice(n, OPERATORS, "operators"), "")
        values = f.take_many("values", lambda n: self.strings(n, self.selector_value))
        if operator in ("In", "NotIn"):
            if "values" not in f:
                self.r.add(node.key_at, node.path, f"operator {operator} needs a list of values")
            elif "values" in f.ok and not values:
                self.r.add(f.point("values").at, f.point("values").path, "must not be empty")
        elif operator and "values" in f:
            values_node = f.point("values")
            self.r.add(
                values_node.at,
                values_node.path,
                f"must not be set for operator {operator}",
                "Exists and DoesNotExist test only the key",
            )
        if "key" not in f.ok or "operator" not in f.ok:
            raise _Bad
        return LabelRequirement(key=key, operator=operator, values=frozenset(values))

    def selector_value(self, node: _Node, value: str) -> bool:
        try:
            self.label_value(node)
        except _Bad:
            return False
        return True

    # Triggers.

    def triggers(self, node: _Node) -> tuple[Trigger, ...]:
        self.list_of(node, " of triggers")
        if not node.value:
            raise self.r.bad(
                node,
                "a rule needs at least one trigger",
                f"add one of: {', '.join(_KINDS)}",
            )
        out: list[Trigger] = []
        for item in self.items(node):
            with contextlib.suppress(_Bad):
                out.append(self.trigger(item))
        return tuple(out)

    def trigger(self, node: _Node) -> Trigger:
        value = node.value
        kinds_hint = f"kinds: {', '.join(_KINDS)}"
        if not isinstance(value, dict):
            hint = (
                f"write '{value}: {{}}' for its defaults"
                if isinstance(value, str) and value in _KINDS
                else kinds_hint
            )
            raise self.r.bad(
                node, f"must be a mapping with one trigger kind, got {_describe(value)}", hint
            )
        keys = list(value)
        if not keys:
            raise self.r.bad(node, "must name one trigger kind", kinds_hint)
        kind = keys[0]
        for extra in keys[1:]:
            at = _key_pos(value, extra, node.at)
            if extra in _KINDS:
                message = f"a trigger has one kind; move '{extra}' to its own list item"
                self.r.add(at, node.path, message)
            elif isinstance(kind, str) and extra in _TRIGGER_KEYS.get(kind, ()):
                self.r.add(
                    at, node.path, f"unknown key {_describe(extra)}", f"indent it under '{kind}'"
                )
            else:
                self.r.add(
                    at,
                    node.path,
                    f"unknown key {_describe(extra)}",
                    _suggest(extra, _KINDS, "kinds"),
                )
        body = _entry(self.r, node, value, kind)
        if not isinstance(kind, str) or kind not in _KINDS:
            self.r.add(
                body.key_at,
                node.path,
                f"unknown trigger kind {_describe(kind)}",
                _suggest(kind, _KINDS, "kinds"),
            )
            raise _Bad
        f = self.fields(body, _TRIGGER_KEYS[kind], _TRIGGER_REQUIRED[kind], section=True)
        match TriggerKind(kind):
            case TriggerKind.PENDING:
                return self.pending(f)
            case TriggerKind.OLDEST_PENDING:
                older_than = f.take("older_than", self.duration, None)
                if older_than is None:
                    raise _Bad
                return OldestPendingTrigger(older_than=older_than)
            case TriggerKind.UTILIZATION:
                query = f.take("query", self.string, None)
                above = f.take("above", lambda n: self.number(n, maximum=100), None)
                for_s = f.take("for", self.duration, 300.0)
                if query is None or above is None:
                    raise _Bad
                return UtilizationTrigger(query=query, above=above, for_s=for_s)
            case TriggerKind.SCHEDULE:
                timezone = f.take("timezone", self.timezone, "UTC")
                cron = f.take("cron", lambda n: self.cron(n, timezone), None)
                duration = f.take("duration", lambda n: self.duration(n, positive=True), None)
                if cron is None or duration is None:
                    raise _Bad
                return ScheduleTrigger(cron=cron, duration=duration, timezone=timezone)

    def pending(self, f: _Fields) -> PendingTrigger:
        """A pending trigger, with its cost-aware wait (``per_gpu``, ``per_gpu_hour``,
        ``max_for``, ``default_runtime``; see ``PendingTrigger``)."""
        trigger = PendingTrigger(
            gpus=f.take("gpus", lambda n: self.number(n, above=0), 1.0),
            for_s=f.take("for", self.duration, 0.0),
            per_gpu=f.take("per_gpu", self.duration, 0.0),
            per_gpu_hour=f.take("per_gpu_hour", self.duration, 0.0),
            max_for=f.take("max_for", self.duration, None),
            default_runtime=f.take("default_runtime", self.duration, 0.0),
        )
        if trigger.max_for is not None:
            self._order(
                f,
                "for",
                "max_for",
                trigger.for_s,
                trigger.max_for,
                format_duration,
                point_at_high=True,
            )
        for key in ("max_for", "default_runtime"):
            if key in f.ok and not trigger.cost_aware:
                node = f.point(key)
                self.r.add(
                    node.at,
                    node.path,
                    f"'{key}' has no effect without per_gpu or per_gpu_hour",
                    "add per_gpu or per_gpu_hour, or remove it",
                )
        return trigger

    def timezone(self, node: _Node) -> str:
        name = self.string(node)
        try:
            zoneinfo.ZoneInfo(name)
        except Exception:
            # ZoneInfo raises KeyError, ValueError or OSError subclasses depending on how the
            # name is wrong; all mean the same here.
            close = difflib.get_close_matches(name[:100], _timezones(), n=1)
            hint = (
                f"did you mean '{close[0]}'?"
                if close
                else "use an IANA time zone name like Europe/Rome or UTC"
            )
            raise self.r.bad(node, f"unknown time zone {_describe(name)}", hint) from None
        return name

    def cron(self, node: _Node, timezone: str) -> str:
        expr = self.string(node)
        try:
            trigger = cron_trigger(expr, timezone)
        except Exception as err:
            hint = _CRON_FIELDS if "number of fields" in str(err) else ""
            raise self.r.bad(
                node, f"invalid cron expression {_describe(expr)}: {err}", hint
            ) from None
        try:
            probe = _CRON_PROBE.replace(tzinfo=zoneinfo.ZoneInfo(timezone))
            fires = trigger.get_next_fire_time(None, probe) is not None
        except Exception:
            fires = False
        if not fires:
            raise self.r.bad(node, f"cron expression {_describe(expr)} never fires")
        return expr

    # Bursting and releasing.

    def burst(self, node: _Node, limits: Limits) -> Burst:
        f = self.fields(node, _BURST_KEYS, ("ladder",), section=False)
        burst = Burst(
            ladder=f.take_many("ladder", self.ladder),
            max_units_per_step=f.take("max_units_per_step", lambda n: self.integer(n, 1), 8),
            min_gpus=f.take("min_gpus", lambda n: self.integer(n, 0), 0),
        )
        # Keeping more GPUs warm than the rule may ever hold cannot be done.
        cap: int | None = limits.max_gpus
        whose = "this rule's limits.max_gpus"
        if cap is None:
            cap, whose = self.global_limits.max_gpus, "the global limits.max_gpus"
        if "min_gpus" in f.ok and cap is not None and burst.min_gpus > cap:
            at = f.point("min_gpus")
            self.r.add(at.at, at.path, f"must be at most {whose} ({cap}), got {burst.min_gpus}")
        return burst

    def ladder(self, node: _Node) -> tuple[str, ...]:
        names = self.target_names
        defined = _suggest(None, names or (), "defined targets")
        self.list_of(node, " of target names")
        if not node.value:
            raise self.r.bad(node, "must name at least one target", defined)
        out: list[str] = []
        first: dict[str, str] = {}
        for item in self.items(node):
            name = item.value
            if not isinstance(name, str):
                self.r.add(item.at, item.path, f"must be a target name, got {_describe(name)}")
            elif name in first:
                self.r.add(
                    item.at, item.path, f"duplicate target '{name}' (first at {first[name]})"
                )
            elif names is not None and name not in names:
                self.r.add(
                    item.at,
                    item.path,
                    f"unknown target {_describe(name)}",
                    _suggest(name, names, "defined targets", always_list=True),
                )
                first[name] = item.path.rsplit(".", 1)[-1]
            else:
                first[name] = item.path.rsplit(".", 1)[-1]
                out.append(name)
        return tuple(out)

    def release(self, node: _Node) -> Release:
        f = self.fields(node, _RELEASE_KEYS, section=True)
        base = Release()
        mode, max_wait = f.take("drain", self.drain, (base.drain_mode, base.max_wait))
        return Release(
            idle_for=f.take("idle_for", self.duration, base.idle_for),
            validation=f.take("validation", self.duration, base.validation),
            drain_mode=mode,
            max_wait=max_wait,
        )

    def drain(self, node: _Node) -> tuple[DrainMode, float]:
        f = self.fields(node, _DRAIN_KEYS, section=True)
        base = Release()
        mode = f.take("mode", lambda n: self.choice(n, _DRAIN_MODES, "modes"), str(base.drain_mode))
        return DrainMode(mode), f.take("max_wait", self.duration, base.max_wait)

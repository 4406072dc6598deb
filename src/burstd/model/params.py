"""How a provider declares the ``params`` it accepts, so the rules loader can check them.

A provider owns its settings, but a typo in them should be found by ``burstd validate`` with
the file, line and column, not by a provider call an hour later. Each provider therefore
declares its ``params`` as data — a mapping of key to ``Param`` — and the loader walks the
file's ``params:`` against it, reporting unknown keys (with "did you mean" hints), wrong types,
out-of-range values and missing required keys exactly like the rest of the file. The provider
then receives plain values with every default filled in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ParamType(StrEnum):
    STRING = "string"
    """Non-empty text."""
    INTEGER = "integer"
    """A whole number (``minimum`` applies)."""
    NUMBER = "number"
    """A finite number (``minimum`` applies)."""
    BOOLEAN = "boolean"
    DURATION = "duration"
    """``30s``, ``5m``, ``1h30m`` or a number of seconds; the provider gets seconds."""
    QUANTITY = "quantity"
    """A Kubernetes quantity (``32``, ``256Gi``, ``500m``), kept as text."""
    MAPPING = "mapping"
    """A mapping with the known keys ``fields``."""
    MAP = "map"
    """A mapping of free keys, each value of type ``item`` (labels, extra variables…)."""
    LIST = "list"
    """A list, each element of type ``item``."""
    ANY = "any"
    """Anything YAML can say, passed through unchecked (a module's own variables)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Param:
    """One key of a provider's ``params`` (or of a mapping inside them).

    ``default`` is what the provider receives when the key is left out (``None``: nothing is
    filled in). ``choices`` restricts a string; ``minimum`` a number, integer or duration.
    """

    type: ParamType
    doc: str
    required: bool = False
    default: Any = None
    minimum: float | None = None
    choices: tuple[str, ...] = ()
    fields: Mapping[str, Param] = field(default_factory=dict)
    item: Param | None = None


ParamSchema = Mapping[str, Param]
"""A provider's whole ``params``: key → what it accepts."""


def with_defaults(schema: ParamSchema, given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` with each missing key of ``schema`` that has a default filled in, recursively
    for nested mappings. Used by the loader after checking, and by code that builds params
    without a file (tests, the simulator)."""
    out = dict(given)
    for key, param in schema.items():
        if key not in out:
            if param.type is ParamType.MAPPING and param.fields and param.default is None:
                nested = with_defaults(param.fields, {})
                if nested:
                    out[key] = nested
            elif param.default is not None:
                out[key] = param.default
        elif param.type is ParamType.MAPPING and isinstance(out[key], Mapping):
            out[key] = with_defaults(param.fields, out[key])
    return out

"""Kubernetes resource quantities (``2``, ``500m``, ``256Gi``, ``1e3``) as numbers.

Pure, shared by the watch (reading pods and nodes) and the providers (describing the node a
unit will bring), so both read ``memory: 256Gi`` the same way.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_QUANTITY = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|([a-zA-Z]*))")


def parse_quantity(value: object) -> Decimal | None:
    """A Kubernetes resource quantity (``2``, ``"500m"``, ``"1Gi"``, ``"1e3"``) as a number,
    or ``None`` when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    m = _QUANTITY.fullmatch(value.strip())
    if m is None:
        return None
    number, exponent, suffix = m.groups()
    try:
        base = Decimal(number)
        if exponent:
            return base * Decimal(10) ** int(exponent[1:])
    except (InvalidOperation, ValueError):
        return None
    if suffix == "m":
        return base / 1000
    if suffix in _BINARY:
        return base * _BINARY[suffix]
    if suffix in _DECIMAL:
        return base * _DECIMAL[suffix]
    return None


def base_units(resource: str, value: object) -> int | None:
    """``value`` of ``resource`` in the units burstd compares: millicores for ``cpu``, whole
    units (bytes, counts) for everything else, rounded down; ``None`` when not a quantity."""
    q = parse_quantity(value)
    if q is None or q < 0:
        return None
    try:
        return int(q * 1000) if resource == "cpu" else int(q)
    except (OverflowError, ValueError):
        return None

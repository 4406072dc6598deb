"""Params more than one kind accepts for the nodes its units bring: taints and capacity.

kwok's ``node_template``, InterLink's site description and Terraform's ``node_taints`` all
describe taints the same way (``{key, value, effect}``), and kwok and InterLink give a node's
capacity other than its GPUs as quantities over defaults. They share the schema and the
reading here, so a taint is checked, defaulted and read alike whichever kind names it. Light,
like the kinds' own modules: the rules loader and the simulator read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from burstd.model import Taint
from burstd.model.params import Param, ParamType

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

TEXT = Param(type=ParamType.STRING, doc="")
"""Free text: the item of a map of labels or a list of names."""

TAINT = Param(
    type=ParamType.MAPPING,
    doc="a taint",
    fields={
        "key": Param(type=ParamType.STRING, doc="taint key", required=True),
        "value": Param(type=ParamType.STRING, doc="taint value", default=""),
        "effect": Param(
            type=ParamType.STRING, doc="taint effect", choices=TAINT_EFFECTS, default="NoSchedule"
        ),
    },
)


def taints_param(doc: str) -> Param:
    """A list of taints, documented as ``doc``."""
    return Param(type=ParamType.LIST, doc=doc, item=TAINT)


def taints(items: Iterable[Any] | None) -> tuple[Taint, ...]:
    """The taints of a ``taints_param`` value; entries without a key are skipped."""
    return tuple(
        Taint(
            key=str(t["key"]),
            value=str(t.get("value", "")),
            effect=str(t.get("effect", "NoSchedule")),
        )
        for t in items or ()
        if isinstance(t, Mapping) and "key" in t
    )


def capacity(given: Mapping[str, Any], defaults: Mapping[str, str]) -> dict[str, str]:
    """A node's capacity other than its GPUs, as quantities: ``defaults`` (resource →
    quantity), each replaced by ``given``'s key of that name (``-`` written ``_``: kwok's
    ``ephemeral_storage``), plus ``given``'s ``resources`` (more extended resources)."""
    out = dict(defaults)
    for resource in defaults:
        key = resource.replace("-", "_")
        if given.get(key):
            out[resource] = str(given[key])
    out.update({str(k): str(v) for k, v in (given.get("resources") or {}).items()})
    return out

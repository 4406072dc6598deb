"""Warnings about a valid rules file: things that load fine but will not do what the file
seems to say (say, a rung whose nodes the rule's pods cannot tolerate). Each provider kind
says what it warns of (``ProviderKind.rule_warnings``); ``validate`` and ``explain`` print it.
"""

from __future__ import annotations

from burstd.providers.base import UnitShape
from burstd.providers.registry import KINDS
from burstd.rules.types import RuleSet


def rule_warnings(ruleset: RuleSet) -> list[str]:
    """Every provider's warnings for every rule of ``ruleset``, in file order."""
    out: list[str] = []
    for rule in ruleset.rules:
        for name in rule.burst.ladder:
            target = ruleset.targets.get(name)
            kind = KINDS.get(target.provider) if target is not None else None
            if target is None or kind is None or kind.rule_warnings is None:
                continue
            shape = UnitShape(
                target=name,
                gpus=target.gpus_per_unit,
                gpu_model=target.gpu_model,
                mig=dict(target.mig),
            )
            out.extend(kind.rule_warnings(rule.name, shape, target.params))
    return out

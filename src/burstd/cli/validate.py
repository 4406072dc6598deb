"""``burstd validate``: check rules files and report every problem at once.

Beyond what the loader refuses, it warns about a file that is valid but can never do what it
says: a rule whose GPU or cost cap is smaller than one unit of every target on its ladder never
bursts (the planner caps the units it asks for at what the limit leaves, which is none).
A warning does not change the exit code.
"""

from __future__ import annotations

from typing import Any

import click
from ruamel.yaml import YAML

from burstd.cli.notes import rule_warnings
from burstd.inputs import RULES_MAX_BYTES, read_text
from burstd.rules.loader import RulesError, load_rules
from burstd.rules.types import Limits, Rule, RuleSet, Target


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
def validate(files: tuple[str, ...]) -> None:
    """Check rules FILES; print each problem as file:line:column: field: message."""
    bad = 0
    for path in files:
        try:
            ruleset = load_rules(path)
        except RulesError as e:
            bad += 1
            for problem in e.problems:
                click.echo(str(problem), err=True)
            continue
        for warning in never_bursts(ruleset, path):
            click.echo(warning, err=True)
        click.echo(
            f"{path}: ok — {len(ruleset.targets)} target(s), {len(ruleset.rules)} rule(s)"
            + (", dry run" if ruleset.dry_run else "")
        )
        for warning in rule_warnings(ruleset):
            click.echo(f"{path}: warning: {warning}", err=True)
    if bad:
        raise SystemExit(1)


def never_bursts(ruleset: RuleSet, path: str) -> list[str]:
    """A warning, as ``file:line:column: rules[i].burst.ladder: warning: ...``, for each rule
    whose limits leave no room for one unit of any target on its ladder."""
    out: list[str] = []
    for i, rule in enumerate(ruleset.rules):
        reasons = [
            _too_big(ruleset.targets[name], rule, ruleset.limits) for name in rule.burst.ladder
        ]
        if not rule.burst.ladder or not all(reasons):
            continue
        line, column = _ladder_position(path, i)
        out.append(
            f"{path}:{line}:{column}: rules[{i}].burst.ladder: warning: rule '{rule.name}' can "
            f"never burst: {'; '.join(r for r in reasons if r)}"
        )
    return out


def _too_big(target: Target, rule: Rule, outer: Limits) -> str:
    """Why one unit of ``target`` is over ``rule``'s caps, or "" if it fits."""
    gpus = target.gpus_per_unit
    cost = gpus * target.price_per_gpu_hour
    for scope, limits in (("the rule's", rule.limits), ("the global", outer)):
        if limits.max_gpus is not None and gpus > limits.max_gpus:
            return (
                f"one unit of '{target.name}' is {gpus} GPU(s), more than {scope} "
                f"limits.max_gpus ({limits.max_gpus})"
            )
        if limits.max_cost_per_hour is not None and cost > limits.max_cost_per_hour:
            return (
                f"one unit of '{target.name}' costs {cost:g}/h, more than {scope} "
                f"limits.max_cost_per_hour ({limits.max_cost_per_hour:g})"
            )
    return ""


def _ladder_position(path: str, index: int) -> tuple[int, int]:
    """Line and column (1-based) of ``rules[index].burst.ladder`` in the file, or 1:1."""
    try:
        doc: Any = YAML(typ="rt").load(read_text(path, limit=RULES_MAX_BYTES))
        burst = doc["rules"][index]["burst"]
        line, column = burst.lc.value("ladder")
    except Exception:
        # The file was just read and found valid; if it changed since, point at its start.
        return 1, 1
    return int(line) + 1, int(column) + 1

"""``burstd explain``: what burstd would decide for a saved snapshot, and why."""

from __future__ import annotations

import json
from pathlib import Path

import click

from burstd.cli.notes import rule_warnings
from burstd.model import NoOp
from burstd.model.serde import SnapshotError, snapshot_from_dict
from burstd.plan.planner import plan
from burstd.rules.loader import RulesError, load_rules


@click.command()
@click.option(
    "--snapshot",
    "snapshot_path",
    required=True,
    type=click.Path(),
    help="A snapshot written as JSON (see docs/snapshot.md).",
)
@click.option("--rules", "rules_path", required=True, type=click.Path(), help="A rules file.")
@click.option(
    "--at",
    "at",
    type=float,
    default=None,
    help="The time to decide at (seconds); default: the snapshot's own 'now'.",
)
def explain(snapshot_path: str, rules_path: str, at: float | None) -> None:
    """Print the decisions for a snapshot, each with its reason, and what each rule saw."""
    try:
        ruleset = load_rules(rules_path)
    except RulesError as e:
        for problem in e.problems:
            click.echo(str(problem), err=True)
        raise SystemExit(1) from None
    try:
        data = json.loads(Path(snapshot_path).read_text(encoding="utf-8"))
        snapshot, taken = snapshot_from_dict(data)
    except OSError as e:
        raise click.ClickException(f"{snapshot_path}: cannot read: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise click.ClickException(f"{snapshot_path}:{e.lineno}:{e.colno}: {e.msg}") from None
    except SnapshotError as e:
        raise click.ClickException(f"{snapshot_path}: {e}") from None
    now = at if at is not None else taken
    if now is None:
        raise click.ClickException(f"{snapshot_path}: no 'now' field; pass --at")
    result = plan(snapshot, ruleset, now)
    for warning in rule_warnings(ruleset):
        click.echo(f"warning: {warning}")
    for view in result.views:
        state = "fires" if view.fired else "quiet"
        click.echo(f"rule {view.rule.name}: {len(view.demand)} pod(s) pending, {state}: {view.why}")
    actions = result.actions
    click.echo(f"{len(actions)} action(s):" if actions else "no action:")
    for decision in result.decisions:
        marker = "  ·" if isinstance(decision, NoOp) else "  →"
        click.echo(f"{marker} {decision}")

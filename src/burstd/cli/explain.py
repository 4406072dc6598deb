"""``burstd explain``: what burstd would decide for a saved snapshot, and why."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import click

from burstd.cli.notes import rule_warnings
from burstd.cli.options import load_rules_or_exit, seconds_option
from burstd.inputs import SNAPSHOT_MAX_BYTES, InputError, read_text
from burstd.model import NoOp
from burstd.model.durations import format_duration
from burstd.model.serde import MAX_TIME, SnapshotError, check_targets, snapshot_from_dict
from burstd.plan.planner import plan


@click.command()
@click.option(
    "--snapshot",
    "snapshot_path",
    required=True,
    type=click.Path(),
    help="A snapshot written as JSON (see docs/snapshot.md).",
)
@click.option("--rules", "rules_path", required=True, type=click.Path(), help="A rules file.")
@seconds_option(
    "--at", 0, MAX_TIME, help="The time to decide at (seconds); default: the snapshot's own 'now'."
)
def explain(snapshot_path: str, rules_path: str, at: float | None) -> None:
    """Print the decisions for a snapshot, each with its reason, and what each rule saw."""
    ruleset = load_rules_or_exit(rules_path)
    try:
        snapshot, taken = snapshot_from_dict(_read_json(snapshot_path))
        check_targets(snapshot, ruleset.targets)
    except SnapshotError as e:
        _fail(f"{snapshot_path}: {e}")
    now = at if at is not None else taken
    if now is None:
        _fail(f"{snapshot_path}: now: missing; pass --at")
    result = plan(snapshot, ruleset, now)
    for warning in rule_warnings(ruleset):
        click.echo(f"warning: {warning}")
    for name, status in sorted(snapshot.targets.items()):
        if status.held_back:
            click.echo(f"target {name}: held back, nothing is bursted onto it: {status.held_back}")
        if status.backoff_until > now:
            click.echo(
                f"target {name}: in backoff for {format_duration(status.backoff_until - now)} "
                f"after {status.consecutive_failures} failure(s): {status.last_error}"
            )
        for found in status.problems:
            click.echo(f"target {name}: problem: {found}")
    unservable: dict[str, list[str]] = {}
    for u in result.unservable:
        unservable.setdefault(u.rule, []).append(str(u))
    for view in result.views:
        state = "fires" if view.fired else "quiet"
        click.echo(f"rule {view.rule.name}: {len(view.demand)} pod(s) pending, {state}: {view.why}")
        lines = unservable.get(view.rule.name, [])
        if lines:
            click.echo(f"  {len(lines)} pod(s) unservable (no new unit would take them):")
        for line in lines:
            click.echo(f"  ✗ {line}")
    for m in snapshot.misfits:
        if m.until > now:
            click.echo(
                f"safety net: {m.pod} was not placed on unit {m.unit}; not bursting for it on "
                f"{m.target} for {format_duration(m.until - now)} (miss {m.misses})"
            )
    actions = result.actions
    click.echo(f"{len(actions)} action(s):" if actions else "no action:")
    for decision in result.decisions:
        marker = "  ·" if isinstance(decision, NoOp) else "  →"
        click.echo(f"{marker} {decision}")


def _fail(message: str) -> NoReturn:
    click.echo(message, err=True)
    raise SystemExit(1)


def _read_json(path: str) -> Any:
    """The JSON document in the file at ``path``; any reason it is not one ends the command."""
    try:
        return json.loads(read_text(path, limit=SNAPSHOT_MAX_BYTES, what="snapshot"))
    except InputError as e:
        _fail(str(e))
    except json.JSONDecodeError as e:
        _fail(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}")
    except RecursionError:
        _fail(f"{path}: invalid JSON: nested too deeply")
    except ValueError as e:
        # An integer of more than 4,300 digits, which Python refuses to read.
        _fail(f"{path}: invalid JSON: {e}")

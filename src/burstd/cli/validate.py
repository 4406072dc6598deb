"""``burstd validate``: check rules files and report every problem at once."""

from __future__ import annotations

import click

from burstd.cli.notes import rule_warnings
from burstd.rules.loader import RulesError, load_rules


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
        click.echo(
            f"{path}: ok — {len(ruleset.targets)} target(s), {len(ruleset.rules)} rule(s)"
            + (", dry run" if ruleset.dry_run else "")
        )
        for warning in rule_warnings(ruleset):
            click.echo(f"{path}: warning: {warning}", err=True)
    if bad:
        raise SystemExit(1)

"""The ``burstd`` command: one module a subcommand, imported only when that subcommand runs.

Subcommands parse arguments, load settings and hand over to the app or the simulator; they
print what a person needs and never a traceback for bad input (exit code 1, or 2 for usage).
Loading lazily keeps ``burstd validate`` quick and ``burstd run`` free of the simulator's
plotting libraries (matplotlib alone is ~40 MB of a daemon that should stay small).
"""

from __future__ import annotations

import importlib

import click

COMMANDS = {
    "validate": "burstd.cli.validate:validate",
    "explain": "burstd.cli.explain:explain",
    "simulate": "burstd.cli.simulate:simulate",
    "run": "burstd.cli.run:run",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported when used (or when help lists them)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="burstd")
def main() -> None:
    """burstd: borrow GPUs when GPU work queues up, give them back when it drains."""

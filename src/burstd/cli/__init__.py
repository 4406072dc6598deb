"""The ``burstd`` command: one module a subcommand, imported only when that subcommand runs.

Subcommands parse arguments, load settings and hand over to the app or the simulator; they
print what a person needs and never a traceback for bad input (exit code 1, or 2 for usage).
Loading lazily keeps ``burstd validate`` quick and ``burstd run`` free of the simulator's
plotting libraries (matplotlib alone is ~40 MB of a daemon that should stay small).
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import sys
from typing import Any, NoReturn

import click

COMMANDS = {
    "validate": "burstd.cli.validate:validate",
    "explain": "burstd.cli.explain:explain",
    "simulate": "burstd.cli.simulate:simulate",
    "run": "burstd.cli.run:run",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported when used (or when help lists them).

    Output that cannot be written (a closed pipe, as in ``burstd simulate | head``; a full
    disk; ``>/dev/full``) ends the command with one line on stderr and exit code 1, where
    Python would print a traceback, or an "Exception ignored" note at exit.
    """

    def main(self, *args: Any, **kwargs: Any) -> NoReturn:
        try:
            super().main(*args, **kwargs)
        except OSError as e:
            code = 1
            _cannot_write(e)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        else:  # pragma: no cover - standalone mode always exits
            code = 0
        try:
            sys.stdout.flush()
        except OSError as e:
            code = 1
            _cannot_write(e)
        raise SystemExit(code)

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


def _cannot_write(error: OSError) -> None:
    """Report an unwritable stdout (or re-raise another OSError) and stop writing to it."""
    if error.errno not in (errno.EPIPE, errno.ENOSPC, errno.EIO, errno.EBADF) and not isinstance(
        error, BrokenPipeError
    ):
        raise error
    # Further writes, and the flush at exit, go nowhere instead of failing again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError):
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    if error.errno != errno.EPIPE:
        # A closed pipe is the reader's choice (``| head``); a full disk is worth a word.
        with contextlib.suppress(OSError):
            click.echo(f"burstd: cannot write the output: {error.strerror or error}", err=True)

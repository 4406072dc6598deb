"""The ``burstd`` command: one module a subcommand, registered here.

Subcommands parse arguments, load settings and hand over to the app or the simulator; they
print what a person needs and never a traceback for bad input (exit code 1, or 2 for usage).
"""

from __future__ import annotations

import click

from burstd.cli.explain import explain
from burstd.cli.simulate import simulate
from burstd.cli.validate import validate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="burstd")
def main() -> None:
    """burstd: borrow GPUs when GPU work queues up, give them back when it drains."""


main.add_command(validate)
main.add_command(explain)
main.add_command(simulate)

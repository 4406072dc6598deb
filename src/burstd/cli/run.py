"""``burstd run``: the daemon."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

from burstd.app import App, Settings, configure_logging, default_state_dir
from burstd.cli.options import Number
from burstd.rules.loader import RulesError, load_rules
from burstd.sources.kube.client import KubeconfigError, check_kubeconfig


@click.command()
@click.option(
    "--config",
    "config",
    required=True,
    type=click.Path(dir_okay=False),
    help="The rules file (reloaded on SIGHUP and when it changes).",
)
@click.option(
    "--kubeconfig",
    default=None,
    type=click.Path(dir_okay=False),
    help="Kubeconfig; default $KUBECONFIG or ~/.kube/config, else the in-cluster account.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one object a line, with the fields of each event.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@click.option(
    "--grace-period",
    type=Number(0, 3600, unit="seconds"),
    default=30.0,
    show_default=True,
    help="Seconds provider calls in flight may finish after SIGTERM.",
)
@click.option(
    "--adopt-interval",
    type=Number(1, 86_400, unit="seconds"),
    default=60.0,
    show_default=True,
    help="Seconds between looks for units burstd made but does not know.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where providers keep their files (one folder a target); default $STATE_DIRECTORY "
    "(set by systemd's StateDirectory=), else ~/.local/state/burstd.",
)
def run(
    config: str,
    kubeconfig: str | None,
    log_format: str,
    log_level: str,
    grace_period: float,
    adopt_interval: float,
    state_dir: str | None,
) -> None:
    """Watch the cluster and borrow GPUs by the rules in --config."""
    configure_logging(log_format, log_level)
    try:
        rules = load_rules(config)
    except RulesError as e:
        for problem in e.problems:
            click.echo(str(problem), err=True)
        raise SystemExit(1) from None
    if kubeconfig is not None:
        # Checked before anything starts, so a wrong path is one line, not a failed daemon.
        try:
            check_kubeconfig(kubeconfig)
        except KubeconfigError as e:
            click.echo(str(e), err=True)
            raise SystemExit(1) from None
    settings = Settings(
        config=Path(config),
        kubeconfig=kubeconfig,
        grace_period=grace_period,
        adopt_interval=adopt_interval,
        state_dir=Path(state_dir or default_state_dir()),
    )
    app = App(settings, rules=rules)
    try:
        asyncio.run(app.run())
    except KubeconfigError as e:
        click.echo(str(e), err=True)
        raise SystemExit(1) from None
    except Exception:
        logging.getLogger("burstd").exception("burstd failed", extra={"event": "failed"})
        raise SystemExit(1) from None

"""``burstd run``: the daemon."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

from burstd.api.ops import ApiSettings, read_token
from burstd.api.server import is_loopback, split_listen
from burstd.app import App, Settings, configure_logging
from burstd.rules.loader import RulesError, load_rules


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
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds provider calls in flight may finish after SIGTERM.",
)
@click.option(
    "--adopt-interval",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds between looks for units burstd made but does not know.",
)
@click.option(
    "--listen",
    default="127.0.0.1:9464",
    show_default=True,
    help="HOST:PORT of the HTTP API (/metrics, /healthz, /readyz, /status, /); 'off': none. "
    "Off loopback, --api-token-file is required.",
)
@click.option(
    "--api-token-file",
    default=None,
    type=click.Path(dir_okay=False),
    help="File holding the bearer token /metrics and /status require.",
)
def run(
    config: str,
    kubeconfig: str | None,
    log_format: str,
    log_level: str,
    grace_period: float,
    adopt_interval: float,
    listen: str,
    api_token_file: str | None,
) -> None:
    """Watch the cluster and borrow GPUs by the rules in --config."""
    configure_logging(log_format, log_level)
    try:
        rules = load_rules(config)
    except RulesError as e:
        for problem in e.problems:
            click.echo(str(problem), err=True)
        raise SystemExit(1) from None
    api = api_settings(listen, api_token_file)
    settings = Settings(
        config=Path(config),
        kubeconfig=kubeconfig,
        grace_period=grace_period,
        adopt_interval=adopt_interval,
        api=api,
    )
    app = App(settings, rules=rules)
    try:
        asyncio.run(app.run())
    except Exception:
        logging.getLogger("burstd").exception("burstd failed", extra={"event": "failed"})
        raise SystemExit(1) from None


def api_settings(listen: str, token_file: str | None) -> ApiSettings:
    """The API's settings from the options, or a usage error that says what to change."""
    token = None
    if token_file is not None:
        try:
            token = read_token(token_file)
        except (OSError, ValueError) as e:
            raise click.BadParameter(str(e), param_hint="--api-token-file") from None
    if listen.strip().lower() in ("", "off", "none"):
        return ApiSettings(listen=None, token=token)
    try:
        host, _ = split_listen(listen)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--listen") from None
    if token is None and not is_loopback(host):
        raise click.BadParameter(
            f"{listen} is not a loopback address: give --api-token-file as well",
            param_hint="--listen",
        )
    return ApiSettings(listen=listen, token=token)

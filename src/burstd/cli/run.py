"""``burstd run``: the daemon."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

from burstd import faults
from burstd.app import App, Settings, configure_logging, default_state_dir
from burstd.rules.loader import RulesError, load_rules
from burstd.sources.kube.lease import LeaseSettings


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
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where providers keep their files (one folder a target); default $STATE_DIRECTORY "
    "(set by systemd's StateDirectory=), else ~/.local/state/burstd.",
)
@click.option(
    "--leader-elect/--no-leader-elect",
    default=False,
    help="Run as one of several replicas: only the holder of a Lease plans and acts.",
)
@click.option(
    "--lease",
    "lease",
    default="burstd/burstd",
    show_default=True,
    metavar="NAMESPACE/NAME",
    help="The Lease for --leader-elect.",
)
@click.option(
    "--lease-timing",
    default="15,10,2",
    show_default=True,
    metavar="DURATION,RENEW,RETRY",
    help="Lease duration, renew deadline and retry period in seconds (client-go's defaults).",
)
@click.option(
    "--memory",
    default=None,
    metavar="file|configmap:NAMESPACE/NAME|none",
    help="Where burstd keeps cooldowns, backoffs and unit timers across restarts; default: "
    "a ConfigMap beside the Lease with --leader-elect, else memory.json in --state-dir.",
)
@click.option("--fault-point", default=None, hidden=True)
@click.option("--fault-action", type=click.Choice(["kill", "pause"]), default="kill", hidden=True)
@click.option("--fault-mark", type=click.Path(dir_okay=False), default=None, hidden=True)
def run(
    config: str,
    kubeconfig: str | None,
    log_format: str,
    log_level: str,
    grace_period: float,
    adopt_interval: float,
    state_dir: str | None,
    leader_elect: bool,
    lease: str,
    lease_timing: str,
    memory: str | None,
    fault_point: str | None,
    fault_action: str,
    fault_mark: str | None,
) -> None:
    """Watch the cluster and borrow GPUs by the rules in --config."""
    configure_logging(log_format, log_level)
    try:
        rules = load_rules(config)
    except RulesError as e:
        for problem in e.problems:
            click.echo(str(problem), err=True)
        raise SystemExit(1) from None
    lease_namespace, _, lease_name = lease.partition("/")
    if not lease_namespace or not lease_name:
        raise click.BadParameter("expected NAMESPACE/NAME", param_hint="--lease")
    election = None
    if leader_elect:
        try:
            duration, renew, retry = (float(x) for x in lease_timing.split(","))
            election = LeaseSettings(
                name=lease_name,
                namespace=lease_namespace,
                lease_duration=duration,
                renew_deadline=renew,
                retry_period=retry,
            )
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--lease-timing") from None
    where = memory or (f"configmap:{lease_namespace}/burstd-memory" if leader_elect else "file")
    if where not in ("file", "none") and not _configmap(where):
        raise click.BadParameter(
            "expected file, none or configmap:NAMESPACE/NAME", param_hint="--memory"
        )
    if fault_point is not None and fault_point not in faults.POINTS:
        raise click.BadParameter(
            f"unknown point; known: {', '.join(faults.POINTS)}", param_hint="--fault-point"
        )
    settings = Settings(
        config=Path(config),
        kubeconfig=kubeconfig,
        grace_period=grace_period,
        adopt_interval=adopt_interval,
        state_dir=Path(state_dir or default_state_dir()),
        leader_election=election,
        memory=where,
        fault_point=fault_point,
        fault_action="pause" if fault_action == "pause" else "kill",
        fault_mark=Path(fault_mark) if fault_mark else None,
    )
    app = App(settings, rules=rules)
    try:
        asyncio.run(app.run())
    except Exception:
        logging.getLogger("burstd").exception("burstd failed", extra={"event": "failed"})
        raise SystemExit(1) from None
    if app.lost_leadership:
        click.echo(
            "burstd: lost the lease; exiting so that a restart comes back as a follower", err=True
        )
        raise SystemExit(1)


def _configmap(where: str) -> bool:
    namespace, _, name = where.removeprefix("configmap:").partition("/")
    return where.startswith("configmap:") and bool(namespace) and bool(name) and "/" not in name

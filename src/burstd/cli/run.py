"""``burstd run``: the daemon."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

from burstd import faults
from burstd.api.ops import ApiSettings, read_token
from burstd.api.server import is_loopback, split_listen
from burstd.app import App, Settings, configure_logging, default_state_dir
from burstd.cli.options import load_rules_or_exit, seconds_option
from burstd.model import DEFAULT_INSTANCE
from burstd.sources.kube.client import KubeconfigError, check_kubeconfig
from burstd.sources.kube.lease import LeaseSettings
from burstd.sources.prometheus import PrometheusSettings, Secret


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
@seconds_option(
    "--grace-period",
    0,
    3600,
    default=30.0,
    help="Seconds provider calls in flight may finish after SIGTERM.",
)
@seconds_option(
    "--adopt-interval",
    1,
    86_400,
    default=60.0,
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
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where providers keep their files (one folder a target); default $STATE_DIRECTORY "
    "(set by systemd's StateDirectory=), else ~/.local/state/burstd.",
)
@click.option(
    "--prometheus-url",
    envvar="BURSTD_PROMETHEUS_URL",
    default=None,
    help="Prometheus to evaluate utilization triggers on [env BURSTD_PROMETHEUS_URL].",
)
@click.option(
    "--prometheus-token-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="File holding a bearer token (re-read at each poll; never logged).",
)
@click.option(
    "--prometheus-token-env",
    default=None,
    metavar="VAR",
    help="Environment variable holding a bearer token.",
)
@click.option("--prometheus-user", default=None, help="Basic-auth user.")
@click.option(
    "--prometheus-password-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="File holding the basic-auth password.",
)
@click.option(
    "--prometheus-password-env",
    default=None,
    metavar="VAR",
    help="Environment variable holding the basic-auth password.",
)
@click.option(
    "--prometheus-ca",
    type=click.Path(dir_okay=False),
    default=None,
    help="CA bundle for an https Prometheus.",
)
@seconds_option("--prometheus-timeout", 0, 600, open_min=True, default=5.0, help="Seconds a query.")
@seconds_option(
    "--prometheus-step",
    1,
    86_400,
    help="Range-query resolution in seconds; default the loop interval.",
)
@click.option(
    "--nvml/--no-nvml",
    default=False,
    show_default=True,
    help="Read nvml: queries from this host's GPUs (needs the nvml extra and the driver).",
)
@seconds_option(
    "--signal-grace",
    0,
    86_400,
    default=60.0,
    help="Seconds a query may lack data before a signal_stale notice is raised.",
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
@click.option(
    "--instance",
    default=DEFAULT_INSTANCE,
    show_default=True,
    envvar="BURSTD_INSTANCE",
    help="This installation's name, on every object it makes; two burstd installations in "
    "one cluster need different names [env BURSTD_INSTANCE].",
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
    listen: str,
    api_token_file: str | None,
    state_dir: str | None,
    prometheus_url: str | None,
    prometheus_token_file: str | None,
    prometheus_token_env: str | None,
    prometheus_user: str | None,
    prometheus_password_file: str | None,
    prometheus_password_env: str | None,
    prometheus_ca: str | None,
    prometheus_timeout: float,
    prometheus_step: float | None,
    nvml: bool,
    signal_grace: float,
    leader_elect: bool,
    lease: str,
    lease_timing: str,
    memory: str | None,
    instance: str,
    fault_point: str | None,
    fault_action: str,
    fault_mark: str | None,
) -> None:
    """Watch the cluster and borrow GPUs by the rules in --config."""
    configure_logging(log_format, log_level)
    rules = load_rules_or_exit(config)
    if kubeconfig is not None:
        # Checked before anything starts, so a wrong path is one line, not a failed daemon.
        try:
            check_kubeconfig(kubeconfig)
        except KubeconfigError as e:
            click.echo(str(e), err=True)
            raise SystemExit(1) from None
    api = api_settings(listen, api_token_file)
    prometheus = None
    if prometheus_url:
        if (prometheus_token_file or prometheus_token_env) and prometheus_user:
            raise click.UsageError("give a bearer token or basic auth, not both")
        prometheus = PrometheusSettings(
            url=prometheus_url,
            bearer_token=_secret(prometheus_token_file, prometheus_token_env),
            username=prometheus_user,
            password=_secret(prometheus_password_file, prometheus_password_env),
            ca_file=Path(prometheus_ca) if prometheus_ca else None,
            timeout=prometheus_timeout,
            step=prometheus_step,
            grace=signal_grace,
        )
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
        api=api,
        state_dir=Path(state_dir or default_state_dir()),
        prometheus=prometheus,
        nvml=nvml,
        leader_election=election,
        memory=where,
        instance=instance,
        fault_point=fault_point,
        fault_action="pause" if fault_action == "pause" else "kill",
        fault_mark=Path(fault_mark) if fault_mark else None,
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
    if app.lost_leadership:
        click.echo(
            "burstd: lost the lease; exiting so that a restart comes back as a follower", err=True
        )
        raise SystemExit(1)


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


def _secret(file: str | None, env: str | None) -> Secret | None:
    if file and env:
        raise click.UsageError("give a secret's file or its environment variable, not both")
    if file:
        return Secret(file=Path(file))
    if env:
        return Secret(env=env)
    return None


def _configmap(where: str) -> bool:
    namespace, _, name = where.removeprefix("configmap:").partition("/")
    return where.startswith("configmap:") and bool(namespace) and bool(name) and "/" not in name

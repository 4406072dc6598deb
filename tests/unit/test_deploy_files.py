"""The files in deploy/: the Grafana dashboard queries only metrics burstd exports, the systemd
unit passes ``systemd-analyze verify`` (Debian's systemd, installed by ``scripts/system-deps``),
and the Kubernetes manifests agree with each other and with the CLI."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from burstd.app import App
from burstd.rules.loader import parse_rules
from tests.unit.test_ops import app  # noqa: F401 - the fixture

DEPLOY = Path(__file__).parents[2] / "deploy"
BURSTD = Path(sys.executable).with_name("burstd")


def exported(a: App) -> set[str]:
    """Every series name burstd's /metrics can carry."""
    names = set()
    for family in a.ops.registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_{s}" for s in ("bucket", "sum", "count")}
        else:
            names.add(family.name)
    return names


def queries(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [
            q
            for k, v in node.items()
            for q in ([v] if k in ("expr", "query") and isinstance(v, str) else queries(v))
        ]
    if isinstance(node, list):
        return [q for v in node for q in queries(v)]
    return []


def test_every_metric_the_dashboard_queries_is_exported(app: App) -> None:  # noqa: F811
    dashboard = json.loads((DEPLOY / "grafana" / "burstd.json").read_text())
    exprs = queries(dashboard)
    used = {m for e in exprs for m in re.findall(r"\bburstd_[a-z_]+\b", e)}
    assert used, "the dashboard queries nothing"
    missing = used - exported(app)
    assert not missing, f"queried but not exported: {sorted(missing)}"
    # What the issue asks it to show.
    for metric in (
        "burstd_pending_gpus",
        "burstd_borrowed_gpus",
        "burstd_units",
        "burstd_cost_per_hour",
        "burstd_decision_latency_seconds_bucket",
        "burstd_provider_calls_total",
    ):
        assert metric in used, metric


def test_the_unit_file_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: scripts/system-deps installs it"
    text = (DEPLOY / "systemd" / "burstd.service").read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=60s",
        "DynamicUser=yes",
        "StateDirectory=burstd",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "Restart=on-failure",
        "EnvironmentFile=-/etc/default/burstd",
    ):
        assert f"\n{line}\n" in text, line
    # verify checks that ExecStart exists: point it at this checkout's burstd.
    unit = tmp_path / "burstd.service"
    unit.write_text(text.replace("/opt/burstd/bin/burstd", str(BURSTD)))

    def verify(path: Path) -> str:
        done = subprocess.run(
            [analyze, "verify", "--man=no", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return f"{done.returncode}{done.stdout}{done.stderr}"

    assert verify(unit) == "0"
    # The check can fail: a typo in a directive is reported.
    bad = tmp_path / "bad" / "burstd.service"
    bad.parent.mkdir()
    bad.write_text(unit.read_text().replace("Type=notify", "Type=notifyy"))
    assert "notifyy" in verify(bad)


def test_the_env_file_options_are_burstd_run_options() -> None:
    env = (DEPLOY / "systemd" / "burstd.env").read_text()
    [opts] = re.findall(r'^BURSTD_OPTS="(.*)"$', env, re.M)
    done = subprocess.run(
        [str(BURSTD), "run", "--config", "/nonexistent.yaml", *opts.split()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # It gets as far as reading the rules file: every option was understood.
    assert done.returncode == 1
    assert "/nonexistent.yaml:1:1: (root): no such file" in done.stderr


def manifests() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for doc in YAML(typ="safe").load_all(path.read_text()):
            out[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return out


def test_the_deployment_is_locked_down_and_matches_its_config() -> None:
    docs = manifests()
    deployment = docs["Deployment/burstd"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["serviceAccountName"] == "burstd"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["limits"]["memory"]
    args = dict(a.split("=", 1) for a in container["args"][1:])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert args["--config"] == f"{mounts['rules']}/rules.yaml"
    assert args["--api-token-file"].startswith(mounts["api-token"] + "/")
    # The rules it ships validate.
    rules = docs["ConfigMap/burstd-rules"]["data"]["rules.yaml"]
    assert parse_rules(rules, "03-configmap.yaml").rules
    # The ServiceMonitor scrapes the port the Service names, with the pod's token.
    monitor = docs["ServiceMonitor/burstd"]["spec"]["endpoints"][0]
    assert monitor["port"] == docs["Service/burstd"]["spec"]["ports"][0]["name"]
    token = next(v for v in pod["volumes"] if v["name"] == "api-token")["secret"]["secretName"]
    assert monitor["authorization"]["credentials"]["name"] == token
    containerfile = (DEPLOY / "kubernetes" / "Containerfile").read_text()
    assert "\nUSER 65532:65532\n" in containerfile


def test_rbac_grants_no_secrets_and_no_wildcards() -> None:
    rules = [(n, r) for n, doc in manifests().items() for r in doc.get("rules", [])]
    assert rules
    for name, rule in rules:
        assert "secrets" not in rule["resources"], name
        assert "*" not in rule["verbs"], name
        assert "*" not in rule["resources"], name

"""deploy/kubernetes on the real control plane: the API server accepts every manifest
(``kubectl apply --dry-run=server``), the ServiceAccount may do exactly what burstd needs and
nothing it should not (``kubectl auth can-i`` as that account), and burstd completes a burst
cycle authenticated by a token of that ServiceAccount (TokenRequest), not the admin
certificate; an admission policy keeps that token off nodes burstd does not own.

The ServiceMonitor kind comes from the Prometheus Operator, which is not installed here; a
minimal CustomResourceDefinition of our own (any spec accepted) stands in for it, so the dry
run checks the object's kind, name and namespace but not the operator's schema."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.integration.kube import (
    REPO,
    TESTENV,
    Kube,
    burstd_in_process,
    eventually,
    node_of,
    phase,
    rules_yaml,
)

pytestmark = pytest.mark.integration

MANIFESTS = REPO / "deploy" / "kubernetes"
SA = "system:serviceaccount:burstd:burstd"
DENIED = r"HTTP 403.*burstd-owned-nodes"

SERVICEMONITOR_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors,
          singular: servicemonitor}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"""


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    done = subprocess.run(
        [str(TESTENV), "kubectl", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@pytest.fixture(scope="module")
def installed(kubeconfig: Path) -> None:
    """The Namespace, ServiceAccount and RBAC applied for real (the rest is only dry-run)."""
    kubectl("apply", "-f", "-", stdin=SERVICEMONITOR_CRD)
    kubectl("wait", "--for=condition=Established", "crd/servicemonitors.monitoring.coreos.com")
    # The Liqo provider's kinds, so can-i resolves them (the project ships their CRDs).
    kubectl("apply", "-f", str(REPO / "deploy" / "liqo-crds"))
    kubectl("wait", "--for=condition=Established", "crd", "--all")
    for name in ("00-namespace.yaml", "01-serviceaccount.yaml", "02-rbac.yaml"):
        kubectl("apply", "-f", str(MANIFESTS / name))


def test_every_manifest_is_accepted_by_the_api_server(installed: None) -> None:
    out = kubectl("apply", "--dry-run=server", "-f", str(MANIFESTS))
    applied = {line.split()[0] for line in out.splitlines() if line.strip()}
    docs = [
        d
        for path in sorted(MANIFESTS.glob("*.yaml"))
        for d in YAML(typ="safe").load_all(path.read_text())
    ]
    assert len(applied) == len(docs)
    kinds = {d["kind"] for d in docs}
    assert kinds == {
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Deployment",
        "Service",
        "ServiceMonitor",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }


# (verb, resource[/name], namespace or "", expected). What burstd needs, and what it must not do.
MATRIX = [
    ("list", "pods", "", True),
    ("watch", "pods", "", True),
    ("get", "pods", "team-a", True),
    ("list", "nodes", "", True),
    ("watch", "nodes", "", True),
    ("create", "nodes", "", True),
    ("patch", "nodes", "", True),
    ("delete", "nodes", "", True),
    ("create", "pods --subresource=eviction", "team-a", True),
    ("create", "resourceslices.authentication.liqo.io", "liqo-tenant-donor", True),
    ("delete", "resourceslices.authentication.liqo.io", "liqo-tenant-donor", True),
    ("get", "virtualnodes.offloading.liqo.io", "liqo-tenant-donor", True),
    ("list", "foreignclusters.core.liqo.io", "", True),
    ("create", "leases.coordination.k8s.io", "burstd", True),
    ("update", "leases.coordination.k8s.io/burstd", "burstd", True),
    ("create", "configmaps", "burstd", True),
    ("update", "configmaps/burstd-memory", "burstd", True),
    # ...and what it may not.
    ("get", "secrets", "burstd", False),
    ("list", "secrets", "", False),
    ("get", "secrets", "kube-system", False),
    ("delete", "pods", "team-a", False),
    ("update", "pods", "team-a", False),
    ("create", "pods", "team-a", False),
    ("update", "nodes", "", False),
    ("update", "nodes --subresource=status", "", False),
    ("get", "configmaps", "kube-system", False),
    ("update", "configmaps/other", "burstd", False),
    ("update", "leases.coordination.k8s.io/kube-scheduler", "kube-system", False),
    ("create", "clusterrolebindings", "", False),
    ("escalate", "clusterroles", "", False),
    ("create", "serviceaccounts/token", "burstd", False),
    ("create", "deployments.apps", "burstd", False),
    ("update", "resourceslices.authentication.liqo.io", "liqo-tenant-donor", False),
    ("delete", "virtualnodes.offloading.liqo.io", "liqo-tenant-donor", False),
    ("delete", "foreignclusters.core.liqo.io", "", False),
]


def test_the_service_account_may_do_what_burstd_needs_and_no_more(installed: None) -> None:
    wrong = []
    for verb, resource, namespace, expected in MATRIX:
        where = ["-n", namespace] if namespace else ["--all-namespaces"]
        what = resource.split()  # a subresource is a flag
        answer = kubectl("auth", "can-i", verb, *what, *where, f"--as={SA}", check=False)
        if (answer.strip() == "yes") != expected:
            wrong.append(f"{verb} {resource} in {namespace or 'all'}: {answer.strip()}")
    assert not wrong


def token_kubeconfig(admin: Path, token: str, path: Path) -> Path:
    """A kubeconfig for the same cluster that authenticates with ``token`` only."""
    conf: dict[str, Any] = YAML(typ="safe").load(admin.read_text())
    cluster = conf["clusters"][0]
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "burstd", "user": {"token": token}}],
                "contexts": [
                    {"name": "burstd", "context": {"cluster": cluster["name"], "user": "burstd"}}
                ],
                "current-context": "burstd",
            }
        )
    )
    return path


async def test_a_burst_cycle_with_the_service_account_token(
    installed: None, kube: Kube, namespace: str, target: str, kubeconfig: Path, tmp_path: Path
) -> None:
    token = (await asyncio.to_thread(kubectl, "-n", "burstd", "create", "token", "burstd")).strip()
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["sub"] == SA
    sa_config = token_kubeconfig(kubeconfig, token, tmp_path / "sa.kubeconfig")
    assert "client-certificate" not in sa_config.read_text()

    config = tmp_path / "rules.yaml"
    config.write_text(rules_yaml(target=target, namespace=namespace, idle_for="1s"))
    async with burstd_in_process(config, sa_config) as app:
        await kube.create_job(namespace, "train", pods=2, gpus=4, complete_after="2s")

        async def job_done() -> bool:
            job = await kube.job(namespace, "train")
            return bool(job.get("status", {}).get("succeeded") == 2)

        await eventually(job_done, within=60, what="the Job to complete on borrowed nodes")
        ran_on = {node_of(p) for p in await kube.pods(namespace) if phase(p) == "Succeeded"}
        made = {u for a in app.applied for u in a.units if a.decision.verb == "scaleup"}
        assert len(made) == 2
        assert all(n and n.endswith(tuple(made)) for n in ran_on)

        async def all_released() -> bool:
            nodes = await kube.nodes(f"burstd.io/target={target}")
            return not nodes and app.actuator.released_total == 2

        await eventually(all_released, within=60, what="every borrowed node given back")
        assert app.driver.errors == 0


async def test_burstd_run_speaks_the_systemd_notify_protocol(
    kubeconfig: Path, target: str, namespace: str, tmp_path: Path
) -> None:
    """``burstd run`` as systemd starts it under ``Type=notify``: ``$NOTIFY_SOCKET`` names a
    Unix datagram socket (here the test's own), ``$WATCHDOG_USEC`` asks for pings. It says
    ``READY=1``, pings ``WATCHDOG=1`` while its loop runs, and ``STOPPING=1`` on SIGTERM."""
    config = tmp_path / "rules.yaml"
    config.write_text(rules_yaml(target=target, namespace=namespace))
    path = tmp_path / "notify"
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.setblocking(False)
        env = {**os.environ, "NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"}
        logfile = tmp_path / "burstd.log"
        with logfile.open("wb") as out:
            proc = await start_burstd(config, kubeconfig, env, out)
        try:
            seen: list[bytes] = []
            while not (
                any(m.startswith(b"READY=1") for m in seen)
                and seen.count(b"WATCHDOG=1") >= 2
                and b"STATUS=planning" in seen
            ):
                seen.append(await asyncio.wait_for(loop.sock_recv(sock, 4096), 60))
            proc.send_signal(signal.SIGTERM)
            while seen[-1] != b"STOPPING=1":
                seen.append(await asyncio.wait_for(loop.sock_recv(sock, 4096), 60))
            assert await asyncio.wait_for(proc.wait(), 60) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert seen[0].startswith(b"READY=1")
    log = [json.loads(line) for line in logfile.read_text().splitlines() if line.startswith("{")]
    assert any(r.get("event") == "api_listening" for r in log)


async def start_burstd(
    config: Path, kubeconfig: Path, env: dict[str, str], out: Any
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("burstd")),
        "run",
        "--config",
        str(config),
        "--kubeconfig",
        str(kubeconfig),
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=out,
        stderr=out,
    )


async def test_the_service_account_cannot_touch_nodes_it_does_not_own(
    installed: None, kube: Kube, kubeconfig: Path, target: str, tmp_path: Path
) -> None:
    """RBAC lets burstd write nodes; the ValidatingAdmissionPolicy in 02-rbac.yaml narrows that
    to nodes labelled as burstd's, before and after the change."""
    token = (await asyncio.to_thread(kubectl, "-n", "burstd", "create", "token", "burstd")).strip()
    sa_config = token_kubeconfig(kubeconfig, token, tmp_path / "sa.kubeconfig")
    managed = {"app.kubernetes.io/managed-by": "burstd", "burstd.io/target": target}
    foreign = f"{target}-foreign"
    own = f"{target}-own"
    liqo = f"{target}-liqo"
    target_label = {"burstd.io/target": target}
    await kube.raw(
        kube.core.create_node,
        {"metadata": {"name": foreign, "labels": {"burstd.io/target": target}}},
    )
    cordon = {"spec": {"unschedulable": True}}
    async with Kube(sa_config) as sa:
        with pytest.raises(RuntimeError, match=DENIED):
            await sa.raw(sa.core.patch_node, foreign, cordon)
        with pytest.raises(RuntimeError, match=DENIED):
            await sa.raw(sa.core.delete_node, foreign)
        # Not even by labelling it first.
        take = {"metadata": {"labels": {"app.kubernetes.io/managed-by": "burstd"}}}
        with pytest.raises(RuntimeError, match=DENIED):
            await sa.raw(sa.core.patch_node, foreign, take)
        with pytest.raises(RuntimeError, match=DENIED):
            await sa.raw(sa.core.create_node, {"metadata": {"name": f"{own}-unlabelled"}})
        # Its own nodes it manages as before; it cannot give one away either.
        await sa.raw(sa.core.create_node, {"metadata": {"name": own, "labels": managed}})
        await sa.raw(sa.core.patch_node, own, cordon)
        release = {"metadata": {"labels": {"app.kubernetes.io/managed-by": None}}}
        with pytest.raises(RuntimeError, match=DENIED):
            await sa.raw(sa.core.patch_node, own, release)
        await sa.raw(sa.core.delete_node, own)
        # A Liqo virtual node (made by Liqo for burstd's slice) may be labelled as burstd's.
        await kube.raw(
            kube.core.create_node,
            {
                "metadata": {
                    "name": liqo,
                    "labels": {"liqo.io/type": "virtual-node", **target_label},
                }
            },
        )
        await sa.raw(sa.core.patch_node, liqo, take)
        await sa.raw(sa.core.delete_node, liqo)
    [left] = await kube.nodes(f"burstd.io/target={target}")
    assert left["metadata"]["name"] == foreign
    assert not left.get("spec", {}).get("unschedulable")
    await kube.raw(kube.core.delete_node, foreign)

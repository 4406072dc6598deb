"""The providers of the crash suite (``test_crash.py``): for each, its target in the rules
file, what runs beside burstd (a donor, an HPC site, a terraform workdir), and the points of
``burstd.faults`` a cycle on it passes through.

Every case has a namespace and a target of its own, and its Job pods ask for the target's
label (``burstd.io/target``), so cases run side by side in one cluster without sharing a node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from burstd import faults
from burstd.providers.liqo import VIRTUAL_NODE_TAINT
from burstd.testing.interlink import Site
from tests.integration import interlink, liqo, terraform
from tests.integration.kube import Kube

COOLDOWN_S = 6.0
MAX_WAIT_S = 3.0


@dataclass(frozen=True)
class Case:
    """One (provider, point, mode) run."""

    provider: str
    point: str
    mode: str
    folder: Path
    namespace: str
    target: str
    kubeconfig: Path
    donor: Path


SiteContext = Callable[[Kube, Case], contextlib.AbstractAsyncContextManager[None]]


@contextlib.asynccontextmanager
async def nothing(kube: Kube, case: Case) -> AsyncIterator[None]:
    yield


@dataclass(frozen=True)
class Provider:
    """How the suite runs one provider."""

    target: Callable[[Case], str]
    """The target's ``provider:`` and ``params:`` lines (indented as in the file)."""
    made: str
    """The log event of the provider making a unit's object: never twice for one unit."""
    gpus: int = 4
    """GPUs of each unit, and of each Job pod."""
    points: tuple[str, ...] = faults.POINTS
    at_once: int = 4
    """Cases of this provider side by side."""
    site: SiteContext = nothing
    """What runs beside burstd for a case; cleans up after it."""
    tolerations: tuple[dict[str, str], ...] = ()
    """What the case's pods need to land on the provider's nodes."""


def rules(case: Case, spec: Provider) -> str:
    """The case's rules file: one target, one rule for the case's namespace, short timers."""
    # Time for the demand that takes a cordoned unit back to show up before its drain, even
    # while other cases' API-server outages hold the test's calls up.
    validation = "40s" if case.point == faults.UNCORDONED else "3s"
    return f"""\
version: 1
loop: {{interval: 1s, batch_idle: 300ms, batch_max: 2s}}
targets:
  {case.target}:
{spec.target(case)}
    gpus_per_unit: {spec.gpus}
    max_units: 3
    max_in_flight: 3
    time_to_ready: 1s
    ready_deadline: 90s
    backoff: 5s
rules:
  - name: crash
    match: {{namespaces: [{case.namespace}]}}
    triggers: [{{pending: {{gpus: 1}}}}]
    burst: {{ladder: [{case.target}], max_units_per_step: 3}}
    release:
      idle_for: 2s
      validation: {validation}
      drain: {{mode: evict, max_wait: {MAX_WAIT_S:g}s}}
    cooldown: {{scale_up: {COOLDOWN_S:g}s, scale_down: 0s}}
"""


# kwok ----------------------------------------------------------------------------------------


def kwok_target(case: Case) -> str:
    return """\
    provider: kwok
    params:
      poll_interval: 0.1
      delete_timeout: 20
      node_template:
        annotations: {node-initialize.stage.kwok.x-k8s.io/delay: "1s"}"""


# Liqo ----------------------------------------------------------------------------------------


def liqo_target(case: Case) -> str:
    return f"""\
    provider: liqo
    params:
      remote_cluster_id: {liqo.DONOR_ID}
      poll_interval: 0.1
      delete_timeout: 60
      node_grace: 1s"""


@contextlib.asynccontextmanager
async def liqo_site(kube: Kube, case: Case) -> AsyncIterator[None]:
    """The case's namespace offloaded (the emulator's webhook then gives its pods Liqo's
    toleration, and reflects them to the donor); its slices and the donor's copy of the
    namespace are removed afterwards."""
    await liqo.offload(kube, case.namespace)
    try:
        yield
    finally:
        await liqo.cleanup(kube, case.target)
        async with Kube(case.donor) as donor:
            remote = f"{case.namespace}-{liqo.CONSUMER_ID}"
            found = await donor.raw(
                donor.core.list_namespace, field_selector=f"metadata.name={remote}"
            )
            if found.get("items"):
                await donor.delete_namespace(remote)


# InterLink -----------------------------------------------------------------------------------

SITE_NODES = 3


def _site(case: Case) -> Site:
    """Virtual kubelets scaled by Deployments (a disabled one is scaled to 0 and its Node
    deleted, so a finished cycle leaves no Node), one per unit the case may need."""
    return interlink.site(
        case.target, f"{case.target}-site", scaled=SITE_NODES, gpus=4, queue_delay=0.5
    )


def interlink_target(case: Case) -> str:
    return f"""\
    provider: interlink
    params:
      poll_interval: 0.2
      delete_timeout: 30
      nodes:
{interlink.nodes_yaml(_site(case))}
    gpu_model: {interlink.GPU_MODEL}"""


@contextlib.asynccontextmanager
async def interlink_site(kube: Kube, case: Case) -> AsyncIterator[None]:
    """The case's HPC site: its emulated virtual kubelets in a process of their own
    (``python -m burstd.testing.interlink``), outside the test's event loop, so an
    overloaded test does not starve their heartbeats. Its Nodes and Deployments are deleted
    afterwards."""
    s = _site(case)
    site_file = case.folder / "site.yaml"
    site_file.write_text(
        json.dumps(
            {
                "queue_delay": s.queue_delay,
                "ping_after": s.ping_after,
                "tick": s.tick,
                "heartbeat": s.heartbeat,
                "nodes": [
                    {
                        "node": n.node,
                        "deployment": "/".join(n.deployment or ()),
                        "gpus": n.gpus,
                        "gpu_model": n.gpu_model,
                    }
                    for n in s.nodes
                ],
            }
        )
    )
    log = case.folder / "site.log"
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "burstd.testing.interlink",
            "--kubeconfig",
            str(case.kubeconfig),
            "--site",
            str(site_file),
            stdout=out,
            stderr=out,
            stdin=asyncio.subprocess.DEVNULL,
        )
    try:
        for _ in range(600):
            if "site up" in log.read_text() or proc.returncode is not None:
                break
            await asyncio.sleep(0.1)
        assert proc.returncode is None, f"the site emulator exited:\n{log.read_text()[-2000:]}"
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        names = {n.node for n in s.nodes}
        for node in await kube.nodes():
            if node["metadata"]["name"] in names:
                await kube.raw(kube.core.delete_node, node["metadata"]["name"])
        await kube.delete_namespace(f"{case.target}-site")


# Terraform -----------------------------------------------------------------------------------


def terraform_target(case: Case) -> str:
    workdir = case.folder / "workdir"
    given = terraform.given(case.kubeconfig, workdir)
    return f"""\
    provider: terraform
    params: {json.dumps(given)}"""


# ---------------------------------------------------------------------------------------------

PROVIDERS: dict[str, Provider] = {
    "kwok": Provider(target=kwok_target, made="kwok_node_created"),
    # The donor lends 16 GPUs to every test: four cases of at most three 1-GPU units.
    "liqo": Provider(
        target=liqo_target,
        made="liqo_slice_created",
        gpus=1,
        site=liqo_site,
        tolerations=({"key": VIRTUAL_NODE_TAINT.key, "operator": "Exists", "effect": "NoExecute"},),
    ),
    # InterLink never evicts (its pods are HPC jobs whose allocation an eviction loses): the
    # drain waits for them, so a cycle never reaches evict_sent.
    "interlink": Provider(
        target=interlink_target,
        made="interlink_enabled",
        points=tuple(p for p in faults.POINTS if p != faults.EVICT_SENT),
        site=interlink_site,
        tolerations=(interlink.TOLERATION,),
    ),
    # Each apply costs a second or two of CPU: fewer side by side.
    "terraform": Provider(target=terraform_target, made="terraform_unit_added", at_once=3),
}

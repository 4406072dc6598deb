"""The crash suite: burstd (or the API server) dies at each step of a burst and of a release.

For every provider that runs here (kwok now; each provider that lands joins ``PROVIDERS``) and
every named fault point of ``burstd.faults``, a real ``burstd run`` is started with that point
armed and driven through a whole cycle — scale up for a Job, run it, cordon, drain, release —
with the extra steps the point needs (demand coming back to a cordoned unit for
``uncordoned``; a pod bound onto a draining unit past ``max_wait`` for ``evict_sent``).

* ``kill``: burstd SIGKILLs itself at the point; a second burstd, sharing its state directory
  (memory), is started and must finish the cycle.
* ``apiserver``: at the point burstd blocks while the test stops the API server, then carries
  on into the outage; the API server comes back a few seconds later and the same burstd must
  finish the cycle.

Each case asserts: no duplicate unit (never more nodes than the work needs, no unit made twice),
no orphan (every node burstd made is gone at the end, each given back by a burstd), no running
pod evicted or deleted by burstd (every Job pod succeeded; in the eviction case only the pod the
evict policy names is evicted, and only after ``max_wait`` from the drain's real start), and no
scale-up inside a cooldown that was in force before the fault.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from burstd import faults
from tests.conftest import MANAGED
from tests.integration.daemon import events, kube_testenv, logged, start, stop
from tests.integration.kube import COMPLETE_AFTER, GPU, Kube, cordoned, eventually, name_of, phase

pytestmark = pytest.mark.integration

COOLDOWN_S = 6.0
# Cases run side by side in one cluster: each case's pods go only to its own target's nodes.
CASE_LABEL = "burstd-crash-case"
# Kill cases run side by side (each burstd start costs a second or two of CPU on 2 cores).
CONCURRENT_CASES = 4
MAX_WAIT_S = 3.0


def kwok_rules(target: str, namespace: str) -> str:
    return f"""\
version: 1
loop: {{interval: 1s, batch_idle: 300ms, batch_max: 2s}}
targets:
  {target}:
    provider: kwok
    params:
      poll_interval: 0.1
      delete_timeout: 20
      node_template:
        labels: {{{CASE_LABEL}: {target}}}
        annotations: {{node-initialize.stage.kwok.x-k8s.io/delay: "1s"}}
    gpu_model: NVIDIA-A100-SXM4-80GB
    gpus_per_unit: 4
    max_units: 4
    time_to_ready: 1s
    ready_deadline: 1m
    backoff: 5s
rules:
  - name: crash
    match: {{namespaces: [{namespace}]}}
    triggers: [{{pending: {{gpus: 1}}}}]
    burst: {{ladder: [{target}], max_units_per_step: 4}}
    release:
      idle_for: 2s
      validation: 3s
      drain: {{mode: evict, max_wait: {MAX_WAIT_S:g}s}}
    cooldown: {{scale_up: {COOLDOWN_S:g}s, scale_down: 0s}}
"""


PROVIDERS = {"kwok": kwok_rules}


async def job(
    kube: Kube, namespace: str, target: str, name: str, *, pods: int, complete_after: str
) -> None:
    """A Job of ``pods`` pods of 4 GPUs each, for this case's nodes only."""
    body = {
        "metadata": {"name": name},
        "spec": {
            "parallelism": pods,
            "completions": pods,
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {COMPLETE_AFTER: complete_after}},
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": {CASE_LABEL: target},
                    "containers": [{"name": "w", "image": "x", "resources": {"limits": {GPU: 4}}}],
                },
            },
        },
    }
    await kube.raw(kube.batch.create_namespaced_job, namespace, body)


async def pinned_pod(kube: Kube, namespace: str, name: str, node: str) -> None:
    """A pod that fits only on ``node`` (by its name, as DaemonSets pin their pods), done a
    second after it runs."""
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
    body = {
        "metadata": {"name": name, "annotations": {COMPLETE_AFTER: "1s"}},
        "spec": {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
                }
            },
            "containers": [{"name": "w", "image": "x", "resources": {"limits": {GPU: 4}}}],
        },
    }
    await kube.raw(kube.core.create_namespaced_pod, namespace, body)


async def bare_pod(kube: Kube, namespace: str, name: str, node: str) -> None:
    """A pod bound straight onto ``node`` (bypassing the scheduler and the cordon), running
    until deleted: a job that landed just before the cordon."""
    body = {
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": "w", "image": "x", "resources": {"limits": {GPU: 1}}}],
        },
    }
    await kube.raw(kube.core.create_namespaced_pod, namespace, body)


@pytest.mark.parametrize("mode", ["kill", "apiserver"])
@pytest.mark.parametrize("provider", list(PROVIDERS))
async def test_a_fault_at_any_step_changes_nothing(
    kubeconfig: Path, tmp_path: Path, provider: str, mode: str
) -> None:
    """Every point, each case in its own namespace and target, side by side. API-server
    outages are taken one at a time: a case paused at its point waits for its own outage,
    and the cases running meanwhile live through it too (more faults, never fewer)."""
    dirs = folders(tmp_path, faults.POINTS)
    room = asyncio.Semaphore(CONCURRENT_CASES)
    outages = Outages()
    async with Patient(kubeconfig) as kube:

        async def case(point: str, folder: Path) -> None:
            async with room:
                await one_case(kube, kubeconfig, folder, provider, point, mode, outages)

        results = await asyncio.gather(
            *(case(p, d) for p, d in dirs.items()), return_exceptions=True
        )
    failed = {p: r for p, r in zip(faults.POINTS, results, strict=True) if r is not None}
    assert not failed, "\n".join(f"{p}: {type(r).__name__}: {r}" for p, r in failed.items())
    if mode == "apiserver":
        assert outages.count == len(faults.POINTS)


class Patient(Kube):
    """The test's own API calls wait out an outage (another case's) instead of failing."""

    async def raw(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> Any:
        give_up = time.monotonic() + 90
        while True:
            try:
                return await super().raw(fn, *args, **kw)
            except (aiohttp.ClientError, OSError, TimeoutError):
                if time.monotonic() > give_up:
                    raise
                await asyncio.sleep(0.5)


class Outages:
    """API-server outages, one at a time: stop it, let the paused case go on into the
    outage, start it again two seconds later."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self.count = 0

    async def at(self, mark: Path) -> None:
        async with self._lock:
            await kube_testenv("stop-apiserver", "--kill")
            release(mark)
            await asyncio.sleep(2)
            await kube_testenv("start-apiserver")
            self.count += 1


async def one_case(
    kube: Kube,
    kubeconfig: Path,
    tmp_path: Path,
    provider: str,
    point: str,
    mode: str,
    outages: Outages,
) -> None:
    namespace = await kube.create_namespace("crash")
    target = f"cr{secrets.token_hex(3)}"
    try:
        await _case(kube, kubeconfig, tmp_path, provider, point, mode, namespace, target, outages)
    finally:
        await kube.delete_namespace(namespace)
        await kube.delete_nodes(f"{MANAGED},burstd.io/target={target}")


async def _case(
    kube: Kube,
    kubeconfig: Path,
    tmp_path: Path,
    provider: str,
    point: str,
    mode: str,
    namespace: str,
    target: str,
    outages: Outages,
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(PROVIDERS[provider](target, namespace))
    state, mark = tmp_path / "state", tmp_path / "fault.mark"
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    selector = f"burstd.io/target={target}"
    seen: set[str] = set()

    async def nodes() -> list[dict[str, Any]]:
        found = await kube.nodes(selector)
        seen.update(name_of(n) for n in found)
        return found

    fault = ["--fault-point", point]
    if mode == "apiserver":
        fault += ["--fault-action", "pause", "--fault-mark", str(mark)]
    first = start(config, kubeconfig, logs[0], state, *fault)
    second: subprocess.Popen[bytes] | None = None
    extra_pod: str | None = None
    try:
        await logged(logs[0], "synced", within=60)
        await job(kube, namespace, target, "a", pods=2, complete_after="2s")

        async def fault_reached() -> bool:
            await nodes()
            return first.poll() is not None or mark.exists()

        async def drive() -> bool:
            """Give the cycle what the point needs, until the fault is reached."""
            nonlocal extra_pod
            while not await fault_reached():
                if extra_pod is None and point in (faults.UNCORDONED, faults.EVICT_SENT):
                    held = [n for n in await nodes() if cordoned(n)]
                    if held:
                        if point == faults.UNCORDONED:
                            # Demand that only the cordoned unit can take.
                            extra_pod = "back"
                            await pinned_pod(kube, namespace, extra_pod, name_of(held[0]))
                        else:
                            extra_pod = "landed"
                            await bare_pod(kube, namespace, extra_pod, name_of(held[0]))
                await asyncio.sleep(0.1)
            return True

        await asyncio.wait_for(drive(), 90)
        if mode == "kill":
            assert first.wait(timeout=10) < 0, "burstd should have died at the fault point"
            second = start(config, kubeconfig, logs[1], state)
            await logged(logs[1], "adoption_done", within=60)
        else:
            await outages.at(mark)
        # New demand right after the fault: it may only be served once the cooldown of the
        # burst before the fault has passed.
        await job(kube, namespace, target, "b", pods=1, complete_after="1s")
        if extra_pod == "landed":
            # The pod on the draining unit is evicted by policy; it is not coming back.
            async def evicted() -> bool:
                return extra_pod not in {name_of(p) for p in await kube.pods(namespace)}

            await eventually(evicted, within=60, what="the landed pod evicted")

        async def cycle_done() -> bool:
            await nodes()
            jobs = [await kube.job(namespace, j) for j in ("a", "b")]
            if extra_pod == "back":
                pods = {name_of(p): phase(p) for p in await kube.pods(namespace)}
                if pods.get("back") != "Succeeded":
                    return False
            done = all(
                j.get("status", {}).get("succeeded") == j["spec"]["completions"] for j in jobs
            )
            return done and not await nodes()

        await eventually(cycle_done, within=120, what="every Job done and every node given back")

        # No running pod evicted or deleted: every Job pod succeeded, none failed.
        pods = await kube.pods(namespace)
        job_pods = [p for p in pods if name_of(p) != "landed"]
        assert job_pods
        assert all(phase(p) == "Succeeded" for p in job_pods), [
            (name_of(p), phase(p)) for p in job_pods
        ]
        for j in ("a", "b"):
            assert not (await kube.job(namespace, j)).get("status", {}).get("failed")

        # No duplicates: no pod was given two units that both came up (a unit that failed
        # and was cleaned up may be bursted for again), and no unit was made twice. (The
        # number of nodes alone proves nothing: a kube-controller-manager restarted by an
        # outage may create a Job's pod twice, and burstd rightly serves both.)
        ready = {e["unit"] for log in logs for e in events(log, "unit_ready")}
        ready |= {e["unit"] for log in logs for e in events(log, "adopted")}
        served: dict[str, int] = {}
        for log in logs:
            for e in events(log, "decision"):
                if e.get("verb") == "scaleup" and e.get("acted") and set(e["units"]) & ready:
                    for pod in e.get("pods", []):
                        served[pod] = served.get(pod, 0) + 1
        assert all(n == 1 for n in served.values()), f"pods bursted for twice: {served}"
        created = [e["unit"] for log in logs for e in events(log, "kwok_node_created")]
        assert len(created) == len(set(created)), f"a unit made twice: {created}"
        adopted = {e["unit"] for e in events(logs[1], "adopted")} if mode == "kill" else set()
        assert not adopted & set(events_units(logs[1], "kwok_node_created"))

        # No orphans: every node is gone, and a burstd sent the delete of each.
        deleted = {
            e["unit"]
            for log in logs
            for e in events(log, "provider_call")
            if e.get("call") == "delete"
        }
        assert seen <= deleted, f"nodes nobody deleted: {seen - deleted}"

        # Cooldowns survive the fault.
        ups = decided(logs, "scaleup")
        gaps = [b - a for a, b in itertools.pairwise(ups)]
        assert all(g >= COOLDOWN_S - 0.5 for g in gaps), f"scale-ups inside a cooldown: {gaps}"

        if extra_pod == "landed":
            drains, evicts = decided(logs, "drain"), decided(logs, "evict")
            assert drains
            assert evicts
            # max_wait counts from the drain's real start, across the fault.
            assert min(evicts) - min(drains) >= MAX_WAIT_S - 0.5
    finally:
        if mark.exists():
            mark.unlink()
        for proc in (first, second):
            stop(proc)


def release(mark: Path) -> None:
    """Let a case paused at its fault point carry on."""
    mark.unlink()


def folders(base: Path, names: tuple[str, ...]) -> dict[str, Path]:
    out = {name: base / name for name in names}
    for path in out.values():
        path.mkdir()
    return out


def events_units(log: Path, kind: str) -> list[str]:
    return [str(e["unit"]) for e in events(log, kind)]


def decided(logs: list[Path], verb: str) -> list[float]:
    """When decisions of ``verb`` were acted on, in both runs, in order."""
    return sorted(
        float(e["ts"])
        for log in logs
        for e in events(log, "decision")
        if e.get("verb") == verb and e.get("acted")
    )

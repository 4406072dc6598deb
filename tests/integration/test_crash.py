"""The crash suite: burstd (or the API server) dies at each step of a burst and of a release.

For every provider (``crash.PROVIDERS``: kwok, Liqo against the emulated donor, InterLink
against an emulated HPC site, Terraform with the real CLI on the kwok-pool module) and every
named fault point of ``burstd.faults`` its cycle passes through, a real ``burstd run`` is
started with that point armed and driven through a whole cycle — scale up for a Job, run it,
cordon, drain, release — with the extra steps the point needs (demand coming back to a
cordoned unit for ``uncordoned``; a pod bound onto a draining unit past ``max_wait`` for
``evict_sent``, which InterLink never reaches: it does not evict HPC jobs).

* ``kill``: burstd SIGKILLs itself (and its process group: a terraform it runs dies with it)
  at the point; a second burstd, sharing its state directory (memory), is started and must
  finish the cycle.
* ``apiserver``: at the point burstd blocks while the test stops the API server, then carries
  on into the outage; the API server comes back a few seconds later and the same burstd must
  finish the cycle.

Each case asserts: no duplicate unit (no unit's object made twice or again after its
adoption, no more units than the case had pods), no orphan (every node of the target is gone
at the end, and every unit made, adopted or come up was given back by a burstd), no running
pod evicted or deleted by burstd (every Job pod succeeded; in the eviction case only the pod
the evict policy names is evicted, and only after ``max_wait`` from the drain's real start),
and no scale-up inside a cooldown that was in force before the fault.

All cases of a mode run side by side in one cluster, each with its own namespace, target and
burstd installation (``--instance``), so the suite costs about one cycle per mode and not one
per case.
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
from tests.integration.crash import COOLDOWN_S, MAX_WAIT_S, PROVIDERS, Case, Provider, rules
from tests.integration.daemon import events, kube_testenv, logged, start, stop
from tests.integration.kube import (
    COMPLETE_AFTER,
    GPU,
    HttpError,
    Kube,
    cordoned,
    eventually,
    name_of,
    phase,
)

pytestmark = pytest.mark.integration

# Cases side by side (all providers together): most of a case is waiting on burstd's timers.
AT_ONCE = 10
# The API server stays up at least this long between two outages.
UP_BETWEEN_OUTAGES_S = 5.0
CASES = [(provider, point) for provider, spec in PROVIDERS.items() for point in spec.points]


async def job(kube: Kube, case: Case, spec: Provider, name: str, *, pods: int, done: str) -> None:
    """A Job of ``pods`` pods of one unit's GPUs each, for this case's nodes only."""
    body = {
        "metadata": {"name": name},
        "spec": {
            "parallelism": pods,
            "completions": pods,
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {COMPLETE_AFTER: done}},
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": {"burstd.io/target": case.target},
                    "tolerations": list(spec.tolerations),
                    "containers": [
                        {"name": "w", "image": "x", "resources": {"limits": {GPU: spec.gpus}}}
                    ],
                },
            },
        },
    }
    await kube.raw(kube.batch.create_namespaced_job, case.namespace, body)


async def pinned_pod(kube: Kube, case: Case, spec: Provider, name: str, node: str) -> None:
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
            "tolerations": list(spec.tolerations),
            "containers": [{"name": "w", "image": "x", "resources": {"limits": {GPU: spec.gpus}}}],
        },
    }
    await kube.raw(kube.core.create_namespaced_pod, case.namespace, body)


async def bare_pod(kube: Kube, case: Case, name: str, node: str) -> None:
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
    await kube.raw(kube.core.create_namespaced_pod, case.namespace, body)


@pytest.mark.parametrize("mode", ["kill", "apiserver"])
async def test_a_fault_at_any_step_changes_nothing(
    kubeconfig: Path, donor: Path, tmp_path: Path, mode: str
) -> None:
    """Every (provider, point), side by side. API-server outages are shared: the cases
    paused at their points about the same moment go on into one outage, and the cases running
    meanwhile live through it too (more faults, never fewer)."""
    room = asyncio.Semaphore(AT_ONCE)
    rooms = {name: asyncio.Semaphore(spec.at_once) for name, spec in PROVIDERS.items()}
    outages = Outages()
    async with Patient(kubeconfig) as kube:

        async def run(provider: str, point: str) -> None:
            folder = tmp_path / provider / point
            folder.mkdir(parents=True)
            async with rooms[provider], room:
                await one_case(kube, kubeconfig, donor, folder, provider, point, mode, outages)

        results = await asyncio.gather(*(run(*c) for c in CASES), return_exceptions=True)
    failed = {f"{p}/{pt}": r for (p, pt), r in zip(CASES, results, strict=True) if r is not None}
    assert not failed, "\n".join(f"{c}: {type(r).__name__}: {r}" for c, r in failed.items())
    if mode == "apiserver":
        assert outages.cases == len(CASES)
        assert 1 <= outages.count <= len(CASES)


class Patient(Kube):
    """The test's own API calls wait out an outage (another case's) instead of failing."""

    async def raw(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> Any:
        give_up = time.monotonic() + 90
        while True:
            try:
                return await super().raw(fn, *args, **kw)
            except (aiohttp.ClientError, OSError, TimeoutError, HttpError) as e:
                starting = not isinstance(e, HttpError) or e.status in (429, 500, 503, 504)
                if not starting or time.monotonic() > give_up:
                    raise
                await asyncio.sleep(0.5)


class Outages:
    """API-server outages, one at a time. The cases paused at their points when one begins
    share it: stop the API server, let them go on into the outage, start it again two
    seconds later."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._paused: list[Path] = []
        self.count = 0
        self.cases = 0

    async def at(self, mark: Path) -> None:
        """Returns once the outage ``mark``'s case went on into is over."""
        self._paused.append(mark)
        async with self._lock:
            if mark not in self._paused:
                return  # an outage that just ended took it
            await asyncio.sleep(0.5)  # the cases pausing about now come along
            marks, self._paused = self._paused, []
            await kube_testenv("stop-apiserver", "--kill")
            for m in marks:
                release(m)
            await asyncio.sleep(2)
            await kube_testenv("start-apiserver")
            self.count += 1
            self.cases += len(marks)
            # Up a while before the next: the other cases must get on too.
            await asyncio.sleep(UP_BETWEEN_OUTAGES_S)


async def one_case(
    kube: Kube,
    kubeconfig: Path,
    donor: Path,
    folder: Path,
    provider: str,
    point: str,
    mode: str,
    outages: Outages,
) -> None:
    spec = PROVIDERS[provider]
    namespace = await kube.create_namespace("crash")
    target = f"cr{secrets.token_hex(3)}"
    case = Case(provider, point, mode, folder, namespace, target, kubeconfig, donor)
    try:
        async with spec.site(kube, case):
            await _case(kube, case, spec, outages)
    finally:
        await kube.delete_namespace(namespace)
        await kube.delete_nodes(f"{MANAGED},burstd.io/target={target}")


async def _case(kube: Kube, case: Case, spec: Provider, outages: Outages) -> None:
    config = case.folder / "rules.yaml"
    config.write_text(rules(case, spec))
    state, mark = case.folder / "state", case.folder / "fault.mark"
    logs = [case.folder / "first.log", case.folder / "second.log"]
    selector = f"burstd.io/target={case.target}"
    point, kubeconfig = case.point, case.kubeconfig
    seen: set[str] = set()
    pods_seen: set[str] = set()

    async def nodes() -> list[dict[str, Any]]:
        found = await kube.nodes(selector)
        seen.update(name_of(n) for n in found)
        pods_seen.update(name_of(p) for p in await kube.pods(case.namespace))
        return found

    # Cases run side by side: each is its own burstd installation.
    fault = ["--instance", case.target, "--fault-point", point]
    if case.mode == "apiserver":
        fault += ["--fault-action", "pause", "--fault-mark", str(mark)]
    first = start(config, kubeconfig, logs[0], state, *fault)
    second: subprocess.Popen[bytes] | None = None
    extra_pod: str | None = None
    try:
        await logged(logs[0], "synced", within=90)
        await job(kube, case, spec, "a", pods=2, done="2s")

        async def fault_reached() -> bool:
            await nodes()
            return first.poll() is not None or mark.exists()

        backs: list[str] = []
        cordoned_since: dict[str, float] = {}

        async def take_back() -> None:
            """Demand that only a cordoned unit can take, once the scheduler has surely seen
            the cordon; again if the pod slipped onto the node anyway (the scheduler's cache
            was behind), for then nothing needs an uncordon."""
            now = time.monotonic()
            held = [name_of(n) for n in await nodes() if cordoned(n)]
            for name in held:
                cordoned_since.setdefault(name, now)
            ready = [n for n in held if now - cordoned_since[n] >= 2.0]
            if not ready:
                return
            if backs:
                last = await kube.pod(case.namespace, backs[-1])
                if not (last.get("spec") or {}).get("nodeName"):
                    return  # still waiting for the uncordon
            backs.append(f"back-{len(backs) + 1}")
            await pinned_pod(kube, case, spec, backs[-1], ready[0])

        async def drive() -> bool:
            """Give the cycle what the point needs, until the fault is reached."""
            nonlocal extra_pod
            while not await fault_reached():
                if point == faults.UNCORDONED:
                    await take_back()
                elif extra_pod is None and point == faults.EVICT_SENT:
                    held = [n for n in await nodes() if cordoned(n)]
                    if held:
                        extra_pod = "landed"
                        await bare_pod(kube, case, extra_pod, name_of(held[0]))
                await asyncio.sleep(0.2)
            return True

        await asyncio.wait_for(drive(), 150)
        if case.mode == "kill":
            assert first.wait(timeout=10) < 0, "burstd should have died at the fault point"
            second = start(config, kubeconfig, logs[1], state, "--instance", case.target)
            await logged(logs[1], "adoption_done", within=90)
        else:
            await outages.at(mark)
        # New demand right after the fault: it may only be served once the cooldown of the
        # burst before the fault has passed.
        await job(kube, case, spec, "b", pods=1, done="1s")
        if extra_pod == "landed":
            # The pod on the draining unit is evicted by policy; it is not coming back.
            async def evicted() -> bool:
                return extra_pod not in {name_of(p) for p in await kube.pods(case.namespace)}

            await eventually(evicted, within=90, what="the landed pod evicted")

        async def cycle_done() -> bool:
            await nodes()
            jobs = [await kube.job(case.namespace, j) for j in ("a", "b")]
            if backs:
                pods = {name_of(p): phase(p) for p in await kube.pods(case.namespace)}
                if any(pods.get(b) != "Succeeded" for b in backs):
                    return False
            done = all(
                j.get("status", {}).get("succeeded") == j["spec"]["completions"] for j in jobs
            )
            # Every unit given back, those still on their way too (a unit whose Node is not
            # up yet has none to see).
            return done and not await nodes() and not not_given_back(logs, spec)

        await eventually(cycle_done, within=180, what="every Job done and every node given back")
        check(logs, spec, case, seen, pods_seen, extra_pod)
        await check_pods(kube, case)
    finally:
        if mark.exists():
            mark.unlink()
        for proc in (first, second):
            stop(proc)


async def check_pods(kube: Kube, case: Case) -> None:
    """No running pod evicted or deleted: every Job pod succeeded, none failed."""
    pods = await kube.pods(case.namespace)
    job_pods = [p for p in pods if name_of(p) != "landed"]
    assert job_pods
    assert all(phase(p) == "Succeeded" for p in job_pods), [
        (name_of(p), phase(p)) for p in job_pods
    ]
    for j in ("a", "b"):
        assert not (await kube.job(case.namespace, j)).get("status", {}).get("failed")


def check(
    logs: list[Path],
    spec: Provider,
    case: Case,
    seen: set[str],
    pods: set[str],
    extra: str | None,
) -> None:
    """What both burstd runs' logs must show of the cycle, given the case's nodes and pods."""
    # No duplicates: no unit's object made twice, none made again after its adoption, and no
    # more units made than the case had pods (each fills a unit; a unit whose create failed,
    # and was cleaned up, may be bursted for again). Which pod a unit is for is the planner's
    # guess and the scheduler's choice, so only the count is checked. (A
    # kube-controller-manager restarted by an outage may make a Job's pod twice, and burstd
    # rightly serves both: the pods are counted as the API server had them.)
    made = [e["unit"] for log in logs for e in events(log, spec.made)]
    assert len(made) == len(set(made)), f"a unit made twice: {made}"
    if case.mode == "kill":
        adopted = {e["unit"] for e in events(logs[1], "adopted")}
        assert not adopted & set(events_units(logs[1], spec.made))
    units, failed, _ = accounts(logs, spec)
    assert len(units - failed) <= len(pods), f"units {sorted(units)} for pods {sorted(pods)}"

    # No orphans: every node is gone (the wait saw to that), and a burstd gave back every
    # unit that was made, adopted or came up.
    assert seen, "no node of the target was ever seen"
    left = not_given_back(logs, spec)
    assert not left, f"units nobody gave back: {left}"

    # Cooldowns survive the fault.
    ups = decided(logs, "scaleup")
    gaps = [b - a for a, b in itertools.pairwise(ups)]
    assert all(g >= COOLDOWN_S - 0.5 for g in gaps), f"scale-ups inside a cooldown: {gaps}"

    if extra == "landed":
        drains, evicts = decided(logs, "drain"), decided(logs, "evict")
        assert drains
        assert evicts
        # max_wait counts from the drain's real start, across the fault.
        assert min(evicts) - min(drains) >= MAX_WAIT_S - 0.5


def accounts(logs: list[Path], spec: Provider) -> tuple[set[str], set[str], set[str]]:
    """From both runs' logs: the units made, adopted or come up; those whose create failed
    (and were not found again); and those a delete was called for."""

    def units(kind: str, **match: str) -> set[str]:
        return {
            str(e["unit"])
            for log in logs
            for e in events(log, kind)
            if all(e.get(k) == v for k, v in match.items())
        }

    made = units(spec.made) | units("adopted") | units("unit_ready")
    # A failed create is cleaned up by the driver's own delete, retried until it is done;
    # one a restarted burstd found again must be given back by it.
    failed = units("provider_error", call="create") - units("adopted")
    return made, failed, units("provider_call", call="delete")


def not_given_back(logs: list[Path], spec: Provider) -> set[str]:
    """Units made that no burstd gave back."""
    made, failed, deleted = accounts(logs, spec)
    return made - failed - deleted


def release(mark: Path) -> None:
    """Let a case paused at its fault point carry on."""
    mark.unlink()


def events_units(log: Path, kind: str) -> list[str]:
    return [str(e["unit"]) for e in events(log, kind)]


def decided(logs: list[Path], verb: str) -> list[float]:
    """When the decisions of ``verb`` acted on were made (their pass's clock), in both runs,
    in order."""
    return sorted(
        float(e["at"])
        for log in logs
        for e in events(log, "decision")
        if e.get("verb") == verb and e.get("acted")
    )

"""The list/watch loop against a scripted API server.

The fake speaks the API server's wire format for what the loop uses: paginated lists with
``metadata.continue`` and ``resourceVersion``, watch streams of newline-delimited JSON events
(``ADDED``/``MODIFIED``/``DELETED``/``BOOKMARK``/``ERROR``), error statuses with a JSON
``Status`` body, and connections that fail. Backoff sleeps are recorded, not slept.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from burstd.model.events import (
    NODES,
    PODS,
    Desynced,
    Event,
    NodeUpserted,
    PodDeleted,
    Synced,
)
from burstd.sources.kube.source import node_kind, pod_kind
from burstd.sources.kube.watch import ResourceWatch, WatchSettings


def pod(name: str, rv: str, *, gpus: int = 1, phase: str = "Pending") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ml", "resourceVersion": rv},
        "spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": gpus}}}]},
        "status": {
            "phase": phase,
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
        },
    }


def event(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


def bookmark(rv: str) -> bytes:
    return event("BOOKMARK", {"kind": "Pod", "metadata": {"resourceVersion": rv}})


def gone() -> bytes:
    return event(
        "ERROR", {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    )


class Content:
    def __init__(self, lines: list[Any]) -> None:
        self._lines = lines

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._gen()

    async def _gen(self) -> AsyncIterator[bytes]:
        for line in self._lines:
            await asyncio.sleep(0)
            if isinstance(line, BaseException):
                raise line
            yield line


class Response:
    def __init__(self, status: int = 200, body: Any = None, lines: list[Any] | None = None):
        self.status = status
        self._body = json.dumps(body).encode() if body is not None else b""
        self.content = Content(lines or [])
        self.released = False

    async def read(self) -> bytes:
        return self._body

    async def text(self) -> str:
        return self._body.decode()

    def release(self) -> None:
        self.released = True


class FakeServer:
    """``lists``: each a list of pages (lists of objects) or an exception, served in turn;
    ``watches``: each a list of lines (an exception among them breaks the stream there), a
    ``Response`` or an exception. When a script runs out, calls block."""

    def __init__(self) -> None:
        self.lists: list[Any] = []
        self.watches: list[Any] = []
        self.calls: list[dict[str, Any]] = []
        self.rv = 100
        self._pages: list[list[dict[str, Any]]] = []

    async def __call__(self, **params: Any) -> Response:
        self.calls.append(params)
        assert params["_preload_content"] is False
        if params.get("watch"):
            if not self.watches:
                await asyncio.Event().wait()
            step = self.watches.pop(0)
            if isinstance(step, BaseException):
                raise step
            if isinstance(step, Response):
                return step
            return Response(lines=step)
        if "_continue" not in params:
            if not self.lists:
                await asyncio.Event().wait()
            step = self.lists.pop(0)
            if isinstance(step, BaseException):
                raise step
            self._pages = list(step)
        page = self._pages.pop(0)
        meta: dict[str, Any] = {"resourceVersion": str(self.rv)}
        if self._pages:
            meta["continue"] = f"page-{len(self._pages)}"
        return Response(body={"kind": "PodList", "metadata": meta, "items": page})


class Rig:
    def __init__(self) -> None:
        self.server = FakeServer()
        self.events: list[Event] = []
        self.sleeps: list[float] = []

        class Core:
            list_pod_for_all_namespaces = self.server
            list_node = self.server

        self.watch = ResourceWatch(
            pod_kind(Core()),
            self.events.append,
            WatchSettings(page_size=2, backoff_base=1.0, backoff_max=8.0),
            sleep=self._sleep,
            rng=random.Random(1),
        )

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)

    def kinds(self) -> list[str]:
        return [type(e).__name__ for e in self.events]


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


@pytest.fixture
async def rig() -> Rig:
    return Rig()


async def run(rig: Rig) -> None:
    task = asyncio.create_task(rig.watch.run())
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_lists_in_pages_then_watches_from_the_lists_version(rig: Rig) -> None:
    cpu_only = pod("cpu", "1", gpus=0)
    rig.server.lists = [[[pod("a", "1"), pod("b", "2")], [cpu_only]]]
    await run(rig)
    assert rig.kinds() == ["PodUpserted", "PodUpserted", "Synced"]
    synced = rig.events[-1]
    assert synced == Synced(kind=PODS, keys=frozenset({"ml/a", "ml/b"}))
    first, second, watch = rig.server.calls
    assert first["limit"] == 2
    assert "_continue" not in first
    assert second["_continue"] == "page-1"
    assert watch["watch"] is True
    assert watch["resource_version"] == "100"
    assert watch["allow_watch_bookmarks"] is True
    assert watch["field_selector"] == "status.phase!=Succeeded,status.phase!=Failed"
    assert rig.watch.synced


async def test_watch_events_become_model_events(rig: Rig) -> None:
    rig.server.lists = [[[pod("a", "1")]]]
    rig.server.watches = [
        [
            event("ADDED", pod("b", "101")),
            bookmark("102"),
            event("MODIFIED", pod("a", "103", phase="Running")),
            # A pod that stops asking for GPUs and is not bound leaves burstd's view.
            event("MODIFIED", pod("b", "104", gpus=0)),
            event("DELETED", pod("a", "105")),
            event("DELETED", pod("never-seen", "106")),
            b"\n",
        ]
    ]
    await run(rig)
    kinds = rig.kinds()
    assert kinds == [
        "PodUpserted",
        "Synced",
        "PodUpserted",
        "PodUpserted",
        "PodDeleted",
        "PodDeleted",
    ]
    assert rig.events[-2] == PodDeleted(namespace="ml", name="b")
    assert rig.events[-1] == PodDeleted(namespace="ml", name="a")
    # The stream ended: the watch resumed from the last version seen, without listing.
    resumed = rig.server.calls[-1]
    assert resumed["watch"] is True
    assert resumed["resource_version"] == "106"
    assert rig.watch.lists == 1


async def test_bookmarks_move_the_version(rig: Rig) -> None:
    rig.server.lists = [[[]]]
    rig.server.watches = [[bookmark("555")]]
    await run(rig)
    assert rig.server.calls[-1]["resource_version"] == "555"
    assert rig.kinds() == ["Synced"]


async def test_gone_in_the_stream_relists_and_prunes(rig: Rig) -> None:
    rig.server.lists = [[[pod("a", "1"), pod("b", "2")]], [[pod("b", "3"), pod("c", "4")]]]
    rig.server.watches = [[gone()]]
    await run(rig)
    assert isinstance(rig.events[3], Desynced)
    assert rig.events[3].kind == PODS
    after = rig.events[4:]
    assert [type(e).__name__ for e in after] == [
        "PodUpserted",
        "PodUpserted",
        "PodDeleted",
        "Synced",
    ]
    assert after[2] == PodDeleted(namespace="ml", name="a")
    assert after[3] == Synced(kind=PODS, keys=frozenset({"ml/b", "ml/c"}))
    assert rig.watch.relists == 1
    assert rig.watch.lists == 2
    assert rig.sleeps == []


async def test_gone_as_a_status_relists(rig: Rig) -> None:
    rig.server.lists = [[[pod("a", "1")]], [[pod("a", "2")]]]
    rig.server.watches = [Response(410, {"kind": "Status", "code": 410, "message": "too old"})]
    await run(rig)
    assert rig.watch.relists == 1
    assert rig.kinds()[-1] == "Synced"


async def test_a_broken_stream_is_resumed(rig: Rig) -> None:
    rig.server.lists = [[[pod("a", "1")]]]
    rig.server.watches = [
        [event("ADDED", pod("b", "150")), aiohttp.ClientPayloadError("connection reset")],
        [event("ADDED", pod("c", "151"))],
    ]
    await run(rig)
    # Desynced when the stream breaks, synced again (no keys: nothing was missed) as soon as
    # the watch resumed from the last version seen; no second list.
    kinds = rig.kinds()
    assert kinds == ["PodUpserted", "Synced", "PodUpserted", "Desynced", "Synced", "PodUpserted"]
    assert rig.events[4] == Synced(kind=PODS, keys=None)
    assert rig.watch.lists == 1
    assert rig.server.calls[2]["resource_version"] == "150"
    assert rig.server.calls[-1]["resource_version"] == "151"
    assert len(rig.sleeps) == 1


async def test_an_unreachable_server_is_listed_again_with_backoff(rig: Rig) -> None:
    rig.server.lists = [
        [[pod("a", "1"), pod("b", "2")]],
        aiohttp.ClientConnectionError("refused"),
        OSError("refused"),
        [[pod("b", "3"), pod("c", "4")]],
    ]
    rig.server.watches = [aiohttp.ClientConnectionError("refused")]
    await run(rig)
    kinds = rig.kinds()
    assert kinds == [
        "PodUpserted",
        "PodUpserted",
        "Synced",
        "Desynced",
        "PodUpserted",
        "PodUpserted",
        "PodDeleted",
        "Synced",
    ]
    assert rig.events[6] == PodDeleted(namespace="ml", name="a")
    assert rig.events[7] == Synced(kind=PODS, keys=frozenset({"ml/b", "ml/c"}))
    assert (rig.watch.lists, rig.watch.relists, rig.watch.failures) == (2, 1, 3)
    assert len(rig.sleeps) == 3
    assert 0.5 <= rig.sleeps[0] <= 1.0
    assert 1.0 <= rig.sleeps[1] <= 2.0
    assert 2.0 <= rig.sleeps[2] <= 4.0


async def test_a_refused_watch_lists_again(rig: Rig) -> None:
    rig.server.lists = [[[pod("a", "1")]], [[pod("a", "2")]]]
    rig.server.watches = [Response(503, {"message": "starting"})]
    await run(rig)
    assert rig.watch.lists == 2
    assert rig.kinds() == ["PodUpserted", "Synced", "Desynced", "PodUpserted", "Synced"]


async def test_backoff_is_capped(rig: Rig) -> None:
    rig.server.lists = [[[]], *[OSError("down")] * 8]
    rig.server.watches = [OSError("down")]
    await run(rig)
    assert len(rig.sleeps) == 9
    assert max(rig.sleeps) <= 8.0
    assert min(rig.sleeps[4:]) >= 4.0


async def test_failed_list_is_retried(rig: Rig) -> None:
    rig.server.lists = [[[pod("a", "1")]]]
    calls = rig.server.__call__
    failures = [Response(500, {"message": "etcd timeout"})]

    async def flaky(**params: Any) -> Response:
        if not params.get("watch") and failures:
            return failures.pop(0)
        return await calls(**params)

    rig.watch.kind = dataclasses.replace(rig.watch.kind, list_fn=flaky)
    await run(rig)
    assert rig.kinds() == ["PodUpserted", "Synced"]
    assert len(rig.sleeps) == 1


async def test_nodes_kind_keeps_gpu_nodes() -> None:
    server = FakeServer()
    events: list[Event] = []

    class Core:
        list_pod_for_all_namespaces = server
        list_node = server

    gpu = {
        "metadata": {"name": "g1", "resourceVersion": "1"},
        "status": {"capacity": {"nvidia.com/gpu": "8"}, "allocatable": {"nvidia.com/gpu": "8"}},
    }
    cpu = {"metadata": {"name": "c1", "resourceVersion": "2"}, "status": {"capacity": {"cpu": "8"}}}
    server.lists = [[[gpu, cpu]]]
    w = ResourceWatch(node_kind(Core()), events.append, sleep=lambda s: asyncio.sleep(0))
    task = asyncio.create_task(w.run())
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [type(e) for e in events] == [NodeUpserted, Synced]
    assert events[1] == Synced(kind=NODES, keys=frozenset({"g1"}))
    assert "field_selector" not in server.calls[0]

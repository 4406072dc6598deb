"""The Prometheus source against a real local HTTP server that answers like Prometheus' API
(the real Prometheus is exercised in tests/integration/test_signals.py): what it asks, what
it emits, how it treats missing data, and that secrets never reach the log."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from burstd.model.events import Event, MetricMissing, MetricSamples, SignalStaleNotice
from burstd.sources.prometheus import (
    MetricQuery,
    PrometheusSettings,
    PrometheusSource,
    QueryFailed,
    Secret,
    parse_result,
    redact,
)

Q = "avg(DCGM_FI_DEV_GPU_UTIL)"


class FakeApi:
    """Records each request; answers with ``self.answer`` (a body, or an HTTP status)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self.answer: Any = None

    async def handle(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.requests.append(
            (request.path, {k: str(v) for k, v in form.items()}, dict(request.headers))
        )
        if isinstance(self.answer, int):
            return web.Response(status=self.answer, text="nope")
        if request.path.endswith("query_range"):
            start, end = float(form["start"]), float(form["end"])  # type: ignore[arg-type]
            values = [[start + i, "90"] for i in range(int(end - start) + 1)]
            body = self.answer or {
                "status": "success",
                "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]},
            }
        else:
            body = self.answer or {
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": [{"metric": {}, "value": [float(form["time"]), "91"]}],  # type: ignore[arg-type]
                },
            }
        return web.json_response(body)


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeApi, str]]:
    fake = FakeApi()
    app = web.Application()
    app.router.add_post("/api/v1/query", fake.handle)
    app.router.add_post("/api/v1/query_range", fake.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield fake, f"http://127.0.0.1:{port}"
    await runner.cleanup()


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t


def source(settings: PrometheusSettings, clock: Clock) -> tuple[PrometheusSource, list[Event]]:
    events: list[Event] = []
    src = PrometheusSource(
        settings,
        lambda: [MetricQuery(query=Q, window=5.0), MetricQuery(query=Q, window=3.0)],
        lambda: 1.0,
        events.append,
        now=clock.now,
    )
    return src, events


def test_parse_result_kinds_and_failures() -> None:
    vec = {"status": "success", "data": {"resultType": "vector", "result": [{"value": [1, "2"]}]}}
    assert [s.value for s in parse_result(vec)] == [2.0]
    scalar = {"status": "success", "data": {"resultType": "scalar", "result": [1, "3"]}}
    assert [s.value for s in parse_result(scalar)] == [3.0]
    cases = {
        "no series": {"status": "success", "data": {"resultType": "vector", "result": []}},
        "2 series": {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"value": [1, "1"]}, {"value": [1, "2"]}]},
        },
        "bad_data: parse error": {
            "status": "error",
            "errorType": "bad_data",
            "error": "parse error",
        },
        "no finite values": {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"value": [1, "NaN"]}]},
        },
    }
    for words, body in cases.items():
        with pytest.raises(QueryFailed, match=words):
            parse_result(body)


def test_redact_drops_user_info() -> None:
    assert redact("https://bob:hunter2@prom.example:9090/p") == "https://prom.example:9090/p"


async def test_range_first_then_instant_with_the_bearer_token(
    api: tuple[FakeApi, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake, url = api
    token = tmp_path / "token"
    token.write_text("s3cr3t-token\n")
    clock = Clock()
    src, events = source(PrometheusSettings(url=url, bearer_token=Secret(file=token)), clock)
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession() as session:
        await src.poll(session)
        clock.t += 1
        await src.poll(session)
    paths = [r[0] for r in fake.requests]
    # One request per distinct query (the widest window), range first, then instant.
    assert paths == ["/api/v1/query_range", "/api/v1/query"]
    assert fake.requests[0][1]["start"] == "995.0"
    assert all(r[2]["Authorization"] == "Bearer s3cr3t-token" for r in fake.requests)
    samples = [e for e in events if isinstance(e, MetricSamples)]
    assert [len(e.samples) for e in samples] == [6, 7]
    assert samples[-1].samples[-1].value == 91.0
    assert "s3cr3t" not in caplog.text


async def test_missing_data_then_one_notice_after_grace_then_recovery(
    api: tuple[FakeApi, str], caplog: pytest.LogCaptureFixture
) -> None:
    fake, url = api
    clock = Clock()
    src, events = source(PrometheusSettings(url=url, grace=10.0), clock)
    fake.answer = {"status": "success", "data": {"resultType": "vector", "result": []}}
    caplog.set_level(logging.INFO)
    async with aiohttp.ClientSession() as session:
        for _ in range(15):
            await src.poll(session)
            clock.t += 1
        fake.answer = None
        await src.poll(session)
    missing = [e for e in events if isinstance(e, MetricMissing)]
    notices = [e for e in events if isinstance(e, SignalStaleNotice)]
    assert len(missing) == 15
    assert all(m.reason == "no series" for m in missing)
    assert len(notices) == 1
    assert notices[0].since == 1000.0
    assert notices[0].at == 1010.0
    assert isinstance(events[-1], MetricSamples)
    kinds = [getattr(r, "event", "") for r in caplog.records]
    assert kinds.count("signal_missing") == 1
    assert kinds.count("signal_stale") == 1
    assert kinds.count("signal_recovered") == 1
    assert not any(r.exc_info for r in caplog.records)


async def test_unreachable_or_unauthorized_is_missing_data_not_a_traceback(
    api: tuple[FakeApi, str], caplog: pytest.LogCaptureFixture
) -> None:
    fake, _ = api
    clock = Clock()
    src, events = source(PrometheusSettings(url="http://127.0.0.1:9", timeout=1.0), clock)
    async with aiohttp.ClientSession() as session:
        await src.poll(session)
    assert isinstance(events[0], MetricMissing)
    assert "cannot reach Prometheus" in events[0].reason
    _, url = api
    fake.answer = 401
    src, events = source(
        PrometheusSettings(url=url, username="u", password=Secret(env="NOPE_X")), clock
    )
    async with aiohttp.ClientSession() as session:
        await src.poll(session)
    assert isinstance(events[0], MetricMissing)
    assert "NOPE_X is not set" in events[0].reason
    assert not any(r.exc_info for r in caplog.records)

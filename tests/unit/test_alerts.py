"""Alert delivery against real local HTTP receivers (aiohttp servers in the test on 127.0.0.1):
signatures, retries, timeouts, dedupe, the bounded queue, the dead letter, and no secret in
any log line. Only the backoff sleep is replaced (recorded, not waited), so no test waits for
a retry delay."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from burstd.alerts.notifier import Notifier
from burstd.alerts.senders import SIGNATURE_HEADER, verify
from burstd.app import JsonFormatter
from burstd.model.alerts import (
    Alert,
    AlertKind,
    AlertsConfig,
    Route,
    SlackReceiver,
    WebhookReceiver,
)
from burstd.state.clock import ManualClock

T0 = 1_767_000_000.0


@dataclass
class Receiver:
    """A real HTTP server; ``answers`` are the statuses to give in turn (then 200), ``delays``
    seconds to wait before answering each request in turn."""

    answers: list[int] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((dict(request.headers), body))
        if self.delays:
            await asyncio.sleep(self.delays.pop(0))
        status = self.answers.pop(0) if self.answers else 200
        return web.Response(status=status, text="ok" if status == 200 else "no")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serve_receiver() as r:
        yield r


class serve_receiver:
    def __init__(self) -> None:
        self.receiver = Receiver()
        self.runner: web.AppRunner | None = None

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.receiver.handle)
        # No access log: the receiver stands for the outside world, its logs are not ours.
        self.runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.receiver.url = f"http://127.0.0.1:{port}/hook/{secrets.token_hex(8)}"
        return self.receiver

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def recorder() -> tuple[list[float], Callable[[float], Awaitable[None]]]:
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    return delays, sleep


def alert(kind: AlertKind = AlertKind.BURST_STARTED, at: float = T0, **kw: Any) -> Alert:
    kw.setdefault("rule", "students")
    kw.setdefault("target", "donor")
    return Alert(kind=kind, reason=kw.pop("reason", "9 GPU(s) pending for 30s"), at=at, **kw)


def webhook_config(url: str, tmp_path: Path, **kw: Any) -> tuple[AlertsConfig, bytes]:
    secret = secrets.token_hex(16).encode()
    (tmp_path / "secret").write_bytes(secret + b"\n")
    receiver = WebhookReceiver(
        name="ops", url=url, secret_file=tmp_path / "secret", timeout=kw.pop("timeout", 5.0)
    )
    config = AlertsConfig(receivers={"ops": receiver}, routes=(Route(receivers=("ops",)),), **kw)
    return config, secret


async def deliver(notifier: Notifier, *alerts: Alert) -> None:
    task = asyncio.create_task(notifier.run())
    for a in alerts:
        notifier.notify(a)
    await notifier.drained()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_webhook_is_signed_and_the_receiver_verifies_it(
    receiver: Receiver, tmp_path: Path
) -> None:
    config, secret = webhook_config(receiver.url, tmp_path)
    a = alert(unit="donor-1", cost_per_hour=8.0)
    await deliver(Notifier(config, ManualClock(T0 + 5)), a)

    [(headers, body)] = receiver.requests
    assert verify(secret, headers[SIGNATURE_HEADER], body)
    assert headers[SIGNATURE_HEADER].startswith(f"t={int(T0 + 5)},v1=")
    assert not verify(b"another secret", headers[SIGNATURE_HEADER], body)
    assert not verify(secret, headers[SIGNATURE_HEADER], body + b" ")
    doc = json.loads(body)
    assert doc == {
        "id": a.id,
        "kind": "burst_started",
        "rule": "students",
        "target": "donor",
        "unit": "donor-1",
        "reason": "9 GPU(s) pending for 30s",
        "time": T0,
        "cost_per_hour": 8.0,
    }


async def test_5xx_is_retried_with_backoff_until_delivered(
    receiver: Receiver, tmp_path: Path
) -> None:
    receiver.answers = [500, 503]
    config, _ = webhook_config(receiver.url, tmp_path, backoff=2.0, attempts=5)
    delays, sleep = recorder()
    notifier = Notifier(config, ManualClock(T0), sleep=sleep)
    await deliver(notifier, alert())
    assert len(receiver.requests) == 3
    assert delays == [2.0, 4.0]
    assert notifier.counts[("ops", "delivered")] == 1
    # Every attempt carries the same event id, so a receiver can drop duplicates.
    assert len({json.loads(b)["id"] for _, b in receiver.requests}) == 1


async def test_a_slow_receiver_times_out_and_is_retried(receiver: Receiver, tmp_path: Path) -> None:
    receiver.delays = [3.0]
    config, _ = webhook_config(receiver.url, tmp_path, timeout=0.2)
    delays, sleep = recorder()
    notifier = Notifier(config, ManualClock(T0), sleep=sleep)
    await deliver(notifier, alert())
    assert len(receiver.requests) == 2
    assert len(delays) == 1
    assert notifier.counts[("ops", "delivered")] == 1


async def test_4xx_is_not_retried_and_goes_to_the_dead_letter(
    receiver: Receiver, tmp_path: Path
) -> None:
    receiver.answers = [400]
    dead = tmp_path / "dead.jsonl"
    config, _ = webhook_config(receiver.url, tmp_path, dead_letter=dead)
    delays, sleep = recorder()
    notifier = Notifier(config, ManualClock(T0), sleep=sleep)
    a = alert(kind=AlertKind.UNIT_FAILED, unit="donor-3")
    await deliver(notifier, a)
    assert len(receiver.requests) == 1
    assert delays == []
    assert notifier.counts[("ops", "failed")] == 1
    [line] = dead.read_text().splitlines()
    record = json.loads(line)
    assert record["receiver"] == "ops"
    assert "HTTP 400" in record["error"]
    assert record["alert"]["id"] == a.id
    assert record["alert"]["kind"] == "unit_failed"


async def test_the_same_event_is_sent_once_per_dedupe_window(
    receiver: Receiver, tmp_path: Path
) -> None:
    config, _ = webhook_config(receiver.url, tmp_path, dedupe_window=300.0)
    notifier = Notifier(config, ManualClock(T0))
    await deliver(
        notifier,
        alert(at=T0),
        alert(at=T0 + 10, reason="other words, same event"),
        alert(at=T0 + 20, target="cloud"),  # another subject: not the same event
        alert(at=T0 + 301),  # the window has passed
    )
    sent = [(json.loads(b)["target"], json.loads(b)["time"]) for _, b in receiver.requests]
    assert sorted(sent) == [("cloud", T0 + 20), ("donor", T0), ("donor", T0 + 301)]
    assert notifier.counts[("*", "deduped")] == 1


async def test_routes_pick_receivers_by_kind_and_rule(tmp_path: Path) -> None:
    async with serve_receiver() as chat, serve_receiver() as pager:
        config = AlertsConfig(
            receivers={
                "chat": WebhookReceiver(name="chat", url=chat.url),
                "pager": WebhookReceiver(name="pager", url=pager.url),
            },
            routes=(
                Route(receivers=("chat",)),
                Route(
                    receivers=("pager",),
                    kinds=frozenset({AlertKind.UNIT_FAILED}),
                    rules=frozenset({"prod"}),
                ),
            ),
        )
        await deliver(
            Notifier(config, ManualClock(T0)),
            alert(kind=AlertKind.UNIT_FAILED, rule="prod"),
            alert(kind=AlertKind.UNIT_FAILED, rule="students"),
            alert(kind=AlertKind.BURST_STARTED, rule="prod"),
        )
    got = sorted((json.loads(b)["kind"], json.loads(b)["rule"]) for _, b in pager.requests)
    assert got == [("unit_failed", "prod")]
    assert len(chat.requests) == 3


async def test_a_receiver_down_never_blocks_notify(tmp_path: Path) -> None:
    """The receiver's port is closed for the whole test. ``notify`` is a plain function: it
    returns without awaiting anything, and once the bounded queue is full it drops (and
    dead-letters) instead of waiting."""
    async with serve_receiver() as gone:
        url = gone.url
    dead = tmp_path / "dead.jsonl"
    config, _ = webhook_config(url, tmp_path, queue_size=3, attempts=2, dead_letter=dead)
    _, sleep = recorder()
    notifier = Notifier(config, ManualClock(T0), sleep=sleep)
    assert not asyncio.iscoroutinefunction(notifier.notify)
    for i in range(10):
        notifier.notify(alert(unit=f"u{i}"))
    assert notifier.queued == 3
    assert notifier.counts[("ops", "dropped")] == 7
    task = asyncio.create_task(notifier.run())
    await notifier.drained()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert notifier.counts[("ops", "failed")] == 3
    records = [json.loads(line) for line in dead.read_text().splitlines()]
    assert sorted(r["alert"]["unit"] for r in records) == sorted(f"u{i}" for i in range(10))
    assert all("ClientConnectorError" in r["error"] for r in records if "queue" not in r["error"])


async def test_slack_gets_a_readable_message_and_is_retried(
    receiver: Receiver, tmp_path: Path
) -> None:
    receiver.answers = [500]
    (tmp_path / "slack-url").write_text(receiver.url + "\n")
    config = AlertsConfig(
        receivers={"chat": SlackReceiver(name="chat", url_file=tmp_path / "slack-url")},
        routes=(Route(receivers=("chat",)),),
    )
    _, sleep = recorder()
    notifier = Notifier(config, ManualClock(T0), sleep=sleep)
    await deliver(notifier, alert(cost_per_hour=12.5, unit="donor-2"))
    assert len(receiver.requests) == 2
    assert notifier.counts[("chat", "delivered")] == 1
    text = json.loads(receiver.requests[-1][1])["text"]
    assert "burst started" in text
    assert "rule students" in text
    assert "9 GPU(s) pending for 30s" in text
    assert "12.50/h" in text


async def test_no_secret_appears_in_any_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Slack's URL is a credential and so is the webhook secret; every path that logs (a
    delivery, a retry, a 4xx, a receiver down, the dead letter) is taken at debug level, and
    each line, as the JSON formatter writes it, is searched for them."""
    caplog.set_level(logging.DEBUG)
    async with serve_receiver() as slack, serve_receiver() as hook:
        slack.answers = [500, 404]
        hook.answers = [503]
        (tmp_path / "slack-url").write_text(slack.url)
        config, secret = webhook_config(hook.url, tmp_path, dead_letter=tmp_path / "dead")
        async with serve_receiver() as gone:
            down = gone.url
        config = AlertsConfig(
            receivers={
                **config.receivers,
                "chat": SlackReceiver(name="chat", url_file=tmp_path / "slack-url"),
                "down": WebhookReceiver(name="down", url=down, secret_file=tmp_path / "secret"),
            },
            routes=(Route(receivers=("ops", "chat", "down")),),
            attempts=2,
            dead_letter=tmp_path / "dead",
        )
        _, sleep = recorder()
        await deliver(Notifier(config, ManualClock(T0), sleep=sleep), alert())
        assert slack.requests
        assert hook.requests
    lines = [JsonFormatter().format(r) for r in caplog.records]
    assert any("not delivered to chat" in line for line in lines)
    assert any("retry" in line for line in lines)
    for needle in (slack.url, slack.url.rsplit("/", 1)[1], secret.decode(), down):
        assert not [line for line in lines if needle in line], needle

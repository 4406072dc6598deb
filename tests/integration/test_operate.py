"""The operator's side of a real burst: real API server, scheduler, controllers and kwok;
burstd in the test's event loop with its HTTP API on a free loopback port; alert receivers
that are real aiohttp servers; the status page loaded in real headless Chromium (installed by
``scripts/system-deps``), which writes a screenshot to ``out/test-artifacts/``."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from burstd.alerts.senders import SIGNATURE_HEADER, verify
from burstd.api.ops import ApiSettings
from burstd.app import App, JsonFormatter
from tests.integration.kube import (
    REPO,
    Kube,
    burstd_in_process,
    eventually,
    node_of,
    phase,
    rules_yaml,
)
from tests.unit.test_alerts import Receiver, serve_receiver

pytestmark = pytest.mark.integration

TOKEN = "api-token-for-the-test-0123456789"
ARTIFACTS = REPO / "out" / "test-artifacts"
PRICE = 2.5

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def with_alerts(rules: str, hook: str, down: str, secret: Path, slack_url: Path) -> str:
    rules = rules.replace(
        "    backoff: 5s\n", f"    backoff: 5s\n    price_per_gpu_hour: {PRICE}\n"
    )
    return (
        rules
        + f"""\
alerts:
  receivers:
    ops: {{webhook: {{}}, url: "{hook}", secret_file: {secret}}}
    down: {{webhook: {{}}, url: "{down}", timeout: 1s}}
    chat: {{slack: {{}}, url_file: {slack_url}}}
  routes:
    - receivers: [ops, down]
    - receivers: [chat]
      kinds: [burst_started]
  attempts: 3
  backoff: 500ms
"""
    )


async def chromium(url: str, tmp_path: Path, *args: str) -> bytes:
    """Run headless Chromium on ``url`` with a fresh profile; its stdout. Asynchronously, so
    the burstd in this event loop keeps serving the page meanwhile."""
    binary = shutil.which("chromium")
    assert binary, "chromium is missing: scripts/system-deps installs it"
    profile = tmp_path / f"chromium-{secrets.token_hex(4)}"  # a fresh profile each run
    proc = await asyncio.create_subprocess_exec(
        binary,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "--window-size=1280,1000",
        "--virtual-time-budget=8000",
        *args,
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode == 0, err.decode()[-2000:]
    return out


def metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def events_of(receiver: Receiver, secret: bytes) -> list[dict[str, Any]]:
    out = []
    for headers, body in receiver.requests:
        assert verify(secret, headers[SIGNATURE_HEADER], body)
        out.append(json.loads(body))
    return out


async def test_a_burst_seen_through_metrics_status_page_and_alerts(
    kube: Kube,
    namespace: str,
    target: str,
    kubeconfig: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = b"test-webhook-secret-0123456789"
    (tmp_path / "secret").write_bytes(secret)
    async with serve_receiver() as gone:
        down = gone.url  # closed for the whole test
    async with serve_receiver() as hook, serve_receiver() as chat:
        (tmp_path / "slack-url").write_text(chat.url)
        config = tmp_path / "rules.yaml"
        rules = rules_yaml(target=target, namespace=namespace)
        config.write_text(
            with_alerts(rules, hook.url, down, tmp_path / "secret", tmp_path / "slack-url")
        )
        api = ApiSettings(listen="127.0.0.1:0", token=TOKEN)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            burstd_in_process(config, kubeconfig, api=api) as app,
            aiohttp.ClientSession(headers=headers) as http,
        ):
            assert app.ops.address is not None
            base = f"http://127.0.0.1:{app.ops.address[1]}"
            await kube.create_job(namespace, "train", pods=3, gpus=2, complete_after="40s")

            async def all_running() -> bool:
                pods = await kube.pods(namespace)
                return len(pods) == 3 and all(phase(p) == "Running" and node_of(p) for p in pods)

            await eventually(all_running, within=60, what="3 pods Running")
            await check_metrics(http, base, target)
            status = await check_status(http, base, app, target)
            await check_page(base, tmp_path, status)

            started = [e for e in events_of(hook, secret) if e["kind"] == "burst_started"]
            assert len(started) == 1
            assert started[0]["rule"] == "burst"
            assert started[0]["target"] == target
            assert started[0]["cost_per_hour"] == 2 * 4 * PRICE
            assert "scaleup" in started[0]["reason"]
            [slack] = [json.loads(body)["text"] for _, body in chat.requests]
            assert "burst started" in slack

            async def finished() -> bool:
                return any(e["kind"] == "burst_finished" for e in events_of(hook, secret))

            await eventually(finished, within=90, what="burst_finished delivered")

            # The receiver that was down never held a decision back: the whole cycle ran.
            assert app.actuator.released_total == 2

            async def down_given_up() -> bool:
                return app.ops.notifier.counts[("down", "failed")] >= 2

            await eventually(down_given_up, within=30, what="the dead receiver given up")
            assert app.ops.notifier.counts[("ops", "delivered")] >= 2

            # A broken rules file: an alert, /readyz and burstd_rules_valid say so.
            config.write_text(config.read_text().replace("version: 1", "version: 7"))
            app.reload_now()
            async with http.get(f"{base}/readyz") as r:
                assert r.status == 503
            async with http.get(f"{base}/metrics") as r:
                assert metrics(await r.text())[("burstd_rules_valid", ())] == 0.0

            async def invalid_alerted() -> bool:
                return any(e["kind"] == "rules_invalid" for e in events_of(hook, secret))

            await eventually(invalid_alerted, within=30, what="rules_invalid delivered")

    # No secret in any log line, in either format.
    json_lines = [JsonFormatter().format(r) for r in caplog.records]
    text = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    lines = json_lines + [text.format(r) for r in caplog.records]
    assert any('"event": "alert_undelivered"' in line for line in json_lines)
    for needle in (TOKEN, secret.decode(), chat.url, chat.url.rsplit("/", 1)[1]):
        assert not [line for line in lines if needle in line], needle


async def check_metrics(http: aiohttp.ClientSession, base: str, target: str) -> None:
    async with aiohttp.ClientSession() as anonymous, anonymous.get(f"{base}/metrics") as r:
        assert r.status == 401
    async with http.get(f"{base}/metrics") as r:
        assert r.status == 200
        m = metrics(await r.text())
    t = (("target", target),)
    assert m[("burstd_units", (("phase", "ready"), ("target", target)))] == 2
    assert m[("burstd_borrowed_gpus", t)] == 8
    assert m[("burstd_cost_per_hour", ())] == 8 * PRICE
    assert m[("burstd_decisions_total", (("kind", "scaleup"), ("rule", "burst")))] >= 1
    create_ok = (("call", "create"), ("result", "ok"), ("target", target))
    assert m[("burstd_provider_calls_total", create_ok)] == 2
    create = (("call", "create"), ("target", target))
    assert m[("burstd_provider_call_duration_seconds_count", create)] == 2
    # One observation per pod a scale-up placed: Unschedulable → create call.
    assert m[("burstd_decision_latency_seconds_count", ())] == 3
    assert m[("burstd_rules_valid", ())] == 1
    assert m[("burstd_ready", ())] == 1
    async with http.get(f"{base}/readyz") as r:
        assert (r.status, await r.text()) == (200, "ok\n")
    async with http.get(f"{base}/healthz") as r:
        assert r.status == 200


async def check_status(
    http: aiohttp.ClientSession, base: str, app: App, target: str
) -> dict[str, Any]:
    async with http.get(f"{base}/status") as r:
        status: dict[str, Any] = await r.json()
    units = {u["id"]: u for u in status["units"]}
    assert set(units) == set(app.actuator.units)
    assert {u["phase"] for u in units.values()} == {"ready"}
    assert all(u["node"] and u["target"] == target for u in units.values())
    [rule] = status["rule_status"]
    assert (rule["name"], rule["units"], rule["gpus"]) == ("burst", 2, 8)
    assert status["cost"]["per_hour"] == 8 * PRICE
    [t] = [t for t in status["targets"] if t["name"] == target]
    assert (t["provider"], t["units"], t["in_backoff"]) == ("kwok", 2, False)
    scale_ups = [d for d in status["decisions"] if d["kind"] == "scaleup"]
    assert scale_ups
    assert all(d["reason"] for d in scale_ups)
    assert status["signals"]["pods"]["synced"] is True
    assert status["alerts"]["receivers"] == ["chat", "down", "ops"]
    assert "secret" not in json.dumps(status)
    return status


async def check_page(base: str, tmp_path: Path, status: dict[str, Any]) -> None:
    # The token travels in the fragment, which the browser keeps to itself.
    page = f"{base}/#token={TOKEN}"
    dom = (await chromium(page, tmp_path, "--dump-dom")).decode()
    for u in status["units"]:
        assert u["id"] in dom
        assert u["node"] in dom
    reason = next(d["reason"] for d in status["decisions"] if d["kind"] == "scaleup")
    assert reason.replace("&", "&amp;").replace(">", "&gt;") in dom
    assert '<div id="error"></div>' in dom  # /status loaded
    assert "ready</span>" in dom
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "status-page.png"
    shot.unlink(missing_ok=True)
    await chromium(page, tmp_path, f"--screenshot={shot}")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 10_000

"""Utilization triggers end to end: the real control plane with kwok, a real Prometheus
(Debian's package, ``kube-testenv up --prometheus``) scraping the DCGM replay exporter, and
burstd in the test's event loop.

The exporter is the one stand-in: it serves the real per-pod duty cycle of the bundled Alibaba
GenAI sample under DCGM exporter names, because the DCGM exporter needs a GPU. ``vllm-0``
runs at or above 50 % for 7 trace samples from sample 438 on; from sample 1063 on it stays at
or below 10 % for 88 samples. Each trace sample lasts 2 s here.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from burstd.app import App
from burstd.model import Cordon, Drain, Release, ScaleUp
from burstd.sim.duty import load_duty_cycle
from burstd.sources.prometheus import PrometheusSettings
from burstd.testing.dcgm_exporter import ReplayExporter
from tests.integration.conftest import Prometheus
from tests.integration.kube import (
    Kube,
    burstd_in_process,
    cordoned,
    eventually,
    name_of,
    rules_yaml,
)

pytestmark = pytest.mark.integration

HIGH = 438
LOW = 1063


def query_for(instance: str) -> str:
    """vllm-0's utilization, from this test's exporter only."""
    return (
        f'max(DCGM_FI_DEV_GPU_UTIL{{namespace="llm-serving", pod="vllm-0", instance="{instance}"}})'
    )


def rules(target: str, namespace: str, query: str) -> str:
    """One kwok target of 4-GPU units; keep one while vllm-0 stays ≥ 50 % for 5 s."""
    trigger = f"utilization: {{query: '{query}', above: 50, for: 5s}}"
    return rules_yaml(
        target=target,
        namespace=namespace,
        rule="chat",
        idle_for="2s",
        validation="1s",
        max_units=2,
        trigger=trigger,
        min_gpus=4,
    )


@pytest.fixture
async def exporter(prometheus: Prometheus) -> AsyncIterator[tuple[ReplayExporter, str]]:
    replay = ReplayExporter(load_duty_cycle(), seconds_per_step=2.0, start_step=LOW)
    async with replay.serve() as address:
        target = prometheus.add_target(f"replay-{secrets.token_hex(3)}", address)
        try:
            yield replay, address
        finally:
            target.unlink(missing_ok=True)


async def _units(kube: Kube, target: str) -> list[dict[str, Any]]:
    return await kube.nodes(f"burstd.io/target={target}")


def _scale_ups(app: App) -> list[ScaleUp]:
    return [a.decision for a in app.applied if isinstance(a.decision, ScaleUp)]


async def test_utilization_bursts_releases_and_holds_on_missing_data(
    kube: Kube,
    namespace: str,
    target: str,
    kubeconfig: Path,
    tmp_path: Path,
    prometheus: Prometheus,
    exporter: tuple[ReplayExporter, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    replay, instance = exporter
    config = tmp_path / "rules.yaml"
    query = query_for(instance)
    config.write_text(rules(target, namespace, query))
    settings = PrometheusSettings(url=prometheus.url, timeout=2.0, grace=2.0)
    caplog.set_level(logging.INFO)
    async with burstd_in_process(config, kubeconfig, prometheus=settings) as app:

        async def window_seen() -> bool:
            samples = app.state.metrics.get(query, ())
            return len(samples) >= 5 and query not in app.state.stale

        # 1. Low utilization, scraped and read: nothing is borrowed.
        await eventually(window_seen, within=60, what="the low replay read back")
        for _ in range(6):
            await asyncio.sleep(0.5)
            assert not await _units(kube, target)
        assert not _scale_ups(app)

        # 2. A sustained rush: one unit (min_gpus 4) once it has lasted the 5 s window.
        replay.seek(HIGH)
        first = await eventually(
            lambda: _units(kube, target), within=60, what="a unit for the rush"
        )
        assert len(first) == 1
        ups = _scale_ups(app)
        assert len(ups) == 1
        assert "to keep min_gpus 4" in ups[0].reason
        assert "≥ 50 for 5s" in ups[0].reason

        # 3. The rush is over: the unit is given back.
        replay.seek(LOW)

        async def none_left() -> bool:
            return not await _units(kube, target)

        await eventually(none_left, within=60, what="the unit released after the rush")
        units = {u for a in app.applied if isinstance(a.decision, ScaleUp) for u in a.units}
        decisions = [a.decision for a in app.applied]
        for kind in (Cordon, Drain, Release):
            assert {d.unit for d in decisions if isinstance(d, kind)} == units, kind

        # 4. Another rush; Prometheus dies while it runs and the load drops meanwhile.
        replay.seek(HIGH)
        held = await eventually(
            lambda: _units(kube, target), within=60, what="a unit for the second rush"
        )
        prometheus.kill()
        replay.seek(LOW)

        async def stale() -> bool:
            return query in app.state.stale and any(n.query == query for n in app.state.notices)

        await eventually(stale, within=30, what="the signal marked stale and noticed")
        assert any(getattr(r, "event", "") == "signal_stale" for r in caplog.records)
        ups_before = len(_scale_ups(app))
        # Well past idle_for + validation: missing data neither releases nor bursts.
        for _ in range(12):
            await asyncio.sleep(0.5)
            nodes = await _units(kube, target)
            assert [name_of(n) for n in nodes] == [name_of(held[0])]
            assert not cordoned(nodes[0])
        assert len(_scale_ups(app)) == ups_before
        plan = app.controller.last_plan
        assert plan is not None
        assert "stale since" in plan.views[0].why
        assert any("kept:" in d.reason and "stale since" in d.reason for d in plan.decisions)

        # 5. Prometheus is back with the low load: the unit goes back as usual.
        prometheus.start()
        await eventually(none_left, within=90, what="the unit released once data is back")
        assert query not in app.state.stale
        assert any(getattr(r, "event", "") == "signal_recovered" for r in caplog.records)

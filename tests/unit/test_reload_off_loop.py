"""The daemon's rules reload reads and parses the file off the event loop, and a hostile file
(an alias bomb) is refused like any bad file, so neither can stall the watch."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import burstd.app
from burstd.app import App, Settings
from burstd.rules.loader import load_rules
from burstd.rules.types import RuleSet
from burstd.state.clock import ManualClock
from tests.unit.test_driver import held_fake
from tests.unit.test_kube_app import RULES

# A provider whose params are free-form (kwok's have a schema, whose unknown keys fail first).
BOMB = RULES.replace("provider: kwok", "provider: terraform").replace(
    "    price_per_gpu_hour: 2\n",
    "    price_per_gpu_hour: 2\n    params:\n      module: ./m\n      vars:\n"
    '        l0: &l0 ["x","x","x","x","x","x","x","x","x","x"]\n'
    + "".join(f"        l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 9)),
)


async def _until(check: Callable[[], bool], within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_reloads_are_parsed_in_a_worker_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(RULES)
    fake = held_fake()
    app = App(
        Settings(config=config, handle_signals=False, reload_check=0.01),
        clock=ManualClock(5000.0),
        providers={"kwok": lambda ctx: fake},
    )
    app._build_providers(app.rules)
    threads: list[threading.Thread] = []

    def spy(path: str | Path) -> RuleSet:
        threads.append(threading.current_thread())
        return load_rules(path)

    monkeypatch.setattr(burstd.app, "load_rules", spy)
    reloader = asyncio.create_task(app._reloader())
    try:
        config.write_text(BOMB)
        await _until(lambda: app.reload_failures == 1)
        config.write_text(RULES.replace("gpus_per_unit: 4", "gpus_per_unit: 8"))
        await _until(lambda: app.reloads == 1)
    finally:
        reloader.cancel()
        await asyncio.gather(reloader, return_exceptions=True)
    assert app.rules.targets["kw"].gpus_per_unit == 8
    assert threads
    assert threading.main_thread() not in threads

"""The app's own logic, without a cluster: rules reload, adoption, logging, unit ids."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from burstd.app import App, JsonFormatter, Settings, unique_ids
from burstd.model import GpuRequest, Node, Pod, PodPhase, ScaleUp, Snapshot, UnitPhase
from burstd.model.events import NODES, PODS, NodeUpserted, PodDeleted, PodUpserted, Synced
from burstd.plan.fit import Unservable
from burstd.plan.planner import Plan, plan
from burstd.providers.base import ProviderError, ProviderFactory, ProvisionedUnit
from burstd.providers.fake import FakeProvider
from burstd.state.clock import ManualClock
from tests.unit.test_driver import held_fake

RULES = """\
version: 1
loop: {interval: 5s, batch_idle: 1s, batch_max: 5s}
targets:
  kw:
    provider: kwok
    gpu_model: NVIDIA-A100
    gpus_per_unit: 4
    price_per_gpu_hour: 2
rules:
  - name: jobs
    match: {namespaces: [ml]}
    triggers: [{pending: {gpus: 1}}]
    burst: {ladder: [kw]}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


@pytest.fixture
def app(config: Path) -> App:
    fake = held_fake()
    a = App(
        Settings(config=config, handle_signals=False, memory="none"),
        clock=ManualClock(5000.0),
        providers={"kwok": lambda ctx: fake},
    )
    a._build_providers(a.rules)
    return a


def test_unchanged_file_is_not_reloaded(app: App) -> None:
    assert app.reload_now(forced=False) is False
    assert app.reload_now(forced=True) is False  # same digest
    assert app.reloads == 0


def test_bad_file_keeps_the_rules_in_force(
    app: App, config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = app.rules
    config.write_text(RULES.replace("gpus_per_unit: 4", "gpus_per_unit: four"))
    with caplog.at_level(logging.ERROR, logger="burstd"):
        assert app.reload_now(forced=False) is False
    assert app.rules is good
    assert app.reload_failures == 1
    problems = [
        r.getMessage() for r in caplog.records if getattr(r, "event", "") == "rules_problem"
    ]
    assert problems
    assert all(str(config) in p and "gpus_per_unit" in p for p in problems)
    # The same bad file is not reported again at every check...
    assert app.reload_now(forced=False) is False
    assert app.reload_failures == 1
    # ...and a fixed one is taken.
    config.write_text(RULES.replace("gpus_per_unit: 4", "gpus_per_unit: 8"))
    assert app.reload_now(forced=False) is True
    assert app.rules.targets["kw"].gpus_per_unit == 8
    assert app.reloads == 1


def test_missing_file_keeps_the_rules(app: App, config: Path) -> None:
    good = app.rules
    config.unlink()
    assert app.reload_now(forced=True) is False
    assert app.rules is good


def test_adopted_units_keep_their_phase(app: App) -> None:
    target = app.rules.targets["kw"]
    ready = app._unit_from(
        ProvisionedUnit(
            id="kw-1", target="kw", rule="jobs", gpus=4, node="n1", ready=True, created_at=10.0
        ),
        target,
    )
    assert ready.phase is UnitPhase.READY
    assert (ready.node, ready.requested_at, ready.ready_at) == ("n1", 10.0, 5000.0)
    assert ready.price_per_gpu_hour == 2
    assert ready.gpu_model == "NVIDIA-A100"
    cordoned = app._unit_from(
        ProvisionedUnit(
            id="kw-2",
            target="kw",
            rule="jobs",
            gpus=4,
            node="n2",
            ready=True,
            cordoned=True,
            cordoned_by_burstd=True,
        ),
        target,
    )
    assert cordoned.phase is UnitPhase.CORDONED
    assert cordoned.phase_since == 5000.0
    assert not cordoned.held
    # An operator's cordon (no burstd record on the node) is not burstd's to undo or act on.
    operators = app._unit_from(
        ProvisionedUnit(
            id="kw-4", target="kw", rule="jobs", gpus=4, node="n4", ready=True, cordoned=True
        ),
        target,
    )
    assert operators.phase is UnitPhase.READY
    assert operators.held
    # The shape is the object's, not the target's current one.
    mig = app._unit_from(
        ProvisionedUnit(
            id="kw-5", target="kw", rule="jobs", gpus=1, node="n5", ready=True, mig={"1g.10gb": 7}
        ),
        target,
    )
    assert (mig.gpus, mig.mig) == (1, (("1g.10gb", 7),))
    starting = app._unit_from(
        ProvisionedUnit(id="kw-3", target="kw", rule="jobs", gpus=4, node="n3", ready=False),
        target,
    )
    assert starting.phase is UnitPhase.PROVISIONING
    assert starting.node is None


async def test_adoption_resumes_units_still_starting(app: App) -> None:
    fake = app.providers["kw"]
    assert isinstance(fake, FakeProvider)

    fake.units = {
        "kw-1": ProvisionedUnit(id="kw-1", target="kw", rule="jobs", gpus=4, node="n1", ready=True),
        "kw-2": ProvisionedUnit(
            id="kw-2", target="kw", rule="jobs", gpus=4, node=None, ready=False
        ),
    }
    async with asyncio.TaskGroup() as tg:
        app.driver.attach(tg)
        await app._adopt()
        assert set(app.actuator.units) == {"kw-1", "kw-2"}
        for _ in range(5):
            await asyncio.sleep(0)
        # kw-2 is waited for, as its create would have: create is idempotent by unit id.
        assert [c for c in fake.calls if c[0] != "list_units"] == [("create", "kw-2")]
        fake.open_gate()
        for _ in range(10):
            await asyncio.sleep(0)
    assert app.actuator.units["kw-2"].phase is UnitPhase.READY


def test_events_poke_the_trigger_and_mark_sync(app: App) -> None:
    app._on_event(Synced(kind=PODS, keys=frozenset()))
    assert not app._synced.is_set()
    app._on_event(Synced(kind=NODES, keys=frozenset()))
    assert app._synced.is_set()
    pod = Pod(namespace="ml", name="a", gpu=GpuRequest(gpus=1), unschedulable=True)
    app.trigger._batcher.ran(0)
    app._on_event(PodUpserted(pod=pod))
    assert app.trigger.pending


def test_a_pod_leaving_a_unit_counts_as_busy_until_then(app: App) -> None:
    from burstd.model import Unit

    app.actuator.adopt(
        [
            Unit(
                id="kw-1",
                target="kw",
                rule="jobs",
                gpus=4,
                phase=UnitPhase.READY,
                node="n1",
                last_busy_at=100.0,
            )
        ]
    )
    app._on_event(
        NodeUpserted(node=Node(name="n1", gpu_capacity=4, gpu_allocatable=4, unit="kw-1"))
    )
    pod = Pod(namespace="ml", name="a", gpu=GpuRequest(gpus=1), node="n1", phase=PodPhase.RUNNING)
    app._on_event(PodUpserted(pod=pod))
    app._on_event(Synced(kind=PODS, keys=None))
    app._on_event(Synced(kind=NODES, keys=None))
    assert isinstance(app.clock, ManualClock)
    app.actuator.observe(app.state.snapshot(5000.0), 5000.0)  # a pass sees it running
    app.clock.advance(42)
    app._on_event(PodDeleted(namespace="ml", name="a"))
    # The next pass, 8 s later, finds the unit idle: idle since the pod left, not since 5000.
    app.actuator.observe(app.state.snapshot(5050.0), 5050.0)
    assert app.actuator.units["kw-1"].last_busy_at == 5042.0


def test_unique_ids_skip_taken_ones() -> None:
    taken = {"kw-000000": object()}
    new_id = unique_ids(lambda: taken)  # type: ignore[arg-type, return-value]
    ids = {new_id("kw") for _ in range(50)}
    assert len(ids) == 50
    assert all(i.startswith("kw-") and len(i) == 9 for i in ids)
    assert "kw-000000" not in ids


def test_json_log_lines_carry_the_extra_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "burstd", "levelno": 20, "levelname": "INFO", "msg": "scale up %s", "args": ("x",)}
    )
    record.event = "decision"
    record.reason = "3 pods pending"
    out = json.loads(JsonFormatter().format(record))
    assert out["msg"] == "scale up x"
    assert out["event"] == "decision"
    assert out["reason"] == "3 pods pending"
    assert out["level"] == "info"


def test_unservable_pods_are_logged_once(app: App, caplog: pytest.LogCaptureFixture) -> None:
    lost = Unservable(pod="ml/lost", rule="jobs", reason="no target on the ladder can take it")
    result = Plan(decisions=(), unservable=(lost,))
    with caplog.at_level(logging.WARNING, logger="burstd"):
        for _ in range(5):
            app._report_unservable(result)
        app._report_unservable(Plan(decisions=()))  # it was placed, or deleted
        app._report_unservable(result)  # unservable again: said again
    said = [r for r in caplog.records if getattr(r, "event", "") == "unservable"]
    assert len(said) == 2
    assert "ml/lost" in said[0].getMessage()
    assert app.unservable == {"ml/lost": lost.reason}


def test_orphan_targets_are_found_by_their_nodes_labels(app: App) -> None:
    """A node burstd made for a target no longer in the file gets a provider of its kind."""
    labels = {
        "app.kubernetes.io/managed-by": "burstd",
        "burstd.io/target": "gone",
        "burstd.io/provider": "kwok",
        "burstd.io/unit": "gone-1",
    }
    app.state.apply(NodeUpserted(node=Node(name="gone-1", unit="gone-1", labels=labels)))
    stray = dict(labels, **{"burstd.io/provider": "nonesuch", "burstd.io/target": "other"})
    app.state.apply(NodeUpserted(node=Node(name="x-1", unit="x-1", labels=stray)))
    app._orphan_providers()
    assert "gone" in app.providers
    assert "other" not in app.providers


def app_on(tmp_path: Path, rules: str, provider: ProviderFactory, **settings: Any) -> App:
    """An app on the rules text ``rules`` whose every target gets its provider from
    ``provider``, built, no memory."""
    config = tmp_path / "rules.yaml"
    config.write_text(rules)
    app = App(
        Settings(config=config, handle_signals=False, memory="none", **settings),
        clock=ManualClock(5000.0),
        providers={"kwok": provider},
    )
    app._build_providers(app.rules)
    return app


TWO_TARGETS = RULES.replace(
    "rules:\n",
    """  tf:
    provider: kwok
    gpus_per_unit: 4
rules:
""",
).replace("ladder: [kw]", "ladder: [tf, kw]")


class BrokenLister(FakeProvider):
    """A target whose units cannot be listed while ``error`` is set (a Terraform module whose
    ``terraform init`` fails)."""

    error: ProviderError | None = None

    async def list_units(self) -> list[ProvisionedUnit]:
        if self.error is not None:
            self.calls.append(("list_units-failed", ""))
            raise self.error
        return await super().list_units()


async def test_a_target_that_cannot_list_its_units_is_held_back_not_waited_for(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = FakeProvider(target="kw")
    good.units = {
        "kw-1": ProvisionedUnit(id="kw-1", target="kw", rule="jobs", gpus=4, node="n1", ready=True)
    }
    broken = BrokenLister(target="tf")
    broken.error = ProviderError("terraform init failed: module not found")
    broken.units = {
        "tf-1": ProvisionedUnit(id="tf-1", target="tf", rule="jobs", gpus=4, node="t1", ready=True)
    }
    app = app_on(
        tmp_path,
        TWO_TARGETS,
        lambda ctx: broken if ctx.target == "tf" else good,
        adopt_retry=10.0,
    )
    with caplog.at_level(logging.DEBUG, logger="burstd"):
        adopting = asyncio.create_task(app._adopt())
        for _ in range(20):
            await asyncio.sleep(0)
        waited = not adopting.done()
        adopting.cancel()
    assert not waited, "the start waited for the broken target"
    # The other target is adopted at once; the broken one was asked once, not retried here.
    assert set(app.actuator.units) == {"kw-1"}
    assert broken.calls == [("list_units-failed", "")]
    errors = [r for r in caplog.records if getattr(r, "event", "") == "adopt_error"]
    assert [(r.levelno, r.target, r.retry_in) for r in errors] == [  # type: ignore[attr-defined]
        (logging.ERROR, "tf", 10.0)
    ]
    assert "terraform init failed: module not found" in errors[0].getMessage()
    # Its planning is held back: the ladder skips it (its units are unknown) for the next rung.
    status = app.actuator.merged(Snapshot()).target_status("tf")
    assert "terraform init failed" in status.held_back
    pod = Pod(namespace="ml", name="p", gpu=GpuRequest(gpus=4), unschedulable=True)
    # (Past the minute in which the unit just adopted counts as capacity on its way.)
    planned = plan(replace(app.actuator.merged(Snapshot()), pods=(pod,)), app.rules, 5100.0)
    [up] = [d for d in planned.actions if isinstance(d, ScaleUp)]
    assert up.target == "kw"
    assert "tf held back: its existing units are unknown" in up.reason

    # Not due yet: not asked. Due and still broken: asked, quietly, the wait doubled.
    caplog.clear()
    await app._adopt(initial=False, sweep=False)
    assert len(broken.calls) == 1
    app.adoption.retry_now()
    with caplog.at_level(logging.DEBUG, logger="burstd"):
        await app._adopt(initial=False, sweep=False)
    assert len(broken.calls) == 2
    [again] = [r for r in caplog.records if getattr(r, "event", "") == "adopt_error"]
    assert (again.levelno, again.retry_in) == (logging.DEBUG, 20.0)  # type: ignore[attr-defined]

    # Fixed: its units are adopted and it is planned on again.
    broken.error = None
    app.adoption.retry_now()
    await app._adopt(initial=False, sweep=False)
    assert set(app.actuator.units) == {"kw-1", "tf-1"}
    assert app.actuator.merged(Snapshot()).target_status("tf").held_back == ""
    assert not app.adoption.unlisted


class Troubled(FakeProvider):
    """A provider that reports problems of its target (as the Liqo one does)."""

    found: tuple[str, ...] = ()
    asked: frozenset[str] | None = None

    async def problems(self, namespaces: frozenset[str] | None = None) -> list[str]:
        self.asked = namespaces
        return list(self.found)


async def test_provider_problems_reach_the_status_and_are_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    troubled = Troubled(target="kw")
    app = app_on(tmp_path, RULES, lambda ctx: troubled)
    problem = "namespace ml has pending GPU pods but no NamespaceOffloading"
    troubled.found = (problem,)
    with caplog.at_level(logging.INFO, logger="burstd"):
        await app.check_targets()
        await app.check_targets()
        troubled.found = ()
        await app.check_targets()
    events = [(r.levelno, getattr(r, "event", "")) for r in caplog.records]
    assert events == [
        (logging.WARNING, "target_problem"),
        (logging.INFO, "target_problem_solved"),
    ]
    # Asked only about the namespaces whose rules burst to it.
    assert troubled.asked == frozenset({"ml"})
    assert app.ops.status()["targets"][0]["problems"] == []
    troubled.found = (problem,)
    await app.check_targets()
    [record] = app.ops.status()["targets"]
    assert record["problems"] == [problem]
    # Shown, never planned on: the target is still bursted onto.
    assert app.actuator.merged(Snapshot()).target_status("kw").held_back == ""

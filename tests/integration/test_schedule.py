"""A rehearsal of examples/course-lab.yaml on the real control plane: its rules exactly as
written (cron ``45 13 * * tue`` in Europe/Rome, ``min_gpus: 8``), with kwok targets of the
same names and shapes in place of Liqo and Terraform, which cannot run here.

The daemon's clock is shifted so that the wall clock reads five seconds before the next lab
window; the loop interval is a minute, so the pre-burst can only come on time if the loop
wakes at the planner's ``wake_at``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from burstd.model import ScaleUp
from tests.integration.kube import REPO, Kube, burstd_in_process, eventually

pytestmark = pytest.mark.integration

ROME = ZoneInfo("Europe/Rome")

HEADER = """\
version: 1
loop: {interval: 1m, batch_idle: 200ms, batch_max: 1s}
limits: {max_gpus: 24}
targets:
  donor-mig:
    provider: kwok
    params:
      poll_interval: 0.1
      node_template: {cpu: "64", memory: 512Gi}
    gpu_model: NVIDIA-A100-SXM4-80GB
    gpus_per_unit: 4
    mig: {1g.10gb: 28}
    max_units: 4
    max_in_flight: 2
    time_to_ready: 1s
    ready_deadline: 1m
  cloud-a100:
    provider: kwok
    params:
      poll_interval: 0.1
      node_template: {cpu: "96", memory: 1Ti}
    gpu_model: NVIDIA-A100-SXM4-80GB
    gpus_per_unit: 8
    mig: {1g.10gb: 56}
    max_units: 2
    time_to_ready: 1s
    ready_deadline: 1m
"""


class ShiftedClock:
    """The wall clock moved by ``offset`` seconds (a rehearsal of another day)."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset


def next_lab(after: datetime) -> datetime:
    day = after.astimezone(ROME)
    for i in range(8):
        d = (day + timedelta(days=i)).replace(hour=13, minute=45, second=0, microsecond=0)
        if d.weekday() == 1 and d > day:
            return d
    raise AssertionError("no Tuesday in a week")


def lab_rules(tmp_path: Path) -> Path:
    example = (REPO / "examples" / "course-lab.yaml").read_text()
    rules = example[example.index("\nrules:") + 1 :]
    path = tmp_path / "course-lab-rehearsal.yaml"
    path.write_text(HEADER + rules)
    return path


async def test_course_lab_pre_bursts_when_its_window_opens(
    kube: Kube, kubeconfig: Path, tmp_path: Path
) -> None:
    opens = next_lab(datetime.now(ROME))
    clock = ShiftedClock(opens.timestamp() - 5.0 - time.time())
    selector = "burstd.io/rule=dl-lab"
    try:
        async with burstd_in_process(lab_rules(tmp_path), kubeconfig, clock=clock) as app:
            # Before the window: nothing borrowed.
            while clock.now() < opens.timestamp() - 1.0:
                assert not await kube.nodes(selector)
                assert not any(isinstance(a.decision, ScaleUp) for a in app.applied)
                await asyncio.sleep(0.3)

            async def two_units() -> bool:
                return len(await kube.nodes(selector)) == 2

            await eventually(two_units, within=30, what="two donor units for the lab")
            ups = [a for a in app.applied if isinstance(a.decision, ScaleUp)]
            assert len(ups) == 1
            d = ups[0].decision
            assert isinstance(d, ScaleUp)
            assert d.target == "donor-mig"
            assert d.units == 2
            assert "to keep min_gpus 8" in d.reason
            assert "schedule '45 13 * * tue' window open" in d.reason
            nodes = await kube.nodes(selector)
            assert all(n["status"]["allocatable"]["nvidia.com/mig-1g.10gb"] == "28" for n in nodes)
    finally:
        await kube.delete_nodes(selector)

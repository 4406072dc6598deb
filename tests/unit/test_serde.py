"""Snapshots survive a trip through JSON, and bad snapshot files name the field."""

from __future__ import annotations

import json

import pytest

from burstd.model import GpuRequest, Pod, PodPhase, Sample, Snapshot, TargetStatus, UnitPhase
from burstd.model.serde import SnapshotError, snapshot_from_dict, snapshot_to_dict
from tests.unit.builders import pending, unit


def test_round_trip() -> None:
    snap = Snapshot(
        pods=(
            pending("p", 2, labels={"team": "x"}, priority=5),
            pending("q", gpu=GpuRequest(mig={"1g.10gb": 2}, models=frozenset({"A100"}))),
            Pod(
                namespace="n",
                name="r",
                gpu=GpuRequest(milli=250),
                phase=PodPhase.RUNNING,
                node="n1",
                never_evict=True,
            ),
        ),
        units=(unit("u1", UnitPhase.CORDONED, since=5, mig=(("1g.10gb", 7),)),),
        targets={"a": TargetStatus(consecutive_failures=2, backoff_until=99.5, last_error="e")},
        metrics={"q": (Sample(at=1, value=2.5),)},
    )
    text = json.dumps(snapshot_to_dict(snap, now=42))
    back, now = snapshot_from_dict(json.loads(text))
    assert back == snap
    assert now == 42


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "(root): expected an object"),
        ({"now": "soon"}, "now: expected a number, got 'soon'"),
        ({"pods": {}}, "pods: expected a list"),
        (
            {"pods": [{"namespace": "n", "name": "p", "gpu": {"gpus": "two"}}]},
            "pods[0].gpu.gpus: expected an integer, got 'two'",
        ),
        (
            {"pods": [{"namespace": "n", "name": "p", "gpu": {}, "phase": "Lost"}]},
            "pods[0].phase: expected one of Pending, Running, Succeeded, Failed, got 'Lost'",
        ),
        (
            {"pods": [{"namespace": "n", "name": "p", "gpu": {}, "colour": 1}]},
            "pods[0].colour: unknown field",
        ),
        ({"pods": [{"name": "p", "gpu": {}}]}, "pods[0]: "),
        (
            {"units": [{"id": "u", "target": "t", "rule": "r", "gpus": 1, "phase": "gone"}]},
            "units[0].phase: expected one of requested",
        ),
        ({"synced": "yes"}, "synced: expected true or false"),
    ],
)
def test_errors_name_the_field(doc: object, message: str) -> None:
    with pytest.raises(SnapshotError) as e:
        snapshot_from_dict(doc)
    assert str(e.value).startswith(message)

"""Rule matching and triggers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from burstd.model import GpuRequest, Pod, Sample, Snapshot
from burstd.rules.cron import weekdays
from burstd.rules.engine import assign, check
from burstd.rules.types import (
    LabelRequirement,
    Match,
    OldestPendingTrigger,
    PendingTrigger,
    ScheduleTrigger,
    UtilizationTrigger,
)
from tests.unit.builders import NOW, pending, rule


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("now", "fired"),
    [
        ("2026-11-24T12:59:00", False),  # Tuesday 13:59 in Rome: not yet
        ("2026-11-24T13:00:00", True),  # 14:00 in Rome (UTC+1 in November)
        ("2026-11-24T15:59:00", True),
        ("2026-11-24T16:01:00", False),  # window of 3h closed at 17:00 Rome
        ("2026-11-25T13:30:00", False),  # a Wednesday
    ],
)
def test_schedule_window_follows_its_timezone(now: str, fired: bool) -> None:
    trigger = ScheduleTrigger(cron="0 14 * * tue", duration=3 * 3600, timezone="Europe/Rome")
    assert check(trigger, (), Snapshot(), at(now)).fired is fired


def test_schedule_reason_says_how_long_is_left() -> None:
    trigger = ScheduleTrigger(cron="0 14 * * tue", duration=3 * 3600, timezone="Europe/Rome")
    result = check(trigger, (), Snapshot(), at("2026-11-24T15:30:00"))
    assert result.reason == "schedule '0 14 * * tue' window open, 30m left"


def test_pending_trigger_counts_shares_and_only_pods_waiting_long_enough() -> None:
    pods = [
        pending("a", gpu=GpuRequest(milli=500), since=NOW - 100),
        pending("b", gpu=GpuRequest(milli=500), since=NOW - 100),
        pending("c", 4, since=NOW - 1),
    ]
    result = check(PendingTrigger(gpus=1, for_s=60), pods, Snapshot(), NOW)
    assert result.fired
    assert result.reason.startswith("1 GPU(s) pending for 1m (2 pod(s))")
    assert not check(PendingTrigger(gpus=1.5, for_s=60), pods, Snapshot(), NOW).fired


def test_oldest_pending_names_the_pod() -> None:
    pods = [pending("young", since=NOW - 10), pending("old", since=NOW - 900)]
    result = check(OldestPendingTrigger(older_than=600), pods, Snapshot(), NOW)
    assert result.fired
    assert "ml/old waited 15m" in result.reason


def test_utilization_needs_every_sample_above_the_threshold() -> None:
    trig = UtilizationTrigger(query="q", above=80, for_s=300)
    high = tuple(Sample(at=NOW - s, value=95) for s in range(0, 301, 60))
    dip = (*high, Sample(at=NOW - 150, value=40))
    assert check(trig, (), Snapshot(metrics={"q": high}), NOW).fired
    assert not check(trig, (), Snapshot(metrics={"q": dip}), NOW).fired
    assert not check(trig, (), Snapshot(), NOW).fired


def test_first_matching_rule_wins_and_unmatched_pods_are_left_out() -> None:
    gpu_rule = rule("a100", match=Match(gpu_models=frozenset({"A100"})))
    team_rule = rule(
        "team",
        match=Match(labels=(LabelRequirement(key="team", operator="In", values=frozenset({"x"})),)),
    )
    pods = [
        pending("any-model", labels={"team": "x"}),
        pending("v100", gpu=GpuRequest(gpus=1, models=frozenset({"V100"})), labels={"team": "x"}),
        pending("stranger", gpu=GpuRequest(gpus=1, models=frozenset({"V100"}))),
    ]
    out = assign(pods, (gpu_rule, team_rule))
    assert [p.name for p in out["a100"]] == ["any-model"]
    assert [p.name for p in out["team"]] == ["v100"]


@pytest.mark.parametrize(
    ("op", "values", "labels", "holds"),
    [
        ("In", {"a"}, {"k": "a"}, True),
        ("In", {"a"}, {"k": "b"}, False),
        ("In", {"a"}, {}, False),
        ("NotIn", {"a"}, {"k": "b"}, True),
        ("NotIn", {"a"}, {}, True),
        ("NotIn", {"a"}, {"k": "a"}, False),
        ("Exists", set(), {"k": ""}, True),
        ("Exists", set(), {}, False),
        ("DoesNotExist", set(), {}, True),
        ("DoesNotExist", set(), {"k": "a"}, False),
    ],
)
def test_label_requirements(op: str, values: set[str], labels: dict[str, str], holds: bool) -> None:
    req = LabelRequirement(key="k", operator=op, values=frozenset(values))
    assert req.holds(labels) is holds


def test_match_on_qos_priority_class_and_mig_profile() -> None:
    m = Match(
        qos=frozenset({"BE"}),
        priority_classes=frozenset({"low"}),
        mig_profiles=frozenset({"1g.10gb"}),
    )
    mig = GpuRequest(mig={"1g.10gb": 1})
    ok = Pod(namespace="n", name="p", gpu=mig, qos="BE", priority_class="low")
    assert m.matches(ok)
    assert not m.matches(Pod(namespace="n", name="p", gpu=mig, qos="LS", priority_class="low"))
    assert not m.matches(
        Pod(namespace="n", name="p", gpu=GpuRequest(gpus=1), qos="BE", priority_class="low")
    )


@pytest.mark.parametrize(
    ("field", "days"),
    [
        ("1", "mon"),
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("5-7", "sun,fri,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("mon,wed", "mon,wed"),
        ("tue-thu", "tue,wed,thu"),
        ("*", "*"),
    ],
)
def test_crontab_weekdays_count_from_sunday(field: str, days: str) -> None:
    assert weekdays(field) == days


def test_a_monday_cron_fires_on_monday() -> None:
    trigger = ScheduleTrigger(cron="0 9 * * 1", duration=3600)
    assert check(trigger, (), Snapshot(), at("2026-11-23T09:30:00")).fired  # a Monday
    assert not check(trigger, (), Snapshot(), at("2026-11-24T09:30:00")).fired

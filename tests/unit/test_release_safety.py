"""Release and adoption never evict a running job by accident, never leave a unit behind: the
pure parts (planner, actuator, the kwok provider's records). The integration tests
(tests/integration/test_release_safety.py) run the same stories on a real control plane."""

from __future__ import annotations

from dataclasses import replace

import pytest

from burstd.actuate.actuator import Actuator
from burstd.model import (
    CORDONED_ANNOTATION,
    PROVIDER_LABEL,
    Cordon,
    Evict,
    Node,
    Release,
    Snapshot,
    Uncordon,
    UnitPhase,
)
from burstd.plan.planner import plan
from burstd.providers.base import UnitSpec
from burstd.providers.kwok.provider import KwokProvider, parse_mig
from burstd.rules.types import DrainMode, RuleSet
from burstd.rules.types import Release as ReleasePolicy
from burstd.sources.kube.convert import node_from_raw
from tests.unit.builders import NOW, pending, rule, ruleset, running, target, unit
from tests.unit.test_actuator import Recorder


def rules_in(mode: DrainMode, name: str = "r") -> RuleSet:
    policy = ReleasePolicy(idle_for=600, validation=60, drain_mode=mode, max_wait=300)
    return ruleset(target("a", 4), rules=(rule(name=name, release=policy),))


@pytest.mark.parametrize("mode", list(DrainMode))
def test_a_rule_renamed_and_back_never_evicts(mode: DrainMode) -> None:
    """The rule is renamed: its busy unit is an orphan, cordoned and drained (in wait mode).
    Renamed back long after: the unit is uncordoned, not evicted at once by a max_wait clock
    started by the orphan's drain."""
    rec = Recorder()
    a = Actuator(rec)
    a.adopt([unit("u1", since=NOW - 10_000)])
    pods = (running("job", "node-u1"),)
    renamed = rules_in(mode, name="other")
    t = NOW
    for _ in range(3):
        snap = a.merged(Snapshot(pods=pods))
        a.execute(plan(snap, renamed, t), renamed, t)
        a.done("u1")
        t += 10
    drained = a.units["u1"]
    assert drained.phase is UnitPhase.DRAINING
    assert drained.orphaned
    back = rules_in(mode)
    t += 10_000  # far past max_wait
    result = plan(a.merged(Snapshot(pods=pods)), back, t)
    assert not [d for d in result.actions if isinstance(d, Evict)]
    (uncordon,) = result.actions
    assert isinstance(uncordon, Uncordon)
    assert "in the rules file again" in uncordon.reason
    a.execute(result, back, t)
    taken_back = a.units["u1"]
    assert taken_back.phase is UnitPhase.READY
    assert not taken_back.orphaned


def test_evict_mode_still_evicts_a_drain_of_its_own() -> None:
    draining = unit("u1", UnitPhase.DRAINING, since=NOW - 400)
    snap = Snapshot(pods=(running("job", "node-u1"),), units=(draining,))
    (d,) = plan(snap, rules_in(DrainMode.EVICT), NOW).actions
    assert isinstance(d, Evict)


@pytest.mark.parametrize("mode", list(DrainMode))
def test_a_held_unit_is_never_uncordoned_evicted_or_counted(mode: DrainMode) -> None:
    held = unit("u1", since=NOW - 10_000, held=True, last_busy_at=NOW)
    snap = Snapshot(
        pods=(running("job", "node-u1"), pending("wants", 1)),
        units=(held,),
    )
    result = plan(snap, rules_in(mode), NOW)
    verbs = [d.verb for d in result.actions]
    assert verbs == ["scaleup"], verbs  # its free GPUs are not room for the pending pod
    assert any("cordoned by an operator: waiting for 1" in str(d) for d in result.decisions)


def test_a_held_unit_is_released_once_empty_and_idle() -> None:
    rules = rules_in(DrainMode.EVICT)
    fresh = unit("u1", since=NOW - 10_000, held=True, last_busy_at=NOW - 100)
    assert plan(Snapshot(units=(fresh,)), rules, NOW).actions == ()
    old = replace(fresh, last_busy_at=NOW - 700)
    (d,) = plan(Snapshot(units=(old,)), rules, NOW).actions
    assert isinstance(d, Release)
    assert "cordoned by an operator" in d.reason


def test_the_actuator_sees_an_operators_cordon_and_uncordon() -> None:
    a = Actuator(Recorder())
    a.adopt([unit("u1", since=NOW - 100)])
    node = Node(name="node-u1", unit="u1", gpu_allocatable=4, unschedulable=True)
    a.observe(Snapshot(nodes=(node,)), NOW)
    assert a.units["u1"].held
    a.observe(Snapshot(nodes=(replace(node, unschedulable=False),)), NOW + 1)
    assert not a.units["u1"].held
    # burstd's own cordon (recorded on the node) is not an operator's.
    a.observe(Snapshot(nodes=(replace(node, cordoned_by_burstd=True),)), NOW + 2)
    assert not a.units["u1"].held


def test_orphan_cordons_say_so() -> None:
    snap = Snapshot(units=(unit("u1", rule_name="gone"),))
    (d,) = plan(snap, rules_in(DrainMode.WAIT), NOW).actions
    assert isinstance(d, Cordon)
    assert d.orphan
    gone_target = Snapshot(units=(unit("u2", tgt="old"),))
    (d,) = plan(gone_target, rules_in(DrainMode.WAIT), NOW).actions
    assert isinstance(d, Cordon)
    assert "target 'old' is no longer in the rules file" in d.reason


# The kwok provider's records ------------------------------------------------------------------


def test_kwok_nodes_record_kind_and_mig_shape() -> None:
    p = KwokProvider(object(), "kw", {})
    spec = UnitSpec(id="kw-1", target="kw", rule="r", gpus=1, mig={"1g.10gb": 7, "2g.20gb": 1})
    raw = p.manifest(spec)
    assert raw["metadata"]["labels"][PROVIDER_LABEL] == "kwok"
    assert parse_mig(raw["metadata"]["annotations"]["burstd.io/mig"]) == {
        "1g.10gb": 7,
        "2g.20gb": 1,
    }
    found = p._found(raw)
    assert dict(found.mig) == {"1g.10gb": 7, "2g.20gb": 1}
    assert not found.cordoned_by_burstd
    whole = p._found(p.manifest(replace(spec, id="kw-2", gpus=4, mig={})))
    assert (whole.gpus, dict(whole.mig)) == (4, {})


def test_kwok_reports_whose_cordon_it_is() -> None:
    p = KwokProvider(object(), "kw", {})
    raw = p.manifest(UnitSpec(id="kw-1", target="kw", rule="r", gpus=4))
    raw["spec"]["unschedulable"] = True
    operators = p._found(raw)
    assert operators.cordoned
    assert not operators.cordoned_by_burstd
    raw["metadata"]["annotations"][CORDONED_ANNOTATION] = "2026-01-01T00:00:00+00:00"
    assert p._found(raw).cordoned_by_burstd
    node = node_from_raw(raw)
    assert node is not None
    assert node.cordoned_by_burstd
    assert node.allocatable["cpu"] == 32_000

"""The scheduler's node predicates (``burstd.plan.fit``): table-driven cases for each one, read
from raw pod JSON as the watch reads it, and a property tying the template a kind describes to
the node its provider really makes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from burstd.model import GpuRequest, Node, NodeTemplate, Pod, Snapshot, Taint, Unit, UnitPhase
from burstd.plan.fit import UNSCHEDULABLE_TAINT, Fitter, NodeFacts, pod_fits
from burstd.providers import kwok
from burstd.providers.base import UnitShape, UnitSpec
from burstd.providers.kwok.provider import KwokProvider
from burstd.providers.node_params import TAINT_EFFECTS
from burstd.rules.loader import parse_rules
from burstd.sources.kube.convert import node_from_raw, pod_from_raw

MODEL = "NVIDIA-A100"
ZONE = "topology.kubernetes.io/zone"
TEMPLATE = NodeTemplate(
    labels={ZONE: "z1", "nvidia.com/gpu.product": MODEL, "tier": "3"},
    taints=(Taint(key="burst", value="yes", effect="NoSchedule"),),
    allocatable={"cpu": 32_000, "memory": 256 * 2**30, "pods": 110},
)
NODE = NodeFacts.of_template(TEMPLATE, gpus=4, gpu_model=MODEL)
TOLERATE = [{"key": "burst", "operator": "Equal", "value": "yes", "effect": "NoSchedule"}]


def raw_pod(
    *,
    gpus: int = 1,
    requests: dict[str, Any] | None = None,
    tolerations: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> Pod:
    """A pending, Unschedulable pod read from its JSON by the watch's own converter."""
    body: dict[str, Any] = {
        "containers": [
            {
                "name": "w",
                "resources": {
                    "requests": {**(requests or {}), "nvidia.com/gpu": gpus},
                    "limits": {"nvidia.com/gpu": gpus},
                },
            }
        ],
        "tolerations": TOLERATE if tolerations is None else tolerations,
        **spec,
    }
    pod = pod_from_raw(
        {
            "metadata": {"name": "p", "namespace": "ml"},
            "spec": body,
            "status": {
                "phase": "Pending",
                "conditions": [
                    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
                ],
            },
        }
    )
    assert pod is not None
    return pod


def affinity(*terms: list[dict[str, Any]], fields: list[dict[str, Any]] | None = None) -> Any:
    node_terms: list[dict[str, Any]] = [{"matchExpressions": t} for t in terms]
    if fields is not None:
        node_terms.append({"matchFields": fields})
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": node_terms}
        }
    }


def expr(key: str, op: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": op, "values": list(values)}


CASES: list[tuple[str, Pod, str | None]] = [
    ("a plain pod fits", raw_pod(), None),
    ("too many GPUs", raw_pod(gpus=8), "asks 8 GPUs, the node has 4"),
    ("nodeSelector holds", raw_pod(nodeSelector={ZONE: "z1"}), None),
    ("nodeSelector fails", raw_pod(nodeSelector={ZONE: "z9"}), "nodeSelector"),
    ("nodeSelector on a missing label", raw_pod(nodeSelector={"x": "y"}), "no such label"),
    ("In holds", raw_pod(affinity=affinity([expr(ZONE, "In", "z1", "z2")])), None),
    ("In fails", raw_pod(affinity=affinity([expr(ZONE, "In", "z9")])), "z9"),
    (
        "NotIn the target's model",
        raw_pod(affinity=affinity([expr("nvidia.com/gpu.product", "NotIn", MODEL)])),
        "NotIn",
    ),
    ("NotIn on a missing label holds", raw_pod(affinity=affinity([expr("x", "NotIn", "a")])), None),
    ("Exists holds", raw_pod(affinity=affinity([expr(ZONE, "Exists")])), None),
    ("Exists fails", raw_pod(affinity=affinity([expr("gpu.spot", "Exists")])), "Exists"),
    ("DoesNotExist holds", raw_pod(affinity=affinity([expr("spot", "DoesNotExist")])), None),
    ("DoesNotExist fails", raw_pod(affinity=affinity([expr(ZONE, "DoesNotExist")])), "Does"),
    ("Gt holds", raw_pod(affinity=affinity([expr("tier", "Gt", "2")])), None),
    ("Gt fails", raw_pod(affinity=affinity([expr("tier", "Gt", "3")])), "Gt"),
    ("Lt holds", raw_pod(affinity=affinity([expr("tier", "Lt", "4")])), None),
    ("Lt on a non-number fails", raw_pod(affinity=affinity([expr(ZONE, "Lt", "4")])), "Lt"),
    (
        "terms are OR'ed",
        raw_pod(affinity=affinity([expr(ZONE, "In", "z9")], [expr(ZONE, "In", "z1")])),
        None,
    ),
    (
        "expressions of a term are AND'ed",
        raw_pod(affinity=affinity([expr(ZONE, "In", "z1"), expr("tier", "In", "1")])),
        "tier",
    ),
    ("an empty term selects nothing", raw_pod(affinity=affinity([])), "empty term"),
    (
        "matchFields on a name a new node does not have",
        raw_pod(affinity=affinity(fields=[expr("metadata.name", "In", "n1")])),
        "metadata.name",
    ),
    (
        "matchFields NotIn holds for a node not made yet",
        raw_pod(affinity=affinity(fields=[expr("metadata.name", "NotIn", "n1")])),
        None,
    ),
    (
        "selector and affinity must both hold",
        raw_pod(nodeSelector={ZONE: "z9"}, affinity=affinity([expr(ZONE, "In", "z1")])),
        "nodeSelector",
    ),
    ("an untolerated NoSchedule taint", raw_pod(tolerations=[]), "untolerated taint burst=yes"),
    (
        "Exists tolerates any value",
        raw_pod(tolerations=[{"key": "burst", "operator": "Exists"}]),
        None,
    ),
    ("an empty key with Exists tolerates all", raw_pod(tolerations=[{"operator": "Exists"}]), None),
    (
        "the wrong effect does not tolerate",
        raw_pod(tolerations=[{"key": "burst", "value": "yes", "effect": "NoExecute"}]),
        "untolerated",
    ),
    (
        "the wrong value does not tolerate",
        raw_pod(tolerations=[{"key": "burst", "value": "no"}]),
        "untolerated",
    ),
    ("cpu that fits", raw_pod(requests={"cpu": "31500m"}), None),
    ("cpu that does not", raw_pod(requests={"cpu": "33"}), "asks cpu 33, the node has 32"),
    ("memory that does not", raw_pod(requests={"memory": "300Gi"}), "memory"),
    ("a resource the node does not list never rules out", raw_pod(requests={"x.io/y": 9}), None),
    (
        "init containers count as a maximum",
        raw_pod(
            requests={"cpu": "8"},
            initContainers=[{"name": "i", "resources": {"requests": {"cpu": "40"}}}],
        ),
        "asks cpu 40",
    ),
    (
        "the overhead adds to the containers",
        raw_pod(requests={"cpu": "30"}, overhead={"cpu": "3"}),
        "asks cpu 33",
    ),
]


@pytest.mark.parametrize(("pod", "why"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_predicates(pod: Pod, why: str | None) -> None:
    got = pod_fits(pod, NODE)
    if why is None:
        assert got is None
    else:
        assert got is not None
        assert why in got


def test_no_execute_taints_repel_and_prefer_no_schedule_does_not() -> None:
    pod = raw_pod(tolerations=[])
    soft = NodeFacts(taints=(Taint(key="k", effect="PreferNoSchedule"),), gpus=1)
    hard = NodeFacts(taints=(Taint(key="k", effect="NoExecute"),), gpus=1)
    assert pod_fits(pod, soft) is None
    assert pod_fits(pod, hard) is not None


def test_cordoned_nodes_take_only_pods_tolerating_it() -> None:
    node = NodeFacts(unschedulable=True, gpus=1)
    assert pod_fits(raw_pod(tolerations=[]), node) == "the node is cordoned"
    tolerant = raw_pod(
        tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}]
    )
    assert pod_fits(tolerant, node) is None


def test_gpu_shapes() -> None:
    mig = NodeFacts(gpus=0, mig={"1g.10gb": 7}, gpu_model=MODEL)
    assert pod_fits(Pod(namespace="a", name="m", gpu=GpuRequest(mig={"1g.10gb": 2})), mig) is None
    assert pod_fits(Pod(namespace="a", name="m", gpu=GpuRequest(mig={"3g.40gb": 1})), mig)
    assert pod_fits(Pod(namespace="a", name="s", gpu=GpuRequest(milli=500)), mig)
    h100 = Pod(namespace="a", name="h", gpu=GpuRequest(gpus=1, models=frozenset({"H100"})))
    assert pod_fits(h100, NODE)


def test_running_pods_keep_no_constraints() -> None:
    """Only a pod still to be placed needs its constraints; bound pods stay small."""
    pod = pod_from_raw(
        {
            "metadata": {"name": "p", "namespace": "ml"},
            "spec": {
                "nodeName": "n1",
                "nodeSelector": {ZONE: "z9"},
                "containers": [{"name": "w", "resources": {"limits": {"nvidia.com/gpu": 1}}}],
            },
            "status": {"phase": "Running"},
        }
    )
    assert pod is not None
    assert not pod.placement.constrained


# The template a kind describes is the node its provider makes -------------------------------

KEYS = ("zone", "tier", "pool")
VALUES = ("a", "b", "1", "2")
labels_st = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3)
taints_st = st.lists(
    st.fixed_dictionaries(
        {
            "key": st.sampled_from(("burst", "gpu")),
            "value": st.sampled_from(("", "yes")),
            "effect": st.sampled_from(TAINT_EFFECTS),
        }
    ),
    max_size=2,
)
requirement_st = st.fixed_dictionaries(
    {
        "key": st.sampled_from((*KEYS, "nvidia.com/gpu.product")),
        "operator": st.sampled_from(("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")),
        "values": st.lists(st.sampled_from((*VALUES, MODEL)), max_size=2),
    }
)
toleration_st = st.fixed_dictionaries(
    {
        "key": st.sampled_from(("", "burst", "gpu")),
        "operator": st.sampled_from(("Equal", "Exists")),
        "value": st.sampled_from(("", "yes")),
        "effect": st.sampled_from(("", "NoSchedule", "NoExecute")),
    }
)


@settings(max_examples=300, deadline=None)
@given(
    node_labels=labels_st,
    node_taints=taints_st,
    cpu=st.integers(1, 64),
    gpus=st.integers(1, 8),
    pod_gpus=st.integers(1, 8),
    pod_cpu=st.integers(0, 64),
    selector=labels_st,
    terms=st.none() | st.lists(st.lists(requirement_st, max_size=3), min_size=1, max_size=2),
    tolerations=st.lists(toleration_st, max_size=2),
)
def test_template_verdict_is_the_real_nodes(
    node_labels: dict[str, str],
    node_taints: list[dict[str, str]],
    cpu: int,
    gpus: int,
    pod_gpus: int,
    pod_cpu: int,
    selector: dict[str, str],
    terms: list[list[dict[str, Any]]] | None,
    tolerations: list[dict[str, str]],
) -> None:
    """A pod the predicates accept for a kind's template is accepted on the Node the provider
    really creates from the same params (read back as the watch reads it), and one they
    refuse is refused there too: burstd never bursts for a pod the new node would not take."""
    params = {"node_template": {"labels": node_labels, "taints": node_taints, "cpu": cpu}}
    shape = UnitShape(target="kw", gpus=gpus, gpu_model=MODEL)
    template = kwok.node(shape, params)
    spec = UnitSpec(id="kw-1", target="kw", rule="r", gpus=gpus, gpu_model=MODEL, params=params)
    raw = KwokProvider(object(), "kw", params).manifest(spec)
    node = node_from_raw(raw)
    assert node is not None
    extra: dict[str, Any] = {"nodeSelector": selector}
    if terms is not None:
        extra["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": t} for t in terms]
                }
            }
        }
    pod = raw_pod(
        gpus=pod_gpus,
        requests={"cpu": pod_cpu} if pod_cpu else None,
        tolerations=tolerations,
        **extra,
    )
    on_template = pod_fits(pod, NodeFacts.of_template(template, gpus=gpus, gpu_model=MODEL))
    real = NodeFacts(
        labels=node.labels,
        taints=node.taints,
        allocatable=node.allocatable,
        name=node.name,
        gpus=node.gpu_allocatable,
        gpu_model=node.gpu_model,
    )
    assert (on_template is None) == (pod_fits(pod, real) is None), (on_template, pod)


def test_match_fields_read_a_real_nodes_name() -> None:
    pod = raw_pod(affinity=affinity(fields=[expr("metadata.name", "In", "n1")]))
    assert pod_fits(pod, NodeFacts(name="n1", gpus=1)) is None
    assert pod_fits(pod, NodeFacts(name="n2", gpus=1)) is not None


def test_an_uncordoned_units_lingering_unschedulable_taint_does_not_make_it_unneeded() -> None:
    """After an uncordon the node lifecycle controller takes the unschedulable taint off some
    time later; meanwhile the unit taken back must still count as one its pod can use, or the
    release check cordons it again (and the two flip until the controller catches up)."""
    rules = parse_rules(
        "version: 1\ntargets:\n  kw: {provider: kwok, gpus_per_unit: 4}\n"
        "rules:\n  - name: r\n    match: {}\n    triggers: [{pending: {gpus: 1}}]\n"
        "    burst: {ladder: [kw]}\n",
        "r.yaml",
    )
    unit = Unit(id="kw-1", target="kw", rule="r", gpus=4, phase=UnitPhase.READY, node="n1")
    pod = Pod(namespace="ns", name="p", gpu=GpuRequest(gpus=4))

    def fitter(*, unschedulable: bool) -> Fitter:
        node = Node(
            name="n1",
            gpu_capacity=4,
            gpu_allocatable=4,
            taints=(UNSCHEDULABLE_TAINT,),
            unschedulable=unschedulable,
            unit="kw-1",
        )
        return Fitter(Snapshot(nodes=(node,)), rules, now=0.0)

    assert fitter(unschedulable=False).could_use(pod, unit)
    assert fitter(unschedulable=False).may_land(pod, unit)
    # Still cordoned: the taint holds, unless the cordon is to be lifted.
    assert not fitter(unschedulable=True).could_use(pod, unit)
    assert fitter(unschedulable=True).may_land(pod, unit, cordon_lifted=True)

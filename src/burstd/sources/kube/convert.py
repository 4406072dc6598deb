"""Raw Kubernetes objects (the API's JSON, as dicts) to burstd's model, at once and cheaply.

The watch hands over each object as parsed JSON; these functions keep only what a bursting
decision needs and drop the rest, so memory stays proportional to the GPU part of the cluster.
They are pure and total: a malformed field is read as absent rather than raising, because one
odd object must not stop the watch.

Demand is read the way the scheduler states it: condition ``PodScheduled=False`` with reason
``Unschedulable``. Pods being deleted, pods waiting for a preemption to free room
(``status.nominatedNodeName``) and pods the scheduler could place only by ignoring their
own model constraints are not demand.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from burstd.model import (
    GPU_MODEL_LABEL,
    GPU_RESOURCE,
    MIG_RESOURCE_PREFIX,
    NEVER_EVICT_ANNOTATION,
    RUNTIME_ANNOTATION,
    UNIT_LABEL,
    GpuRequest,
    Node,
    Pod,
    PodPhase,
    Taint,
)
from burstd.model.durations import parse_duration
from burstd.model.quantity import parse_quantity

_PHASES = {p.value: p for p in PodPhase}
_TERMINAL = frozenset({"Succeeded", "Failed"})


def _count(value: object) -> int:
    """A device count: whole and non-negative (extended resources cannot be fractional)."""
    q = parse_quantity(value)
    if q is None or q <= 0:
        return 0
    return math.ceil(q)


def parse_time(value: object) -> float | None:
    """An RFC 3339 timestamp as seconds since the epoch, or ``None``."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _strings(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in _dict(value).items()}


def _is_gpu_resource(name: str) -> bool:
    return name == GPU_RESOURCE or name.startswith(MIG_RESOURCE_PREFIX)


def _container_gpus(container: Mapping[str, Any]) -> dict[str, int]:
    """GPU resources of one container: its requests, or its limits where it has no request
    (Kubernetes defaults an extended resource's request to its limit)."""
    resources = _dict(container.get("resources"))
    requests = _dict(resources.get("requests"))
    limits = _dict(resources.get("limits"))
    out: dict[str, int] = {}
    for name in {*requests, *limits}:
        if _is_gpu_resource(name):
            n = _count(requests[name] if name in requests else limits[name])
            if n:
                out[name] = n
    return out


def _add(into: dict[str, int], more: Mapping[str, int]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v


def pod_gpu_resources(spec: Mapping[str, Any]) -> dict[str, int]:
    """The pod's effective GPU resources as the scheduler computes them: app containers and
    sidecars (init containers with ``restartPolicy: Always``) add up; a plain init container
    runs alone (beside the sidecars started before it), so it counts as a maximum."""
    total: dict[str, int] = {}
    for c in _list(spec.get("containers")):
        _add(total, _container_gpus(_dict(c)))
    sidecars: dict[str, int] = {}
    peak: dict[str, int] = {}
    for c in _list(spec.get("initContainers")):
        c = _dict(c)
        need = _container_gpus(c)
        if c.get("restartPolicy") == "Always":
            _add(sidecars, need)
            continue
        during = dict(sidecars)
        _add(during, need)
        for k, v in during.items():
            peak[k] = max(peak.get(k, 0), v)
    _add(total, sidecars)
    for k, v in peak.items():
        total[k] = max(total.get(k, 0), v)
    return {k: v for k, v in total.items() if v}


def _term_models(term: Mapping[str, Any]) -> frozenset[str] | None:
    """The GPU models one node selector term allows (``None``: any)."""
    allowed: frozenset[str] | None = None
    for expr in _list(term.get("matchExpressions")):
        expr = _dict(expr)
        if expr.get("key") != GPU_MODEL_LABEL or expr.get("operator") != "In":
            continue
        values = frozenset(str(v) for v in _list(expr.get("values")))
        allowed = values if allowed is None else allowed & values
    return allowed


def accepted_models(spec: Mapping[str, Any]) -> tuple[frozenset[str], bool]:
    """The GPU models a pod accepts, from its ``nodeSelector`` and required node affinity on
    ``nvidia.com/gpu.product`` (``In``), and whether any model is acceptable at all.

    An empty set means any model. Terms of a required node affinity are alternatives (any
    may hold); the node selector must hold as well. Only ``In`` narrows the models: other
    operators are left to the scheduler.
    """
    allowed: frozenset[str] | None = None
    selector = _dict(spec.get("nodeSelector"))
    if GPU_MODEL_LABEL in selector:
        allowed = frozenset({str(selector[GPU_MODEL_LABEL])})
    affinity = _dict(_dict(spec.get("affinity")).get("nodeAffinity"))
    required = _dict(affinity.get("requiredDuringSchedulingIgnoredDuringExecution"))
    terms = [_dict(t) for t in _list(required.get("nodeSelectorTerms"))]
    if terms:
        per_term = [_term_models(t) for t in terms]
        if all(s is not None for s in per_term):
            union = frozenset().union(*(s for s in per_term if s is not None))
            allowed = union if allowed is None else allowed & union
    if allowed is None:
        return frozenset(), True
    return allowed, bool(allowed)


def gpu_request(resources: Mapping[str, int], models: frozenset[str]) -> GpuRequest:
    mig = {
        name[len(MIG_RESOURCE_PREFIX) :]: n
        for name, n in resources.items()
        if name.startswith(MIG_RESOURCE_PREFIX)
    }
    return GpuRequest(gpus=resources.get(GPU_RESOURCE, 0), mig=mig, models=models)


def owned_by_daemonset(meta: Mapping[str, Any]) -> bool:
    return any(_dict(o).get("kind") == "DaemonSet" for o in _list(meta.get("ownerReferences")))


def unschedulable(status: Mapping[str, Any]) -> tuple[bool, float | None]:
    """Whether the scheduler marked the pod Unschedulable, and since when (if it says)."""
    for cond in _list(status.get("conditions")):
        cond = _dict(cond)
        if cond.get("type") == "PodScheduled":
            if cond.get("status") == "False" and cond.get("reason") == "Unschedulable":
                return True, parse_time(cond.get("lastTransitionTime"))
            return False, None
    return False, None


def pod_from_raw(obj: Mapping[str, Any]) -> Pod | None:
    """The model pod for a raw pod, or ``None`` when burstd does not keep it.

    Kept: pods that request GPUs and have not finished, and, in a slim form (no labels, no
    GPU request), other unfinished pods bound to a node, so that a unit running any pod is
    never taken for empty. Never kept: DaemonSet pods (they run on every node and never make
    one busy) and finished pods.
    """
    meta = _dict(obj.get("metadata"))
    spec = _dict(obj.get("spec"))
    status = _dict(obj.get("status"))
    phase_text = status.get("phase") or "Pending"
    if phase_text in _TERMINAL or owned_by_daemonset(meta):
        return None
    node = spec.get("nodeName") or None
    resources = pod_gpu_resources(spec)
    annotations = _dict(meta.get("annotations"))
    common: dict[str, Any] = {
        "namespace": str(meta.get("namespace") or ""),
        "name": str(meta.get("name") or ""),
        "phase": _PHASES.get(str(phase_text), PodPhase.PENDING),
        "node": str(node) if node else None,
        "never_evict": str(annotations.get(NEVER_EVICT_ANNOTATION, "")).lower() == "true",
        "created_at": parse_time(meta.get("creationTimestamp")) or 0.0,
    }
    if not resources:
        return Pod(gpu=GpuRequest(), **common) if node else None
    models, possible = accepted_models(spec)
    marked, since = unschedulable(status)
    demand = (
        marked
        and node is None
        and possible
        and not meta.get("deletionTimestamp")
        and not status.get("nominatedNodeName")
    )
    priority = spec.get("priority")
    return Pod(
        gpu=gpu_request(resources, models),
        unschedulable=bool(demand),
        labels=_strings(meta.get("labels")),
        priority=priority if isinstance(priority, int) and not isinstance(priority, bool) else 0,
        priority_class=str(spec.get("priorityClassName") or ""),
        qos=str(status.get("qosClass") or ""),
        pending_since=since if demand else None,
        declared_runtime=declared_runtime(spec, annotations),
        **common,
    )


def declared_runtime(spec: Mapping[str, Any], annotations: Mapping[str, Any]) -> float | None:
    """The run time a pod declares, for cost-aware waits: the ``RUNTIME_ANNOTATION`` (a
    duration), else ``activeDeadlineSeconds``; None when neither is there or valid (a bad
    annotation is ignored, as kubelet ignores what it does not know)."""
    text = annotations.get(RUNTIME_ANNOTATION)
    if isinstance(text, str):
        try:
            return parse_duration(text)
        except ValueError:
            pass
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int | float) and not isinstance(deadline, bool) and deadline > 0:
        return float(deadline)
    return None


def _resources(values: object) -> dict[str, int]:
    return {str(k): _count(v) for k, v in _dict(values).items() if _is_gpu_resource(str(k))}


def _taints(values: Iterable[Any]) -> tuple[Taint, ...]:
    out = []
    for t in values:
        t = _dict(t)
        if t.get("key"):
            out.append(
                Taint(
                    key=str(t["key"]),
                    value=str(t.get("value") or ""),
                    effect=str(t.get("effect") or "NoSchedule"),
                )
            )
    return tuple(out)


def node_from_raw(obj: Mapping[str, Any]) -> Node | None:
    """The model node for a raw node, or ``None`` when it neither offers GPUs (whole or MIG)
    nor belongs to a burstd unit."""
    meta = _dict(obj.get("metadata"))
    spec = _dict(obj.get("spec"))
    status = _dict(obj.get("status"))
    labels = _strings(meta.get("labels"))
    capacity = _resources(status.get("capacity"))
    allocatable = _resources(status.get("allocatable"))
    unit = labels.get(UNIT_LABEL) or None
    if not any(capacity.values()) and not any(allocatable.values()) and unit is None:
        return None
    ready = any(
        _dict(c).get("type") == "Ready" and _dict(c).get("status") == "True"
        for c in _list(status.get("conditions"))
    )
    return Node(
        name=str(meta.get("name") or ""),
        gpu_model=labels.get(GPU_MODEL_LABEL, ""),
        gpu_capacity=capacity.get(GPU_RESOURCE, 0),
        gpu_allocatable=allocatable.get(GPU_RESOURCE, 0),
        mig_allocatable={
            k[len(MIG_RESOURCE_PREFIX) :]: v
            for k, v in allocatable.items()
            if k.startswith(MIG_RESOURCE_PREFIX) and v
        },
        labels=labels,
        taints=_taints(_list(spec.get("taints"))),
        ready=ready,
        unschedulable=bool(spec.get("unschedulable")),
        unit=unit,
        created_at=parse_time(meta.get("creationTimestamp")) or 0.0,
    )

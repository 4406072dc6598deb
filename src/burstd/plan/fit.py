"""Would the scheduler place this pod on that node? The scheduler's node predicates, pure.

burstd must burst only for pods that would land on the node a unit brings: a pod whose
required node affinity no unit meets would otherwise get a new, empty unit every pass, for
ever. As the Cluster Autoscaler does with a node group's template node, the planner checks
each pending pod against the node a target would create (its ``NodeTemplate`` plus the
unit's GPU shape), and against an existing unit's real node, with the predicates of
``kube-scheduler`` that depend on the node alone:

* ``NodeUnschedulable`` — a cordoned node takes only pods that tolerate
  ``node.kubernetes.io/unschedulable:NoSchedule``;
* ``NodeName`` / ``NodeAffinity`` — ``nodeSelector`` (every pair must hold) and the required
  node affinity (terms OR'ed, requirements within a term AND'ed; ``In``, ``NotIn``,
  ``Exists``, ``DoesNotExist``, ``Gt``, ``Lt``; ``matchFields`` on ``metadata.name``);
* ``TaintToleration`` — every ``NoSchedule`` and ``NoExecute`` taint must be tolerated;
* ``NodeResourcesFit`` — GPUs (whole, share or MIG slices, by model) and every other
  resource the pod requests that the node lists as allocatable; a resource the node does not
  list is not known and never rules a pod out (except GPUs, which the unit's shape says).

Inter-pod affinity, topology spread and volume zones depend on other pods and volumes and are
left to the scheduler; the actuator's safety net (pods packed onto a unit that the scheduler
did not place there) covers what this model misses. Each check returns ``None`` when the pod
fits, else a short reason a person can read in ``burstd explain``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from burstd.model import (
    GPU_MODEL_LABEL,
    STARTUP_TAINTS,
    GpuRequest,
    NodeTemplate,
    Pod,
    Snapshot,
    Taint,
    Unit,
)
from burstd.model.durations import format_duration
from burstd.model.scheduling import NODE_NAME_FIELD, Placement, Requirement, Toleration
from burstd.rules.types import Rule, RuleSet, Target

UNSCHEDULABLE_TAINT = Taint(key="node.kubernetes.io/unschedulable", effect="NoSchedule")
_REPELS = frozenset({"NoSchedule", "NoExecute"})


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeFacts:
    """What the predicates read of a node: a real one, or the one a target would create.

    ``name`` is empty for a node that does not exist yet (``matchFields`` on its name then
    never holds); ``gpus``/``gpu_model``/``mig`` are its GPU shape.
    """

    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    allocatable: Mapping[str, int] = field(default_factory=dict)
    unschedulable: bool = False
    name: str = ""
    gpus: int = 0
    gpu_model: str = ""
    mig: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of_template(
        cls,
        template: NodeTemplate | None,
        *,
        gpus: int,
        gpu_model: str = "",
        mig: Mapping[str, int] | None = None,
    ) -> NodeFacts:
        labels: dict[str, str] = dict(template.labels) if template is not None else {}
        if gpu_model:
            labels.setdefault(GPU_MODEL_LABEL, gpu_model)
        return cls(
            labels=labels,
            taints=template.taints if template is not None else (),
            allocatable=template.allocatable if template is not None else {},
            gpus=gpus,
            gpu_model=gpu_model,
            mig=dict(mig or {}),
        )


def pod_fits(pod: Pod, node: NodeFacts) -> str | None:
    """``None`` if the scheduler would place ``pod`` on an empty ``node``, else why not."""
    return (
        gpu_fits(pod.gpu, node)
        or placement_fits(pod.placement, node)
        or resources_fit(pod.placement.requests, node.allocatable)
    )


def resources_fit(requests: Mapping[str, int], allocatable: Mapping[str, int]) -> str | None:
    """Every requested resource the node lists fits in what it lists; a pod also takes one of
    the node's ``pods``."""
    pods = allocatable.get("pods")
    if pods is not None and pods < 1:
        return "the node takes no more pods"
    for resource, need in requests.items():
        have = allocatable.get(resource)
        if have is not None and need > have:
            return (
                f"asks {resource} {_amount(resource, need)}, the node has {_amount(resource, have)}"
            )
    return None


def placement_fits(placement: Placement, node: NodeFacts) -> str | None:
    """The label, field and taint predicates (no resources)."""
    if node.unschedulable and not tolerates(placement.tolerations, UNSCHEDULABLE_TAINT):
        return "the node is cordoned"
    for key, value in placement.node_selector.items():
        if node.labels.get(key) != value:
            have = node.labels.get(key)
            return f"nodeSelector {key}={value} (the node has {_label(key, have)})"
    if placement.affinity is not None and not any(
        _term_holds(term, node) for term in placement.affinity
    ):
        return "required node affinity " + _affinity_text(placement.affinity, node)
    for taint in node.taints:
        if taint.effect in _REPELS and not tolerates(placement.tolerations, taint):
            text = f"{taint.key}={taint.value}" if taint.value else taint.key
            return f"untolerated taint {text}:{taint.effect}"
    return None


def gpu_fits(request: GpuRequest, node: NodeFacts) -> str | None:
    """The GPU part of ``NodeResourcesFit`` on an empty node of this shape."""
    if not request.accepts(node.gpu_model):
        return f"asks for {'|'.join(sorted(request.models))}, the node has {node.gpu_model!r}"
    if request.mig:
        short = [p for p, n in sorted(request.mig.items()) if node.mig.get(p, 0) < n]
        if short:
            return f"asks {request}, the node has no such MIG slices"
        return None
    if request.milli and node.gpus < 1:
        return f"asks {request}, the node has no whole GPU"
    if request.gpus > node.gpus:
        return f"asks {request}, the node has {node.gpus}"
    return None


def tolerates(tolerations: tuple[Toleration, ...], taint: Taint) -> bool:
    return any(_tolerates(t, taint) for t in tolerations)


def _tolerates(t: Toleration, taint: Taint) -> bool:
    if t.effect and t.effect != taint.effect:
        return False
    if not t.key:
        return t.operator == "Exists"
    if t.key != taint.key:
        return False
    if t.operator == "Exists":
        return True
    return t.operator in ("Equal", "") and t.value == taint.value


def _term_holds(term: tuple[Requirement, ...], node: NodeFacts) -> bool:
    # A term with no requirement selects no node (as the scheduler reads it).
    return bool(term) and all(requirement_holds(r, node) for r in term)


def requirement_holds(r: Requirement, node: NodeFacts) -> bool:
    if r.on_field:
        if r.key != NODE_NAME_FIELD:
            return False
        if not node.name:
            # A node not made yet gets a fresh name: no listed name is its name.
            return r.operator == "NotIn"
        if r.operator == "In":
            return node.name in r.values
        if r.operator == "NotIn":
            return node.name not in r.values
        return False
    value = node.labels.get(r.key)
    match r.operator:
        case "In":
            return value is not None and value in r.values
        case "NotIn":
            return value is None or value not in r.values
        case "Exists":
            return value is not None
        case "DoesNotExist":
            return value is None
        case "Gt" | "Lt":
            if value is None or len(r.values) != 1:
                return False
            try:
                have, bound = int(value), int(r.values[0])
            except ValueError:
                return False
            return have > bound if r.operator == "Gt" else have < bound
        case _:
            return False


def _affinity_text(terms: tuple[tuple[Requirement, ...], ...], node: NodeFacts) -> str:
    """The first failing requirement of each term, e.g. ``zone In [z9] (the node has none)``."""
    parts = []
    for term in terms[:3]:
        failing = next((r for r in term if not requirement_holds(r, node)), None)
        if failing is None:
            parts.append("an empty term")
            continue
        values = f" [{', '.join(failing.values)}]" if failing.values else ""
        have = node.name or "a name not known yet" if failing.on_field else None
        where = (
            f"the node is {have}"
            if failing.on_field
            else f"the node has {_label(failing.key, node.labels.get(failing.key))}"
        )
        parts.append(f"{failing.key} {failing.operator}{values} ({where})")
    more = f" or {len(terms) - 3} more" if len(terms) > 3 else ""
    return " or ".join(parts) + more


def _label(key: str, value: str | None) -> str:
    return "no such label" if value is None else f"{key}={value}"


def _amount(resource: str, n: int) -> str:
    if resource == "cpu":
        return f"{n / 1000:g}" if n % 1000 == 0 else f"{n}m"
    if resource in ("memory", "ephemeral-storage") and n >= 2**30:
        return f"{n / 2**30:.3g}Gi"
    return str(n)


# One planning pass ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Unservable:
    """A pending pod no target on its rule's ladder can take, and why: never bursted for."""

    pod: str
    rule: str
    reason: str

    def __str__(self) -> str:
        return f"{self.pod}: {self.reason}"


class Fitter:
    """The predicates of one planning pass, with what they need looked up once: each target's
    template node, each unit's node (its real ``Node`` from the snapshot if there is one, else
    its target's template with the unit's own GPU shape), and the safety net's misfits."""

    def __init__(self, snapshot: Snapshot, ruleset: RuleSet, now: float) -> None:
        self._ruleset = ruleset
        self._now = now
        self._nodes = {n.name: n for n in snapshot.nodes if n.unit is not None}
        self._misfits = {(m.pod, m.target): m for m in snapshot.misfits if m.until > now}
        # The very unit the scheduler refused a pod stays refused, even after the backoff.
        self._refused = {(m.pod, m.unit) for m in snapshot.misfits}
        self._templates: dict[str, NodeFacts] = {}
        self._units: dict[tuple[str, bool], NodeFacts] = {}
        self._verdicts: dict[tuple[str, str], str | None] = {}

    def template(self, target: Target) -> NodeFacts:
        facts = self._templates.get(target.name)
        if facts is None:
            facts = self._templates[target.name] = NodeFacts.of_template(
                target.node, gpus=target.gpus_per_unit, gpu_model=target.gpu_model, mig=target.mig
            )
        return facts

    def misfit(self, pod: Pod, target: str) -> str | None:
        m = self._misfits.get((pod.key, target))
        if m is None:
            return None
        return (
            f"the scheduler did not place it on unit {m.unit} packed for it "
            f"({m.misses} time(s)); not tried on {target} for "
            f"{format_duration(m.until - self._now)}"
        )

    def for_target(self, pod: Pod, target: Target) -> str | None:
        """``None`` if a new unit of ``target`` would take ``pod``, else why not."""
        key = (pod.key, target.name)
        if key in self._verdicts:
            return self._verdicts[key]
        why = self.misfit(pod, target.name) or pod_fits(pod, self.template(target))
        self._verdicts[key] = why
        return why

    def unit_node(self, unit: Unit, *, cordon_lifted: bool = False) -> NodeFacts:
        """What the predicates see of ``unit``'s node; ``cordon_lifted``: as it would be once
        burstd uncordoned it (for taking a cordoned unit back)."""
        key = (unit.id, cordon_lifted)
        facts = self._units.get(key)
        if facts is not None:
            return facts
        target = self._ruleset.targets.get(unit.target)
        template = target.node if target is not None else None
        model = unit.gpu_model or (target.gpu_model if target is not None else "")
        node = self._nodes.get(unit.node or "")
        if node is None:
            facts = NodeFacts.of_template(
                template, gpus=unit.gpus, gpu_model=model, mig=dict(unit.mig)
            )
        else:
            # Start-up taints go away on their own: they never rule a pod out of a unit. So does
            # the unschedulable taint of a node no longer cordoned: the node lifecycle
            # controller mirrors the cordon into it, and takes it off some time after an
            # uncordon (a unit taken back must not look unneeded, and be cordoned again, in
            # the meantime).
            lifted = STARTUP_TAINTS
            if cordon_lifted or not node.unschedulable:
                lifted = lifted | {UNSCHEDULABLE_TAINT.key}
            taints = tuple(t for t in node.taints if t.key not in lifted)
            facts = NodeFacts(
                labels=node.labels,
                taints=taints,
                allocatable=node.allocatable or (template.allocatable if template else {}),
                unschedulable=node.unschedulable and not cordon_lifted,
                name=node.name,
                gpus=unit.gpus,
                gpu_model=model,
                mig=dict(unit.mig),
            )
        self._units[key] = facts
        return facts

    def may_land(self, pod: Pod, unit: Unit, *, cordon_lifted: bool = False) -> bool:
        """``pod`` may land on ``unit``'s node as far as labels and taints go (its room is
        the packing's business)."""
        if (pod.key, unit.target) in self._misfits or (pod.key, unit.id) in self._refused:
            return False
        return (
            placement_fits(pod.placement, self.unit_node(unit, cordon_lifted=cordon_lifted)) is None
        )

    def could_use(self, pod: Pod, unit: Unit) -> bool:
        """``pod`` would land on ``unit`` were it empty: the release check."""
        if (pod.key, unit.target) in self._misfits or (pod.key, unit.id) in self._refused:
            return False
        return pod_fits(pod, self.unit_node(unit)) is None

    def unservable(self, pod: Pod, rule: Rule) -> Unservable | None:
        """``None`` if some target on ``rule``'s ladder would take ``pod``."""
        reasons = []
        for name in rule.burst.ladder:
            target = self._ruleset.targets.get(name)
            if target is None:
                continue
            why = self.for_target(pod, target)
            if why is None:
                return None
            reasons.append(f"{name}: {why}")
        return Unservable(
            pod=pod.key,
            rule=rule.name,
            reason="no target on the ladder can take it (" + "; ".join(reasons) + ")",
        )

"""The contract every capacity provider keeps (Liqo, Terraform, InterLink, kwok, fakes).

A provider turns one unit into real capacity and back. It knows nothing of rules or plans:
the actuator calls it, one unit at a time, and records what happened. Each method says whether
it is required, whether it must be idempotent and which typed error it raises.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from burstd.model import (
    GPU_MODEL_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    TARGET_LABEL,
    NodeTemplate,
)
from burstd.model.params import ParamSchema


class ProviderError(Exception):
    """The provider could not do what was asked. ``retryable`` errors put the target in backoff
    and are tried again later; others also mark the unit failed at once."""

    retryable = True


class CapacityError(ProviderError):
    """The target has no capacity for this unit right now (a donor out of GPUs, a cloud zone out
    of stock): the planner should walk down the ladder."""


class NotReadyError(ProviderError):
    """The unit did not become ready (GPUs allocatable on a Ready node) within its deadline."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UnitSpec:
    """What to provision: one unit of ``gpus`` GPUs for target ``target``.

    ``params`` are the target's provider parameters from the rules file. ``labels`` must be put
    on every object the provider creates, so a restarted burstd can find and adopt them.
    """

    id: str
    target: str
    rule: str
    gpus: int
    gpu_model: str = ""
    mig: Mapping[str, int] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    ready_deadline: float = 900.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvisionedUnit:
    """A unit as the provider finds it: for ``create``'s answer and for adoption."""

    id: str
    target: str
    rule: str
    gpus: int
    node: str | None
    ready: bool
    cordoned: bool = False
    """The unit takes no new pods (its node is unschedulable)."""
    cordoned_by_burstd: bool = False
    """burstd cordoned it (the provider recorded that on the object, e.g. the
    ``burstd.io/cordoned-at`` annotation); ``cordoned`` without it is an operator's cordon."""
    gpu_model: str = ""
    mig: Mapping[str, int] = field(default_factory=dict)
    """The MIG slices the unit was made with (read from the object, not the target's current
    shape, which may have changed since)."""
    created_at: float = 0.0


@runtime_checkable
class Provider(Protocol):
    """One target's provider. Calls for different units may run concurrently."""

    async def create(self, spec: UnitSpec) -> ProvisionedUnit:
        """Implementation required. Provision one unit and return once its GPUs are allocatable
        on a Ready node (``ready=True``, ``node`` set).

        Idempotent by ``spec.id``: calling again for a unit that exists waits for it instead of
        making a second one. Raises ``CapacityError`` when the target has no room,
        ``NotReadyError`` past ``spec.ready_deadline``, ``ProviderError`` otherwise; on any
        error it leaves nothing behind that ``delete`` could not remove. Cancellation stops the
        wait; the caller then calls ``delete``.
        """
        ...

    async def cordon(self, unit_id: str, node: str | None) -> None:
        """Implementation required. Stop new pods landing on the unit. Idempotent."""
        ...

    async def uncordon(self, unit_id: str, node: str | None) -> None:
        """Implementation required. Undo ``cordon``. Idempotent."""
        ...

    async def evict(self, unit_id: str, node: str | None, pods: Sequence[str]) -> None:
        """Optional: raise ``NotImplementedError`` if the target cannot evict; the actuator then
        keeps waiting for the pods to finish. Evicts ``pods`` (``namespace/name``) gracefully,
        honouring PodDisruptionBudgets."""
        ...

    async def delete(self, unit_id: str, node: str | None) -> None:
        """Implementation required. Give the unit back and return once it is gone. Only called
        when no pod runs on it (the caller guarantees that). Idempotent: deleting a unit that
        does not exist succeeds."""
        ...

    async def list_units(self) -> list[ProvisionedUnit]:
        """Implementation required. Every unit of this target that exists now, found by the
        labels burstd put on it, so a restarted burstd adopts what it made."""
        ...


@runtime_checkable
class ReportsProblems(Protocol):
    """Optional, besides ``Provider``: a provider that can say what is wrong with its target
    before any call fails on it."""

    async def problems(self, namespaces: frozenset[str] | None = None) -> list[str]:
        """What keeps the target's units from serving now (a missing peering, a namespace
        whose pods can never reach its nodes), each a sentence an operator can act on; an
        empty list when nothing does. ``namespaces`` are where the pods of the rules that
        burst to the target live (``None``: anywhere); a problem of another namespace is not
        the target's. The daemon calls it now and then and shows the answer
        in ``/status``, the status page and a ``target_problem`` alert; it never changes a
        plan. May raise ``ProviderError`` when it cannot tell (then the last answer stands)."""
        ...


# Kinds: what burstd knows of a provider before any unit exists (see providers/registry.py).


@dataclass(frozen=True, slots=True, kw_only=True)
class UnitShape:
    """What one unit of a target holds, as the rules file says: ``gpus`` whole GPUs of
    ``gpu_model`` on one node, or ``mig`` slices by profile."""

    target: str
    gpus: int
    gpu_model: str = ""
    mig: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderContext:
    """Everything one target's provider is built from.

    ``api`` is the daemon's ``kubernetes_asyncio`` ``ApiClient`` (owned by the daemon);
    ``params`` were checked against the kind's schema, defaults filled in; ``state_dir`` is
    where a provider may keep files of its own (a Terraform workdir, say), one folder a target.
    """

    api: Any
    shape: UnitShape
    params: Mapping[str, Any] = field(default_factory=dict)
    state_dir: Path | None = None

    @property
    def target(self) -> str:
        return self.shape.target


ProviderFactory = Callable[[ProviderContext], Provider]
RuleWarnings = Callable[[str, "UnitShape", Mapping[str, Any]], Sequence[str]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderKind:
    """One kind of provider. ``params`` ``None`` means the kind does not declare its settings
    yet: they pass unchecked. ``build`` ``None`` means this daemon cannot run it (the simulator
    still can: it models every kind by the target's numbers)."""

    name: str
    doc: str
    params: ParamSchema | None
    node: Callable[[UnitShape, Mapping[str, Any]], NodeTemplate]
    implementation: str | None = None
    """``module:callable`` that makes the provider from a ``ProviderContext``; imported when
    first built, so ``burstd validate`` and the simulator never load the Kubernetes client.
    ``None``: this daemon cannot run the kind."""
    rule_warnings: RuleWarnings | None = None
    """Optional: what ``burstd validate``/``explain`` warn of a rule whose ladder names a target
    of this kind, given the rule's name, the target's shape and params (e.g. a taint its pods
    must tolerate)."""

    def build(self, ctx: ProviderContext) -> Provider:
        """The provider of one target. Raises ``ProviderError`` if the kind cannot run here."""
        if self.implementation is None:
            raise ProviderError(f"provider {self.name!r} is not available in this daemon")
        module, _, attr = self.implementation.partition(":")
        factory: ProviderFactory = getattr(importlib.import_module(module), attr)
        return factory(ctx)


def bare_node(shape: UnitShape, params: Mapping[str, Any]) -> NodeTemplate:
    """A node known only by its GPUs: no taints, no other resource limits."""
    return NodeTemplate(labels=unit_labels(shape))


def unit_labels(shape: UnitShape) -> dict[str, str]:
    """Labels every unit's node carries whatever the provider: burstd's ownership and the GPU
    model (as NVIDIA's GPU feature discovery labels it)."""
    labels = {MANAGED_BY_LABEL: MANAGED_BY, TARGET_LABEL: shape.target}
    if shape.gpu_model:
        labels[GPU_MODEL_LABEL] = shape.gpu_model
    return labels

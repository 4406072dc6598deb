"""The Terraform provider: a unit is one key of a ``for_each`` map of the target's module.

The operator's module (``params.module``; docs/terraform.md is the contract) takes a map
variable (``units_variable``, default ``burstd_units``)::

    { "<unit id>" = { gpus = 4, gpu_model = "NVIDIA-A10G", mig = {}, labels = {...} } }

makes one Kubernetes node per key with that key's ``labels`` on it, and outputs ``nodes``: unit
id → node name. Giving back one unit removes exactly its key; no other unit is touched (a
``count`` would destroy the last index, not the idle node).

How the provider runs terraform (``cli.py`` is the thin async wrapper over the CLI):

* ``init`` once per workdir (again only when the generated root module or the binary change);
* one state, one lock: applies of a target run one at a time. A create or delete edits the map
  (the var file is rewritten atomically) and waits for an apply that *started after* its edit
  and succeeded; whoever finds no apply running runs the next one, so the creates and deletes
  that arrive while an apply runs are coalesced into one more apply (a burst of six units is
  one apply, not six);
* an apply's errors are attributed to units by resource address: a new unit whose own
  resource failed is taken out of the map and its create fails with terraform's words (they
  reach the log, the unit's failure reason and ``burstd explain``), a release whose destroy
  failed is retried; an error of the whole module fails every unit of that apply;
* after the apply, ``output -json`` names each unit's node; ``create`` returns once that Node
  is Ready with its GPUs allocatable (a Ready node without ``nvidia.com/gpu`` is not ready: the
  device plugin comes later). Past ``ready_deadline`` (counted from when the key was first
  written, also across restarts) the key is removed again, applied, and ``NotReadyError``
  raised, so the target backs off and the ladder moves on;
* a cancelled call (a create abandoned past its deadline, or shutdown) that was running an
  apply interrupts it with SIGINT and waits for terraform to save its state; the delete that
  follows an abandon removes the key;
* ``delete`` removes the key, applies, then checks the Node is gone and deletes a Node object
  the module's machine left behind (a cloud VM's Node stays after the VM is gone).

Restart: the first call recovers the workdir (see ``workdir.py``: a stale state lock is removed
once no terraform of burstd's runs), reads the var file (what burstd asked for), the state's
outputs (what terraform made) and the Nodes' labels. A key in the state but no longer in the
var file was being given back: one apply finishes that. A key in the var file whose node never
came is judged by its deadline: past it, it is dropped; otherwise it is applied (the kwok
module's ``kubectl apply`` adopts a node that exists), never made twice. Nodes labelled for
this target whose key is in neither are deleted, so nothing is left orphaned.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client

from burstd import faults
from burstd.model import (
    CORDONED_ANNOTATION,
    GPU_MODEL_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    PROVIDER_LABEL,
    RULE_LABEL,
    TARGET_LABEL,
    UNIT_LABEL,
)
from burstd.providers import kube
from burstd.providers.base import (
    NotReadyError,
    ProviderContext,
    ProviderError,
    ProvisionedUnit,
    UnitSpec,
)
from burstd.providers.terraform.cli import ApplyResult, Redactor, Terraform, find_binary
from burstd.providers.terraform.workdir import (
    APPLY_VAR_FILE,
    ROOT_FILE,
    VAR_FILE,
    WorkdirLock,
    read_env_file,
    read_units,
    recover_stale_lock,
    root_module,
    var_file,
    write_atomically,
)

log = logging.getLogger(__name__)

PROVIDER = "terraform"
INIT_STAMP = ".burstd-init"
OUTPUT_TIMEOUT_S = 120.0
COALESCE_S = 0.05
MAX_FAILED_APPLIES = 3
"""Failed applies (for other units' errors) a call waits through before it fails too."""
"""How long an apply waits for more edits before it starts: nothing next to an apply's
seconds, enough for every create of one pass to join it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Failure:
    """An apply that failed for every unit it carried: those whose edit it included
    (generation ≤ ``started``) fail with ``message``."""

    number: int
    started: int
    message: str


class _NodeApi:
    """The few Node calls the provider makes, on the daemon's ``ApiClient``."""

    def __init__(self, api: Any) -> None:
        core: Any = client.CoreV1Api
        self._core = core(api)

    async def read(self, name: str) -> dict[str, Any] | None:
        return await kube.maybe(self._core.read_node, name)

    async def list(self, selector: str) -> list[dict[str, Any]]:
        data = await kube.maybe(self._core.list_node, label_selector=selector)
        return [n for n in (data or {}).get("items") or [] if isinstance(n, dict)]

    async def delete(self, name: str) -> None:
        await kube.gone(self._core.delete_node, name)

    async def set_unschedulable(self, name: str, value: bool) -> bool:
        return await kube.set_unschedulable(self._core, name, value)

    async def evict(self, pod: str) -> None:
        await kube.evict(self._core, pod)


class _Workdir:
    """What every provider of one workdir shares: the map burstd wants, what the last apply
    made, and the locks. A rules reload builds a new provider for the same target while the
    old one's calls still run; both must edit the same map, or one would drop the other's
    units from the var file (and terraform destroy them)."""

    def __init__(self, workdir: Path) -> None:
        self.flock = WorkdirLock(workdir)
        self.prepare_lock = asyncio.Lock()
        self.loaded = False
        self.units: dict[str, dict[str, Any]] = {}
        """The map burstd wants (what the var file says)."""
        self.outputs: dict[str, str] = {}
        """The module's ``nodes`` output after the last apply."""
        self.pending: set[str] = set()
        """Keys written but not yet in a successful apply."""
        self.out_of_line = False
        # Coalescing: generations of the map; one apply at a time.
        self.wanted = 0
        self.done = 0
        self.apply_lock = asyncio.Lock()
        self.failure: _Failure | None = None
        self.failures = 0
        self.failed_applies = 0
        self.last_error = ""
        self.key_errors: dict[str, str] = {}
        self.applies = 0
        self.tf: Terraform | None = None
        self.units_variable = "burstd_units"
        self.variables: Mapping[str, Any] = {}


_WORKDIRS: dict[tuple[Path, int], _Workdir] = {}


def _shared(workdir: Path) -> _Workdir:
    """The shared state of ``workdir`` in this event loop (a loop's locks serve it only)."""
    try:
        loop = id(asyncio.get_running_loop())
    except RuntimeError:
        loop = 0
    key = (workdir, loop)
    if key not in _WORKDIRS:
        _WORKDIRS[key] = _Workdir(workdir)
    return _WORKDIRS[key]


class TerraformProvider:
    """One target whose units are keys of a Terraform module's ``for_each`` map.

    ``api`` is a ``kubernetes_asyncio`` ``ApiClient`` owned by the caller; ``params`` are the
    kind's params with defaults (see ``providers/terraform/__init__.py``); ``workdir`` is used
    when ``params`` name none.
    """

    def __init__(
        self,
        api: Any,
        target: str,
        params: Mapping[str, Any],
        *,
        workdir: Path | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.target = target
        self.params = dict(params)
        given = self.params.get("workdir")
        if given:
            self.workdir = Path(str(given)).expanduser().absolute()
        elif workdir is not None:
            self.workdir = workdir.absolute()
        else:
            raise ProviderError(
                f"target {target}: params.workdir is not set and there is no state directory"
            )
        given_module = self.params.get("module")
        self.module = Path(str(given_module)).expanduser().absolute() if given_module else None
        self.units_variable = str(self.params.get("units_variable") or "burstd_units")
        self.variables: dict[str, Any] = dict(self.params.get("vars") or {})
        self._lock_timeout = float(self.params.get("lock_timeout", 60.0))
        self._apply_timeout = float(self.params.get("apply_timeout", 1800.0))
        self._init_timeout = float(self.params.get("init_timeout", 600.0))
        self._parallelism = int(self.params.get("parallelism", 10))
        self._poll = float(self.params.get("poll_interval", 1.0))
        self._delete_timeout = float(self.params.get("delete_timeout", 120.0))
        self._sleep = sleep
        self._nodes = _NodeApi(api) if api is not None else None
        self._tf: Terraform | None = None
        self._prepared = False
        self._s = _shared(self.workdir)
        self.redact = Redactor()

    @property
    def applies(self) -> int:
        """Applies run in this workdir so far (tests count them)."""
        return self._s.applies

    # Setting up ---------------------------------------------------------------------------

    def _environment(self) -> tuple[dict[str, str], Redactor]:
        env = dict(os.environ)
        secrets: list[str] = []
        for name in self.params.get("secret_env") or ():
            value = os.environ.get(str(name))
            if value:
                secrets.append(value)
        env.update({str(k): str(v) for k, v in (self.params.get("env") or {}).items()})
        for path in self.params.get("env_files") or ():
            values = read_env_file(Path(str(path)).expanduser())
            secrets.extend(values.values())
            env.update(values)
        env.update({"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"})
        return env, Redactor(secrets)

    async def _prepare(self) -> Terraform:
        """Once: write the root module, recover the workdir, init, and converge to the var
        file (see the module docstring). Retried by the next call if it fails."""
        if self._prepared and self._tf is not None:
            return self._tf
        async with self._s.prepare_lock:
            if self._prepared and self._tf is not None:
                return self._tf
            tf = await self._setup()
            self._tf = tf
            self._prepared = True
        await self._reconcile()
        return tf

    async def _setup(self) -> Terraform:
        if self.module is None or not self.module.is_dir():
            error = ProviderError(
                f"target {self.target}: params.module is not set"
                if self.module is None
                else f"target {self.target}: module {self.module} is not a directory"
            )
            error.retryable = False
            raise error
        self.workdir.mkdir(parents=True, exist_ok=True)
        env, redact = self._environment()
        self.redact = redact
        tf = Terraform(find_binary(self.params.get("binary")), self.workdir, env, redact)
        root = root_module(self.module, self.units_variable, self.variables)
        write_atomically(self.workdir / ROOT_FILE, root)
        first = not self._s.loaded
        if first:
            self._s.units = read_units(self.workdir / VAR_FILE, self.units_variable)
            self._s.loaded = True
        # The newest provider of the workdir (after a rules reload) says what terraform runs.
        self._s.tf = tf
        self._s.units_variable = self.units_variable
        self._s.variables = self.variables
        self._write_vars()
        async with self._s.flock.held(self._lock_timeout) as fd:
            stale = recover_stale_lock(self.workdir)
            if stale is not None:
                log.warning(
                    "target %s: removed a stale terraform state lock in %s (held by %s for %s "
                    "since %s; that terraform is gone)",
                    self.target,
                    self.workdir,
                    stale.get("Who"),
                    stale.get("Operation"),
                    stale.get("Created"),
                    extra={
                        "event": "terraform_lock_recovered",
                        "target": self.target,
                        "workdir": str(self.workdir),
                        "lock": stale,
                    },
                )
            stamp = json.dumps({"root": root, "binary": tf.binary})
            stamp_path = self.workdir / INIT_STAMP
            if not (self.workdir / ".terraform").is_dir() or _read(stamp_path) != stamp:
                log.info(
                    "target %s: terraform init in %s",
                    self.target,
                    self.workdir,
                    extra={"event": "terraform_init", "target": self.target},
                )
                await tf.init(within=self._init_timeout, hold=fd)
                write_atomically(stamp_path, stamp)
            outputs = await tf.outputs(within=OUTPUT_TIMEOUT_S, hold=fd)
        self._s.outputs = _nodes_output(outputs.get("nodes"))
        if first:
            self._s.pending = set(self._s.units) - set(self._s.outputs)
            self._drop_expired()
            self._s.out_of_line = set(self._s.units) != set(self._s.outputs)
            if self._s.out_of_line and self._s.done >= self._s.wanted:
                self._s.wanted += 1  # the map as read needs an apply
        return tf

    def _drop_expired(self) -> None:
        """After a restart: a key whose node never came within its deadline is dropped."""
        now = time.time()
        expired = [
            key
            for key in sorted(self._s.pending)
            if now >= _requested_at(self._s.units[key]) + _deadline(self._s.units[key])
        ]
        for key in expired:
            log.warning(
                "target %s: unit %s was asked for but its node never came within its "
                "deadline; dropping it",
                self.target,
                key,
                extra={"event": "terraform_unit_dropped", "target": self.target, "unit": key},
            )
            self._s.units.pop(key, None)
            self._s.pending.discard(key)
        if expired:
            self._changed()

    async def _reconcile(self) -> None:
        """After a restart: apply once if the state and the var file disagree (a release or a
        create was cut short)."""
        if not self._s.out_of_line:
            return
        self._s.out_of_line = False
        log.info(
            "target %s: the state and the var file disagree; applying",
            self.target,
            extra={"event": "terraform_reconcile", "target": self.target},
        )
        try:
            await self._converge(self._s.wanted)
        except ProviderError as e:
            log.error(
                "target %s: could not bring the state in line with the var file: %s",
                self.target,
                e,
                extra={"event": "terraform_reconcile_error", "target": self.target},
            )

    def _write_vars(self) -> None:
        text = var_file(self._s.units_variable, self._s.units, self._s.variables)
        write_atomically(self.workdir / VAR_FILE, text)

    def _changed(self) -> int:
        """The map changed: write it and return its new generation."""
        self._write_vars()
        self._s.wanted += 1
        return self._s.wanted

    # Applying -----------------------------------------------------------------------------

    async def _converge(self, gen: int, key: str | None = None) -> None:
        """Return once an apply that included generation ``gen`` of the map succeeded; raise
        ``ProviderError`` if the one that included it failed (for ``key``, or for all)."""
        # Only a failure after this call began counts: a retry runs a fresh apply.
        seen = self._s.failures
        failed_before = self._s.failed_applies

        def failed() -> _Failure | None:
            f = self._s.failure
            return f if f is not None and f.number > seen and f.started >= gen else None

        while True:
            if self._s.done >= gen:
                return
            if key is not None and key in self._s.key_errors:
                raise ProviderError(self._s.key_errors.pop(key))
            if (f := failed()) is not None:
                raise ProviderError(f.message)
            if self._s.failed_applies - failed_before >= MAX_FAILED_APPLIES:
                # Others' errors keep failing the applies this call waits for: give up.
                raise ProviderError(self._s.last_error)
            async with self._s.apply_lock:
                if self._s.done >= gen or (key is not None and key in self._s.key_errors):
                    continue
                if failed() is not None:
                    continue
                if self._s.failed_applies - failed_before >= MAX_FAILED_APPLIES:
                    continue
                await self._apply_once()

    async def _apply_once(self) -> None:
        tf = self._s.tf
        assert tf is not None
        # Let the calls of the same pass (the driver starts them together) add their keys
        # first: they then ride on this apply instead of the next.
        await asyncio.sleep(COALESCE_S)
        started = self._s.wanted
        carried = set(self._s.pending)
        # terraform reads exactly this generation of the map, whatever edits come meanwhile.
        write_atomically(
            self.workdir / APPLY_VAR_FILE,
            var_file(self._s.units_variable, self._s.units, self._s.variables),
        )
        self._s.applies += 1
        log.info(
            "target %s: terraform apply #%d (%d unit(s) wanted)",
            self.target,
            self._s.applies,
            len(self._s.units),
            extra={
                "event": "terraform_apply",
                "target": self.target,
                "units": sorted(self._s.units),
            },
        )
        async with self._s.flock.held(self._lock_timeout) as fd:
            result = await tf.apply(
                var_file=APPLY_VAR_FILE,
                lock_timeout=self._lock_timeout,
                parallelism=self._parallelism,
                within=self._apply_timeout,
                hold=fd,
            )
            outputs = await tf.outputs(within=OUTPUT_TIMEOUT_S, hold=fd)
        self._s.outputs = _nodes_output(outputs.get("nodes"))
        log.info(
            "target %s: terraform apply #%d %s in %.1fs",
            self.target,
            self._s.applies,
            "succeeded" if result.ok else f"failed: {result.message()}",
            result.seconds,
            extra={
                "event": "terraform_applied",
                "target": self.target,
                "ok": result.ok,
                "seconds": round(result.seconds, 3),
            },
        )
        if result.ok:
            self._s.done = started
            self._s.failure = None
            self._s.pending -= carried
            return
        self._failed(result, started, carried)

    def _failed(self, result: ApplyResult, started: int, carried: set[str]) -> None:
        """Attribute the errors of a failed apply. An error of a unit's own resource fails that
        unit only: a new one leaves the map, a release is retried by its caller. Any other
        error fails everything the apply carried."""
        self._s.failed_applies += 1
        self._s.last_error = "terraform apply failed: " + result.message()
        general: list[str] = []
        mine: dict[str, list[str]] = {}
        for d in result.errors:
            if d.key is not None and (d.key in carried or d.key not in self._s.units):
                mine.setdefault(d.key, []).append(str(d))
            else:
                general.append(str(d))
        if not result.errors:
            general.append(result.message())
        dropped = False
        for key, texts in mine.items():
            self._s.key_errors[key] = "terraform apply failed: " + "; ".join(texts)
            if key in carried:
                self._s.units.pop(key, None)
                self._s.pending.discard(key)
                dropped = True
        if dropped:
            self._changed()
        if general:
            self._s.failures += 1
            self._s.failure = _Failure(
                number=self._s.failures,
                started=started,
                message="terraform apply failed: " + "; ".join(general),
            )

    # The Provider contract ----------------------------------------------------------------

    def _entry(self, spec: UnitSpec) -> dict[str, Any]:
        labels = dict(spec.labels)
        labels.update(
            {
                MANAGED_BY_LABEL: MANAGED_BY,
                UNIT_LABEL: labels.get(UNIT_LABEL, spec.id),
                TARGET_LABEL: labels.get(TARGET_LABEL, spec.target),
                RULE_LABEL: labels.get(RULE_LABEL, spec.rule),
                PROVIDER_LABEL: PROVIDER,
            }
        )
        if spec.gpu_model:
            labels[GPU_MODEL_LABEL] = spec.gpu_model
        return {
            "gpus": spec.gpus,
            "gpu_model": spec.gpu_model,
            "mig": dict(spec.mig),
            "labels": labels,
            # burstd's own bookkeeping: a module's object type discards these.
            "rule": spec.rule,
            "requested_at": time.time(),
            "ready_deadline": spec.ready_deadline,
        }

    async def create(self, spec: UnitSpec) -> ProvisionedUnit:
        """Add the unit's key (or find it: idempotent by ``spec.id``), apply, and wait until
        its node is Ready with its GPUs allocatable. On an apply error or past the deadline
        the key is removed and applied again before the error is raised."""
        await self._prepare()
        key = spec.id
        entry = self._s.units.get(key)
        if entry is None:
            entry = self._entry(spec)
            self._s.units[key] = entry
            self._s.pending.add(key)
            gen = self._changed()
            log.info(
                "target %s: unit %s added to %s",
                self.target,
                key,
                self.units_variable,
                extra={"event": "terraform_unit_added", "target": self.target, "unit": key},
            )
        elif key in self._s.pending and self._s.done >= self._s.wanted:
            self._s.wanted += 1  # written before a restart, never applied
            gen = self._s.wanted
        else:
            gen = self._s.wanted
        deadline = _requested_at(entry) + spec.ready_deadline
        need = kube.gpu_need(spec.gpus, spec.mig)
        try:
            try:
                async with asyncio.timeout(max(0.0, deadline - time.time())):
                    await self._converge(gen, key)
                    name = self._s.outputs.get(key)
                    if name is None:
                        raise ProviderError(
                            f"the module's output 'nodes' has no entry for unit {key}"
                        )
                    faults.hit(faults.OBJECT_CREATED)
                    node = await self._wait_ready(name, need)
            except TimeoutError:
                raise NotReadyError(
                    f"unit {key}: no Ready node with {spec.gpus} GPU(s) allocatable within "
                    f"{spec.ready_deadline:g}s"
                ) from None
        except ProviderError as e:
            await self._rollback(key, str(e))
            raise
        return self._unit(key, node)

    async def _wait_ready(self, name: str, need: Mapping[str, int]) -> dict[str, Any]:
        assert self._nodes is not None
        while True:
            try:
                node = await self._nodes.read(name)
            except ProviderError as e:
                log.warning(
                    "target %s: checking node %s: %s",
                    self.target,
                    name,
                    e,
                    extra={"event": "terraform_poll_error", "target": self.target},
                )
                node = None
            if node is not None and kube.node_ready(node, need):
                return node
            await self._sleep(self._poll)

    async def _rollback(self, key: str, why: str) -> None:
        """Take ``key`` out of the map and apply; a failure here is left to ``delete``."""
        log.warning(
            "target %s: rolling unit %s back: %s",
            self.target,
            key,
            why,
            extra={"event": "terraform_rollback", "target": self.target, "unit": key},
        )
        try:
            await self._remove(key, self._s.outputs.get(key))
        except ProviderError as e:
            log.error(
                "target %s: rollback of unit %s failed (delete will retry): %s",
                self.target,
                key,
                e,
                extra={"event": "terraform_rollback_error", "target": self.target, "unit": key},
            )

    async def _remove(self, key: str, node: str | None) -> None:
        self._s.key_errors.pop(key, None)
        if key in self._s.units:
            self._s.units.pop(key)
            self._s.pending.discard(key)
            gen = self._changed()
        else:
            gen = self._s.wanted
        if key in self._s.outputs or self._s.done < gen:
            await self._converge(gen, key)
        if key in self._s.outputs:
            raise ProviderError(f"unit {key} is still in the terraform state after apply")
        faults.hit(faults.DELETE_SENT)
        await self._delete_stale_nodes(key, node)

    async def _delete_stale_nodes(self, key: str, node: str | None) -> None:
        """The module destroyed the unit's machine; its Node object may outlive it."""
        if self._nodes is None:
            return
        names = {n for n in (node,) if n}
        selector = f"{MANAGED_BY_LABEL}={MANAGED_BY},{TARGET_LABEL}={self.target}"
        for found in await self._nodes.list(f"{selector},{UNIT_LABEL}={key}"):
            names.add(str((found.get("metadata") or {}).get("name")))
        deadline = time.monotonic() + self._delete_timeout
        for name in sorted(names):
            existing = await self._nodes.read(name)
            if existing is None:
                continue
            labels = (existing.get("metadata") or {}).get("labels") or {}
            if labels.get(UNIT_LABEL) != key or labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
                e = ProviderError(f"node {name} is not unit {key}'s; not deleting it")
                e.retryable = False
                raise e
            log.warning(
                "target %s: node %s of unit %s outlived its machine; deleting the Node object",
                self.target,
                name,
                key,
                extra={"event": "terraform_stale_node", "target": self.target, "unit": key},
            )
            await self._nodes.delete(name)
            while await self._nodes.read(name) is not None:
                if time.monotonic() >= deadline:
                    raise ProviderError(f"node {name} still exists {self._delete_timeout:g}s on")
                await self._sleep(self._poll)

    async def delete(self, unit_id: str, node: str | None) -> None:
        """Remove the unit's key, apply, and make sure its Node is gone. Idempotent."""
        await self._prepare()
        await self._remove(unit_id, node or self._s.outputs.get(unit_id))
        log.info(
            "target %s: unit %s removed",
            self.target,
            unit_id,
            extra={"event": "terraform_unit_removed", "target": self.target, "unit": unit_id},
        )

    async def _node_of(self, unit_id: str, node: str | None) -> str | None:
        if node:
            return node
        await self._prepare()
        return self._s.outputs.get(unit_id)

    async def _set_unschedulable(self, unit_id: str, node: str | None, value: bool) -> None:
        assert self._nodes is not None
        name = await self._node_of(unit_id, node)
        if name is None:
            return
        if not await self._nodes.set_unschedulable(name, value):
            log.warning(
                "target %s: node %s of unit %s is gone; nothing to %s",
                self.target,
                name,
                unit_id,
                "cordon" if value else "uncordon",
                extra={"event": "terraform_node_gone", "unit": unit_id},
            )

    async def cordon(self, unit_id: str, node: str | None) -> None:
        """Mark the node unschedulable (and record that burstd did). Idempotent."""
        await self._set_unschedulable(unit_id, node, True)

    async def uncordon(self, unit_id: str, node: str | None) -> None:
        """Undo ``cordon``. Idempotent."""
        await self._set_unschedulable(unit_id, node, False)

    async def evict(self, unit_id: str, node: str | None, pods: Sequence[str]) -> None:
        """Evict ``pods`` through the Eviction API (PodDisruptionBudgets apply)."""
        assert self._nodes is not None
        for pod in pods:
            await self._nodes.evict(pod)

    async def list_units(self) -> list[ProvisionedUnit]:
        """The units of the var file, each with its node as the API server has it."""
        await self._prepare()
        found: dict[str, dict[str, Any]] = {}
        if self._nodes is not None:
            selector = f"{MANAGED_BY_LABEL}={MANAGED_BY},{TARGET_LABEL}={self.target}"
            for item in await self._nodes.list(selector):
                meta = item.get("metadata") or {}
                if meta.get("deletionTimestamp"):
                    continue
                key = str((meta.get("labels") or {}).get(UNIT_LABEL, ""))
                if key:
                    found[key] = item
        out = []
        for key in sorted(self._s.units):
            name = self._s.outputs.get(key)
            node: dict[str, Any] | None = found.get(key)
            if node is not None and name and (node.get("metadata") or {}).get("name") != name:
                node = None
            out.append(self._unit(key, node))
        orphans = sorted(set(found) - set(self._s.units) - set(self._s.outputs))
        if orphans and not self._s.apply_lock.locked():
            for key in orphans:
                await self._delete_stale_nodes(key, None)
        return out

    def _unit(self, key: str, node: Mapping[str, Any] | None) -> ProvisionedUnit:
        entry = self._s.units.get(key) or {}
        gpus = int(entry.get("gpus") or 0)
        mig = {str(k): int(v) for k, v in (entry.get("mig") or {}).items()}
        meta = (node or {}).get("metadata") or {}
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        cordoned = bool(((node or {}).get("spec") or {}).get("unschedulable"))
        return ProvisionedUnit(
            id=key,
            target=self.target,
            rule=str(entry.get("rule") or labels.get(RULE_LABEL, "")),
            gpus=gpus,
            node=str(meta["name"]) if node is not None and meta.get("name") else None,
            ready=node is not None and kube.node_ready(node, kube.gpu_need(gpus, mig)),
            cordoned=cordoned,
            cordoned_by_burstd=cordoned and CORDONED_ANNOTATION in annotations,
            gpu_model=str(entry.get("gpu_model") or labels.get(GPU_MODEL_LABEL, "")),
            mig=mig,
            created_at=_requested_at(entry),
        )


def _nodes_output(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if v}


def _requested_at(entry: Mapping[str, Any]) -> float:
    try:
        return float(entry.get("requested_at") or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _deadline(entry: Mapping[str, Any]) -> float:
    try:
        return float(entry.get("ready_deadline") or 900.0)
    except (TypeError, ValueError):
        return 900.0


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def from_context(ctx: ProviderContext) -> TerraformProvider:
    """The kind's factory (see ``providers/registry.py``)."""
    workdir = ctx.state_dir / "terraform" if ctx.state_dir is not None else None
    return TerraformProvider(ctx.api, ctx.target, ctx.params, workdir=workdir)

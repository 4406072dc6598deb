"""A target's Terraform working directory: what burstd writes there and how it shares it.

The workdir holds a root module burstd generates (``main.tf.json``: it calls the operator's
module and passes its ``nodes`` output through), the var file with the units burstd wants
(``burstd.auto.tfvars.json``), the local state, and ``.burstd.lock``. Each apply reads a
copy of the map taken when it starts (``.burstd-apply.tfvars.json``, given with
``-var-file``), so burstd knows exactly which edits it carried.

* The var file is written atomically (a temporary file, fsync, rename), so after a crash it
  holds exactly what burstd last asked for, never half of it.
* burstd holds an exclusive ``flock`` on ``.burstd.lock`` for as long as any terraform of its
  own runs in the workdir, and the child inherits it: a terraform that outlives a killed burstd
  still holds the flock. So whoever gets the flock knows no terraform of burstd's runs there.
* A ``kill -9`` of terraform leaves ``.terraform.tfstate.lock.info`` behind. With the flock
  held, that file is judged stale only if terraform's own lock on the state (an fcntl lock on
  ``terraform.tfstate``) can be taken too, so a terraform an operator started by hand is never
  trampled; a stale file is logged with what it says about its holder and removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from burstd.providers.base import ProviderError

log = logging.getLogger(__name__)

ROOT_FILE = "main.tf.json"
VAR_FILE = "burstd.auto.tfvars.json"
APPLY_VAR_FILE = ".burstd-apply.tfvars.json"
LOCK_FILE = ".burstd.lock"
STATE_FILE = "terraform.tfstate"
TF_LOCK_INFO = ".terraform.tfstate.lock.info"
MODULE_NAME = "pool"


def write_atomically(path: Path, text: str) -> bool:
    """Replace ``path`` by ``text`` in one rename; return whether it changed."""
    with contextlib.suppress(OSError):
        if path.read_text() == text:
            return False
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dirfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)
    return True


def root_module(module: Path, units_variable: str, variables: Mapping[str, Any]) -> str:
    """``main.tf.json``: declares the units variable and each of the target's ``vars`` (values
    come from the var file, so no value is read as a template), calls ``module`` with them,
    and outputs its ``nodes``."""
    names = [units_variable, *sorted(k for k in variables if k != units_variable)]
    body = {
        "//": "Written by burstd: rewritten at every start, do not edit (docs/terraform.md).",
        "variable": {name: {} for name in names},
        "module": {
            MODULE_NAME: {"source": str(module), **{n: f"${{var.{n}}}" for n in names}},
        },
        "output": {"nodes": {"value": f"${{module.{MODULE_NAME}.nodes}}"}},
    }
    return json.dumps(body, indent=2, sort_keys=False) + "\n"


def var_file(units_variable: str, units: Mapping[str, Any], variables: Mapping[str, Any]) -> str:
    values = {k: v for k, v in variables.items() if k != units_variable}
    values[units_variable] = dict(sorted(units.items()))
    return json.dumps(values, indent=2, sort_keys=True) + "\n"


def read_units(path: Path, units_variable: str) -> dict[str, dict[str, Any]]:
    """The units of a var file burstd wrote before (empty if there is none)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise ProviderError(f"{path} is not the JSON burstd writes: {e}") from e
    units = data.get(units_variable) if isinstance(data, dict) else None
    if not isinstance(units, dict):
        return {}
    return {str(k): dict(v) for k, v in units.items() if isinstance(v, dict)}


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines (``#`` comments, blank lines and ``export`` allowed). The
    values are secrets: no error message quotes them."""
    out: dict[str, str] = {}
    try:
        text = path.read_text()
    except OSError as e:
        raise ProviderError(f"cannot read env file {path}: {e.strerror}") from e
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name.replace("_", "a").isalnum():
            raise ProviderError(f"{path}:{n}: expected NAME=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[name] = value
    return out


class WorkdirLock:
    """burstd's flock on a workdir (see the module docstring)."""

    def __init__(self, workdir: Path) -> None:
        self.path = workdir / LOCK_FILE
        self.fd: int | None = None

    @contextlib.asynccontextmanager
    async def held(self, within: float, poll: float = 0.2) -> AsyncIterator[int]:
        """Hold the flock (waiting up to ``within`` seconds without blocking the loop); yields the
        descriptor, for the terraform child to inherit."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + within
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise ProviderError(
                            f"{self.path.parent} is busy: another terraform started by burstd "
                            f"still runs there after {within:g}s"
                        ) from None
                    await asyncio.sleep(poll)
            self.fd = fd
            try:
                yield fd
            finally:
                self.fd = None
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def recover_stale_lock(workdir: Path) -> dict[str, Any] | None:
    """Remove a state lock left by a terraform that died. Call with the workdir's flock held.

    Returns what the stale lock said (its holder's ID, operation, who, when), or ``None`` if
    there was none. Raises ``ProviderError`` (retryable) if a terraform that burstd did not
    start holds the state."""
    info_path = workdir / TF_LOCK_INFO
    try:
        raw = info_path.read_text()
    except FileNotFoundError:
        return None
    state = workdir / STATE_FILE
    if state.exists():
        fd = os.open(state, os.O_RDWR)
        try:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise ProviderError(
                    f"the state in {workdir} is locked by a terraform burstd did not start; "
                    "waiting for it"
                ) from None
            fcntl.lockf(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    try:
        info = json.loads(raw)
    except ValueError:
        info = {}
    if not isinstance(info, dict):
        info = {}
    info_path.unlink(missing_ok=True)
    return {k: info.get(k) for k in ("ID", "Operation", "Who", "Version", "Created")}

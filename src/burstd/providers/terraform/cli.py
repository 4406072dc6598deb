"""A thin async wrapper over the terraform (or OpenTofu) command line.

Why not python-terraform, the library users name first: it is synchronous (every call would
block the event loop, or sit in a thread that cannot be interrupted cleanly), it reads a
command's output only once the command has ended (no ``-json`` progress), and its ``destroy``
passes ``-force``, which terraform 0.15 and later reject. burstd needs four commands (``init``,
``apply``, ``output``, ``version``) run as asyncio subprocesses that stream ``-json`` lines and
that stop cleanly when cancelled: SIGINT (terraform then finishes the operations it started,
saves the state and releases its lock), a wait, and SIGKILL only if that wait runs out.

Every text that leaves this module (errors, progress) has gone through a ``Redactor``, so a
credential the operator named never reaches a log line, an error message or ``explain``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from burstd.providers.base import ProviderError

log = logging.getLogger(__name__)

STOP_GRACE_S = 60.0
"""How long an interrupted terraform may take to finish what it started and save its state."""

_KEY = re.compile(r'\["((?:[^"\\]|\\.)*)"\]')


class TerraformError(ProviderError):
    """terraform failed; the message is its own diagnostics (redacted)."""


class Redactor:
    """Replaces each secret value in a text by ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is hidden whole. Very short
        # values would blank out ordinary words and hide nothing worth hiding.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def find_binary(given: str | None = None) -> str:
    """The terraform or tofu executable: ``given``, else ``$BURSTD_TERRAFORM``, else
    ``terraform`` or ``tofu`` on PATH, else the newest OpenTofu that ``scripts/tofu build``
    cached under ``~/.cache/burstd/tofu/``. Raises ``ProviderError`` if there is none."""
    for name in (given, os.environ.get("BURSTD_TERRAFORM"), "terraform", "tofu"):
        if not name:
            continue
        path = shutil.which(name)
        if path is not None:
            return path
        if name in (given, os.environ.get("BURSTD_TERRAFORM")):
            raise ProviderError(f"terraform binary {name!r} is not an executable")
    cache = Path(os.environ.get("BURSTD_CACHE") or Path.home() / ".cache" / "burstd") / "tofu"
    built = sorted(cache.glob("*/tofu"), key=lambda p: p.stat().st_mtime)
    if built and os.access(built[-1], os.X_OK):
        return str(built[-1])
    raise ProviderError(
        "no terraform or tofu executable: put one on PATH, set BURSTD_TERRAFORM, or run "
        "scripts/tofu build"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostic:
    """One error or warning terraform reported; ``key`` is the ``for_each`` key of the
    resource it concerns, when it names one."""

    severity: str
    summary: str
    detail: str = ""
    address: str = ""
    key: str | None = None

    def __str__(self) -> str:
        where = f"{self.address}: " if self.address else ""
        detail = " ".join(self.detail.split())
        return f"{where}{self.summary}" + (f": {detail}" if detail else "")


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyResult:
    """How one ``apply`` ended. ``completed`` are the ``for_each`` keys whose resources
    terraform finished changing."""

    returncode: int
    diagnostics: tuple[Diagnostic, ...] = ()
    completed: frozenset[str] = frozenset()
    stderr: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "error")

    def message(self) -> str:
        """The errors as one line (terraform's own words), for a unit's failure reason."""
        errors = [str(d) for d in self.errors]
        if not errors and self.stderr.strip():
            errors = [" ".join(self.stderr.split())[-500:]]
        return "; ".join(errors) or f"terraform exited with status {self.returncode}"


def resource_key(address: str) -> str | None:
    """The ``for_each`` key of the last indexed step of a resource address:
    ``module.pool.terraform_data.node["u-1"]`` → ``u-1``."""
    found = _KEY.findall(address)
    if not found:
        return None
    try:
        key: str = json.loads(f'"{found[-1]}"')
    except ValueError:
        return None
    return key


@dataclass(slots=True)
class _Progress:
    """What one ``-json`` stream said so far."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    completed: set[str] = field(default_factory=set)


class Terraform:
    """One workdir's terraform. ``env`` is the whole environment of the child; ``hold`` is
    a file descriptor the child inherits (burstd's flock on the workdir, so that a terraform
    that outlives burstd still holds it)."""

    def __init__(
        self,
        binary: str,
        workdir: Path,
        env: Mapping[str, str],
        redact: Callable[[str], str],
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.env = dict(env)
        self.redact = redact

    async def _start(self, args: Sequence[str], hold: int | None) -> asyncio.subprocess.Process:
        try:
            return await asyncio.create_subprocess_exec(
                self.binary,
                f"-chdir={self.workdir}",
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.env,
                pass_fds=(hold,) if hold is not None else (),
            )
        except OSError as e:
            raise TerraformError(f"cannot run {self.binary}: {e}") from e

    async def run(
        self,
        args: Sequence[str],
        *,
        within: float,
        hold: int | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> tuple[int, str, str]:
        """Run ``terraform args`` to its end and return (status, stdout, stderr).

        ``on_line`` sees each stdout line as it comes. Past ``within`` seconds, or when the calling
        task is cancelled, terraform gets SIGINT and is waited for (SIGKILL after
        ``STOP_GRACE_S``); a timeout then raises ``TerraformError``, a cancellation goes on.
        """
        proc = await self._start(args, hold)
        out: list[str] = []
        err = bytearray()
        assert proc.stdout is not None
        assert proc.stderr is not None
        stdout, stderr = proc.stdout, proc.stderr

        async def read_out() -> None:
            async for raw in stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                out.append(line)
                if on_line is not None:
                    on_line(line)

        async def read_err() -> None:
            err.extend(await stderr.read())

        async def drain() -> int:
            await asyncio.gather(read_out(), read_err())
            return await proc.wait()

        # The pipes are read to their end whatever happens: a terraform that cannot write its
        # output would never finish stopping.
        job = asyncio.ensure_future(drain())
        try:
            code = await asyncio.wait_for(asyncio.shield(job), within)
        except TimeoutError:
            await self._stop(proc, job, args[0], "timed out")
            raise TerraformError(
                f"terraform {args[0]} did not finish within {within:g}s; interrupted"
            ) from None
        except asyncio.CancelledError:
            await self._stop(proc, job, args[0], "cancelled")
            raise
        return code, "\n".join(out), self.redact(err.decode(errors="replace"))

    async def _stop(
        self, proc: asyncio.subprocess.Process, job: asyncio.Future[int], command: str, why: str
    ) -> None:
        """SIGINT, then wait, even through another cancellation: terraform finishes the
        operations in progress, saves its state and unlocks it. SIGKILL only past
        ``STOP_GRACE_S``."""
        if job.done():
            return
        log.warning(
            "terraform %s %s: interrupting it (SIGINT) and waiting for it to save its state",
            command,
            why,
            extra={"event": "terraform_interrupt", "workdir": str(self.workdir), "why": why},
        )
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE_S
        killed = False
        while not job.done():
            try:
                await asyncio.wait_for(asyncio.shield(job), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                if killed:
                    break
                log.error(
                    "terraform %s did not stop within %.0fs of SIGINT; killing it",
                    command,
                    STOP_GRACE_S,
                    extra={"event": "terraform_killed", "workdir": str(self.workdir)},
                )
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                killed = True
                deadline = time.monotonic() + 10.0
            except asyncio.CancelledError:
                continue
            except Exception:
                break
        if not job.done():
            job.cancel()
        with contextlib.suppress(BaseException):
            await job

    # Commands -----------------------------------------------------------------------------

    async def init(self, *, within: float, hold: int | None) -> None:
        code, out, err = await self.run(
            ["init", "-input=false", "-no-color"], within=within, hold=hold
        )
        if code != 0:
            text = self.redact(err.strip() or out.strip())
            raise TerraformError(f"terraform init failed: {' '.join(text.split())[-800:]}")

    async def apply(
        self,
        *,
        var_file: str,
        lock_timeout: float,
        parallelism: int,
        within: float,
        hold: int | None,
    ) -> ApplyResult:
        """``apply -auto-approve -input=false -json``; errors come back in the result (only a
        timeout raises), each diagnostic also logged with the unit it concerns."""
        progress = _Progress()
        started = time.monotonic()
        code, _, err = await self.run(
            [
                "apply",
                "-auto-approve",
                "-input=false",
                "-json",
                f"-var-file={var_file}",
                f"-lock-timeout={max(0, round(lock_timeout))}s",
                f"-parallelism={parallelism}",
            ],
            within=within,
            hold=hold,
            on_line=lambda line: self._note(line, progress),
        )
        return ApplyResult(
            returncode=code,
            diagnostics=tuple(progress.diagnostics),
            completed=frozenset(progress.completed),
            stderr=err,
            seconds=time.monotonic() - started,
        )

    def _note(self, line: str, progress: _Progress) -> None:
        try:
            msg: Any = json.loads(line)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        kind = msg.get("type")
        text = self.redact(str(msg.get("@message", "")))
        if kind == "diagnostic":
            d = msg.get("diagnostic") or {}
            address = str(d.get("address") or "")
            diag = Diagnostic(
                severity=str(d.get("severity") or msg.get("@level") or "error"),
                summary=self.redact(str(d.get("summary") or text)),
                detail=self.redact(str(d.get("detail") or "")),
                address=address,
                key=resource_key(address) if address else None,
            )
            progress.diagnostics.append(diag)
            level = logging.ERROR if diag.severity == "error" else logging.WARNING
            log.log(
                level,
                "terraform: %s",
                diag,
                extra={
                    "event": "terraform_diagnostic",
                    "workdir": str(self.workdir),
                    "unit": diag.key,
                    "severity": diag.severity,
                },
            )
            return
        hook = msg.get("hook") or {}
        key = (hook.get("resource") or {}).get("resource_key")
        key = str(key) if key is not None else None
        if kind == "apply_complete" and key is not None:
            progress.completed.add(key)
        if kind in ("apply_start", "apply_complete", "apply_errored", "change_summary"):
            log.info(
                "terraform: %s",
                text,
                extra={
                    "event": "terraform_progress",
                    "workdir": str(self.workdir),
                    "unit": key,
                    "kind": kind,
                },
            )

    async def outputs(self, *, within: float, hold: int | None) -> dict[str, Any]:
        """``output -json`` as ``{name: value}`` (empty when there is no state yet)."""
        code, out, err = await self.run(["output", "-json"], within=within, hold=hold)
        if code != 0:
            raise TerraformError(f"terraform output failed: {' '.join(err.split())[-500:]}")
        # OpenTofu prints CLI configuration warnings on stdout, before the JSON.
        lines = out.splitlines()
        start = next((i for i, line in enumerate(lines) if line.startswith("{")), len(lines))
        try:
            data = json.loads("\n".join(lines[start:]) or "{}")
        except ValueError as e:
            raise TerraformError(f"terraform output -json printed no JSON: {e}") from e
        if not isinstance(data, dict):
            return {}
        return {str(k): (v or {}).get("value") for k, v in data.items() if isinstance(v, dict)}

"""Benchmark the Terraform provider: one apply for 1, 8 and 32 units with the kwok-pool module.

For each size N, a fresh workdir and a fresh ``TerraformProvider``; N ``create`` calls start
together (as one planner pass starts them), so they ride on one apply. Measured:

* **apply**: wall time of the ``terraform apply`` process alone (spawn to exit), as the
  provider's ``terraform_applied`` log line reports it;
* **create**: wall time from the N calls to the last one returning (every node Ready with its
  GPUs), and the same for the N deletes;
* **burstd's overhead** around the apply: create time minus apply time. It covers the
  coalescing window, writing the var files, taking the workdir's flock, ``output -json`` after
  the apply, and the readiness polls until kwok marks the nodes Ready (``ready_delay`` 0s,
  ``poll_interval`` 0.1 s).

``init`` runs once per workdir before the timed part (it is a one-off per target).

Usage (the control plane must be up: ``scripts/kube-testenv up``)::

    .venv/bin/python -m bench.terraform_bench --kubeconfig .testenv/kubeconfig \\
        --out bench/results/terraform.md
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from burstd.model.params import with_defaults
from burstd.providers.base import UnitSpec
from burstd.providers.terraform import PARAMS
from burstd.providers.terraform.cli import find_binary
from burstd.providers.terraform.provider import TerraformProvider
from burstd.sources.kube.client import connect

REPO = Path(__file__).resolve().parents[1]
MODULE = REPO / "deploy" / "terraform" / "kwok-pool"


class _Applies(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "event", None) == "terraform_applied":
            self.seconds.append(float(getattr(record, "seconds", 0.0)))


async def one(api: Any, kubeconfig: Path, binary: str, n: int, root: Path) -> dict[str, float]:
    workdir = root / f"n{n}"
    target = f"tfbench{n}"
    params = with_defaults(
        PARAMS,
        {
            "module": str(MODULE),
            "workdir": str(workdir),
            "binary": binary,
            "poll_interval": 0.1,
            "parallelism": 10,
            "vars": {
                "kubeconfig": str(kubeconfig),
                "kubectl": shutil.which("kubectl") or "kubectl",
                "ready_delay": "0s",
            },
        },
    )
    provider = TerraformProvider(api, target, params)
    await provider.list_units()  # init, outside the timed part
    handler = _Applies()
    logger = logging.getLogger("burstd.providers.terraform")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        specs = [
            UnitSpec(id=f"{target}-{i}", target=target, rule="bench", gpus=4, ready_deadline=600)
            for i in range(n)
        ]
        started = time.monotonic()
        await asyncio.gather(*(provider.create(s) for s in specs))
        create = time.monotonic() - started
        applies_up = list(handler.seconds)
        started = time.monotonic()
        await asyncio.gather(*(provider.delete(s.id, None) for s in specs))
        delete = time.monotonic() - started
        applies_down = handler.seconds[len(applies_up) :]
    finally:
        logging.getLogger("burstd.providers.terraform").removeHandler(handler)
    return {
        "n": n,
        "applies_up": len(applies_up),
        "apply_up": sum(applies_up),
        "create": create,
        "overhead_up": create - sum(applies_up),
        "applies_down": len(applies_down),
        "apply_down": sum(applies_down),
        "delete": delete,
        "overhead_down": delete - sum(applies_down),
    }


async def run(
    kubeconfig: Path, binary: str, sizes: list[int], repeat: int
) -> list[dict[str, float]]:
    api = await connect(str(kubeconfig))
    out = []
    try:
        for n in sizes:
            rows = []
            for _ in range(repeat):
                with tempfile.TemporaryDirectory(prefix="tfbench-") as tmp:
                    rows.append(await one(api, kubeconfig, binary, n, Path(tmp)))
            med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
            print(
                f"n={n}: apply {med['apply_up']:.2f}s, create {med['create']:.2f}s "
                f"(overhead {med['overhead_up']:.2f}s); destroy apply {med['apply_down']:.2f}s, "
                f"delete {med['delete']:.2f}s"
            )
            out.append(med)
    finally:
        await api.close()
    return out


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return (
        f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}, Python "
        f"{platform.python_version()}; load average at start {load[0]:.1f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kubeconfig", type=Path, default=REPO / ".testenv" / "kubeconfig")
    ap.add_argument(
        "--binary",
        action="append",
        default=None,
        help="terraform or tofu executable; repeat for several (default: what burstd finds)",
    )
    ap.add_argument("--sizes", default="1,8,32")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    where = machine()
    sizes = [int(size) for size in args.sizes.split(",")]
    tables = []
    for given in args.binary or [None]:
        binary = find_binary(given)
        said = subprocess.run([binary, "version"], capture_output=True, text=True, check=False)
        # OpenTofu may print CLI configuration warnings first.
        version = next(
            (line for line in said.stdout.splitlines() if line.startswith(("Terraform", "Open"))),
            binary,
        )
        print(version)
        tables.append(
            (version, asyncio.run(run(args.kubeconfig.absolute(), binary, sizes, args.repeat)))
        )
    if args.out is None:
        return
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# The Terraform provider: one apply for 1, 8 and 32 units",
        "",
        "Measured with `bench/terraform_bench.py` (the kwok-pool module, `-parallelism=10`) "
        "against `scripts/kube-testenv`, on the same machine.",
        "",
        f"**Machine:** {where}. **Date:** {now}. Medians of {args.repeat} runs; the machine "
        "is shared with other work, so take the numbers as orders of magnitude.",
    ]
    for version, rows in tables:
        lines += [
            "",
            f"## {version}",
            "",
            "| units | applies | apply (s) | create, all Ready (s) | burstd overhead (s) "
            "| destroy apply (s) | delete, all gone (s) |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in rows:
            lines.append(
                f"| {r['n']:.0f} | {r['applies_up']:.0f} | {r['apply_up']:.2f} "
                f"| {r['create']:.2f} | {r['overhead_up']:.2f} | {r['apply_down']:.2f} "
                f"| {r['delete']:.2f} |"
            )
    lines += [
        "",
        "*apply*: the `terraform apply` process alone. *create*: from the N `create` calls to "
        "the last returning (nodes Ready with GPUs). *overhead*: create - apply: the 50 ms "
        "coalescing window, var files, flock, `output -json`, readiness polls (0.1 s) until "
        "kwok marks the nodes Ready. *delete*: the destroy apply, then per unit a check that "
        "its Node is gone. Each kwok-pool create runs one `kubectl apply` in a local-exec "
        "provisioner, so the apply grows with N / parallelism kubectl runs.",
        "",
    ]
    args.out.write_text("\n".join(lines))


if __name__ == "__main__":
    main()

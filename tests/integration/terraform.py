"""What the Terraform tests share: the CLIs to run, the kwok-pool module's params, reading a
workdir back.

The tests run the real terraform CLI (and OpenTofu, built by ``scripts/tofu``) on the
rehearsal module ``deploy/terraform/kwok-pool``, whose provisioners make kwok Nodes in the test
control plane with kubectl. Nothing is downloaded: the module uses only the built-in
``terraform_data`` resource.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from burstd.model.params import with_defaults
from burstd.providers.terraform import PARAMS
from burstd.providers.terraform.cli import find_binary
from tests.integration.kube import REPO

MODULE = REPO / "deploy" / "terraform" / "kwok-pool"
TOFU = REPO / "scripts" / "tofu"
CLIS = ("terraform", "tofu")


@functools.cache
def kubectl() -> str:
    """kubectl for the module's provisioners: ``$BURSTD_KUBECTL``, PATH, the test
    environment's cache, else ``scripts/kube-testenv kubectl`` (which builds it)."""
    given = os.environ.get("BURSTD_KUBECTL") or shutil.which("kubectl")
    if given:
        return given
    cache = os.environ.get("BURSTD_CACHE") or str(Path.home() / ".cache" / "burstd")
    built = sorted(glob.glob(f"{cache}/kube/*/bin/kubectl"))
    return built[-1] if built else f"{REPO / 'scripts' / 'kube-testenv'} kubectl"


@functools.cache
def binary(cli: str) -> str:
    """The executable of ``cli``: ``terraform`` is what burstd finds by default (terraform
    on PATH, else the cached OpenTofu); ``tofu`` is OpenTofu, built on first use."""
    if cli == "terraform":
        return find_binary()
    out = subprocess.run(
        [str(TOFU), "build"], capture_output=True, text=True, timeout=3 * 3600, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"scripts/tofu build failed:\n{out.stderr[-3000:]}")
    return out.stdout.strip().splitlines()[-1]


OFFLINE_CLI_CONFIG = """\
# No provider is ever downloaded in the tests: every install must come from this (empty)
# mirror. The kwok-pool module needs none (terraform_data is built in).
provider_installation {
  filesystem_mirror {
    path = "/nonexistent/burstd-tests-provider-mirror"
  }
}
"""


def offline_cli_config(directory: Path) -> Path:
    """A CLI configuration that forbids provider downloads (for ``TF_CLI_CONFIG_FILE``)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "offline.tfrc"
    path.write_text(OFFLINE_CLI_CONFIG)
    return path


def params(
    kubeconfig: Path, workdir: Path, cli: str = "terraform", **module_vars: Any
) -> dict[str, Any]:
    """Params of a target on the kwok-pool module, with defaults filled in."""
    return with_defaults(PARAMS, given(kubeconfig, workdir, cli, **module_vars))


def given(
    kubeconfig: Path, workdir: Path, cli: str = "terraform", **module_vars: Any
) -> dict[str, Any]:
    """Params of a target on the kwok-pool module, as a rules file gives them."""
    config = offline_cli_config(workdir.parent / f"{workdir.name}-cli")
    return {
        "env": {"TF_CLI_CONFIG_FILE": str(config)},
        "module": str(MODULE),
        "workdir": str(workdir),
        "binary": binary(cli),
        "poll_interval": 0.1,
        "delete_timeout": 20.0,
        "lock_timeout": 30.0,
        "vars": {
            "kubeconfig": str(kubeconfig),
            "kubectl": kubectl(),
            "labels": {"burstd-test": workdir.name},
            **module_vars,
        },
    }


def wanted(workdir: Path, variable: str = "burstd_units") -> set[str]:
    """The unit keys of the var file."""
    data = json.loads((workdir / "burstd.auto.tfvars.json").read_text())
    return set(data.get(variable) or {})


def in_state(workdir: Path) -> set[str]:
    """The for_each keys of every resource instance in the state file (none while terraform
    is rewriting it: the local backend writes it in place)."""
    path = workdir / "terraform.tfstate"
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return set()
    return {
        str(instance["index_key"])
        for resource in state.get("resources") or []
        for instance in resource.get("instances") or []
        if "index_key" in instance
    }

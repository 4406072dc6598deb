"""The Terraform provider's kind: its ``params`` and the node one of its units brings.

The provider itself (``provider.py``) runs the terraform CLI and talks to the API server; this
module stays light so the rules loader and the simulator can read the kind without either.
See ``provider.py`` for what a Terraform unit is and docs/terraform.md for the module contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from burstd.model import NodeTemplate
from burstd.model.params import Param, ParamSchema, ParamType
from burstd.providers.base import ProviderKind, UnitShape, unit_labels
from burstd.providers.node_params import TEXT, taints, taints_param

PARAMS: ParamSchema = {
    "module": Param(
        type=ParamType.STRING,
        doc="directory of the Terraform module that makes the nodes (docs/terraform.md says "
        "what it must accept and output); a relative path is relative to burstd's working "
        "directory",
        required=True,
    ),
    "workdir": Param(
        type=ParamType.STRING,
        doc="where burstd keeps the root module, the var file, the state and its lock "
        "(default: the target's folder under burstd's state directory)",
    ),
    "units_variable": Param(
        type=ParamType.STRING,
        doc="the module's for_each map variable: unit id => {gpus, gpu_model, mig, labels}",
        default="burstd_units",
    ),
    "vars": Param(
        type=ParamType.MAP,
        doc="the module's other input variables, passed as given",
        item=Param(type=ParamType.ANY, doc="a value"),
    ),
    "env": Param(
        type=ParamType.MAP,
        doc="environment variables for terraform (not for secrets: see env_files)",
        item=TEXT,
    ),
    "env_files": Param(
        type=ParamType.LIST,
        doc="files of NAME=value lines added to terraform's environment (credentials); "
        "their values never appear in a log line, an error or the status",
        item=TEXT,
    ),
    "secret_env": Param(
        type=ParamType.LIST,
        doc="names of burstd's own environment variables that hold secrets (terraform "
        "inherits them; their values are redacted from everything burstd says)",
        item=TEXT,
    ),
    "binary": Param(
        type=ParamType.STRING,
        doc="terraform or tofu executable (default: $BURSTD_TERRAFORM, terraform or tofu on "
        "PATH, then the OpenTofu that scripts/tofu builds)",
    ),
    "lock_timeout": Param(
        type=ParamType.DURATION,
        doc="how long terraform waits for the state lock (-lock-timeout)",
        default=60.0,
        minimum=0.0,
    ),
    "apply_timeout": Param(
        type=ParamType.DURATION,
        doc="longest one apply may run before it is interrupted (SIGINT) and fails",
        default=1800.0,
        minimum=1.0,
    ),
    "init_timeout": Param(
        type=ParamType.DURATION,
        doc="longest terraform init may run",
        default=600.0,
        minimum=1.0,
    ),
    "parallelism": Param(
        type=ParamType.INTEGER,
        doc="resources terraform changes at once (-parallelism)",
        default=10,
        minimum=1,
    ),
    "poll_interval": Param(
        type=ParamType.DURATION,
        doc="time between checks that a unit's node is Ready with its GPUs allocatable",
        default=1.0,
        minimum=0.01,
    ),
    "delete_timeout": Param(
        type=ParamType.DURATION,
        doc="how long a release waits, after its apply, for the node to disappear before "
        "deleting the stale Node object itself",
        default=120.0,
        minimum=0.01,
    ),
    "node_labels": Param(
        type=ParamType.MAP,
        doc="labels the module puts on every node besides burstd's (for the planner: pods "
        "selecting them can land on a unit)",
        item=TEXT,
    ),
    "node_taints": taints_param(
        "taints the module puts on every node (for the planner: only pods tolerating them "
        "make the target burst)"
    ),
}


def node(shape: UnitShape, params: Mapping[str, Any]) -> NodeTemplate:
    """The node the module says it makes (``node_labels``, ``node_taints``) with burstd's
    labels; resources other than GPUs are the module's business and left unknown."""
    labels = {str(k): str(v) for k, v in (params.get("node_labels") or {}).items()}
    labels.update(unit_labels(shape))
    return NodeTemplate(labels=labels, taints=taints(params.get("node_taints")))


KIND = ProviderKind(
    name="terraform",
    doc="cloud GPU nodes through a Terraform module, one unit per key of its for_each map",
    params=PARAMS,
    node=node,
    implementation="burstd.providers.terraform.provider:from_context",
)

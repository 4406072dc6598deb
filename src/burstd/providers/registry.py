"""Every kind of provider burstd knows, keyed by the name a rules file gives as ``provider:``.

A kind is what the rest of burstd needs of a provider before any unit exists:

* ``params`` — the settings it accepts, checked by the rules loader (so ``burstd validate``
  reports a wrong one by file, line and column) and handed to it with defaults filled in;
* ``node`` — the node one of its units would bring (labels, taints, resources), so the planner
  bursts only for pods that could land there, as the Cluster Autoscaler checks a node group's
  template node;
* ``implementation`` — where the provider is, built for one target from a
  ``ProviderContext``.

The daemon finds providers here by name and nowhere else; a new provider is a module (or a
folder) declaring a ``KIND`` and one line in ``KINDS``. Each kind's module is imported at once
and stays light (no Kubernetes client, no subprocess); ``build`` imports the implementation,
so ``burstd validate`` and the simulator never load what only the daemon uses
(``implementation`` is imported by name when a daemon first builds the kind).
"""

from __future__ import annotations

from collections.abc import Mapping

from burstd.providers import interlink, kwok, liqo
from burstd.providers.base import ProviderFactory, ProviderKind, bare_node


def _undeclared(name: str, doc: str) -> ProviderKind:
    return ProviderKind(name=name, doc=doc, params=None, node=bare_node)


KINDS: Mapping[str, ProviderKind] = {
    kind.name: kind
    for kind in (
        liqo.KIND,
        _undeclared("terraform", "cloud GPU nodes through a Terraform module"),
        interlink.KIND,
        kwok.KIND,
    )
}
"""Every provider kind, by the name rules files use."""


def factories() -> dict[str, ProviderFactory]:
    """The kinds this daemon can run, by name: what ``App`` builds targets' providers from."""
    return {name: kind.build for name, kind in KINDS.items() if kind.implementation is not None}

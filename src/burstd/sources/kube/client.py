"""One place that turns a kubeconfig (or the pod's service account) into an API client."""

from __future__ import annotations

import os
from typing import Any

from kubernetes_asyncio import client, config

# Two watches hold a connection each for as long as they run; provider calls for many units
# run at once beside them.
POOL_SIZE = 32


def _default_kubeconfig_exists() -> bool:
    return os.path.exists(os.path.expanduser(config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION))


async def connect(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """An ``ApiClient`` for ``kubeconfig`` (default: ``$KUBECONFIG`` or ``~/.kube/config``),
    or for the in-cluster service account when there is no kubeconfig at all. The caller
    closes it (``await api.close()``)."""
    cfg: Any = client.Configuration()
    if kubeconfig is not None or _default_kubeconfig_exists():
        await config.load_kube_config(
            config_file=kubeconfig,
            context=context,
            client_configuration=cfg,
            persist_config=False,
        )
    else:
        incluster: Any = config.load_incluster_config
        incluster(client_configuration=cfg)
    cfg.connection_pool_maxsize = POOL_SIZE
    return client.ApiClient(configuration=cfg)

"""One place that turns a kubeconfig (or the pod's service account) into an API client.

A kubeconfig the user names is read here first, bounded like every input (a regular file of at
most ``KUBECONFIG_MAX_BYTES``, UTF-8, YAML), and checked for what connecting needs: a current
context that names a cluster with a server and a user. Anything wrong is a ``KubeconfigError``
naming the file (and line:column, or the field), never the client library's traceback.
"""

from __future__ import annotations

import os
from typing import Any

from kubernetes_asyncio import client, config
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from burstd.inputs import KUBECONFIG_MAX_BYTES, InputError, read_text

# Two watches hold a connection each for as long as they run; provider calls for many units
# run at once beside them.
POOL_SIZE = 32


class KubeconfigError(Exception):
    """No API client can be made: the message names the kubeconfig and what is wrong."""


def _default_location() -> str:
    return os.path.expanduser(config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION)


def _default_kubeconfig_exists() -> bool:
    return any(os.path.exists(p) for p in _default_location().split(os.pathsep) if p)


def _named(items: Any, name: str, field: str, path: str) -> dict[str, Any]:
    """The ``field`` (cluster, user or context) entry of list ``items`` called ``name``."""
    if not isinstance(items, list):
        raise KubeconfigError(f"{path}: {field}s: expected a list of named {field}s")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise KubeconfigError(f"{path}: {field}s[{i}]: expected a mapping")
        if item.get("name") == name:
            body = item.get(field)
            if not isinstance(body, dict):
                raise KubeconfigError(f"{path}: {field}s[{i}].{field}: expected a mapping")
            return body
    raise KubeconfigError(f"{path}: {field}s: no {field} named {name!r}")


def _read(path: str) -> dict[str, Any]:
    """The kubeconfig at ``path`` as a mapping (``KubeconfigError`` if it is not one; an
    empty file too, even in a merge, which the client library cannot read)."""
    try:
        text = read_text(path, limit=KUBECONFIG_MAX_BYTES, what="kubeconfig")
    except InputError as e:
        raise KubeconfigError(str(e)) from None
    try:
        doc = YAML(typ="safe").load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path
        raise KubeconfigError(f"{where}: invalid YAML: {e.problem or e.context}") from None
    except Exception as e:
        # ruamel raises more than its own errors for odd input; none of it is a traceback here.
        raise KubeconfigError(f"{path}: invalid YAML: {e}") from None
    if doc is None:
        raise KubeconfigError(f"{path}: the kubeconfig is empty")
    if not isinstance(doc, dict):
        raise KubeconfigError(
            f"{path}: expected a mapping with clusters, contexts and users, "
            f"got {type(doc).__name__}"
        )
    return doc


def check_kubeconfig(path: str, context: str | None = None) -> None:
    """Raise ``KubeconfigError`` unless ``path`` is a kubeconfig that names a usable context
    (``context``, or its ``current-context``). Reads no network."""
    doc = _read(path)
    name = context if context is not None else doc.get("current-context")
    if not isinstance(name, str) or not name:
        raise KubeconfigError(f"{path}: current-context: missing (and no context was given)")
    ctx = _named(doc.get("contexts"), name, "context", path)
    cluster = _named(doc.get("clusters"), str(ctx.get("cluster")), "cluster", path)
    if not isinstance(cluster.get("server"), str) or not cluster["server"]:
        raise KubeconfigError(f"{path}: clusters[{ctx.get('cluster')!r}].server: missing")
    if "user" in ctx:
        _named(doc.get("users"), str(ctx.get("user")), "user", path)


def _check_all(kubeconfig: str | None, location: str, context: str | None) -> None:
    if kubeconfig is not None:
        check_kubeconfig(kubeconfig, context)
        return
    paths = [p for p in location.split(os.pathsep) if p and os.path.exists(p)]
    if len(paths) == 1:
        check_kubeconfig(paths[0], context)
        return
    # $KUBECONFIG lists files that are merged: each must be readable, and only the merge can
    # be checked whole (by the client library, in ``connect``).
    for one in paths:
        _read(one)


async def connect(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """An ``ApiClient`` for ``kubeconfig`` (default: ``$KUBECONFIG`` or ``~/.kube/config``),
    or for the in-cluster service account when there is no kubeconfig at all. The caller
    closes it (``await api.close()``). Raises ``KubeconfigError``."""
    cfg: Any = client.Configuration()
    if kubeconfig is not None or _default_kubeconfig_exists():
        location = kubeconfig if kubeconfig is not None else _default_location()
        _check_all(kubeconfig, location, context)
        try:
            await config.load_kube_config(
                config_file=kubeconfig,
                context=context,
                client_configuration=cfg,
                persist_config=False,
            )
        except Exception as e:
            # The client library's ConfigException, or worse (a TypeError for odd shapes).
            raise KubeconfigError(f"{location}: cannot use the kubeconfig: {e}") from None
    else:
        incluster: Any = config.load_incluster_config
        try:
            incluster(client_configuration=cfg)
        except Exception as e:
            where = _default_location() or "~/.kube/config"
            raise KubeconfigError(
                f"no kubeconfig ({where} does not exist; pass --kubeconfig) "
                f"and not running in a pod ({e})"
            ) from None
    cfg.connection_pool_maxsize = POOL_SIZE
    return client.ApiClient(configuration=cfg)

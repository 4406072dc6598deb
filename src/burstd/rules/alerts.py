"""The ``alerts:`` section of a rules file: receivers, routes and delivery settings.

Kept apart from ``loader.py`` because it is its own small language (receivers by kind, routes
naming them), but it reports through the same machinery, so a mistake here reads exactly like
one anywhere else: ``file:line:column: alerts.receivers.ops.url: message``.

Secrets never appear in the file: a Slack webhook URL and a webhook's signing secret are read
from files named here (relative paths are relative to the rules file), which must exist when
the rules are loaded. The daemon reads them when it starts its senders.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from burstd.model.alerts import (
    AlertKind,
    AlertsConfig,
    Receiver,
    Route,
    SlackReceiver,
    WebhookReceiver,
)

if TYPE_CHECKING:
    from burstd.rules.loader import _Loader, _Node

_ALERTS_KEYS = (
    "receivers",
    "routes",
    "dedupe_window",
    "attempts",
    "backoff",
    "max_backoff",
    "queue_size",
    "dead_letter",
    "drain_warning",
)
_RECEIVER_KINDS = ("slack", "webhook")
_SLACK_KEYS = ("slack", "url_file", "timeout")
_WEBHOOK_KEYS = ("webhook", "url", "secret_file", "timeout")
_ROUTE_KEYS = ("receivers", "kinds", "rules")
_KINDS = tuple(str(k) for k in AlertKind)


def read_alerts(ld: _Loader, node: _Node) -> AlertsConfig:
    """The section at ``node``; problems are reported on ``ld`` and the defaults kept."""
    from burstd.rules.loader import _Bad  # the loader imports this module lazily

    f = ld.fields(node, _ALERTS_KEYS, section=True)
    base = AlertsConfig()
    receivers: dict[str, Receiver] = f.take("receivers", lambda n: _receivers(ld, n), {})
    routes: tuple[Route, ...] = ()
    routes_node = f.get("routes")
    if routes_node is not None:
        with contextlib.suppress(_Bad):
            rnode = f.get("receivers")
            written = tuple(
                k
                for k in (rnode.value if rnode and isinstance(rnode.value, dict) else {})
                if isinstance(k, str)
            )
            routes = _routes(ld, routes_node, receivers, written)
    backoff = f.take("backoff", lambda n: ld.duration(n, positive=True), base.backoff)
    max_backoff = f.take("max_backoff", lambda n: ld.duration(n, positive=True), base.max_backoff)
    config = AlertsConfig(
        receivers=receivers,
        routes=routes,
        dedupe_window=f.take("dedupe_window", ld.duration, base.dedupe_window),
        attempts=f.take("attempts", lambda n: ld.integer(n, 1), base.attempts),
        backoff=backoff,
        max_backoff=max_backoff,
        queue_size=f.take("queue_size", lambda n: ld.integer(n, 1), base.queue_size),
        dead_letter=f.take("dead_letter", lambda n: _path(ld, n, must_exist=False), None),
        drain_warning=f.take(
            "drain_warning", lambda n: ld.duration(n, positive=True), base.drain_warning
        ),
    )
    if receivers and not routes and routes_node is None:
        ld.r.add(
            node.key_at,
            node.path,
            "receivers are defined but no route sends anything to them",
            "add routes: [{receivers: [name]}] to send every event",
        )
    return config


def _receivers(ld: _Loader, node: _Node) -> dict[str, Receiver]:
    from burstd.rules.loader import _NAME, _NAME_RULE, _Bad, _describe

    out: dict[str, Receiver] = {}
    for name, child in ld.entries_of_mapping(node):
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            ld.r.add(
                child.key_at, node.path, f"invalid receiver name {_describe(name)}", _NAME_RULE
            )
            continue
        with contextlib.suppress(_Bad):
            out[name] = _receiver(ld, name, child)
    return out


def _receiver(ld: _Loader, name: str, node: _Node) -> Receiver:
    from burstd.rules.loader import _describe, _suggest

    value = node.value
    if not isinstance(value, dict):
        raise ld.r.bad(node, f"must be a mapping, got {_describe(value)}")
    kinds = [k for k in _RECEIVER_KINDS if k in value]
    if len(kinds) != 1:
        unknown = next((k for k in value if isinstance(k, str) and k not in _WEBHOOK_KEYS), None)
        hint = (
            _suggest(unknown, _RECEIVER_KINDS, "receiver kinds", always_list=True)
            if unknown
            else "write 'slack: {}' or 'webhook: {}' before its settings"
        )
        raise ld.r.bad(
            node,
            "must say its kind with exactly one of 'slack' or 'webhook'"
            + (f", got both {' and '.join(kinds)}" if kinds else ""),
            hint,
        )
    timeout_default = 10.0
    if kinds[0] == "slack":
        f = ld.fields(node, _SLACK_KEYS, ("url_file",), section=False)
        _kind_body(ld, f.get("slack"))
        return SlackReceiver(
            name=name,
            url_file=f.take("url_file", lambda n: _path(ld, n, must_exist=True), Path()),
            timeout=f.take("timeout", lambda n: ld.duration(n, positive=True), timeout_default),
        )
    f = ld.fields(node, _WEBHOOK_KEYS, ("url",), section=False)
    _kind_body(ld, f.get("webhook"))
    return WebhookReceiver(
        name=name,
        url=f.take("url", lambda n: _url(ld, n), ""),
        secret_file=f.take("secret_file", lambda n: _path(ld, n, must_exist=True), None),
        timeout=f.take("timeout", lambda n: ld.duration(n, positive=True), timeout_default),
    )


def _kind_body(ld: _Loader, node: _Node | None) -> None:
    """``slack:`` / ``webhook:`` mark the kind; they take no settings of their own yet."""
    from burstd.rules.loader import _describe

    if node is not None and node.value not in (None, {}):
        ld.r.add(
            node.at,
            node.path,
            f"takes no settings, got {_describe(node.value)}",
            "put the receiver's settings next to it, not under it",
        )


def _url(ld: _Loader, node: _Node) -> str:
    text = ld.string(node)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ld.r.bad(node, "must be an http:// or https:// URL")
    if parts.password:
        raise ld.r.bad(
            node,
            "must not carry a password: the rules file is not a place for secrets",
            "sign with secret_file instead",
        )
    return text


def _path(ld: _Loader, node: _Node, *, must_exist: bool) -> Path:
    text = ld.string(node)
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = Path(ld.r.source).parent / path
    if must_exist and not path.is_file():
        raise ld.r.bad(node, f"no such file: {path}")
    return path


def _routes(
    ld: _Loader, node: _Node, receivers: dict[str, Receiver], written: tuple[str, ...]
) -> tuple[Route, ...]:
    from burstd.rules.loader import _Bad

    ld.list_of(node, " of routes")
    out: list[Route] = []
    for item in ld.items(node):
        with contextlib.suppress(_Bad):
            out.append(_route(ld, item, receivers, written))
    return tuple(out)


def _route(
    ld: _Loader, node: _Node, receivers: dict[str, Receiver], written: tuple[str, ...]
) -> Route:
    from burstd.rules.loader import _suggest

    f = ld.fields(node, _ROUTE_KEYS, ("receivers",), section=False)

    def known_receiver(item: _Node, name: str) -> bool:
        if name in receivers:
            return True
        # A receiver written but wrong in itself was reported already.
        if name not in written:
            hint = _suggest(name, list(written), "receivers")
            ld.r.add(item.at, item.path, f"unknown receiver '{name}'", hint)
        return False

    def known_kind(item: _Node, kind: str) -> bool:
        if kind in _KINDS:
            return True
        ld.r.add(
            item.at, item.path, f"unknown event kind '{kind}'", _suggest(kind, _KINDS, "kinds")
        )
        return False

    def known_rule(item: _Node, rule: str) -> bool:
        if rule in ld.rule_names:
            return True
        ld.r.add(
            item.at,
            item.path,
            f"unknown rule '{rule}'",
            _suggest(rule, list(ld.rule_names), "rules"),
        )
        return False

    return Route(
        receivers=f.take_many("receivers", lambda n: ld.strings(n, known_receiver)),
        kinds=frozenset(
            AlertKind(k) for k in f.take_many("kinds", lambda n: ld.strings(n, known_kind))
        ),
        rules=frozenset(f.take_many("rules", lambda n: ld.strings(n, known_rule))),
    )

"""The ``alerts:`` section of a rules file: what it reads, and its mistakes reported as
``file:line:column: path: message`` like every other section."""

from __future__ import annotations

from pathlib import Path

import pytest

from burstd.model.alerts import AlertKind, SlackReceiver, WebhookReceiver
from burstd.rules.loader import RulesError, load_rules

HEAD = """\
version: 1
targets:
  donor: {provider: kwok}
rules:
  - name: students
    triggers: [{pending: {gpus: 1}}]
    burst: {ladder: [donor]}
"""


def write(tmp_path: Path, alerts: str) -> Path:
    (tmp_path / "slack.url").write_text("https://chat.invalid/services/T/B/secret\n")
    (tmp_path / "hook.secret").write_text("s3cret\n")
    path = tmp_path / "r.yaml"
    path.write_text(HEAD + alerts)
    return path


def test_a_full_section_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
alerts:
  receivers:
    chat: {slack: {}, url_file: slack.url}
    ops: {webhook: {}, url: "https://ops.invalid/burstd", secret_file: hook.secret, timeout: 3s}
  routes:
    - receivers: [chat]
    - receivers: [ops]
      kinds: [unit_failed, target_backoff]
      rules: [students]
  dedupe_window: 10m
  attempts: 3
  backoff: 2s
  queue_size: 50
  dead_letter: dead.jsonl
  drain_warning: 2h
""",
    )
    alerts = load_rules(path).alerts
    assert alerts.receivers["chat"] == SlackReceiver(name="chat", url_file=tmp_path / "slack.url")
    assert alerts.receivers["ops"] == WebhookReceiver(
        name="ops",
        url="https://ops.invalid/burstd",
        secret_file=tmp_path / "hook.secret",
        timeout=3.0,
    )
    assert alerts.routes[1].kinds == {AlertKind.UNIT_FAILED, AlertKind.TARGET_BACKOFF}
    assert alerts.routes[1].rules == {"students"}
    assert (alerts.dedupe_window, alerts.attempts, alerts.backoff) == (600.0, 3, 2.0)
    assert (alerts.queue_size, alerts.drain_warning) == (50, 7200.0)
    assert alerts.dead_letter == tmp_path / "dead.jsonl"


def test_no_section_means_no_receivers(tmp_path: Path) -> None:
    alerts = load_rules(write(tmp_path, "")).alerts
    assert not alerts.receivers
    assert not alerts.routes


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            "alerts:\n  receivers:\n    chat: {slak: {}, url_file: slack.url}\n"
            "  routes: [{receivers: [chat]}]\n",
            [
                "r.yaml:10:11: alerts.receivers.chat: must say its kind with exactly one of "
                "'slack' or 'webhook' (hint: did you mean 'slack'? receiver kinds: slack, webhook)"
            ],
        ),
        (
            "alerts:\n  receivers:\n    chat: {slack: {}, url_file: missing.url}\n"
            "  routes: [{receivers: [chat]}]\n",
            ["r.yaml:10:33: alerts.receivers.chat.url_file: no such file: {dir}/missing.url"],
        ),
        (
            "alerts:\n  receivers:\n    ops: {webhook: {}, url: ftp://x}\n"
            "  routes: [{receivers: [ops]}]\n",
            ["r.yaml:10:29: alerts.receivers.ops.url: must be an http:// or https:// URL"],
        ),
        (
            "alerts:\n  receivers:\n    ops: {webhook: {}, url: 'https://u:pw@x/'}\n"
            "  routes: [{receivers: [ops]}]\n",
            [
                "r.yaml:10:29: alerts.receivers.ops.url: must not carry a password: the rules "
                "file is not a place for secrets (hint: sign with secret_file instead)"
            ],
        ),
        (
            "alerts:\n  receivers:\n    ops: {webhook: {}, url: 'https://x/'}\n"
            "  routes:\n    - receivers: [opz]\n      kinds: [burst_startd]\n"
            "      rules: [student]\n",
            [
                "r.yaml:12:19: alerts.routes[0].receivers[0]: unknown receiver 'opz' "
                "(hint: did you mean 'ops'?)",
                "r.yaml:13:15: alerts.routes[0].kinds[0]: unknown event kind 'burst_startd' "
                "(hint: did you mean 'burst_started'?)",
                "r.yaml:14:15: alerts.routes[0].rules[0]: unknown rule 'student' "
                "(hint: did you mean 'students'?)",
            ],
        ),
        (
            "alerts:\n  receivers:\n    ops: {webhook: {}, url: 'https://x/'}\n",
            [
                "r.yaml:8:1: alerts: receivers are defined but no route sends anything to them "
                "(hint: add routes: [{receivers: [name]}] to send every event)"
            ],
        ),
        (
            "alerts:\n  dedupe_window: soon\n  queue_size: 0\n",
            [
                "r.yaml:9:18: alerts.dedupe_window: invalid duration 'soon': write a number "
                "of seconds or number-unit pairs (d, h, m, s, ms) like 30s, 5m, 1h30m or 500ms",
                "r.yaml:10:15: alerts.queue_size: must be an integer >= 1, got 0",
            ],
        ),
    ],
)
def test_mistakes_are_reported_where_they_are(
    tmp_path: Path, section: str, expected: list[str]
) -> None:
    path = write(tmp_path, section)
    with pytest.raises(RulesError) as err:
        load_rules(path)
    got = [str(p).replace(str(tmp_path), "{dir}") for p in err.value.problems]
    assert [g.replace("{dir}/r.yaml", "r.yaml") for g in got] == expected

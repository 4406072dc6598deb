"""The rules loader: example files load, every mistake is reported where it is, and no input
makes it raise anything but ``RulesError``."""

from __future__ import annotations

import io
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from burstd.rules.loader import Problem, RulesError, load_rules, parse_rules
from burstd.rules.types import (
    Cooldown,
    DrainMode,
    LabelRequirement,
    OldestPendingTrigger,
    PendingTrigger,
    RuleSet,
    ScheduleTrigger,
    UtilizationTrigger,
)

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))

# A complete, valid file to which error cases add one mistake each. Line numbers in the
# expected messages count from the first line of each case's text.
MINIMAL = """\
version: 1
targets:
  cloud:
    provider: terraform
rules:
  - name: r
    triggers: [pending: {}]
    burst: {ladder: [cloud]}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(RulesError) as caught:
        parse_rules(textwrap.dedent(text), "r.yaml")
    return [str(p) for p in caught.value.problems]


def load(text: str) -> RuleSet:
    return parse_rules(textwrap.dedent(text), "r.yaml")


# --- what loads ------------------------------------------------------------------------------


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_loads(path: Path) -> None:
    ruleset = load_rules(path)
    assert ruleset.rules
    assert ruleset.source == str(path)
    assert re.fullmatch(r"[0-9a-f]{12}", ruleset.digest)
    for rule in ruleset.rules:
        assert all(name in ruleset.targets for name in rule.burst.ladder)


def test_minimal_file_gets_the_defaults() -> None:
    ruleset = load(MINIMAL)
    (rule,) = ruleset.rules
    assert rule.name == "r"
    assert rule.triggers == (PendingTrigger(),)
    assert rule.burst.ladder == ("cloud",)
    target = ruleset.targets["cloud"]
    assert target.provider == "terraform"
    assert target.max_in_flight == target.max_units == 4
    assert ruleset.version == 1
    assert not ruleset.dry_run


def test_digest_is_the_start_of_the_sha256_of_the_text() -> None:
    import hashlib

    ruleset = parse_rules(MINIMAL, "some/where.yaml")
    assert ruleset.digest == hashlib.sha256(MINIMAL.encode()).hexdigest()[:12]
    assert ruleset.source == "some/where.yaml"


def test_full_schema_maps_onto_the_types() -> None:
    ruleset = load(
        """\
        version: 1
        dry_run: true
        limits: {max_gpus: 64, max_cost_per_hour: 120}
        loop: {interval: 1m, batch_idle: 500ms, batch_max: 1m30s}
        cooldown: {scale_up: 1m, scale_down: 10m}
        targets:
          donor:
            provider: liqo
            params: {remote_cluster_id: x, cpu: "8"}
            gpu_model: A100
            gpus_per_unit: 4
            mig: {1g.10gb: 28}
            max_units: 4
            price_per_gpu_hour: 2
            time_to_ready: 90
            ready_deadline: 1h
            backoff: 0
        rules:
          - name: students
            match:
              namespaces: [a, b]
              labels: {team: ml}
              selector:
                - {key: tier, operator: NotIn, values: [batch, x]}
                - {key: gpu, operator: Exists}
              priority_classes: [low]
              gpu_models: [A100]
              mig_profiles: [1g.10gb]
              qos: [BE, LS]
            triggers:
              - pending: {gpus: 0.5, for: 30s}
              - oldest_pending: {older_than: 5m}
              - utilization: {query: 'avg(DCGM_FI_DEV_GPU_UTIL)', above: 80}
              - schedule: {cron: "0 9 * * mon", duration: 2h, timezone: Europe/Rome}
            burst: {ladder: [donor], max_units_per_step: 2, min_gpus: 4}
            release:
              idle_for: 10m
              validation: 1m
              drain: {mode: evict, max_wait: 4h}
            limits: {max_gpus: 16, max_cost_per_hour: 40}
            cooldown: {scale_up: 5s}
            dry_run: true
        """
    )
    assert ruleset.dry_run
    assert ruleset.limits.max_gpus == 64
    assert ruleset.limits.max_cost_per_hour == 120.0
    assert (ruleset.loop.interval, ruleset.loop.batch_idle, ruleset.loop.batch_max) == (
        60.0,
        0.5,
        90.0,
    )
    donor = ruleset.targets["donor"]
    assert (donor.params["remote_cluster_id"], donor.params["cpu"]) == ("x", "8")
    assert type(donor.params) is dict
    assert donor.mig == {"1g.10gb": 28}
    assert donor.price_per_gpu_hour == 2.0
    assert isinstance(donor.price_per_gpu_hour, float)
    assert (donor.time_to_ready, donor.ready_deadline, donor.backoff) == (90.0, 3600.0, 0.0)
    assert donor.max_in_flight == 4
    (rule,) = ruleset.rules
    assert rule.match.namespaces == {"a", "b"}
    # The labels shorthand comes first, then the selector, in file order.
    assert rule.match.labels == (
        LabelRequirement(key="team", operator="In", values=frozenset({"ml"})),
        LabelRequirement(key="tier", operator="NotIn", values=frozenset({"batch", "x"})),
        LabelRequirement(key="gpu", operator="Exists"),
    )
    assert rule.match.qos == {"BE", "LS"}
    assert rule.triggers == (
        PendingTrigger(gpus=0.5, for_s=30.0),
        OldestPendingTrigger(older_than=300.0),
        UtilizationTrigger(query="avg(DCGM_FI_DEV_GPU_UTIL)", above=80.0, for_s=300.0),
        ScheduleTrigger(cron="0 9 * * mon", duration=7200.0, timezone="Europe/Rome"),
    )
    assert rule.burst.min_gpus == 4
    assert rule.release.drain_mode is DrainMode.EVICT
    assert rule.release.max_wait == 4 * 3600.0
    # A rule's cooldown takes what it does not set from the file's cooldown.
    assert rule.cooldown == Cooldown(scale_up=5.0, scale_down=600.0)
    assert rule.dry_run


def test_rules_without_a_cooldown_use_the_global_one() -> None:
    ruleset = load(MINIMAL + "cooldown: {scale_up: 2m}\n")
    assert ruleset.rules[0].cooldown == Cooldown(scale_up=120.0, scale_down=300.0)


def test_empty_sections_and_anchors_are_fine() -> None:
    ruleset = load(
        """\
        version: 1
        limits:
        targets:
          a: &base
            provider: kwok
            gpus_per_unit: 2
          b:
            <<: *base
            max_units: 1
        rules:
          - name: r
            match:
            triggers: [pending: , oldest_pending: {older_than: 1m}]
            burst: {ladder: [a, b]}
            release:
        """
    )
    assert ruleset.targets["b"].gpus_per_unit == 2
    assert ruleset.targets["b"].max_in_flight == 1


def test_merged_keys_are_reported_under_the_anchor() -> None:
    text = """\
        version: 1
        targets:
          a: &shared
            provider: kwok
            gpus_per_unit: 0
            max_units: 1
          b:
            <<: *shared
            max_units: 2
        rules: [{name: r, triggers: [pending: {}], burst: {ladder: [a, b]}}]
        """
    assert problems(text) == [
        "r.yaml:5:20: targets.a.gpus_per_unit: must be an integer >= 1, got 0",
        "r.yaml:5:20: targets.b.gpus_per_unit: must be an integer >= 1, got 0",
    ]


# --- mistakes, one kind at a time ------------------------------------------------------------

ERRORS: list[tuple[str, str, list[str]]] = [
    (
        "word for an integer",
        """\
        version: 1
        targets:
          cloud:
            provider: terraform
            gpu_model: A10G
            max_units: 2
            gpus_per_unit: four
        rules: [{name: r, triggers: [pending: {}], burst: {ladder: [cloud]}}]
        """,
        ["r.yaml:7:20: targets.cloud.gpus_per_unit: must be an integer >= 1, got 'four'"],
    ),
    (
        "bool is not an int",
        MINIMAL + "limits: {max_gpus: true}\n",
        ["r.yaml:9:20: limits.max_gpus: must be an integer >= 0 or null, got true"],
    ),
    (
        "float is not an int",
        MINIMAL.replace("provider: terraform", "provider: terraform\n    max_units: 2.5"),
        ["r.yaml:5:16: targets.cloud.max_units: must be an integer >= 1, got 2.5"],
    ),
    (
        "unknown key close to a known one",
        MINIMAL.replace("provider: terraform", "provider: terraform\n    gpus_per_unti: 4"),
        [
            "r.yaml:5:5: targets.cloud: unknown key 'gpus_per_unti' "
            "(hint: did you mean 'gpus_per_unit'?)"
        ],
    ),
    (
        "unknown key far from any",
        MINIMAL + "colour: blue\n",
        [
            "r.yaml:9:1: (root): unknown key 'colour' (hint: known keys: version, dry_run, "
            "limits, loop, targets, rules, cooldown, alerts)"
        ],
    ),
    (
        "unsupported version",
        MINIMAL.replace("version: 1", "version: 2"),
        ["r.yaml:1:10: version: must be 1 (the only version this burstd reads), got 2"],
    ),
    (
        "version as a string",
        MINIMAL.replace("version: 1", "version: '1'"),
        ["r.yaml:1:10: version: must be 1 (the only version this burstd reads), got '1'"],
    ),
    (
        "missing version",
        MINIMAL.replace("version: 1\n", "dry_run: false\n"),
        ["r.yaml:1:1: (root): missing required key 'version'"],
    ),
    (
        "unknown provider",
        MINIMAL.replace("terraform", "terrafrom"),
        [
            "r.yaml:4:15: targets.cloud.provider: unknown provider 'terrafrom' "
            "(hint: did you mean 'terraform'?)"
        ],
    ),
    (
        "provider nothing like a known one",
        MINIMAL.replace("terraform", "aws"),
        [
            "r.yaml:4:15: targets.cloud.provider: unknown provider 'aws' "
            "(hint: providers: liqo, terraform, interlink, kwok)"
        ],
    ),
    (
        "negative price",
        MINIMAL.replace("provider: terraform", "provider: terraform\n    price_per_gpu_hour: -1"),
        ["r.yaml:5:25: targets.cloud.price_per_gpu_hour: must be a number >= 0, got -1"],
    ),
    (
        "infinite price",
        MINIMAL.replace("provider: terraform", "provider: terraform\n    price_per_gpu_hour: .inf"),
        ["r.yaml:5:25: targets.cloud.price_per_gpu_hour: must be a finite number, got .inf"],
    ),
    (
        "percentage above 100",
        MINIMAL.replace("pending: {}", "utilization: {query: q, above: 150}"),
        [
            "r.yaml:7:47: rules[0].triggers[0].utilization.above: must be a number from 0 to "
            "100, got 150"
        ],
    ),
    (
        "pending zero gpus",
        MINIMAL.replace("pending: {}", "pending: {gpus: 0}"),
        ["r.yaml:7:32: rules[0].triggers[0].pending.gpus: must be a number > 0, got 0"],
    ),
    (
        "bad duration",
        MINIMAL.replace("pending: {}", "pending: {for: soon}"),
        [
            "r.yaml:7:31: rules[0].triggers[0].pending.for: invalid duration 'soon': write a "
            "number of seconds or number-unit pairs (d, h, m, s, ms) like 30s, 5m, 1h30m or 500ms"
        ],
    ),
    (
        "duration units out of order",
        MINIMAL.replace("pending: {}", "oldest_pending: {older_than: 30m1h}"),
        [
            "r.yaml:7:45: rules[0].triggers[0].oldest_pending.older_than: invalid duration "
            "'30m1h': write each unit once, largest first, like 1h30m"
        ],
    ),
    (
        "negative duration number",
        MINIMAL + "cooldown: {scale_up: -5}\n",
        ["r.yaml:9:22: cooldown.scale_up: must be a duration >= 0, got -5"],
    ),
    (
        "duration of the wrong type",
        MINIMAL + "loop: {interval: [1]}\n",
        ["r.yaml:9:18: loop.interval: must be a duration like 30s, 5m or 1h30m, got a list"],
    ),
    (
        "ladder names an undefined target",
        MINIMAL.replace("[cloud]", "[cloud, clod, hpc]"),
        [
            "r.yaml:8:29: rules[0].burst.ladder[1]: unknown target 'clod' "
            "(hint: did you mean 'cloud'? defined targets: cloud)",
            "r.yaml:8:35: rules[0].burst.ladder[2]: unknown target 'hpc' "
            "(hint: defined targets: cloud)",
        ],
    ),
    (
        "ladder repeats a target",
        MINIMAL.replace("[cloud]", "[cloud, cloud]"),
        ["r.yaml:8:29: rules[0].burst.ladder[1]: duplicate target 'cloud' (first at ladder[0])"],
    ),
    (
        "empty ladder",
        MINIMAL.replace("[cloud]", "[]"),
        [
            "r.yaml:8:21: rules[0].burst.ladder: must name at least one target "
            "(hint: defined targets: cloud)"
        ],
    ),
    (
        "duplicate rule names",
        MINIMAL + "  - {name: r, triggers: [pending: {}], burst: {ladder: [cloud]}}\n",
        ["r.yaml:9:12: rules[1].name: duplicate rule name 'r' (first used by rules[0])"],
    ),
    (
        "rule name that is no DNS label",
        MINIMAL.replace("name: r", "name: Students 2024"),
        [
            "r.yaml:6:11: rules[0].name: invalid rule name 'Students 2024' (hint: use lowercase "
            "letters, digits and '-', starting and ending with a letter or digit, at most 63 "
            "characters)"
        ],
    ),
    (
        "ready deadline shorter than the time to ready",
        MINIMAL.replace(
            "provider: terraform",
            "provider: terraform\n    time_to_ready: 5m\n    ready_deadline: 2m",
        ),
        ["r.yaml:6:21: targets.cloud.ready_deadline: must be at least time_to_ready (5m), got 2m"],
    ),
    (
        "time to ready longer than the default deadline",
        MINIMAL.replace("provider: terraform", "provider: terraform\n    time_to_ready: 20m"),
        [
            "r.yaml:5:20: targets.cloud.time_to_ready: must be at most ready_deadline "
            "(15m, the default), got 20m"
        ],
    ),
    (
        "batch idle longer than batch max",
        MINIMAL + "loop: {batch_idle: 20s, batch_max: 10s}\n",
        ["r.yaml:9:20: loop.batch_idle: must be at most batch_max (10s), got 20s"],
    ),
    (
        "more in flight than units",
        MINIMAL.replace(
            "provider: terraform", "provider: terraform\n    max_units: 2\n    max_in_flight: 3"
        ),
        ["r.yaml:6:20: targets.cloud.max_in_flight: must be at most max_units (2), got 3"],
    ),
    (
        "rule limit above the global limit",
        MINIMAL + "    limits: {max_gpus: 100}\nlimits: {max_gpus: 64}\n",
        [
            "r.yaml:9:24: rules[0].limits.max_gpus: must be at most the global "
            "limits.max_gpus (64), got 100"
        ],
    ),
    (
        "rule cost above the global cost",
        MINIMAL + "    limits: {max_cost_per_hour: 50.5}\nlimits: {max_cost_per_hour: 40}\n",
        [
            "r.yaml:9:33: rules[0].limits.max_cost_per_hour: must be at most the global "
            "limits.max_cost_per_hour (40), got 50.5"
        ],
    ),
    (
        "min gpus above the rule's limit",
        MINIMAL.replace("{ladder: [cloud]}", "{ladder: [cloud], min_gpus: 20}")
        + "    limits: {max_gpus: 16}\n",
        [
            "r.yaml:8:40: rules[0].burst.min_gpus: must be at most this rule's limits.max_gpus "
            "(16), got 20"
        ],
    ),
    (
        "rule without triggers",
        MINIMAL.replace("[pending: {}]", "[]"),
        [
            "r.yaml:7:15: rules[0].triggers: a rule needs at least one trigger "
            "(hint: add one of: pending, oldest_pending, utilization, schedule)"
        ],
    ),
    (
        "rule missing its triggers",
        MINIMAL.replace("    triggers: [pending: {}]\n", ""),
        ["r.yaml:6:5: rules[0]: missing required key 'triggers'"],
    ),
    (
        "two trigger kinds in one item",
        MINIMAL.replace("[pending: {}]", "[{pending: {}, schedule: {}}]"),
        [
            "r.yaml:7:30: rules[0].triggers[0]: a trigger has one kind; "
            "move 'schedule' to its own list item"
        ],
    ),
    (
        "unknown trigger kind",
        MINIMAL.replace("[pending: {}]", "[pendng: {}]"),
        [
            "r.yaml:7:16: rules[0].triggers[0]: unknown trigger kind 'pendng' "
            "(hint: did you mean 'pending'?)"
        ],
    ),
    (
        "trigger kind without a mapping",
        MINIMAL.replace("[pending: {}]", "[pending]"),
        [
            "r.yaml:7:16: rules[0].triggers[0]: must be a mapping with one trigger kind, "
            "got 'pending' (hint: write 'pending: {}' for its defaults)"
        ],
    ),
    (
        "invalid cron expression",
        MINIMAL.replace("pending: {}", "schedule: {cron: '0 9 * *', duration: 1h}"),
        [
            "r.yaml:7:33: rules[0].triggers[0].schedule.cron: invalid cron expression "
            "'0 9 * *': Wrong number of fields; got 4, expected 5 "
            "(hint: five fields: minute hour day-of-month month day-of-week)"
        ],
    ),
    (
        "cron expression that never fires",
        MINIMAL.replace("pending: {}", "schedule: {cron: '0 0 31 2 *', duration: 1h}"),
        [
            "r.yaml:7:33: rules[0].triggers[0].schedule.cron: cron expression '0 0 31 2 *' "
            "never fires"
        ],
    ),
    (
        "unknown time zone",
        MINIMAL.replace(
            "pending: {}", "schedule: {cron: '0 9 * * mon', duration: 1h, timezone: Europe/Roma}"
        ),
        [
            "r.yaml:7:72: rules[0].triggers[0].schedule.timezone: unknown time zone "
            "'Europe/Roma' (hint: did you mean 'Europe/Rome'?)"
        ],
    ),
    (
        "schedule without its window",
        MINIMAL.replace("pending: {}", "schedule: {cron: '0 9 * * mon'}"),
        ["r.yaml:7:16: rules[0].triggers[0].schedule: missing required key 'duration'"],
    ),
    (
        "selector operators",
        MINIMAL.replace(
            "    triggers",
            "    match:\n"
            "      selector:\n"
            "        - {key: a, operator: in, values: [x]}\n"
            "        - {key: b, operator: In}\n"
            "        - {key: c, operator: Exists, values: [x]}\n"
            "        - {key: d, operator: NotIn, values: []}\n"
            "    triggers",
        ),
        [
            "r.yaml:9:30: rules[0].match.selector[0].operator: must be one of In, NotIn, "
            "Exists, DoesNotExist, got 'in' (hint: did you mean 'In'?)",
            "r.yaml:10:11: rules[0].match.selector[1]: operator In needs a list of values",
            "r.yaml:11:46: rules[0].match.selector[2].values: must not be set for operator "
            "Exists (hint: Exists and DoesNotExist test only the key)",
            "r.yaml:12:45: rules[0].match.selector[3].values: must not be empty",
        ],
    ),
    (
        "label value that is not a string",
        MINIMAL.replace("    triggers", "    match: {labels: {tier: 1}}\n    triggers"),
        [
            "r.yaml:7:28: rules[0].match.labels.tier: must be a string, got 1 "
            "(hint: put it in quotes to make it text)"
        ],
    ),
    (
        "a single namespace instead of a list",
        MINIMAL.replace("    triggers", "    match: {namespaces: students}\n    triggers"),
        [
            "r.yaml:7:25: rules[0].match.namespaces: must be a list of strings, got 'students' "
            "(hint: write [students] for a list of one)"
        ],
    ),
    (
        "invalid target name",
        MINIMAL.replace("[cloud]", "[Cloud_1]").replace("  cloud:", "  Cloud_1:"),
        [
            "r.yaml:3:3: targets: invalid target name 'Cloud_1' (hint: use lowercase letters, "
            "digits and '-', starting and ending with a letter or digit, at most 63 characters)"
        ],
    ),
    (
        "MIG profiles and counts",
        MINIMAL.replace(
            "provider: terraform", "provider: terraform\n    mig: {1g.10gb: 0, 1g10gb: 7}"
        ),
        [
            'r.yaml:5:20: targets.cloud.mig["1g.10gb"]: must be an integer >= 1, got 0',
            "r.yaml:5:23: targets.cloud.mig: invalid MIG profile '1g10gb' "
            "(hint: expected a form like 1g.10gb or 3g.40gb)",
        ],
    ),
    (
        "drain mode",
        MINIMAL + "    release: {drain: {mode: evcit}}\n",
        [
            "r.yaml:9:29: rules[0].release.drain.mode: must be one of wait, evict, got 'evcit' "
            "(hint: did you mean 'evict'?)"
        ],
    ),
    (
        "params that are not a mapping",
        MINIMAL.replace("provider: terraform", "provider: terraform\n    params: [a]"),
        ["r.yaml:5:13: targets.cloud.params: must be a mapping, got a list"],
    ),
    (
        "rules as a mapping",
        MINIMAL.split("rules:")[0] + "rules:\n  r: {}\n",
        [
            "r.yaml:6:3: rules: must be a list of rules, got a mapping "
            "(hint: start each rule with '- name:')"
        ],
    ),
    (
        "no rules",
        MINIMAL.split("rules:")[0] + "rules: []\n",
        ["r.yaml:5:8: rules: must have at least one rule"],
    ),
    (
        "targets as a list",
        MINIMAL.replace("targets:\n  cloud:\n    provider: terraform", "targets: [cloud]"),
        [
            "r.yaml:2:10: targets: must be a mapping of target names to targets, got a list "
            "(hint: write each target as 'name:' with its settings under it)"
        ],
    ),
    (
        "a value left empty",
        MINIMAL.replace("provider: terraform", "provider: terraform\n    gpus_per_unit:"),
        ["r.yaml:5:5: targets.cloud.gpus_per_unit: must be an integer >= 1, got null"],
    ),
    (
        "burst left empty",
        MINIMAL.replace("burst: {ladder: [cloud]}", "burst:"),
        ["r.yaml:8:5: rules[0].burst: must be a mapping, got null"],
    ),
    (
        "trigger setting indented one level too little",
        MINIMAL.replace("triggers: [pending: {}]", "triggers:\n      - pending:\n        for: 1m"),
        ["r.yaml:9:9: rules[0].triggers[0]: unknown key 'for' (hint: indent it under 'pending')"],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_mistake_is_reported_where_it_is(text: str, expected: list[str]) -> None:
    assert problems(text) == expected


def test_every_mistake_in_a_file_is_reported_at_once_in_file_order() -> None:
    text = """\
        version: 3
        limits: {max_gpus: 8}
        targets:
          cloud:
            provider: aws
            gpus_per_unit: 0
            time_to_ready: soon
        rules:
          - name: r
            triggers: [pending: {gpus: -1}]
            burst: {ladder: [cloud, hpc], min_gpus: 9}
            dry_run: maybe
          - name: r
            triggers: []
            burst: {ladder: [cloud]}
        """
    assert problems(text) == [
        "r.yaml:1:10: version: must be 1 (the only version this burstd reads), got 3",
        "r.yaml:5:15: targets.cloud.provider: unknown provider 'aws' "
        "(hint: providers: liqo, terraform, interlink, kwok)",
        "r.yaml:6:20: targets.cloud.gpus_per_unit: must be an integer >= 1, got 0",
        "r.yaml:7:20: targets.cloud.time_to_ready: invalid duration 'soon': write a number of "
        "seconds or number-unit pairs (d, h, m, s, ms) like 30s, 5m, 1h30m or 500ms",
        "r.yaml:10:32: rules[0].triggers[0].pending.gpus: must be a number > 0, got -1",
        "r.yaml:11:29: rules[0].burst.ladder[1]: unknown target 'hpc' "
        "(hint: defined targets: cloud)",
        "r.yaml:11:45: rules[0].burst.min_gpus: must be at most the global limits.max_gpus (8), "
        "got 9",
        "r.yaml:12:14: rules[0].dry_run: must be true or false, got 'maybe'",
        "r.yaml:13:11: rules[1].name: duplicate rule name 'r' (first used by rules[0])",
        "r.yaml:14:15: rules[1].triggers: a rule needs at least one trigger "
        "(hint: add one of: pending, oldest_pending, utilization, schedule)",
    ]


def test_problem_reads_as_file_line_column_path_message() -> None:
    problem = Problem(source="r.yaml", line=3, column=7, path="targets.x", message="wrong")
    assert str(problem) == "r.yaml:3:7: targets.x: wrong"
    hinted = Problem(source="r.yaml", line=1, column=1, path="(root)", message="m", hint="h")
    assert str(hinted) == "r.yaml:1:1: (root): m (hint: h)"


def test_error_message_lists_every_problem() -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules("version: 2\n", "r.yaml")
    assert str(caught.value).splitlines() == [str(p) for p in caught.value.problems]


# --- files that are not rules at all ---------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert [str(p) for p in caught.value.problems] == [f"{path}:1:1: (root): no such file"]


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(RulesError) as caught:
        load_rules(str(tmp_path))
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path}:1:1: (root): is a directory, not a rules file"
    ]


def test_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("version: 1\n# caffè\n".encode("latin-1"))
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:2:7: (root): not valid UTF-8 (byte 0xe8) (hint: save the file as UTF-8)"
    ]


def test_file_is_read_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("# caffè ☕\n" + MINIMAL, encoding="utf-8")
    assert load_rules(path).rules[0].name == "r"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "",
            "r.yaml:1:1: (root): the rules file is empty "
            "(hint: start with 'version: 1', then define targets and rules)",
            id="empty",
        ),
        pytest.param(
            "# only a comment\n",
            "r.yaml:1:1: (root): the rules file is empty "
            "(hint: start with 'version: 1', then define targets and rules)",
            id="only comments",
        ),
        pytest.param(
            "- version: 1\n",
            "r.yaml:1:1: (root): must be a mapping with version, targets and rules, got a list",
            id="top-level list",
        ),
        pytest.param(
            "just words\n",
            "r.yaml:1:1: (root): must be a mapping with version, targets and rules, "
            "got 'just words'",
            id="top-level scalar",
        ),
        pytest.param(
            "version: 1\ntargets: [cloud,\n",
            "r.yaml:3:1: (root): invalid YAML: expected the node content, but found '<stream end>'",
            id="unclosed bracket",
        ),
        pytest.param(
            "version: 1\ntargets: {cloud: {}\n",
            "r.yaml:3:1: (root): invalid YAML: expected ',' or '}', but got '<stream end>' "
            "(while parsing a flow mapping at line 2, column 10)",
            id="unclosed brace",
        ),
        pytest.param(
            "version: 1\ntargets:\n\tcloud: {}\n",
            "r.yaml:3:1: (root): invalid YAML: found character '\\t' that cannot start any "
            "token (hint: indent with spaces, not tabs)",
            id="tab",
        ),
        pytest.param(
            "version: 1\nrules: *nope\n",
            "r.yaml:2:8: (root): invalid YAML: found undefined alias 'nope'",
            id="undefined alias",
        ),
        pytest.param(
            "version: 1\ntargets: \x07\n",
            "r.yaml:2:10: (root): invalid YAML: unacceptable character #x0007",
            id="control character",
        ),
        pytest.param(
            "version: !!int one\n",
            "r.yaml:1:1: (root): invalid YAML: invalid literal for int() with base 10: 'one'",
            id="bad tagged scalar",
        ),
        pytest.param(
            "version: 1\n---\nversion: 1\n",
            "r.yaml:2:1: (root): invalid YAML: but found another document "
            "(expected a single document in the stream at line 1, column 1)",
            id="two documents",
        ),
    ],
)
def test_unusable_text(text: str, expected: str) -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "r.yaml")
    assert [str(p) for p in caught.value.problems] == [expected]


def test_duplicate_key_is_reported_with_the_rest() -> None:
    text = MINIMAL.replace(
        "provider: terraform", "provider: terraform\n    provider: liqo\n    max_units: 0"
    )
    assert problems(text) == [
        "r.yaml:5:5: targets.cloud: duplicate key 'provider' (first at line 4)",
        "r.yaml:6:16: targets.cloud.max_units: must be an integer >= 1, got 0",
    ]


def test_duplicate_top_level_key() -> None:
    assert problems(MINIMAL + "version: 1\n") == [
        "r.yaml:9:1: (root): duplicate key 'version' (first at line 1)"
    ]


# --- no input makes it crash -----------------------------------------------------------------

PROBLEM_LINE = re.compile(r"r\.yaml:\d+:\d+: \S+: .+")

# Every key of the schema, grouped by where it belongs, and values that mean something to it.
KEYS = (
    *("version", "dry_run", "limits", "loop", "targets", "rules", "cooldown"),
    *("max_gpus", "max_cost_per_hour", "interval", "batch_idle", "batch_max"),
    *("provider", "params", "gpu_model", "gpus_per_unit", "mig", "max_units", "max_in_flight"),
    *("price_per_gpu_hour", "time_to_ready", "ready_deadline", "backoff", "simulation"),
    *("name", "match", "triggers", "burst", "release", "namespaces", "labels", "selector"),
    *("key", "operator", "values", "priority_classes", "gpu_models", "mig_profiles", "qos"),
    *("pending", "oldest_pending", "utilization", "schedule", "gpus", "for", "older_than"),
    *("query", "above", "cron", "duration", "timezone", "ladder", "max_units_per_step"),
    *("min_gpus", "idle_for", "validation", "drain", "mode", "max_wait", "scale_up"),
    *("scale_down", "cloud", "donor", "1g.10gb"),
)
FRAGMENTS = (
    *("30s", "5m", "1h30m", "500ms", "2d", "-1m", "soon", "liqo", "terraform", "interlink"),
    *("kwok", "In", "NotIn", "Exists", "DoesNotExist", "wait", "evict", "cloud", "donor"),
    *("A100", "1g.10gb", "Europe/Rome", "UTC", "0 9 * * mon", "0 0 31 2 *", "* *", "avg(x)"),
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 200)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(FRAGMENTS)
    | st.text(max_size=8)
)
keys = st.sampled_from(KEYS) | st.text(max_size=6) | st.integers(0, 3)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)


def near(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the valid shape, sometimes anything."""
    return st.one_of(valid, valid, values)


def fields(spec: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    return near(st.fixed_dictionaries({}, optional={k: near(v) for k, v in spec.items()}))


durations = st.sampled_from(["30s", "5m", "1h", 0, 90, "1h30m"])
counts = st.integers(0, 10)
target = fields(
    {
        "provider": st.sampled_from(["liqo", "terraform", "interlink", "kwok"]),
        "params": st.dictionaries(st.text(max_size=4), scalars, max_size=2),
        "gpus_per_unit": counts,
        "mig": st.dictionaries(st.sampled_from(["1g.10gb", "3g.40gb", "x"]), counts, max_size=2),
        "max_units": counts,
        "max_in_flight": counts,
        "price_per_gpu_hour": st.floats(0, 10),
        "time_to_ready": durations,
        "ready_deadline": durations,
    }
)
trigger = st.one_of(
    st.fixed_dictionaries({"pending": fields({"gpus": st.floats(0, 4), "for": durations})}),
    st.fixed_dictionaries({"oldest_pending": fields({"older_than": durations})}),
    st.fixed_dictionaries(
        {"utilization": fields({"query": st.just("q"), "above": st.integers(0, 120)})}
    ),
    st.fixed_dictionaries(
        {
            "schedule": fields(
                {
                    "cron": st.sampled_from(["0 9 * * mon", "0 0 31 2 *", "x"]),
                    "duration": durations,
                    "timezone": st.sampled_from(["UTC", "Europe/Rome", "Mars/Base"]),
                }
            )
        }
    ),
)
selector = fields(
    {
        "key": st.sampled_from(["tier", "a/b", "bad key"]),
        "operator": st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist", "in"]),
        "values": st.lists(st.sampled_from(["x", "y", ""]), max_size=2),
    }
)
rule = fields(
    {
        "name": st.sampled_from(["r", "s", "Bad Name"]),
        "match": fields(
            {
                "namespaces": st.lists(st.sampled_from(["a", "B"]), max_size=2),
                "labels": st.dictionaries(st.sampled_from(["team", "x/y"]), scalars, max_size=2),
                "selector": st.lists(selector, max_size=2),
                "mig_profiles": st.lists(st.sampled_from(["1g.10gb", "x"]), max_size=2),
            }
        ),
        "triggers": st.lists(trigger, max_size=3),
        "burst": fields(
            {
                "ladder": st.lists(st.sampled_from(["cloud", "donor", "nope"]), max_size=3),
                "min_gpus": counts,
            }
        ),
        "release": fields(
            {"idle_for": durations, "drain": fields({"mode": st.sampled_from(["wait", "x"])})}
        ),
        "limits": fields({"max_gpus": st.none() | counts}),
        "cooldown": fields({"scale_up": durations}),
    }
)
documents = near(
    st.fixed_dictionaries(
        {},
        optional={
            "version": near(st.just(1)),
            "dry_run": near(st.booleans()),
            "limits": fields({"max_gpus": st.none() | counts, "max_cost_per_hour": st.floats()}),
            "loop": fields({"interval": durations, "batch_idle": durations}),
            "targets": near(
                st.dictionaries(st.sampled_from(["cloud", "donor", "Bad_1"]), target, max_size=3)
            ),
            "rules": near(st.lists(rule, max_size=3)),
            "cooldown": fields({"scale_down": durations}),
        },
    )
)


def dump(data: Any, flow: bool | None) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = flow
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


EXAMPLE_TEXTS = [path.read_text(encoding="utf-8") for path in EXAMPLES]


@st.composite
def mutated_examples(draw: st.DrawFn) -> str:
    """An example file with a few lines deleted, repeated, indented or poked: the typos people
    make in a file that was right a moment ago."""
    lines = draw(st.sampled_from(EXAMPLE_TEXTS)).split("\n")
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        match draw(st.sampled_from(["delete", "repeat", "indent", "poke"])):
            case "delete":
                del lines[at]
            case "repeat":
                lines.insert(at, lines[draw(st.integers(0, len(lines) - 1))])
            case "indent":
                lines[at] = "  " + lines[at]
            case _:
                col = draw(st.integers(0, len(lines[at])))
                lines[at] = lines[at][:col] + draw(st.sampled_from(YAML_CHARS)) + lines[at][col:]
    return "\n".join(lines)


@st.composite
def merged_documents(draw: st.DrawFn) -> str:
    """Targets that share settings through an anchor and ``<<`` merges, where ruamel keeps
    the positions of merged keys elsewhere."""
    shared = draw(st.dictionaries(st.sampled_from(KEYS), scalars, min_size=1, max_size=5))
    own = draw(st.dictionaries(st.sampled_from(KEYS), scalars, max_size=3))
    merge = draw(st.sampled_from(["*shared", "[*shared]", "[*shared, {max_units: 0}]"]))
    own_lines = textwrap.indent(dump(own, False), "    ") if own else ""
    return (
        f"version: 1\ntargets:\n  a: &shared {dump(shared, True).strip()}\n"
        f"  b:\n    <<: {merge}\n{own_lines}"
        "rules: [{name: r, triggers: [pending: {}], burst: {ladder: [a, b]}}]\n"
    )


YAML_CHARS = ":-[]{}#&*!|>'\"%@`,? \n\t~abc019."
texts = (
    st.builds(dump, documents, st.sampled_from([False, True, None]))
    | mutated_examples()
    | merged_documents()
    | st.text(max_size=200)
    | st.text(alphabet=YAML_CHARS, max_size=120)
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_any_text_loads_or_reports_problems(text: str) -> None:
    found: tuple[Problem, ...] = ()
    try:
        parse_rules(text, "r.yaml")
    except RulesError as err:
        found = err.problems
        assert found
    for problem in found:
        assert PROBLEM_LINE.fullmatch(str(problem)), str(problem)
    order = [(p.line, p.column) for p in found]
    assert order == sorted(order)

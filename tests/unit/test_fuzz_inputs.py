"""Property tests: every entry point's input, generated or mutated, is valid or a clean error.

For rules files, snapshots, traces (CSV and JSON Lines), node specs and lists, command-line
option values and kubeconfigs, hypothesis makes inputs (from nothing, or by mutating a good
file with the bytes and tokens that broke burstd before: aliases, brackets, NaN, huge numbers,
a byte-order mark, non-UTF-8). Each must either be read or be refused with the module's own
error, whose message starts with the file it names; never another exception. Each read must
also stay within a time and a memory bound (generous, so that a loaded machine does not fail
them: the bounds catch a hang or an explosion, not slowness).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from burstd.cli import main
from burstd.cli.options import Number
from burstd.model.serde import SnapshotError, snapshot_from_dict
from burstd.rules.loader import RulesError, load_rules, parse_rules
from burstd.sim.cluster import ClusterError, load_nodes
from burstd.sim.synthetic import parse_synthetic
from burstd.sim.trace import TraceError, load_trace
from burstd.sources.kube.client import KubeconfigError, check_kubeconfig, connect

T = TypeVar("T")
ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"
RULES_TEXTS = [p.read_text() for p in sorted(EXAMPLES.glob("*.yaml"))]
SNAPSHOT = json.loads((EXAMPLES / "snapshots" / "peak.json").read_text())
KUBECONFIG = """\
apiVersion: v1
kind: Config
current-context: test
contexts:
  - name: test
    context: {cluster: local, user: admin}
clusters:
  - name: local
    cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
users:
  - name: admin
    user: {token: abc}
"""
TRACE_CSV = "submit,duration,gpus,share,models,namespace,labels,priority\n" + "".join(
    f"{i * 30},{600 + i},{i % 3},{250 if i % 3 == 0 else ''},A100|T4,ml,team=x,{i % 2}\n"
    for i in range(8)
)
TRACE_JSONL = "".join(
    json.dumps({"submit": i * 10, "duration": 60, "gpus": 1 + i % 2, "labels": {"a": "b"}}) + "\n"
    for i in range(6)
)

# Generous: a read of these small inputs takes milliseconds; a hang or a blow-up exceeds both.
SECONDS = 20.0
BYTES = 256 * 1024 * 1024

# CI runs a few examples of each; BURSTD_FUZZ_EXAMPLES=2000 digs deeper on a free machine.
EXAMPLES_EACH = int(os.environ.get("BURSTD_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES_EACH,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Tokens that broke burstd or its parsers before, spliced into good files.
NASTY = [
    "&a ",
    "*a",
    "<<: *a",
    "[",
    "]",
    "{",
    "}",
    "!!int x",
    "\t",
    "\x00",
    "\ufeff",
    ".nan",
    ".inf",
    "1e308",
    "-1",
    "null",
    "~",
    "NaN",
    "Infinity",
    "9" * 400,
    '"',
    "'",
    ",",
    ":",
    "\n",
    "- ",
    "#",
    "%",
    "@",
    "`",
    "|",
    ">",
    "?",
    "\u2028",
    "\r",
]


@contextmanager
def bounded() -> Iterator[None]:
    """Assert that the block ends within ``SECONDS`` and allocates at most ``BYTES`` at peak."""
    tracemalloc.start()
    began = time.monotonic()
    try:
        yield
    finally:
        elapsed = time.monotonic() - began
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < SECONDS, f"took {elapsed:.1f}s"
    assert peak < BYTES, f"peaked at {peak / 2**20:.0f} MiB"


@st.composite
def mutated(draw: st.DrawFn, texts: list[str]) -> str:
    """One of ``texts`` with a few splices: a nasty token in, a slice out, or a slice doubled."""
    text = draw(st.sampled_from(texts))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        match draw(st.sampled_from(["insert", "delete", "repeat", "junk"])):
            case "insert":
                text = text[:at] + draw(st.sampled_from(NASTY)) + text[at:]
            case "delete":
                text = text[:at] + text[at + draw(st.integers(1, 40)) :]
            case "repeat":
                text = text[:at] + text[at : at + 30] * draw(st.integers(2, 5)) + text[at:]
            case _:
                text = text[:at] + draw(st.text(max_size=8)) + text[at:]
    return text


def file_bytes(text: str, draw_bytes: bytes) -> bytes:
    """``text`` as UTF-8, sometimes with raw (maybe invalid) bytes appended or a BOM before."""
    data = text.encode("utf-8", "surrogatepass")
    if draw_bytes[:1] == b"\x00":
        return b"\xef\xbb\xbf" + data
    return data + draw_bytes


def attempt(read: Callable[[], T], error: type[Exception]) -> tuple[T | None, str | None]:
    """``read()``'s result, or the message of the ``error`` it raised (any other escapes)."""
    try:
        return read(), None
    except error as e:
        return None, str(e)


def _clean(message: str, source: str) -> None:
    """An error message as a user reads it: names the file first, one line per problem."""
    assert message.startswith(source), message
    assert "Traceback" not in message


# Rules files --------------------------------------------------------------------------------

yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
rule_keys = st.sampled_from(
    [
        "version",
        "targets",
        "rules",
        "limits",
        "provider",
        "gpus_per_unit",
        "params",
        "name",
        "triggers",
        "burst",
        "ladder",
        "pending",
        "gpus",
        "for",
        "max_gpus",
        "a",
        "b",
        "mig",
    ]
)
yaml_docs = st.recursive(
    yaml_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(rule_keys, inner, max_size=5),
    max_leaves=25,
)


@FUZZ
@given(doc=yaml_docs)
def test_generated_rules_documents(doc: Any) -> None:
    text = json.dumps(doc)  # JSON is YAML; NaN and Infinity come out as YAML plain scalars
    with bounded():
        try:
            parse_rules(text, "gen.yaml")
        except RulesError as e:
            for problem in e.problems:
                _clean(str(problem), "gen.yaml:")
                assert problem.line >= 1
                assert problem.column >= 1


@FUZZ
@given(text=mutated(RULES_TEXTS), tail=st.binary(max_size=6))
def test_mutated_rules_files(tmp_path: Path, text: str, tail: bytes) -> None:
    path = tmp_path / "rules.yaml"
    path.write_bytes(file_bytes(text, tail))
    with bounded():
        ruleset, error = attempt(lambda: load_rules(path), RulesError)
    if error is not None:
        for line in error.splitlines():
            _clean(line, f"{path}:")
    else:
        assert ruleset is not None
        assert ruleset.rules


# Snapshots ----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


SNAPSHOT_PATHS = [p for p in _paths(SNAPSHOT) if p]


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy: Any = dict(doc) if isinstance(doc, dict) else list(doc)
    copy[path[0]] = _replace(copy[path[0]], path[1:], value)
    return copy


@FUZZ
@given(
    edits=st.lists(
        st.tuples(
            st.sampled_from(SNAPSHOT_PATHS),
            json_values | st.sampled_from([-1, 10**400, math.nan, math.inf, 1e308, "", [], {}]),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_mutated_snapshots(edits: list[tuple[tuple[Any, ...], Any]]) -> None:
    doc: Any = SNAPSHOT
    for path, value in edits:
        try:
            doc = _replace(doc, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed what this one points into
    with bounded():
        read, error = attempt(lambda: snapshot_from_dict(doc), SnapshotError)
    if read is None:
        # A field path first: "pods[0].gpu.gpus: ..." or "(root): ...".
        assert error is not None
        assert ": " in error
        return
    snapshot, now = read
    assert now is None or 0 <= now <= 1e11
    assert all(0 <= pod.gpu.gpus <= 1024 for pod in snapshot.pods)


@settings(FUZZ, max_examples=max(12, EXAMPLES_EACH // 4))
@given(text=mutated([json.dumps(SNAPSHOT, indent=1)]), tail=st.binary(max_size=6))
def test_explain_on_mutated_snapshot_files(tmp_path: Path, text: str, tail: bytes) -> None:
    path = tmp_path / "snap.json"
    path.write_bytes(file_bytes(text, tail))
    with bounded():
        result = CliRunner().invoke(
            main,
            ["explain", "--rules", str(EXAMPLES / "university.yaml"), "--snapshot", str(path)],
        )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code in (0, 1)
    if result.exit_code == 1:
        _clean(result.output, str(path))


# Traces -------------------------------------------------------------------------------------

cells = st.sampled_from(
    [
        "",
        "0",
        "1",
        "-1",
        "nan",
        "inf",
        "-inf",
        "1e308",
        "1.5",
        "x",
        "999",
        "A100|T4",
        "a=b",
        '"',
        "\ufeff",
        "9" * 40,
        "1000.0",
        " 2 ",
    ]
)


@FUZZ
@given(
    header=st.lists(
        st.sampled_from(
            [
                "submit",
                "duration",
                "gpus",
                "share",
                "models",
                "labels",
                "num_gpu",
                "gpu_milli",
                "creation_time",
                "deletion_time",
                "scheduled_time",
                "name",
                "bogus",
            ]
        ),
        min_size=1,
        max_size=6,
    ),
    rows=st.lists(st.lists(cells, min_size=1, max_size=7), max_size=6),
    skip=st.booleans(),
)
def test_generated_csv_traces(
    tmp_path: Path, header: list[str], rows: list[list[str]], skip: bool
) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(",".join(header) + "\n" + "".join(",".join(r) + "\n" for r in rows))
    _load_trace(path, skip)


@FUZZ
@given(
    text=mutated([TRACE_CSV, TRACE_JSONL]),
    tail=st.binary(max_size=6),
    suffix=st.sampled_from([".csv", ".jsonl"]),
    skip=st.booleans(),
)
def test_mutated_traces(tmp_path: Path, text: str, tail: bytes, suffix: str, skip: bool) -> None:
    path = tmp_path / f"trace{suffix}"
    path.write_bytes(file_bytes(text, tail))
    _load_trace(path, skip)


@FUZZ
@given(
    rows=st.lists(
        st.dictionaries(
            st.sampled_from(
                ["submit", "duration", "gpus", "share", "models", "labels", "priority", "name", "x"]
            ),
            json_values,
            max_size=6,
        ),
        max_size=5,
    )
)
def test_generated_jsonl_traces(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    path = tmp_path / "trace.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _load_trace(path, False)


def _load_trace(path: Path, skip: bool) -> None:
    with bounded():
        try:
            trace = load_trace(path, skip_bad_rows=skip)
        except TraceError as e:
            _clean(str(e), str(path))
            return
    for i in range(len(trace)):
        assert 0 <= trace.submit[i] <= 1e11
        assert 0 <= trace.duration[i] <= 1e11


@FUZZ
@given(text=st.text(alphabet="0123456789x:,.-+eE naifTV", max_size=30))
def test_node_specs_and_synthetic_parameters(text: str) -> None:
    with bounded():
        try:
            nodes, _ = load_nodes(text or "x")
        except ClusterError:
            pass
        else:
            assert 0 < len(nodes) <= 100_000
            assert all(1 <= n.gpus <= 1024 for n in nodes)
        try:
            spec = parse_synthetic("synthetic:" + text.replace(":", "="))
        except TraceError as e:
            _clean(str(e), "synthetic:")
        else:
            assert 0 < spec.pods <= 5_000_000
            assert math.isfinite(spec.load)


@FUZZ
@given(text=mutated(["sn,cpu_milli,memory_mib,gpu,model\nn1,1,1,8,V100M32\nn2,1,1,4,T4\n"]))
def test_mutated_node_lists(tmp_path: Path, text: str) -> None:
    path = tmp_path / "nodes.csv"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    with bounded():
        try:
            load_nodes(str(path))
        except ClusterError as e:
            _clean(str(e), str(path))


# Options ------------------------------------------------------------------------------------

option_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**6), 10**20).map(str),
    st.sampled_from(["nan", "inf", "-inf", "0", "1e308", "", "x", "1s", "0.5", "86400"]),
)


@FUZZ
@given(
    option=st.sampled_from([("--adopt-interval", 1, 86_400), ("--grace-period", 0, 3600)]),
    value=option_values,
)
def test_run_options_are_in_range_or_usage_errors(
    tmp_path: Path, option: tuple[str, float, float], value: str
) -> None:
    """With the rules file missing, a good value gets as far as reading it (exit 1) and a bad
    one stops at the option (exit 2): the daemon never starts here."""
    name, low, high = option
    result = CliRunner().invoke(main, ["run", "--config", str(tmp_path / "none"), name, value])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    good = math.isfinite(number) and low <= number <= high
    assert result.exit_code == (1 if good else 2), (value, result.output)


@FUZZ
@given(value=option_values)
def test_number_option_type(value: str) -> None:
    got, error = attempt(lambda: Number(0, 1e11).convert(value, None, None), click.BadParameter)
    assert (got is None) != (error is None)
    assert got is None or 0 <= got <= 1e11


# Kubeconfigs --------------------------------------------------------------------------------


@FUZZ
@given(text=mutated([KUBECONFIG]), tail=st.binary(max_size=6))
def test_mutated_kubeconfigs(tmp_path: Path, text: str, tail: bytes) -> None:
    path = tmp_path / "kubeconfig"
    path.write_bytes(file_bytes(text, tail))
    with bounded():
        try:
            check_kubeconfig(str(path))
        except KubeconfigError as e:
            _clean(str(e), str(path))
            return
        try:
            api = asyncio.run(_connect(str(path)))
        except KubeconfigError as e:
            _clean(str(e), str(path))
            return
    assert api is None


async def _connect(path: str) -> None:
    api = await connect(path)
    await api.close()


def test_the_fuzzed_kubeconfig_is_itself_usable(tmp_path: Path) -> None:
    """The mutations start from a kubeconfig that connects (no network is used to build the
    client), so a clean error in the property above is the mutation's doing."""
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    check_kubeconfig(str(path))
    assert asyncio.run(_connect(str(path))) is None

"""Trace loading: the bundled openb trace, the generic formats, errors with file:line:col."""

from __future__ import annotations

import gzip

import pytest

from burstd.sim.cluster import ClusterError, load_nodes, parse_spec
from burstd.sim.synthetic import generate, parse_synthetic
from burstd.sim.trace import TraceError, load_trace

OPENB_HEADER = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
    "creation_time,deletion_time,scheduled_time\n"
)


def test_bundled_openb():
    t = load_trace()
    assert len(t) == 6203
    assert t.meta["skipped"] == {"cpu_only": 1088, "never_scheduled": 861}
    assert t.submit == sorted(t.submit)
    fractional = sum(1 for m in t.milli if m)
    assert fractional == 2573
    assert max(t.gpus) == 8


def test_openb_fractional_and_models(tmp_path):
    path = tmp_path / "pods.csv"
    path.write_text(
        OPENB_HEADER
        + "p0,1,1,1,460,,LS,Running,10,110,20\n"
        + "p1,1,1,2,1000,V100M16|V100M32,BE,Running,5,50,5\n"
        + "p2,1,1,0,0,,BE,Running,5,50,5\n"
    )
    t = load_trace(path)
    assert t.names == ["p1", "p0"]  # by submit time
    assert (t.gpus, t.milli, t.duration) == ([2, 0], [0, 460], [45.0, 90.0])
    assert t.request(0).models == frozenset({"V100M16", "V100M32"})
    assert t.meta["skipped"] == {"cpu_only": 1}


def test_openb_bad_cell_names_file_line_column(tmp_path):
    path = tmp_path / "trace.csv"
    rows = [f"p{i},1,1,1,1000,,LS,Running,{i},100,{i}\n" for i in range(15)]
    rows.append("bad,1,1,1,x,,LS,Running,1,100,1\n")
    path.write_text(OPENB_HEADER + "".join(rows))
    with pytest.raises(TraceError) as e:
        load_trace(path)
    assert str(e.value) == f"{path}:17:5: gpu_milli: expected an integer, got 'x'"


def test_skip_bad_rows_counts(tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text(
        OPENB_HEADER
        + "ok,1,1,1,1000,,LS,Running,0,100,0\n"
        + "short,1,1\n"
        + "neg,1,1,1,1000,,LS,Running,0,5,10\n"
    )
    t = load_trace(path, skip_bad_rows=True)
    assert len(t) == 1
    assert t.meta["bad_rows_skipped"] == 2
    assert t.meta["bad_row_examples"][0] == f"{path}:3:1: expected 11 fields, got 3"
    assert "deletion_time: 5 is before scheduled_time 10" in t.meta["bad_row_examples"][1]


def test_generic_csv_and_gzip(tmp_path):
    text = (
        "submit,duration,gpus,share,models,namespace,labels,priority\n"
        "0,60,1,,,ml,team=a;tier=gold,5\n"
        "10,30,,250,T4|A10,ml,,0\n"
    )
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    t = load_trace(path)
    assert len(t) == 2
    assert t.profiles[t.profile[0]].labels == {"team": "a", "tier": "gold"}
    assert t.profiles[t.profile[0]].priority == 5
    assert t.milli[1] == 250
    assert t.request(1).models == frozenset({"T4", "A10"})


def test_generic_csv_errors(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("submit,duration,gpus,share\n0,60,1,500\n")
    with pytest.raises(TraceError, match=r"t.csv:2:4: share: a pod asks for whole GPUs"):
        load_trace(path)
    path.write_text("submit,duration,gpus,color\n")
    with pytest.raises(TraceError, match=r"t.csv:1:4: unknown column 'color'"):
        load_trace(path)
    path.write_text("submit,duration,gpus\n0,-5,1\n")
    with pytest.raises(TraceError, match=r"t.csv:2:2: duration: expected a number of seconds"):
        load_trace(path)


def test_jsonl(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"submit": 0, "duration": 60, "gpus": 2, "models": ["A100"], "labels": {"a": "b"}}\n'
        "\n"
        '{"submit": 5, "duration": 10, "share": 500, "qos": "LS"}\n'
    )
    t = load_trace(path)
    assert (t.gpus, t.milli) == ([2, 0], [0, 500])
    path.write_text('{"submit": 0, "duration": 60, "gpus": "two"}\n')
    with pytest.raises(TraceError, match=r"t.jsonl:1:31: gpus: expected an integer, got 'two'"):
        load_trace(path)
    path.write_text('{"submit": 0,\n')
    with pytest.raises(TraceError, match=r"t.jsonl:1:\d+: invalid JSON"):
        load_trace(path)


def test_missing_file_and_column(tmp_path):
    with pytest.raises(TraceError, match="no such file"):
        load_trace(tmp_path / "nope.csv")
    path = tmp_path / "t.csv"
    path.write_text("name,num_gpu\n")
    with pytest.raises(TraceError, match=r"t.csv:1:1: missing column 'gpu_milli'"):
        load_trace(path)


def test_node_specs_and_files(tmp_path):
    nodes = parse_spec("4x8:V100M32,2x4:T4")
    assert [(n.gpus, n.model) for n in nodes] == [(8, "V100M32")] * 4 + [(4, "T4")] * 2
    with pytest.raises(ClusterError, match=r"node spec:1:7: expected COUNTxGPUS"):
        parse_spec("1x8:A,zx4")
    small, _ = load_nodes()
    assert sum(n.gpus for n in small) == 40
    full, _ = load_nodes("openb")
    assert (len(full), sum(n.gpus for n in full)) == (1213, 6212)
    path = tmp_path / "n.csv"
    path.write_text("sn,cpu_milli,memory_mib,gpu,model\nn0,1,1,two,T4\n")
    with pytest.raises(ClusterError, match=r"n.csv:2:4: gpu: expected an integer, got 'two'"):
        load_nodes(str(path))


def test_synthetic_generator():
    spec = parse_synthetic("synthetic:pods=5000,load=1.2,seed=3")
    a, b = generate(spec, 64), generate(spec, 64)
    assert len(a) == 5000
    assert a.submit == b.submit
    assert a.duration == b.duration
    assert a.submit == sorted(a.submit)
    # Offered load close to what was asked: GPU-seconds over the span / cluster GPUs.
    work = sum((g + m / 1000) * d for g, m, d in zip(a.gpus, a.milli, a.duration, strict=True))
    assert 0.9 < work / (a.submit[-1] * 64) / 1.2 < 1.1
    with pytest.raises(TraceError, match=r"synthetic:pods=10,lod=1:1:19: unknown parameter 'lod'"):
        parse_synthetic("synthetic:pods=10,lod=1")
    with pytest.raises(TraceError, match="share: expected a fraction"):
        parse_synthetic("synthetic:share=2")

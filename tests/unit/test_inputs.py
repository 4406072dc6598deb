"""Bounded reading: what no input file may do to burstd (hang it, fill its memory, crash it)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from burstd.inputs import InputError, decode, open_binary, read_bytes, read_text, text_lines


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "rules.yaml"
    os.mkfifo(fifo)
    with pytest.raises(InputError) as e:
        read_text(fifo, limit=100, what="rules file")
    assert str(e.value) == f"{fifo}: is a FIFO (named pipe), not a rules file"


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_a_device_is_refused(device: str) -> None:
    with pytest.raises(InputError, match="is a character device, not a snapshot"):
        read_bytes(device, limit=100, what="snapshot")


def test_missing_directory_and_nul(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no such file$"):
        read_bytes(tmp_path / "nope", limit=10)
    with pytest.raises(InputError, match=r"is a directory, not a trace file$"):
        read_bytes(tmp_path, limit=10, what="trace file")
    with pytest.raises(InputError, match="cannot read"):
        read_bytes("a\0b", limit=10)


def test_a_file_over_its_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(InputError) as e:
        read_bytes(big, limit=1024, what="rules file")
    assert str(e.value) == f"{big}: is 2 KiB, larger than a rules file may be (1 KiB)"
    assert read_bytes(big, limit=2048) == b"x" * 2048


def test_open_binary_leaves_no_descriptor_behind(tmp_path: Path) -> None:
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        with pytest.raises(InputError):
            open_binary(fifo, limit=10)
    assert len(os.listdir("/proc/self/fd")) == before


def test_utf8_errors_have_line_and_column_and_a_bom_is_dropped() -> None:
    with pytest.raises(InputError) as e:
        decode("a: 1\nb: caffè\n".encode("latin-1"), "x.yaml")
    assert str(e.value) == "x.yaml:2:8: not valid UTF-8 (byte 0xe8)"
    assert (e.value.line, e.value.column) == (2, 8)
    assert decode("\ufeffsubmit,duration\n".encode(), "t.csv") == "submit,duration\n"


def test_text_lines_bounds_each_line_and_the_total(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"a,b\n" + b"9" * 5000 + b"\n")
    with open_binary(path, limit=10**6) as f, pytest.raises(InputError) as e:
        list(text_lines(f, str(path), max_line=1000))
    assert e.value.line == 2
    assert "line longer than 1,000 bytes" in str(e.value)
    path.write_bytes(b"a\n" * 1000)
    with open_binary(path, limit=10**6) as f, pytest.raises(InputError, match="more than 100"):
        list(text_lines(f, str(path), max_total=100))


def test_a_gzip_bomb_stops_at_the_cap(tmp_path: Path) -> None:
    """20 MB of one line compresses to 20 KB; reading it stops at the line cap."""
    path = tmp_path / "t.csv.gz"
    with gzip.open(path, "wb") as g:
        for _ in range(20):
            g.write(b"0" * 1_000_000)
    assert path.stat().st_size < 100_000
    with open_binary(path, limit=10**6) as f, pytest.raises(InputError, match="line longer"):
        list(text_lines(f, str(path), gzipped=True))


def test_a_corrupt_gzip_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(b"a,b\n1,2\n" * 100)[:-30])
    with open_binary(path, limit=10**6) as f, pytest.raises(InputError, match="cannot read"):
        list(text_lines(f, str(path), gzipped=True))

"""Reading the files a user hands burstd, with bounds, so no input can hang it or exhaust memory.

Every command reads files named on its command line (rules, snapshots, traces, node lists,
kubeconfigs). Read naively, a FIFO blocks ``open()`` for ever, ``/dev/zero`` fills memory, and a
gzip bomb or a file of one endless line does the same. Here:

* only **regular files** are read: a FIFO, socket or device is refused at once (opened without
  blocking, then checked with ``fstat``);
* every kind of input has a **size cap** (``*_MAX_BYTES`` below, documented in the docs of each
  command); a file over it is refused before it is read, and reading stops at the cap even if
  the file grows meanwhile;
* text is **UTF-8** (a leading byte-order mark is dropped, as spreadsheet programs write one);
  a bad byte is reported as ``file:line:column``;
* line-oriented files are read one **bounded line** at a time (``text_lines``), decompressed
  bytes included.

Errors are ``InputError``: ``str(err)`` is ``file: reason`` (or ``file:line:col: reason``), in
the user's words. This module imports nothing from burstd, so every layer may use it.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import stat
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final, cast

__all__ = [
    "KUBECONFIG_MAX_BYTES",
    "MAX_LINE_BYTES",
    "NODES_MAX_BYTES",
    "RULES_MAX_BYTES",
    "SNAPSHOT_MAX_BYTES",
    "TRACE_MAX_BYTES",
    "InputError",
    "decode",
    "open_binary",
    "read_bytes",
    "read_text",
    "text_lines",
    "write_text",
]

MiB: Final = 1024 * 1024
RULES_MAX_BYTES: Final = 512 * 1024
"""A rules file: hundreds of targets and rules fit in a hundred KB. The YAML parser that keeps
positions reads about 70 KB a CPU second, so this also bounds the time to read one."""
SNAPSHOT_MAX_BYTES: Final = 64 * MiB
"""A snapshot for ``burstd explain``: about half a million pods."""
KUBECONFIG_MAX_BYTES: Final = 4 * MiB
NODES_MAX_BYTES: Final = 16 * MiB
"""A node list CSV: about 300,000 nodes."""
TRACE_MAX_BYTES: Final = 512 * MiB
"""A trace, counted after decompression: millions of pods, read in about a minute."""
MAX_LINE_BYTES: Final = 1 * MiB
"""One line of a trace or node list."""

_BOM: Final = "\ufeff"


class InputError(ValueError):
    """A file that cannot be read as input. ``path`` is the file as the user named it,
    ``reason`` what is wrong (with ``line``:``column``, 1-based, when it is somewhere inside)."""

    def __init__(self, path: str, reason: str, *, line: int = 0, column: int = 0) -> None:
        self.path = path
        self.reason = reason
        self.line = line
        self.column = column
        where = f"{path}:{line}:{column}" if line else path
        super().__init__(f"{where}: {reason}")


def _size(n: int) -> str:
    if n < MiB:
        return f"{n // 1024} KiB" if n >= 1024 and n % 1024 == 0 else f"{n:,} bytes"
    return f"{n // MiB} MiB" if n % MiB == 0 else f"{n / MiB:.1f} MiB"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def open_binary(path: str | Path, *, limit: int, what: str = "file") -> IO[bytes]:
    """``path`` opened for reading as bytes, if it is a regular file of at most ``limit`` bytes.

    Never blocks (a FIFO with no writer is refused, not waited on). Raises ``InputError``.
    """
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(name, "no such file") from None
    except PermissionError:
        raise InputError(name, "permission denied") from None
    except IsADirectoryError:
        raise InputError(name, f"is a directory, not a {what}") from None
    except (OSError, ValueError) as err:
        # ValueError: a path with a NUL byte in it.
        raise InputError(name, f"cannot read: {getattr(err, 'strerror', None) or err}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(name, f"is {_kind(st.st_mode)}, not a {what}")
        if st.st_size > limit:
            raise InputError(
                name, f"is {_size(st.st_size)}, larger than a {what} may be ({_size(limit)})"
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | Path, *, limit: int, what: str = "file") -> bytes:
    """The bytes of the regular file at ``path``: at most ``limit``, else ``InputError``."""
    with open_binary(path, limit=limit, what=what) as f:
        try:
            data = f.read(limit + 1)
        except OSError as err:
            raise InputError(str(path), f"cannot read: {err.strerror or err}") from None
    if len(data) > limit:
        raise InputError(str(path), f"grew past the {_size(limit)} a {what} may be while read")
    return data


def decode(data: bytes, source: str, *, first_line: int = 1) -> str:
    """``data`` as UTF-8 text without a leading byte-order mark; a bad byte raises
    ``InputError`` at its line and column (``first_line`` is the number of the first line)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        before = data[: err.start]
        line = first_line + before.count(b"\n")
        start = before.rfind(b"\n") + 1
        column = len(before[start:].decode("utf-8", "replace")) + 1
        raise InputError(
            source,
            f"not valid UTF-8 (byte 0x{data[err.start]:02x})",
            line=line,
            column=column,
        ) from None
    return text[1:] if text.startswith(_BOM) and first_line == 1 else text


def read_text(path: str | Path, *, limit: int, what: str = "file") -> str:
    """The UTF-8 text of the regular file at ``path`` (see ``read_bytes`` and ``decode``)."""
    return decode(read_bytes(path, limit=limit, what=what), str(path))


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path``, never waiting for a reader: a FIFO nobody reads is
    refused (``OSError`` ENXIO, "no reader"), as is anything else ``open`` refuses."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK, 0o666)
    os.set_blocking(fd, True)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


@contextlib.contextmanager
def _gzip_errors(source: str) -> Iterator[None]:
    try:
        yield
    except (OSError, EOFError, zlib.error) as err:
        # gzip.BadGzipFile is an OSError; a truncated stream ends in EOFError.
        reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        raise InputError(source, f"cannot read: {reason}") from None


def text_lines(
    stream: IO[bytes],
    source: str,
    *,
    gzipped: bool = False,
    max_line: int = MAX_LINE_BYTES,
    max_total: int = TRACE_MAX_BYTES,
) -> Iterator[str]:
    """The lines of ``stream`` as UTF-8 text, newline kept, reading at most ``max_line`` bytes
    a line and ``max_total`` in all (after decompression when ``gzipped``); past either, and
    at a bad byte, raises ``InputError`` naming the line."""
    body = cast(IO[bytes], gzip.GzipFile(fileobj=stream, mode="rb")) if gzipped else stream
    total = 0
    number = 0
    while True:
        with _gzip_errors(source):
            raw = body.readline(max_line + 1)
        if not raw:
            return
        number += 1
        total += len(raw)
        if len(raw) > max_line:
            raise InputError(
                source, f"line longer than {_size(max_line)}", line=number, column=max_line
            )
        if total > max_total:
            raise InputError(source, f"more than {_size(max_total)} of text", line=number, column=1)
        yield decode(raw, source, first_line=number)

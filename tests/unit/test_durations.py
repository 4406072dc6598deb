"""Durations as rules files write them and as reasons print them."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from burstd.model.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("500ms", 0.5),
        ("1h30m", 5400.0),
        ("1d2h3m4s5ms", 93784.005),
        ("1.5h", 5400.0),
        (".5s", 0.5),
        ("90", 90.0),
        ("1.25", 1.25),
        ("0", 0.0),
        ("0s", 0.0),
        (" 5m ", 300.0),
    ],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid duration '': empty; write one like 30s, 5m, 1h30m or 500ms"),
        ("   ", "invalid duration '   ': empty; write one like 30s, 5m, 1h30m or 500ms"),
        ("soon", "invalid duration 'soon': write a number of seconds or number-unit pairs"),
        ("5 m", "invalid duration '5 m': write a number of seconds"),
        ("1h 30m", "invalid duration '1h 30m': write a number of seconds"),
        ("5M", "invalid duration '5M': write a number of seconds"),
        ("1e3", "invalid duration '1e3': write a number of seconds"),
        ("h", "invalid duration 'h': write a number of seconds"),
        ("5mm", "invalid duration '5mm': write a number of seconds"),
        ("30m1h", "invalid duration '30m1h': write each unit once, largest first, like 1h30m"),
        ("1m1m", "invalid duration '1m1m': write each unit once, largest first"),
        ("-5m", "invalid duration '-5m': durations cannot be negative"),
        ("-5", "invalid duration '-5': durations cannot be negative"),
        ("9" * 400, "invalid duration '" + "9" * 37 + "...': too long"),
    ],
)
def test_parse_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^invalid duration") as caught:
        parse_duration(text)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.5, "500ms"),
        (1, "1s"),
        (1.5, "1s500ms"),
        (59, "59s"),
        (90, "1m30s"),
        (3600, "1h"),
        (5400, "1h30m"),
        (86400, "1d"),
        (93784.005, "1d2h3m4s5ms"),
        (0.0004, "0s"),
        (0.0006, "1ms"),
        (-90, "-1m30s"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (math.nan, "nan"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_huge_values_does_not_overflow() -> None:
    assert format_duration(1e308).endswith("d6h13m20s")


@given(st.integers(0, 10**12))
def test_format_then_parse_is_exact_to_the_millisecond(ms: int) -> None:
    seconds = ms / 1000
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.floats(0, 1e9))
def test_format_rounds_to_the_nearest_millisecond(seconds: float) -> None:
    assert abs(parse_duration(format_duration(seconds)) - seconds) <= 0.0005 + 1e-9 * seconds


@given(
    st.fixed_dictionaries(
        {},
        optional={unit: st.integers(0, 999) for unit in ("d", "h", "m", "s", "ms")},
    )
)
def test_parse_then_format_gives_the_canonical_form(parts: dict[str, int]) -> None:
    text = "".join(f"{parts[u]}{u}" for u in ("d", "h", "m", "s", "ms") if u in parts) or "0s"
    seconds = parse_duration(text)
    canonical = format_duration(seconds)
    assert parse_duration(canonical) == seconds
    # The canonical form is a fixed point.
    assert format_duration(parse_duration(canonical)) == canonical


@given(st.text(max_size=30))
def test_parse_raises_only_value_error(text: str) -> None:
    message = ""
    seconds = 0.0
    try:
        seconds = parse_duration(text)
    except ValueError as err:
        message = str(err)
    assert not message or message.startswith("invalid duration ")
    assert math.isfinite(seconds)
    assert seconds >= 0

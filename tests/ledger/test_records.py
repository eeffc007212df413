"""Canonical JSON (RFC 8785 numbers and member order) and the records' entry bytes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from robotaxi.ledger import canonical_json, read_jsonl


def test_rfc8785_example() -> None:
    """RFC 8785 section 3.2.2 (the "numbers" array of its example) and 3.2.3 (UTF-16 member order)."""
    numbers = json.loads("[333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001]")
    assert canonical_json({"numbers": numbers}) == b'{"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27]}'
    # U+1F600 is D83D DE00 in UTF-16, so it sorts before U+FF61 (code point order would swap them).
    assert canonical_json({"\uff61": 1, "\U0001f600": 2, "\u00e9": 3, "b": 4}).decode() == (
        '{"b":4,"\u00e9":3,"\U0001f600":2,"\uff61":1}'
    )
    assert canonical_json({"s": "\u20ac$\x0f\nA'B\"\\/"}) == '{"s":"\u20ac$\\u000f\\nA\'B\\"\\\\/"}'.encode()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (1e-6, "0.000001"),
        (1e16, "10000000000000000"),
        (1e21, "1e+21"),
        (2.0**60, "1152921504606847000"),
        (24.94, "24.94"),
        (5e-324, "5e-324"),
        (2**64, "18446744073709551616"),  # integers stay exact
    ],
)
def test_numbers(value: float, text: str) -> None:
    assert canonical_json({"x": value}) == b'{"x":' + text.encode() + b"}"


def test_same_number_same_bytes(tmp_path: Path) -> None:
    """1, 1.0, 1e0 and 10E-1 are one JSON number: one entry, whoever wrote it."""
    src = tmp_path / "n.jsonl"
    src.write_text('{"n": 1}\n{"n": 1.0}\n{"n": 1e0}\n{"n": 10E-1}\n', encoding="utf-8")
    assert set(read_jsonl(src)) == {b'{"n":1}'}


def test_refused_values() -> None:
    for bad in [math.nan, math.inf, -math.inf]:
        with pytest.raises(ValueError, match="NaN"):
            canonical_json({"x": [bad]})
    with pytest.raises(ValueError, match="keys must be strings"):
        canonical_json({"x": {1: 2}})
    with pytest.raises(ValueError, match="not JSON serializable"):
        canonical_json({"x": {1, 2}})
    with pytest.raises(ValueError, match="JSON object"):
        canonical_json([1])  # type: ignore[arg-type]


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_round_trip_and_are_stable(x: float) -> None:
    entry = canonical_json({"x": x})
    back = json.loads(entry)["x"]  # an int when x is integral: JSON has one number type
    assert float(back) == x
    assert canonical_json({"x": back}) == entry
    assert canonical_json({"x": float(back)}) == entry

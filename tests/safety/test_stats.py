"""Garwood's exact Poisson interval against published values, and miles per disengagement."""

from __future__ import annotations

import math

import pytest

from robotaxi.safety import miles_per_disengagement, poisson_interval

# Exact 95 % limits for a Poisson mean (Garwood 1936; the table in e.g. Ulm 1990, Am. J. Epidemiol. 131(2)).
KNOWN = [
    (0, 0.0, 3.6889),
    (1, 0.0253, 5.5716),
    (2, 0.2422, 7.2247),
    (5, 1.6235, 11.6683),
    (10, 4.7954, 18.3904),
    (20, 12.2165, 30.8884),
]


@pytest.mark.parametrize(("k", "low", "high"), KNOWN)
def test_garwood_interval_matches_the_tables(k: int, low: float, high: float) -> None:
    lo, hi = poisson_interval(k)
    assert lo == pytest.approx(low, abs=5e-5)
    assert hi == pytest.approx(high, abs=5e-5)


def test_miles_per_disengagement_inverts_the_count_interval() -> None:
    m = miles_per_disengagement(10_000.0, 10)
    assert m.estimate == 1_000.0
    assert m.low == pytest.approx(10_000 / 18.3904, rel=1e-4)
    assert m.high == pytest.approx(10_000 / 4.7954, rel=1e-4)
    assert m.contains(1_000.0)
    assert not m.contains(3_000.0)


def test_cruise_2019_figure() -> None:
    # The DMV's 2019 report: Cruise drove 831,040 autonomous miles with 68 disengagements (shared SOURCES.md).
    m = miles_per_disengagement(831_040, 68)
    assert round(m.estimate) == 12_221
    assert m.low < 12_221 < m.high
    assert 9_000 < m.low < 10_000
    assert 15_000 < m.high < 16_500


def test_zero_events_give_an_unbounded_interval() -> None:
    m = miles_per_disengagement(3_689.0, 0)
    assert math.isinf(m.estimate)
    assert math.isinf(m.high)
    assert m.low == pytest.approx(1_000.0, rel=1e-3)
    assert m.as_dict()["ci_high"] is None


@pytest.mark.parametrize(
    ("miles", "k", "message"), [(-1.0, 1, "miles: must be"), (5.0, -1, "count: must be"), (0.0, 3, "zero miles")]
)
def test_bad_input(miles: float, k: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        miles_per_disengagement(miles, k)

"""Rider choice: logit probabilities against hand-computed values, seeded draws, refused quotes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robotaxi.errors import MarketError
from robotaxi.market import RiderChoice

#: Utility 3 for a free instant ride, -0.1 per dollar, -0.2 per minute of wait ($2 per minute of waiting).
RIDERS = RiderChoice(constant=3.0, fare_per_dollar=-0.1, wait_per_minute=-0.2)


def test_probabilities_by_hand() -> None:
    # $20 and 5 min: V = 3 - 2 - 1 = 0 -> 1/2.  $10 and no wait: V = 2 -> 1 / (1 + e^-2).  $60, 15 min: V = -6.
    p = RIDERS.probability([2000, 1000, 6000], [300, 0, 900])
    assert p[0] == pytest.approx(0.5, abs=1e-15)
    assert p[1] == pytest.approx(1 / (1 + math.exp(-2)), rel=1e-12)
    assert p[2] == pytest.approx(1 / (1 + math.exp(6)), rel=1e-12)
    assert RIDERS.utility([2000], [300]).tolist() == pytest.approx([0.0])


def test_probability_is_monotone_and_never_overflows() -> None:
    fares = np.arange(0, 1_000_000, 50_000)
    p = RIDERS.probability(fares, np.zeros_like(fares))
    assert np.all(np.diff(p) <= 0)
    assert p[-1] == pytest.approx(0.0, abs=1e-300)
    assert np.all((p >= 0) & (p <= 1))


def test_draws_are_seeded_and_match_the_probability() -> None:
    n = 200_000
    fares, etas = np.full(n, 1000), np.zeros(n, dtype=np.int64)
    a = RIDERS.accept(fares, etas, np.random.default_rng(42))
    b = RIDERS.accept(fares, etas, np.random.default_rng(42))
    assert (a == b).all()
    assert not (a == RIDERS.accept(fares, etas, np.random.default_rng(43))).all()
    p = 1 / (1 + math.exp(-2))
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(a.mean() - p) < 5 * sigma
    refused = int((~a).sum())  # lost demand, counted by the caller
    assert refused == n - int(a.sum())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"fare_per_dollar": 0.1}, "fare_per_dollar"),
        ({"wait_per_minute": 0.5}, "wait_per_minute"),
        ({"constant": float("inf")}, "constant"),
        ({"constant": True}, "constant"),
    ],
)
def test_bad_coefficients_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RiderChoice(**kwargs)  # type: ignore[arg-type]


def test_bad_quotes_raise() -> None:
    with pytest.raises(MarketError, match="fare_cents"):
        RIDERS.probability([-1], [0])
    with pytest.raises(MarketError, match="eta_s"):
        RIDERS.probability([100, 200], [0])

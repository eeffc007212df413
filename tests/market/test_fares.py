"""Fare schedules: the formula on hand-computed trips, the minimum, the pooled discount and half-up rounding."""

from __future__ import annotations

import numpy as np
import pytest

from robotaxi.errors import MarketError
from robotaxi.market import FareSchedule

#: $2.50 flag fall, $1.20 per km, $0.30 per minute, $7 minimum, 25 % off for pooled riders.
CITY = FareSchedule(base_cents=250, per_km_cents=120, per_minute_cents=30, minimum_cents=700, pooled_discount_bp=2500)


def test_metered_fare_is_base_plus_distance_plus_time() -> None:
    # 5 km and 15 min: 250 + 5 * 120 + 15 * 30 = 1300 cents.
    assert CITY.fare_cents([5000], [900]).tolist() == [1300]


def test_surge_multiplies_the_whole_metered_fare() -> None:
    # 1.5x on 1300 (base included) = 1950.
    assert CITY.fare_cents([5000], [900], surge_bp=15_000).tolist() == [1950]


def test_pooled_discount_applies_to_the_surged_fare_and_rounds_half_up() -> None:
    # 1950 * 0.75 = 1462.5 -> 1463 (half a cent goes up); an unpooled rider on the same ride pays 1950.
    fares = CITY.fare_cents([5000, 5000], [900, 900], surge_bp=15_000, pooled=np.array([True, False]))
    assert fares.tolist() == [1463, 1950]


def test_minimum_is_a_floor_after_surge_and_discount() -> None:
    # 500 m, 1 min: 250 + 60 + 30 = 340 -> 700; pooled and surged it is still at least 700.
    assert CITY.fare_cents([500], [60]).tolist() == [700]
    assert CITY.fare_cents([500], [60], surge_bp=20_000, pooled=True).tolist() == [700]
    # 2 km, 10 min: 250 + 240 + 300 = 790 -> pooled 592.5 -> 593, floored at 700.
    assert CITY.fare_cents([2000], [600], pooled=True).tolist() == [700]


def test_metered_rounding_is_half_up_to_the_cent() -> None:
    per_km = FareSchedule(per_km_cents=1)
    # 0.5 cent -> 1, 0.499 -> 0, 1.5 -> 2 (half up, not half to even).
    assert per_km.metered_cents([500, 499, 1500], [0, 0, 0]).tolist() == [1, 0, 2]
    per_min = FareSchedule(per_minute_cents=1)
    assert per_min.metered_cents([0, 0], [30, 29]).tolist() == [1, 0]
    # 1.234 km at $1.20 = 148.08 cents -> 148.
    assert FareSchedule(per_km_cents=120).metered_cents([1234], [0]).tolist() == [148]


def test_scalars_broadcast_and_an_empty_batch_prices_nothing() -> None:
    assert CITY.fare_cents([5000, 1000], [900, 120], surge_bp=10_000, pooled=False).tolist() == [1300, 700]
    assert CITY.fare_cents(np.array([], dtype=np.int64), np.array([], dtype=np.int64)).size == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"base_cents": -1}, "base_cents"),
        ({"per_km_cents": 2.5}, "per_km_cents"),
        ({"per_minute_cents": True}, "per_minute_cents"),
        ({"minimum_cents": 10_000_000}, "minimum_cents"),
        ({"pooled_discount_bp": 10_000}, "pooled_discount_bp"),
        ({"pooled_discount_bp": -1}, "pooled_discount_bp"),
    ],
)
def test_bad_schedules_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        FareSchedule(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (([-1], [60]), {}, "distance_m"),
        (([100], [-5]), {}, "duration_s"),
        (([100], [1.5]), {}, "duration_s"),
        (([100, 200], [60]), {}, "duration_s"),
        (([100], [60]), {"surge_bp": [-1]}, "surge_bp"),
        (([100], [60]), {"surge_bp": [200_000]}, "10x"),
        (([100], [60]), {"pooled": [1]}, "pooled"),
        (([100, 200], [60, 60]), {"pooled": np.array([True])}, "pooled"),
    ],
)
def test_bad_trips_raise_a_market_error_naming_the_column(
    args: tuple[list[float], list[float]], kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(MarketError, match=field):
        CITY.fare_cents(*args, **kwargs)

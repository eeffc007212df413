"""Surge: hand-computed multipliers, bounds under any counts, smoothing, and the look-up table."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robotaxi.errors import MarketError
from robotaxi.market import SurgeParams, SurgePricer, SurgeTable

#: 1x..3x, surge from one waiting rider per free vehicle, +0.5x per unit of ratio, half-way each interval, 0.1x steps.
PARAMS = SurgeParams(
    interval_s=300, min_bp=10_000, max_bp=30_000, threshold=1.0, sensitivity=0.5, smoothing=0.5, step_bp=1_000
)


def test_multipliers_by_hand() -> None:
    pricer = SurgePricer(PARAMS, n_zones=3)
    # Ratios 0, 3 and 100 (no free vehicle counts as one): targets 1.0 (clipped from 0.5), 2.0 and 3.0 (clipped).
    counts = ([0, 6, 100], [5, 2, 0])
    # Smoothed from 1.0 half-way each interval: 1.5 / 2.0, then 1.75 / 2.5, then 1.875 / 2.75 (rounded to 0.1x
    # half up: 1.8, 1.9, 2.8).
    assert pricer.update(*counts).tolist() == [10_000, 15_000, 20_000]
    assert pricer.update(*counts).tolist() == [10_000, 18_000, 25_000]
    assert pricer.update(*counts).tolist() == [10_000, 19_000, 28_000]
    assert pricer.current_bp.tolist() == [10_000, 19_000, 28_000]
    assert pricer.intervals == 3


def test_no_smoothing_jumps_to_the_target_and_back() -> None:
    pricer = SurgePricer(SurgeParams(smoothing=1.0, step_bp=100), n_zones=1)
    assert pricer.update([9], [3]).tolist() == [20_000]  # ratio 3: 1 + 0.5 * 2
    assert pricer.update([0], [3]).tolist() == [10_000]


def test_smoothing_decays_geometrically_after_a_spike() -> None:
    pricer = SurgePricer(
        SurgeParams(min_bp=10_000, max_bp=50_000, sensitivity=1.0, smoothing=0.5, step_bp=1), n_zones=1
    )
    pricer.update([5], [1])  # target 5.0 (ratio 5: 1 + 4): 1 + 0.5 * 4 = 3.0
    got = [int(pricer.update([0], [1])[0]) for _ in range(4)]
    # The gap to 1.0 halves every interval: 2.0, 1.5, 1.25, 1.125.
    assert got == [20_000, 15_000, 12_500, 11_250]


def test_a_multiplier_below_one_when_min_allows_it() -> None:
    pricer = SurgePricer(SurgeParams(min_bp=8_000, max_bp=20_000, smoothing=1.0, step_bp=100), n_zones=1)
    assert pricer.update([0], [10]).tolist() == [8_000]  # 1 + 0.5 * (0 - 1) = 0.5, clipped to 0.8


def test_neutral_before_any_interval() -> None:
    assert SurgePricer(PARAMS, n_zones=2).current_bp.tolist() == [10_000, 10_000]
    assert SurgeParams(min_bp=12_000, max_bp=20_000).neutral_bp == 12_000


@settings(max_examples=100, deadline=None)
@given(
    lo=st.integers(1_000, 30_000),
    span=st.integers(0, 70_000),
    sensitivity=st.floats(0, 20),
    smoothing=st.floats(0.01, 1.0),
    step=st.integers(1, 10_000),
    counts=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 500)), min_size=1, max_size=30),
)
def test_multipliers_stay_in_bounds_and_move_at_most_smoothing_of_the_range(
    lo: int, span: int, sensitivity: float, smoothing: float, step: int, counts: list[tuple[int, int]]
) -> None:
    hi = min(lo + span, 100_000)
    p = SurgeParams(min_bp=lo, max_bp=hi, sensitivity=sensitivity, smoothing=smoothing, step_bp=step)
    pricer = SurgePricer(p, n_zones=1)
    previous = pricer.smoothed
    for r, v in counts:
        bp = pricer.update([r], [v])
        assert lo <= int(bp[0]) <= hi
        now = pricer.smoothed
        assert lo / 10_000 - 1e-12 <= now[0] <= hi / 10_000 + 1e-12
        assert abs(now[0] - previous[0]) <= smoothing * (hi - lo) / 10_000 + 1e-9
        previous = now


def test_bad_counts_change_nothing() -> None:
    pricer = SurgePricer(PARAMS, n_zones=2)
    pricer.update([4, 0], [1, 1])
    before = pricer.current_bp
    for r, v, field in (
        ([1, -1], [1, 1], "open_requests"),
        ([1, 1], [1], "available_vehicles"),
        ([1.5, 1], [1, 1], "open_requests"),
    ):
        with pytest.raises(MarketError, match=field):
            pricer.update(r, v)
    assert pricer.intervals == 1
    assert pricer.current_bp.tolist() == before.tolist()


def test_table_lookup_by_time_and_zone() -> None:
    pricer = SurgePricer(PARAMS, n_zones=2, start_s=3_600)
    pricer.update([0, 6], [1, 2])  # [1.0, 1.5] over [3600, 3900)
    pricer.update([0, 6], [1, 2])  # [1.0, 1.8] from 3900 on
    table = pricer.table()
    t = [0, 3_600, 3_899, 3_900, 99_999, 3_700]
    z = [1, 1, 1, 1, 1, -1]
    # Before the first interval and outside every zone: neutral; after the last interval: the last row.
    assert table.lookup(t, z).tolist() == [10_000, 15_000, 15_000, 18_000, 18_000, 10_000]
    assert SurgeTable(0, 300, np.empty((0, 2), dtype=np.int64)).lookup([5], [0]).tolist() == [10_000]
    with pytest.raises(MarketError, match="zone"):
        table.lookup([4_000], [2])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"interval_s": 0}, "interval_s"),
        ({"min_bp": 0}, "min"),
        ({"min_bp": 20_000, "max_bp": 15_000}, "min/max"),
        ({"max_bp": 200_000}, "min/max"),
        ({"smoothing": 0.0}, "smoothing"),
        ({"smoothing": 1.5}, "smoothing"),
        ({"sensitivity": -1.0}, "sensitivity"),
        ({"threshold": float("nan")}, "threshold"),
        ({"step_bp": 0}, "step"),
        ({"interval_s": 2.5}, "interval_s"),
    ],
)
def test_bad_surge_parameters_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SurgeParams(**kwargs)  # type: ignore[arg-type]


def test_bad_tables_and_zone_counts() -> None:
    with pytest.raises(MarketError, match="n_zones"):
        SurgePricer(PARAMS, n_zones=0)
    with pytest.raises(MarketError, match="2-d"):
        SurgeTable(0, 300, np.array([10_000]))
    with pytest.raises(MarketError, match="10x"):
        SurgeTable(0, 300, np.array([[0]]))

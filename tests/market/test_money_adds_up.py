"""Money adds up to the cent: fares against an exact rational reference, and every split and account reconciles."""

from __future__ import annotations

from fractions import Fraction
from math import floor

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from robotaxi.fleet import OperatorKind
from robotaxi.market import (
    Commission,
    CostModel,
    FareSchedule,
    OperatorActivity,
    OperatorTerms,
    SurgeTable,
    account,
    price_trips,
)


def half_up(x: Fraction) -> int:
    return floor(x + Fraction(1, 2))


def reference_fare(s: FareSchedule, metres: int, seconds: int, surge_bp: int, pooled: bool) -> int:
    """The documented formula in exact rational arithmetic."""
    metered = half_up(
        Fraction(s.base_cents) + Fraction(s.per_km_cents * metres, 1000) + Fraction(s.per_minute_cents * seconds, 60)
    )
    keep = 10_000 - s.pooled_discount_bp if pooled else 10_000
    return max(s.minimum_cents, half_up(Fraction(metered * surge_bp * keep, 10_000 * 10_000)))


schedules = st.builds(
    FareSchedule,
    base_cents=st.integers(0, 2_000),
    per_km_cents=st.integers(0, 1_000),
    per_minute_cents=st.integers(0, 500),
    minimum_cents=st.integers(0, 5_000),
    pooled_discount_bp=st.integers(0, 9_999),
)
commissions = st.builds(Commission, rate_bp=st.integers(0, 10_000), fixed_cents=st.integers(0, 1_000))
trips = st.lists(
    st.tuples(
        st.integers(0, 80_000),  # metres
        st.integers(0, 7_200),  # seconds
        st.integers(1, 100_000),  # surge bp, up to 10x
        st.booleans(),  # pooled
        st.integers(0, 1),  # operator
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(schedule=schedules, rows=trips)
def test_fares_equal_the_exact_rational_formula(
    schedule: FareSchedule, rows: list[tuple[int, int, int, bool, int]]
) -> None:
    m, s, b, p = (np.array([r[i] for r in rows], dtype=np.int64) for i in range(4))
    got = schedule.fare_cents(m, s, surge_bp=b, pooled=p.astype(bool)).tolist()
    assert got == [reference_fare(schedule, *r[:4]) for r in rows]
    assert all(f >= schedule.minimum_cents for f in got)


@settings(max_examples=150, deadline=None)
@given(
    a=schedules,
    b=schedules,
    ca=st.one_of(st.none(), commissions),
    default=commissions,
    rows=trips,
    service=st.integers(0, 100_000),
)
def test_operator_revenue_plus_commission_equals_rider_payments(
    a: FareSchedule,
    b: FareSchedule,
    ca: Commission | None,
    default: Commission,
    rows: list[tuple[int, int, int, bool, int]],
    service: int,
) -> None:
    terms = [
        OperatorTerms("alpha", OperatorKind.AUTONOMOUS, a, CostModel(per_km_cents=7, per_vehicle_hour_cents=333), ca),
        OperatorTerms("pool", OperatorKind.HUMAN_DRIVEN, b, CostModel(driver_share_bp=7_777)),
    ]
    n = len(rows)
    # One surge zone, one row per 10 minutes: trip i is requested at 60 i seconds.
    surge = SurgeTable(start_s=0, interval_s=600, bp=np.array([[r[2]] for r in rows] or [[10_000]], dtype=np.int64))
    priced = price_trips(
        [r[4] for r in rows],
        [r[0] for r in rows],
        [r[1] for r in rows],
        terms,
        default_commission=default,
        time_s=np.arange(n) * 60,
        zone=0,
        surge=surge,
        pooled=np.array([r[3] for r in rows], dtype=bool),
    )
    assert (priced.commission_cents + priced.operator_cents == priced.fare_cents).all()
    assert (priced.commission_cents >= 0).all()
    assert (priced.operator_cents >= 0).all()
    # The commission follows its documented formula, capped at the fare.
    for k, take in ((0, ca or default), (1, default)):
        rows_k = priced.operator == k
        f = priced.fare_cents[rows_k]
        expected = [min(x, half_up(Fraction(x * take.rate_bp, 10_000)) + take.fixed_cents) for x in f.tolist()]
        assert priced.commission_cents[rows_k].tolist() == expected
    activity = [OperatorActivity(3, service, service // 2, 10_000, 2_500), OperatorActivity(1, service, 0, 0, 0)]
    accounts = account(priced, terms, activity)  # reconciles, or raises
    assert accounts.trips == n
    assert sum(x.revenue_cents + x.commission_cents for x in accounts.operators) == int(priced.fare_cents.sum())
    assert accounts.operator_revenue_cents + accounts.commission_cents == accounts.rider_payments_cents
    for acc in accounts.operators:
        assert sum(acc.revenue_by_hour_cents) == acc.revenue_cents
        assert sum(acc.trips_by_hour) == acc.trips

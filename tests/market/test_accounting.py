"""Per-operator accounts on a crafted table with known answers, and the reconciliation check."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from robotaxi.errors import MarketError, ReconciliationError
from robotaxi.fleet import OperatorKind
from robotaxi.market import (
    Commission,
    CostModel,
    FareSchedule,
    OperatorActivity,
    OperatorTerms,
    PricedTrips,
    account,
    price_trips,
    reconcile,
)

#: An autonomous operator at $1 + $1/km and a human-driver pool at $2/km; the platform takes 20 % + 10 cents.
ALPHA = OperatorTerms(
    "alpha",
    OperatorKind.AUTONOMOUS,
    FareSchedule(base_cents=100, per_km_cents=100),
    CostModel(per_km_cents=10, per_vehicle_hour_cents=50, remote_assistance_per_hour_cents=25),
)
POOL = OperatorTerms(
    "pool", OperatorKind.HUMAN_DRIVEN, FareSchedule(per_km_cents=200), CostModel(driver_share_bp=8_000)
)
TAKE = Commission(rate_bp=2_000, fixed_cents=10)


def crafted() -> PricedTrips:
    # alpha: 2 km at 07:10 -> 300 (commission 70), 5 km at 08:20 -> 600 (130); pool: 1 km at 08:05 -> 200 (50).
    return price_trips(
        [0, 0, 1],
        [2000, 5000, 1000],
        [300, 600, 200],
        [ALPHA, POOL],
        default_commission=TAKE,
        time_s=[7 * 3600 + 600, 8 * 3600 + 1200, 8 * 3600 + 300],
    )


def activity() -> list[OperatorActivity]:
    return [
        OperatorActivity(vehicles=2, service_s=7200, busy_s=3600, driven_m=10_000, empty_m=3_000),
        OperatorActivity(vehicles=1, service_s=3600, busy_s=1800, driven_m=2_000, empty_m=1_000),
    ]


def test_trips_are_priced_per_operator() -> None:
    t = crafted()
    assert t.fare_cents.tolist() == [300, 600, 200]
    assert t.commission_cents.tolist() == [70, 130, 50]
    assert t.operator_cents.tolist() == [230, 470, 150]
    assert t.surge_bp.tolist() == [10_000] * 3


def test_accounts_with_known_answers() -> None:
    acc = account(crafted(), [ALPHA, POOL], activity())
    assert (acc.trips, acc.rider_payments_cents, acc.commission_cents, acc.operator_revenue_cents) == (
        3,
        1100,
        250,
        850,
    )
    a = acc.operator("alpha")
    assert (a.trips, a.rider_payments_cents, a.commission_cents, a.revenue_cents) == (2, 900, 200, 700)
    # 10 km at 10 c = 100, 2 vehicle-hours at 50 c = 100, remote assistance 2 h at 25 c = 50.
    assert a.cost_terms_cents == {
        "distance": 100,
        "vehicle_time": 100,
        "remote_assistance": 50,
        "safety_drivers": 0,
        "drivers": 0,
    }
    assert (a.cost_cents, a.margin_cents, a.margin_pct) == (250, 450, 64.29)
    assert a.revenue_per_vehicle_hour_cents == 350
    assert (a.utilisation_pct, a.empty_km_share_pct, a.trip_share_pct) == (50.0, 30.0, 66.67)
    assert (a.vehicle_hours, a.km_driven, a.mean_fare_cents) == (2.0, 10.0, 450)
    assert a.driver_earnings_cents is None
    assert a.driver_earnings_per_hour_cents is None
    assert a.trips_by_hour[7:9] == [1, 1]
    assert a.revenue_by_hour_cents[7:9] == [230, 470]
    p = acc.operator("pool")
    # Drivers earn 80 % of the pool's 150 cents after commission: 120 in one driver-hour.
    assert (p.revenue_cents, p.cost_cents, p.margin_cents) == (150, 120, 30)
    assert (p.driver_earnings_cents, p.driver_earnings_per_hour_cents) == (120, 120)
    assert p.trip_share_pct == 33.33
    assert p.kind == "human_driven"
    assert acc.to_dict()["operators"][1]["name"] == "pool"
    assert '"commission_cents": 250' in acc.to_json()


def test_an_operator_without_trips_or_hours_has_none_ratios() -> None:
    idle = OperatorActivity(vehicles=1, service_s=0, busy_s=0, driven_m=0, empty_m=0)
    acc = account(crafted(), [ALPHA, POOL, dataclasses.replace(ALPHA, name="gamma")], [*activity(), idle])
    g = acc.operator("gamma")
    assert (g.trips, g.revenue_cents, g.cost_cents, g.margin_pct, g.mean_fare_cents) == (0, 0, 0, None, None)
    assert (g.revenue_per_vehicle_hour_cents, g.utilisation_pct, g.empty_km_share_pct) == (None, None, None)
    with pytest.raises(KeyError):
        acc.operator("nobody")


def test_trips_after_the_last_hour_count_in_it() -> None:
    t = price_trips([0], [1000], [60], [ALPHA], time_s=[30 * 3600])
    acc = account(t, [ALPHA], activity()[:1], hours=24)
    assert acc.operators[0].trips_by_hour[-1] == 1


def test_reconcile_raises_on_money_that_does_not_add_up() -> None:
    acc = account(crafted(), [ALPHA, POOL], activity())
    off_by_a_cent = dataclasses.replace(acc, commission_cents=acc.commission_cents + 1)
    with pytest.raises(ReconciliationError, match="platform"):
        reconcile(off_by_a_cent)
    bad_op = dataclasses.replace(acc.operators[0], revenue_cents=acc.operators[0].revenue_cents - 1)
    with pytest.raises(ReconciliationError, match="alpha"):
        reconcile(dataclasses.replace(acc, operators=(bad_op, acc.operators[1])))
    bad_margin = dataclasses.replace(acc.operators[1], margin_cents=0)
    with pytest.raises(ReconciliationError, match="margin"):
        reconcile(dataclasses.replace(acc, operators=(acc.operators[0], bad_margin)))
    bad_cost = dataclasses.replace(acc.operators[1], cost_cents=1)
    with pytest.raises(ReconciliationError, match="cost"):
        reconcile(dataclasses.replace(acc, operators=(acc.operators[0], bad_cost)))


def test_a_trip_whose_split_does_not_add_up_is_refused() -> None:
    t = crafted()
    with pytest.raises(ReconciliationError, match="row 1"):
        dataclasses.replace(t, operator_cents=t.operator_cents + np.array([0, 1, 0]))


def test_priced_trips_copy_the_callers_arrays() -> None:
    t = crafted()
    fare = t.fare_cents.copy()
    again = dataclasses.replace(t, fare_cents=fare)
    assert fare.flags.writeable
    assert not again.fare_cents.flags.writeable


def test_bad_accounting_input() -> None:
    with pytest.raises(MarketError, match="activity"):
        account(crafted(), [ALPHA, POOL], activity()[:1])
    with pytest.raises(MarketError, match="operator index"):
        account(crafted(), [ALPHA], activity()[:1])
    with pytest.raises(MarketError, match="hours"):
        account(crafted(), [ALPHA, POOL], activity(), hours=0)
    with pytest.raises(MarketError, match="only 1 operators"):
        price_trips([1], [100], [60], [ALPHA])
    with pytest.raises(MarketError, match="distance_m"):
        price_trips([0], [-100], [60], [ALPHA])
    with pytest.raises(MarketError, match="shape"):
        dataclasses.replace(crafted(), pooled=np.array([True]))
    for kwargs, field in (
        ({"busy_s": 8000}, "busy_s"),
        ({"empty_m": 20_000}, "empty_m"),
        ({"service_s": -1}, "service_s"),
        ({"vehicles": 1.5}, "vehicles"),
    ):
        with pytest.raises(ValueError, match=field):
            dataclasses.replace(activity()[0], **kwargs)

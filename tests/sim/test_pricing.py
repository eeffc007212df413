"""Pricing a finished run on a 3x3 grid city (200 m blocks, 20 s each, 30 s dwells): surge counts, activity, fares."""

from __future__ import annotations

import numpy as np
import pytest

from robotaxi.dispatch import PolicyParams, make_policy
from robotaxi.errors import MarketError
from robotaxi.fleet import Fleet, Operator, OperatorKind
from robotaxi.market import Commission, CostModel, FareSchedule, OperatorTerms, Pricing, SurgeParams, SurgeSettings
from robotaxi.network import RoadNetwork, Router
from robotaxi.sim import SimParams, Simulator
from robotaxi.sim.pricing import available_vehicles_at, open_requests_at, operator_activity, price_run
from robotaxi.sim.result import SimResult

from .helpers import random_requests, requests_on

#: Two zones: nodes 5, 7 and 8 (the north-east corner) are zone 1, the rest zone 0.
ZONES = np.array([0, 0, 0, 0, 0, 1, 0, 1, 1], dtype=np.int32)
ALPHA = OperatorTerms(
    "alpha",
    OperatorKind.AUTONOMOUS,
    FareSchedule(base_cents=100, per_km_cents=100, per_minute_cents=60),
    CostModel(per_km_cents=50, per_vehicle_hour_cents=100),
)
POOL = OperatorTerms("pool", OperatorKind.HUMAN_DRIVEN, FareSchedule(per_km_cents=200, minimum_cents=150))


def run(grid3: RoadNetwork, policy: str) -> SimResult:
    """Vehicle 0 (alpha, autonomous) at node 0, vehicle 1 (pool, human) at node 8; r0 2->8 and r1 6->0 at t=10,
    r2 4->0 at t=200 (see tests/sim/test_simulator.py for the exact times under ``immediate``)."""
    fleet = Fleet.build(
        (
            Operator("alpha", 1, start_nodes=(0,)),
            Operator("pool", 1, kind=OperatorKind.HUMAN_DRIVEN, start_nodes=(8,)),
        ),
        grid3,
        np.random.default_rng(0),
    )
    reqs = requests_on(grid3, [10, 10, 200], [2, 6, 4], [8, 0, 0])
    policy_ = make_policy(policy, PolicyParams(batch_seconds=30))  # type: ignore[arg-type]
    return Simulator(Router(grid3), fleet, reqs, policy_, SimParams(end_s=3600)).run()


def test_open_requests_and_free_vehicles_at_interval_starts(grid3: RoadNetwork) -> None:
    b = np.arange(0, 400, 20, dtype=np.int64)
    res = run(grid3, "immediate")
    # Immediate assigns on arrival: no request is ever open at a boundary.
    assert not open_requests_at(res, ZONES, 2, b, 600).any()
    free = available_vehicles_at(res, ZONES, 2, b).T
    # Both free at 0; both busy from 10 until their trip_end at 150 (vehicle 0 at node 8, zone 1; vehicle 1 at
    # node 0, zone 0); vehicle 1 reserved again at 200 and free at node 0 from 340.
    assert free[0].tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]
    assert free[1].tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    # Batches every 30 s: r0 and r1 (pickups at nodes 2 and 6, zone 0) wait from 10 to 30, r2 from 200 to 210.
    opened = open_requests_at(run(grid3, "batch"), ZONES, 2, b, 600).T
    assert opened[0].tolist() == [0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert not opened[1].any()


def test_operator_activity(grid3: RoadNetwork) -> None:
    alpha, pool = operator_activity(run(grid3, "immediate"))
    # alpha: one trip (400 m to the pickup, 400 m ride, busy 10..150); pool: two trips, busy 10..150 and 200..340.
    assert (alpha.vehicles, alpha.service_s, alpha.busy_s, alpha.driven_m, alpha.empty_m) == (1, 3600, 140, 800, 400)
    assert (pool.vehicles, pool.service_s, pool.busy_s, pool.driven_m, pool.empty_m) == (1, 3600, 280, 1600, 800)


def test_price_run_known_fares_and_accounts(grid3: RoadNetwork) -> None:
    res = run(grid3, "immediate")
    market = price_run(res, Pricing(commission=Commission(rate_bp=1000)), (ALPHA, POOL))
    # Each ride is 400 m in 40 s: alpha 100 + 40 + 40 = 180; pool 80, raised to its 150 minimum. 10 % commission.
    assert market.trips.fare_cents.tolist() == [180, 150, 150]
    assert market.trips.commission_cents.tolist() == [18, 15, 15]
    assert market.fare_by_request(3).tolist() == [180, 150, 150]
    a, p = market.accounts.operators
    assert (a.trips, a.revenue_cents, p.trips, p.revenue_cents) == (1, 162, 2, 270)
    # alpha: 0.8 km at 50 c = 40, one vehicle-hour at 100 c = 100.
    assert (a.cost_cents, a.margin_cents) == (140, 22)
    assert market.surge is None
    assert market.fares_table(res, ("alpha", "pool")).column("fare_cents").to_pylist() == [180, 150, 150]


def test_price_run_with_surge_from_the_runs_own_state(grid3: RoadNetwork) -> None:
    res = run(grid3, "batch")
    surge = SurgeSettings(SurgeParams(interval_s=20, sensitivity=1.0, smoothing=1.0, step_bp=100))
    pricing = Pricing(surge=surge)
    market = price_run(res, pricing, (ALPHA, POOL), zone_of_node=ZONES, zone_names=("south-west", "north-east"))
    assert market.surge is not None
    # At 0 zone 0 has one free vehicle and no waiting rider (1.0x); at 20 two riders wait and no vehicle is free:
    # ratio 2, 1 + (2 - 1) = 2.0x. r0 and r1 were requested at 10 (the interval of 0), r2 at 200: zone 0 then has
    # one waiting rider (r2 itself) and one free vehicle: 1.0x.
    assert market.surge.bp[:2, 0].tolist() == [10_000, 20_000]
    assert market.trips.surge_bp.tolist() == [10_000, 10_000, 10_000]
    assert market.zone_names == ("south-west", "north-east")


def test_price_run_refuses_terms_that_do_not_match_the_fleet(grid3: RoadNetwork) -> None:
    with pytest.raises(MarketError, match="operators"):
        price_run(run(grid3, "immediate"), Pricing(), (ALPHA,))


@pytest.mark.parametrize("policy", ["batch", "pool"])
def test_random_runs_reconcile(grid3: RoadNetwork, policy: str) -> None:
    net = grid3
    fleet = Fleet.build(
        (Operator("alpha", 3), Operator("pool", 2, kind=OperatorKind.HUMAN_DRIVEN)), net, np.random.default_rng(1)
    )
    reqs = random_requests(net, 80, 3600, seed=5)
    res = Simulator(Router(net), fleet, reqs, make_policy(policy), SimParams(end_s=3600)).run()  # type: ignore[arg-type]
    pooled_terms = (
        ALPHA,
        OperatorTerms("pool", OperatorKind.HUMAN_DRIVEN, POOL.fares, CostModel(driver_share_bp=7000)),
    )
    surge = SurgeSettings(SurgeParams(interval_s=120))
    market = price_run(
        res,
        Pricing(commission=Commission(2000, 30), surge=surge),
        pooled_terms,
        zone_of_node=ZONES,
        zone_names=("a", "b"),
    )
    acc = market.accounts
    assert acc.trips == int(res.served.sum())
    assert acc.operator_revenue_cents + acc.commission_cents == acc.rider_payments_cents
    assert sum(o.trips for o in acc.operators) == acc.trips
    assert (market.trips.fare_cents[market.trips.operator == 1] >= 150).all()  # the pool's minimum


def test_report_money_section(grid3: RoadNetwork) -> None:
    from robotaxi.sim.report_market import account_rows, market_section, money

    assert (money(123456), money(-5), money(7, "EUR"), money(100, "CHF"), money(None)) == (
        "$1,234.56",
        "-$0.05",
        "€0.07",
        "1.00 CHF",
        "-",
    )
    market = price_run(run(grid3, "immediate"), Pricing(commission=Commission(rate_bp=1000)), (ALPHA, POOL))
    rows = dict(account_rows(market.accounts))
    assert rows["trips"] == ["1", "2", "3"]
    assert rows["rider payments"] == ["$1.80", "$3.00", "$4.80"]
    assert rows["margin"] == ["$0.22", "$2.70", "$2.92"]
    html = market_section(market)
    assert "<th>alpha</th><th>pool</th><th>all operators</th>" in html
    assert "$4.32 + platform commission $0.48 = rider payments $4.80" in html
    assert html.count("data:image/png;base64,") == 1  # trips and revenue by hour (no surge table)


def test_a_run_without_trips_prices_nothing(grid3: RoadNetwork) -> None:
    """One request from the far corner with a 5 s max wait is rejected: no trip, no leg, zero money, surge neutral."""
    from robotaxi.sim.report_market import market_section

    fleet = Fleet.build((Operator("alpha", 1, start_nodes=(0,)),), grid3, np.random.default_rng(0))
    reqs = requests_on(grid3, [10], [8], [0], max_wait_s=[5])
    res = Simulator(Router(grid3), fleet, reqs, make_policy("immediate"), SimParams(end_s=600)).run()
    assert len(res.legs) == 0
    surge = SurgeSettings(SurgeParams())
    market = price_run(
        res, Pricing(surge=surge), (ALPHA,), zone_of_node=np.zeros(9, dtype=np.int64), zone_names=("all",)
    )
    assert market.accounts.trips == 0
    assert market.accounts.rider_payments_cents == 0
    assert market.accounts.operators[0].mean_fare_cents is None
    assert market.surge is not None
    assert market.surge.bp.tolist() == [[10_000]]
    assert "rider payments $0.00" in market_section(market)


def test_idle_time_after_the_window_is_not_costed(grid3: RoadNetwork) -> None:
    """Window 0-100 s, one request at 10 s (2 -> 8) for vehicle 0 (busy 10-150); the run ends at its trip_end, 150.

    Vehicle 0: 10 s free + 90 s busy inside the window + 50 s busy after it = 150 s in service, 140 busy. Vehicle 1
    idles: 100 s inside the window; its 50 idle seconds after the window (until the run ends) are not counted.
    """
    fleet = Fleet.build(
        (Operator("alpha", 1, start_nodes=(0,)), Operator("pool", 1, kind=OperatorKind.HUMAN_DRIVEN, start_nodes=(8,))),
        grid3,
        np.random.default_rng(0),
    )
    reqs = requests_on(grid3, [10], [2], [8])
    res = Simulator(Router(grid3), fleet, reqs, make_policy("immediate"), SimParams(end_s=100)).run()
    assert res.last_event_s == 150
    alpha, pool = operator_activity(res)
    assert (alpha.service_s, alpha.busy_s) == (150, 140)
    assert (pool.service_s, pool.busy_s) == (100, 0)

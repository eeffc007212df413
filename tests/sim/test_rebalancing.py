"""Rebalancing inside the simulator: a crafted evening, where the fleet sits at one end of town and demand rises at
the other, recovers service; repositioning is reported apart from pickup driving."""

from __future__ import annotations

from typing import Any

import numpy as np

from robotaxi.dispatch import REPOSITION, EngineParams, PolicyName, Rebalancing, make_policy
from robotaxi.dispatch.rebalance import RateTableForecast, RebalanceParams, ZoneFlowRebalancer, Zoning
from robotaxi.fleet import Fleet, Operator
from robotaxi.network import Router, grid_city
from robotaxi.sim import SimParams, Simulator, compute_kpis

from .helpers import requests_on


def _evening(
    rebalance: bool, *, unassigned: bool = False, blind: bool = False, policy: PolicyName = "batch"
) -> tuple[float, float, float]:
    """A 12 x 12 grid (200 m blocks, 20 s each). Eight cars parked in the south-west corner; from 18:00 riders ask
    for short trips in the north-east corner, one every 40 s, each waiting at most 3 min. The corner is 22 blocks
    (440 s) from the cars: without rebalancing nobody there can be reached in time."""
    net = grid_city(12, 12)
    router = Router(net, workers=1)
    corner = [r * 12 + c for r in range(9, 12) for c in range(9, 12)]
    rng = np.random.default_rng(5)
    t = 18 * 3600 + np.arange(0, 3600, 40)
    o = rng.choice(corner, t.size)
    d = np.asarray([corner[(corner.index(x) + 4) % len(corner)] for x in o])
    reqs = requests_on(net, t.tolist(), o.tolist(), d.tolist())
    fleet = Fleet.build((Operator("acme", 8, start_nodes=(0, 1, 12, 13, 2, 24, 14, 26)),), net, rng)
    reb = None
    if rebalance:
        zoning = Zoning.grid(net, router, cell_m=800.0)
        forecast = RateTableForecast.from_requests(zoning, reqs.o_node, reqs.time_s, n_days=1.0, timezone="UTC")
        if blind:  # a forecast that expects nobody: the zone flow moves no one
            forecast = RateTableForecast(np.zeros((zoning.n_zones, 24)), "UTC")
        params = RebalanceParams(
            interval_s=300, horizon_s=1800, max_share=0.5, max_travel_s=1200, unassigned_targets=unassigned
        )
        reb = Rebalancing(ZoneFlowRebalancer(params), zoning, forecast, horizon_s=1800)
    sim = Simulator(
        router, fleet, reqs, make_policy(policy), SimParams(start_s=17 * 3600, end_s=19 * 3600),
        EngineParams(max_wait_s=180), rebalancing=reb,
    )  # fmt: skip
    k = compute_kpis(sim.run())
    return k.served_pct, k.vehicle_km_rebalancing, k.vehicle_km_empty


def test_a_crafted_evening_recovers_service_with_rebalancing() -> None:
    served_off, rebal_km_off, _ = _evening(rebalance=False)
    served_on, rebal_km_on, empty_on = _evening(rebalance=True)
    assert served_off < 10  # the fleet is out of reach
    assert served_on > 80  # moved ahead of the demand, it serves the evening
    assert rebal_km_off == 0
    assert rebal_km_on > 0  # repositioning is counted apart from pickup driving
    assert empty_on < rebal_km_on


def test_idle_vehicles_sent_to_unassigned_requests_serve_the_evening() -> None:
    """With a forecast that expects nobody, the zone flow moves no one; sending idle vehicles to the pickups left
    unassigned (Alonso-Mora et al.; under ``pool`` requests out of reach wait in the pool until their deadline)
    brings them to the corner, and the later riders there are served."""
    served_blind, rebal_km_blind, _ = _evening(rebalance=True, blind=True, policy="pool")
    served_sent, rebal_km_sent, _ = _evening(rebalance=True, blind=True, unassigned=True, policy="pool")
    assert served_blind < 10
    assert rebal_km_blind == 0
    assert served_sent > 60
    assert rebal_km_sent > 0


def test_rebalancing_stops_once_the_window_is_over_and_every_rider_is_picked_up() -> None:
    """A forecast that expects riders every hour (north-east corner at even hours, south-west at odd ones) would
    keep moving idle cars as long as the engine gets clock ticks. The riders come from 18:00 to 19:00 only; the
    last one is still riding after 19:00. Past the window's end, with no request left open, the engine gets no
    more ticks: no car is repositioned any more and the run ends with the last drop-off (with thousands of cars,
    one always on the move, runs used to go on repositioning for hours: an idle tail that diluted the KPIs)."""
    from robotaxi.dispatch import Tick

    net = grid_city(12, 12)
    router = Router(net, workers=1)
    ne = [r * 12 + c for r in range(9, 12) for c in range(9, 12)]
    rng = np.random.default_rng(5)
    t = [*(18 * 3600 + np.arange(0, 3540, 120)).tolist(), 18 * 3600 + 3590]
    o = [*rng.choice(ne, len(t) - 1).tolist(), 143]
    d = [*(ne[(ne.index(x) + 4) % len(ne)] for x in o[:-1]), 0]  # the last rider crosses the town: ~8 min
    reqs = requests_on(net, t, o, d)
    fleet = Fleet.build((Operator("acme", 4, start_nodes=(0, 1, 12, 13)),), net, rng)
    zoning = Zoning.grid(net, router, cell_m=800.0)
    rates = np.zeros((zoning.n_zones, 24))
    rates[int(zoning.zone_of_node[143]), 0::2] = 20.0
    rates[int(zoning.zone_of_node[0]), 1::2] = 20.0
    params = RebalanceParams(interval_s=300, horizon_s=1800, max_share=0.5, max_travel_s=1200)
    reb = Rebalancing(ZoneFlowRebalancer(params), zoning, RateTableForecast(rates, "UTC"), horizon_s=1800)
    end = 19 * 3600
    sim = Simulator(
        router, fleet, reqs, make_policy("batch"), SimParams(start_s=17 * 3600, end_s=end),
        EngineParams(max_wait_s=600), rebalancing=reb,
    )  # fmt: skip
    handle = sim.engine.handle
    late_ticks: list[int] = []

    def spy(event: Any) -> Any:
        if isinstance(event, Tick) and event.time_s - sim.epoch0 > end and not sim.engine.requests.open.size:
            late_ticks.append(event.time_s - sim.epoch0)
        return handle(event)

    sim.engine.handle = spy  # type: ignore[method-assign]
    res = sim.run()
    k = compute_kpis(res)
    assert k.served == len(t)
    last_dropoff = int(np.nanmax(res.outcomes.dropoff_s))
    assert last_dropoff > end + 240  # the last rider was still on board well after the window
    assert k.vehicle_km_rebalancing > 0  # the forecast did move cars inside the window
    assert late_ticks == []
    legs = res.legs
    assert not ((legs.kind == REPOSITION) & (legs.start_s > end)).any()
    assert k.last_event_s <= last_dropoff + 30  # the drop-off's dwell, then the end of service

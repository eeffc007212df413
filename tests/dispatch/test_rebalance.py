"""Rebalancing: zonings, demand forecasts and the zone-flow rebalancer.

Most cases use grid cities (200 m blocks at 36 km/h, 20 s per block). With ``cell_m=990`` a grid zoning puts
exactly 5 x 5 nodes in each cell (the projected block is a little under 200 m, so 1000 m cells would be uneven),
and each cell's centre is its middle node.
"""

from __future__ import annotations

import json
import math
import pickle
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import ArrayLike, NDArray
from shapely.geometry import shape

from robotaxi.dispatch.rebalance import (
    Moves,
    MovingAverageForecast,
    RateTableForecast,
    RebalanceParams,
    RebalanceView,
    ZoneFlowRebalancer,
    Zoning,
)
from robotaxi.errors import DispatchError
from robotaxi.network import RoadNetwork, Router, grid_city, load_network
from tests.conftest import shared_file

I32 = NDArray[np.int32]
NO_ONE = np.empty(0, dtype=np.int32)


@pytest.fixture(scope="module")
def city20() -> tuple[RoadNetwork, Router, Zoning]:
    """A 20 x 20 grid city in 4 x 4 zones of 5 x 5 nodes; zone ``4 * row + col`` from the south-west."""
    net = grid_city(20, 20)
    travel = Router(net, workers=1)
    return net, travel, Zoning.grid(net, travel, cell_m=990.0)


@pytest.fixture(scope="module")
def line20() -> tuple[RoadNetwork, Router, Zoning]:
    """A 1 x 20 line city in 4 zones of 5 nodes (centres 2, 7, 12, 17; 100 s between neighbouring centres)."""
    net = grid_city(1, 20)
    travel = Router(net, workers=1)
    return net, travel, Zoning.grid(net, travel, cell_m=990.0)


def view(node: ArrayLike, expected: ArrayLike, *, fleet: int, soon: ArrayLike = NO_ONE, now: int = 0) -> RebalanceView:
    """Vehicles 0..n-1 at ``node``."""
    n = np.asarray(node).shape[0]
    return RebalanceView(
        now,
        np.arange(n, dtype=np.int32),
        np.asarray(node, dtype=np.int32),
        np.asarray(soon, dtype=np.int32),
        fleet,
        np.asarray(expected, dtype=np.float64),
    )


# ---------------------------------------------------------------------------------------------------- zoning
def test_grid_zoning_cells_and_centres(city20: tuple[RoadNetwork, Router, Zoning]) -> None:
    _, _, z = city20
    assert z.n_zones == 16
    r, c = np.divmod(np.arange(400), 20)
    assert z.zone_of_node.tolist() == ((r // 5) * 4 + c // 5).tolist()
    assert z.names[:5] == ("r0c0", "r0c1", "r0c2", "r0c3", "r1c0")
    # The middle node of each 5 x 5 block: row 5i+2, column 5j+2.
    zr, zc = np.divmod(np.arange(16), 4)
    assert z.center_node.tolist() == ((5 * zr + 2) * 20 + 5 * zc + 2).tolist()
    assert not z.zone_of_node.flags.writeable


def test_zoning_validates_its_fields() -> None:
    with pytest.raises(ValueError, match="center_node"):
        Zoning(np.array([0, 0, 1, 1]), np.array([0, 1]), ("a", "b"))  # node 1 is in zone 0, not 1
    with pytest.raises(ValueError, match="names"):
        Zoning(np.array([0, 0, 1, 1]), np.array([0, 2]), ("a",))
    with pytest.raises(ValueError, match="zone_of_node"):
        Zoning(np.array([0, 0, 2, -1]), np.array([0, 2]), ("a", "b"))
    with pytest.raises(ValueError, match="cell_m"):
        Zoning.grid(grid_city(2, 2), Router(grid_city(2, 2), workers=1), cell_m=0.0)


# ---------------------------------------------------------------------------------------------------- the rebalancer
def test_vehicles_piled_in_one_corner_go_to_the_opposite_corner(
    city20: tuple[RoadNetwork, Router, Zoning],
) -> None:
    """25 idle vehicles, one on each node of the SW zone; demand only in the NE zone; fleet 100, 10 % may move."""
    _, travel, z = city20
    nodes = np.flatnonzero(z.zone_of_node == 0)
    expected = np.zeros(16)
    expected[15] = 5.0
    moves = ZoneFlowRebalancer().rebalance(view(nodes, expected, fleet=100), z, travel)
    assert moves.vehicle.shape[0] == 10
    assert set(moves.node.tolist()) == {int(z.center_node[15])}
    # The 10 nearest the NE centre: the nodes with row + column >= 5 in the SW block.
    r, c = np.divmod(nodes, 20)
    assert moves.vehicle.tolist() == np.flatnonzero(r + c >= 5).tolist()
    everyone = ZoneFlowRebalancer(RebalanceParams(max_share=1.0)).rebalance(view(nodes, expected, fleet=25), z, travel)
    assert everyone.vehicle.tolist() == list(range(25))


def test_idle_vehicles_go_to_unassigned_pickups_first(city20: tuple[RoadNetwork, Router, Zoning]) -> None:
    """With ``unassigned_targets``, idle vehicles go to the pickups the last decision left unassigned (each pickup
    one vehicle, the least total time), and the zone flow moves the others within what is left of the share
    limit; without it, or without waiting requests, the moves are the zone flow's alone."""
    _, travel, z = city20
    nodes = np.flatnonzero(z.zone_of_node == 0)  # 25 idle vehicles in the SW zone
    expected = np.zeros(16)
    expected[15] = 5.0  # demand expected in the NE zone
    waiting = np.asarray([399, 0, 200], dtype=np.int32)  # NE corner, SW corner (a vehicle stands there), (10, 0)
    base = view(nodes, expected, fleet=100)
    with_waiting = RebalanceView(0, base.vehicle, base.node, NO_ONE, 100, expected, waiting_node=waiting)
    off = ZoneFlowRebalancer().rebalance(with_waiting, z, travel)
    plain = ZoneFlowRebalancer().rebalance(base, z, travel)
    assert off.vehicle.tolist() == plain.vehicle.tolist()
    assert off.node.tolist() == plain.node.tolist()
    on = ZoneFlowRebalancer(RebalanceParams(unassigned_targets=True, max_travel_s=1800))
    moves = on.rebalance(with_waiting, z, travel)
    target = dict(zip(moves.vehicle.tolist(), moves.node.tolist(), strict=True))
    # Vehicle 0 stands on node 0 (a waiting pickup): counted, not moved. The two others get the nearest vehicles.
    assert 0 not in target
    r, c = np.divmod(nodes, 20)
    to_ne = [v for v, n in target.items() if n == 399]
    to_west = [v for v, n in target.items() if n == 200]
    assert to_ne == [int(np.flatnonzero((r == 4) & (c == 4))[0])]
    # The least total time (30 + 6 blocks): (4, 4) to the NE corner, (4, 0) to (10, 0).
    assert to_west == [int(np.flatnonzero((r == 4) & (c == 0))[0])]
    # The share limit (10 of 100) is shared: 3 to pickups (one without a move), 7 by the zone flow to the NE.
    assert len(target) == 2 + 7
    assert sum(n == int(z.center_node[15]) for n in target.values()) == 7
    # A pickup too far for max_travel_s gets nobody; the answer does not depend on the view's order.
    near_only = ZoneFlowRebalancer(RebalanceParams(unassigned_targets=True, max_travel_s=300))
    assert 399 not in near_only.rebalance(with_waiting, z, travel).node.tolist()
    flipped = RebalanceView(0, base.vehicle[::-1], base.node[::-1], NO_ONE, 100, expected, waiting_node=waiting[::-1])
    again = on.rebalance(flipped, z, travel)
    assert again.vehicle.tolist() == moves.vehicle.tolist()
    assert again.node.tolist() == moves.node.tolist()


def test_unassigned_targets_respect_the_share_limit(city20: tuple[RoadNetwork, Router, Zoning]) -> None:
    """More waiting pickups than the share limit allows: only the shortest moves, at most the limit."""
    _, travel, z = city20
    nodes = np.arange(0, 400, 7, dtype=np.int32)[:40]
    waiting = np.arange(3, 400, 11, dtype=np.int32)
    v = RebalanceView(0, np.arange(40, dtype=np.int32), nodes, NO_ONE, 50, np.ones(16), waiting_node=waiting)
    moves = ZoneFlowRebalancer(RebalanceParams(unassigned_targets=True, max_share=0.1)).rebalance(v, z, travel)
    assert moves.vehicle.size <= 5
    assert set(moves.node.tolist()) <= set(waiting.tolist())
    bad = RebalanceView(0, v.vehicle, v.node, NO_ONE, 50, np.ones(16), waiting_node=np.asarray([400], np.int32))
    with pytest.raises(DispatchError, match="waiting_node"):
        ZoneFlowRebalancer(RebalanceParams(unassigned_targets=True)).rebalance(bad, z, travel)
    with pytest.raises(ValueError, match="unassigned_targets"):
        RebalanceParams(unassigned_targets=1)  # type: ignore[arg-type]


def test_max_travel_limits_arcs_and_vehicles(city20: tuple[RoadNetwork, Router, Zoning]) -> None:
    """Centre to centre is 600 s. Under that, nothing moves; at 600 s only vehicles within 600 s of the target."""
    _, travel, z = city20
    nodes = np.flatnonzero(z.zone_of_node == 0)
    expected = np.zeros(16)
    expected[15] = 5.0
    v = view(nodes, expected, fleet=1000)
    assert ZoneFlowRebalancer(RebalanceParams(max_travel_s=599)).rebalance(v, z, travel).vehicle.size == 0
    moves = ZoneFlowRebalancer(RebalanceParams(max_travel_s=600)).rebalance(v, z, travel)
    r, c = np.divmod(nodes, 20)
    assert moves.vehicle.tolist() == np.flatnonzero(20 * (34 - r - c) <= 600).tolist()


def test_no_moves_when_supply_matches_demand(city20: tuple[RoadNetwork, Router, Zoning]) -> None:
    _, travel, z = city20
    reb = ZoneFlowRebalancer(RebalanceParams(max_share=1.0))
    # Two idle vehicles per zone, equal demand: balanced.
    balanced = np.repeat(z.center_node, 2)
    assert reb.rebalance(view(balanced, np.full(16, 3.0), fleet=32), z, travel).vehicle.size == 0
    # Demand twice as high in zone 5, which has two idle and two soon-free vehicles: still balanced.
    expected = np.full(16, 1.0)
    expected[5] = 2.0
    assert reb.rebalance(view(balanced, expected, fleet=34, soon=[5, 5, -1]), z, travel).vehicle.size == 0
    # Without the soon-free vehicles zone 5 is short, and gets vehicles.
    assert reb.rebalance(view(balanced, expected, fleet=34), z, travel).vehicle.size > 0


def test_no_moves_without_expected_demand(city20: tuple[RoadNetwork, Router, Zoning]) -> None:
    _, travel, z = city20
    nodes = np.flatnonzero(z.zone_of_node == 0)
    assert ZoneFlowRebalancer().rebalance(view(nodes, np.zeros(16), fleet=100), z, travel).vehicle.size == 0
    assert ZoneFlowRebalancer().rebalance(view(NO_ONE, np.ones(16), fleet=100), z, travel).vehicle.size == 0


def test_flow_is_maximal_not_greedy(line20: tuple[RoadNetwork, Router, Zoning]) -> None:
    """Surplus in zones 1 and 3, deficit in 0 and 2, 100 s apart, max travel 100 s. Zone 1 could fill zone 2, but
    then zone 3 has nowhere to go: the flow sends 1 -> 0 and 3 -> 2."""
    _, travel, z = line20
    v = view([7, 7, 17, 17], np.ones(4), fleet=4)
    moves = ZoneFlowRebalancer(RebalanceParams(max_share=1.0, max_travel_s=100)).rebalance(v, z, travel)
    assert dict(zip(moves.vehicle.tolist(), moves.node.tolist(), strict=True)) == {0: 2, 2: 12}


def test_a_vehicle_near_the_target_centre_is_not_moved() -> None:
    """Zones {0..4} (centre 4) and {5..9} (centre 5): the vehicle at node 5 is 20 s from zone 0's centre, so it
    already serves zone 0's deficit and stays; no other vehicle is sent instead."""
    net = grid_city(1, 10)
    travel = Router(net, workers=1)
    z = Zoning(np.repeat(np.arange(2), 5), np.array([4, 5]), ("west", "east"))
    v = view([9, 5], np.ones(2), fleet=2)
    assert ZoneFlowRebalancer(RebalanceParams(max_share=1.0)).rebalance(v, z, travel).vehicle.size == 0
    far = view([9, 8], np.ones(2), fleet=2)
    moves = ZoneFlowRebalancer(RebalanceParams(max_share=1.0)).rebalance(far, z, travel)
    assert moves.vehicle.tolist() == [1]
    assert moves.node.tolist() == [4]


def test_view_that_does_not_fit_the_zoning_is_refused(city20: tuple[RoadNetwork, Router, Zoning]) -> None:
    _, travel, z = city20
    with pytest.raises(DispatchError, match="16"):
        ZoneFlowRebalancer().rebalance(view([0], np.ones(3), fleet=10), z, travel)
    with pytest.raises(DispatchError, match="node"):
        ZoneFlowRebalancer().rebalance(view([400], np.ones(16), fleet=10), z, travel)
    with pytest.raises(DispatchError, match="soon_free_zone"):
        ZoneFlowRebalancer().rebalance(view([0], np.ones(16), fleet=10, soon=[16]), z, travel)


def _quota(supply: NDArray[np.int64], expected: NDArray[np.float64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = supply.sum() * expected / expected.sum()
    return out


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    n_vehicles=st.integers(0, 60),
    max_share=st.sampled_from([0.05, 0.1, 0.5, 1.0]),
    max_travel_s=st.sampled_from([60, 200, 400, 900]),
    extra_fleet=st.integers(0, 100),
)
def test_rebalancer_invariants(
    city20: tuple[RoadNetwork, Router, Zoning],
    data: st.DataObject,
    n_vehicles: int,
    max_share: float,
    max_travel_s: int,
    extra_fleet: int,
) -> None:
    """Flows go from surplus to deficit zones only, within the share and travel limits, each vehicle at most once,
    and the answer depends on the inputs only (not on the order of the view's rows)."""
    _, travel, z = city20
    ids = data.draw(st.lists(st.integers(0, 500), min_size=n_vehicles, max_size=n_vehicles, unique=True))
    nodes = data.draw(st.lists(st.integers(0, 399), min_size=n_vehicles, max_size=n_vehicles))
    soon = data.draw(st.lists(st.integers(-1, 15), max_size=20))
    expected = np.asarray(data.draw(st.lists(st.sampled_from([0, 0, 0.25, 0.5, 1, 2, 7.5]), min_size=16, max_size=16)))
    fleet = n_vehicles + len(soon) + extra_fleet
    v = RebalanceView(
        3600,
        np.asarray(ids, dtype=np.int32),
        np.asarray(nodes, dtype=np.int32),
        np.asarray(soon, dtype=np.int32),
        fleet,
        expected,
    )
    reb = ZoneFlowRebalancer(RebalanceParams(max_share=max_share, max_travel_s=max_travel_s))
    moves = reb.rebalance(v, z, travel)

    assert np.unique(moves.vehicle).shape[0] == moves.vehicle.shape[0]
    assert set(moves.vehicle.tolist()) <= set(ids)
    assert moves.vehicle.shape[0] <= math.floor(max_share * fleet + 1e-9)
    at = dict(zip(ids, nodes, strict=True))
    from_node = np.asarray([at[int(x)] for x in moves.vehicle], dtype=np.int64)
    assert np.all(travel.times(from_node, moves.node, 3600) <= max_travel_s)
    assert set(moves.node.tolist()) <= set(z.center_node.tolist())
    if moves.vehicle.size:
        zone = z.zone_of_node[np.asarray(nodes)]
        supply = np.bincount(zone[zone >= 0], minlength=16) + np.bincount([s for s in soon if s >= 0], minlength=16)
        quota = _quota(supply, expected)
        src, dst = z.zone_of_node[from_node], z.zone_of_node[moves.node]
        assert np.all(src >= 0)
        # Sources hold more than their share of supply, targets less (targets are the quota rounded up or down).
        # (Quotas are multiples of 1/4 over at most 120, so a real difference is far above 1e-6.)
        assert np.all(supply[src] > quota[src] + 1e-6)
        assert np.all(supply[dst] < quota[dst] - 1e-6)
        leaving = np.bincount(src, minlength=16)
        assert np.all(leaving <= np.maximum(supply - np.floor(quota + 1e-6), 0))
        arriving = np.bincount(dst, minlength=16)
        assert np.all(arriving <= np.maximum(np.ceil(quota - 1e-6) - supply, 0))
    perm = data.draw(st.permutations(range(n_vehicles)))
    shuffled = RebalanceView(
        3600,
        np.asarray(ids, dtype=np.int32)[perm],
        np.asarray(nodes, dtype=np.int32)[perm],
        np.asarray(soon, dtype=np.int32)[::-1],
        fleet,
        expected,
    )
    again = reb.rebalance(shuffled, z, travel)
    assert again.vehicle.tolist() == moves.vehicle.tolist()
    assert again.node.tolist() == moves.node.tolist()


# ---------------------------------------------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"interval_s": 0}, "interval_s"),
        ({"horizon_s": -5}, "horizon_s"),
        ({"max_share": 0.0}, "max_share"),
        ({"max_share": 1.5}, "max_share"),
        ({"max_travel_s": 0}, "max_travel_s"),
        ({"interval_s": 1.5}, "interval_s"),
    ],
)
def test_params_name_the_bad_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RebalanceParams(**kwargs)  # type: ignore[arg-type]


def test_view_and_moves_validate() -> None:
    one = np.array([1], dtype=np.int32)
    with pytest.raises(ValueError, match="distinct"):
        RebalanceView(0, np.array([1, 1]), np.array([0, 0]), NO_ONE, 2, np.ones(1))
    with pytest.raises(ValueError, match="node"):
        RebalanceView(0, one, np.array([0, 0]), NO_ONE, 2, np.ones(1))
    with pytest.raises(ValueError, match="expected"):
        RebalanceView(0, one, one, NO_ONE, 2, np.array([-1.0]))
    with pytest.raises(ValueError, match="twice"):
        Moves(np.array([3, 3]), np.array([0, 1]))
    assert ZoneFlowRebalancer().interval_s == 300


# ---------------------------------------------------------------------------------------------------- forecasts
def test_moving_average_observes_and_forgets() -> None:
    f = MovingAverageForecast(3, window_s=1800, bucket_s=60)
    f.observe(np.array([1, 1, 1, 2, -1]), np.array([100, 130, 170, 1000, 1000]))
    # 3 arrivals in zone 1 and 1 in zone 2 over a 30 min window: rate x 15 min.
    assert f.expected(1200, 900).tolist() == [0.0, 1.5, 0.5]
    # The first bucket (60..119) leaves the window when the window's start passes 120.
    assert f.expected(120 + 1800, 900).tolist() == [0.0, 1.0, 0.5]
    assert f.expected(180 + 1800, 900).tolist() == [0.0, 0.0, 0.5]
    assert f.expected(1020 + 1800, 900).tolist() == [0.0, 0.0, 0.0]
    # Arrivals in buckets after the one holding `now - 1` are not counted (yet).
    assert f.expected(60, 900).tolist() == [0.0, 0.0, 0.0]
    # New arrivals reuse the ring's rows; one 31 minutes later than an old one replaces it.
    f.observe(np.array([0]), np.array([100 + 1860]))
    assert f.expected(2000, 1800).tolist() == [1.0, 0.0, 1.0]
    assert len(pickle.dumps(f)) < 30 * 3 * 8 + 30 * 8 + 600
    with pytest.raises(ValueError, match="zone"):
        f.observe(np.array([3]), np.array([5]))
    with pytest.raises(ValueError, match="window_s"):
        MovingAverageForecast(3, window_s=100, bucket_s=60)


def _epoch(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp())


@pytest.fixture(scope="module")
def hourly_ny() -> RateTableForecast:
    """Two zones; zone 0 expects ``hour + 1`` requests in each local hour, zone 1 always 10."""
    rates = np.vstack((np.arange(1, 25, dtype=np.float64), np.full(24, 10.0)))
    return RateTableForecast(rates, "America/New_York")


def test_rate_table_local_slots_on_the_fall_back_day(hourly_ny: RateTableForecast) -> None:
    """2018-11-04 in New York: 01:00-02:00 happens twice (EDT, then EST), so the day has 25 hours."""
    f = hourly_ny
    assert f.expected(_epoch(2018, 11, 4, 4), 3600)[0] == 1.0  # 00:00 EDT: slot 0
    assert f.expected(_epoch(2018, 11, 4, 5), 3600)[0] == 2.0  # 01:00 EDT: slot 1
    assert f.expected(_epoch(2018, 11, 4, 6), 3600)[0] == 2.0  # 01:00 EST: slot 1 again
    assert f.expected(_epoch(2018, 11, 4, 7), 3600)[0] == 3.0  # 02:00 EST: slot 2
    assert f.expected(_epoch(2018, 11, 4, 16), 3600)[0] == 12.0  # 11:00 EST
    whole_day = f.expected(_epoch(2018, 11, 4, 4), 25 * 3600)
    assert whole_day.tolist() == pytest.approx([300.0 + 2.0, 250.0])
    # Across the change in one call: 00:30 EDT to 01:30 EST is slot 0 half, slot 1 twice, half of it again.
    assert f.expected(_epoch(2018, 11, 4, 4, 30), 2 * 3600)[0] == pytest.approx(0.5 + 2.0 + 1.0)


def test_rate_table_spring_forward_skips_an_hour(hourly_ny: RateTableForecast) -> None:
    """2018-03-11 in New York: 02:00 EST jumps to 03:00 EDT; the day has 23 hours and no slot 2."""
    f = hourly_ny
    assert f.expected(_epoch(2018, 3, 11, 6), 3600)[0] == 2.0  # 01:00 EST
    assert f.expected(_epoch(2018, 3, 11, 7), 3600)[0] == 4.0  # 03:00 EDT
    assert f.expected(_epoch(2018, 3, 11, 5), 23 * 3600).tolist() == pytest.approx([300.0 - 3.0, 230.0])


def test_rate_table_integrates_across_slot_boundaries() -> None:
    rates = np.arange(1, 97, dtype=np.float64)[None, :]  # 96 quarter hours, 1..96 requests each
    f = RateTableForecast(rates, "UTC")
    t0 = _epoch(2024, 5, 1)
    assert f.expected(t0, 900).tolist() == [1.0]
    assert f.expected(t0 + 450, 900).tolist() == [0.5 * 1 + 0.5 * 2]
    assert f.expected(t0 + 450, 1800).tolist() == [0.5 * 1 + 2 + 0.5 * 3]
    # Over midnight: the last quarter hour of one day and the first of the next.
    assert f.expected(t0 - 900, 1800).tolist() == [96.0 + 1.0]
    assert f.expected(t0, 7 * 86_400).tolist() == pytest.approx([7 * 96 * 97 / 2])
    assert f.expected(t0, 0).tolist() == [0.0]


def test_rate_table_from_requests(city20: tuple[RoadNetwork, Router, Zoning]) -> None:
    _, _, z = city20
    o = np.array([0, 0, 399, 399, 399, 42])
    tod = np.array([0, 3599, 3600, 86_399, 86_399, 7200])
    f = RateTableForecast.from_requests(z, o, tod, n_days=2.0, timezone="Europe/Helsinki")
    assert f.rates.shape == (16, 24)
    assert f.rates[0, :3].tolist() == [1.0, 0.0, 0.5]
    assert f.rates[15, 1] == 0.5
    assert f.rates[15, 23] == 1.0
    assert f.rates.sum() == 3.0
    with pytest.raises(ValueError, match="timezone"):
        RateTableForecast(f.rates, "Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="local_time_of_day_s"):
        RateTableForecast.from_requests(z, o, tod + 1, n_days=1.0, timezone="UTC")
    with pytest.raises(ValueError, match="rates"):
        RateTableForecast(np.ones((2, 7)), "UTC")


# ---------------------------------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def manhattan() -> tuple[RoadNetwork, Router]:
    net = load_network(shared_file("data/nyc_manhattan_hive/manhattan_network.json"))
    return net, Router(net)


@pytest.mark.integration
def test_tlc_zones_cover_every_manhattan_node(manhattan: tuple[RoadNetwork, Router]) -> None:
    net, travel = manhattan
    path = shared_file("data/nyc_tlc_taxi_zones/taxi_zones.geojson")
    z = Zoning.from_geojson(net, travel, path)
    features = json.loads(path.read_text(encoding="utf-8"))["features"]
    borough = [f for f in features if f["properties"]["borough"] == "Manhattan"]
    island = shapely.union_all([shape(f["geometry"]) for f in borough])
    inside = shapely.contains_xy(island, net.lon, net.lat)
    assert inside.sum() > 0.95 * net.n_nodes
    assert np.all(z.zone_of_node[inside] >= 0)
    assert set(z.names) <= {f["properties"]["zone"] for f in borough}
    # Manhattan has 69 TLC zones; the islands, Inwood Hill Park and Marble Hill hold no node of this network.
    assert 60 <= z.n_zones <= 69
    assert "Central Park" in z.names
    assert np.all(np.bincount(z.zone_of_node[z.zone_of_node >= 0]) > 0)


@pytest.mark.integration
def test_grid_zoning_and_a_rebalance_on_manhattan(manhattan: tuple[RoadNetwork, Router]) -> None:
    net, travel = manhattan
    z = Zoning.grid(net, travel, cell_m=1000.0)
    assert np.all(z.zone_of_node >= 0)
    assert 40 <= z.n_zones <= 120
    north = net.y > np.quantile(net.y, 0.9)
    nodes = np.flatnonzero(north)[:500]
    expected = np.bincount(z.zone_of_node, minlength=z.n_zones).astype(np.float64)
    moves = ZoneFlowRebalancer().rebalance(view(nodes, expected, fleet=2000, now=_epoch(2018, 11, 7, 2)), z, travel)
    assert 0 < moves.vehicle.shape[0] <= 200
    assert np.all(travel.times(nodes[moves.vehicle], moves.node) <= 900)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not a GeoJSON file"),
        ('{"type": "FeatureCollection", "features": []}', "FeatureCollection"),
        ('{"type": "FeatureCollection", "features": [{"properties": {"id": 1}, "geometry": null}]}', "LocationID"),
        (
            '{"type": "FeatureCollection", "features": [{"properties": {"LocationID": 1}, '
            '"geometry": {"type": "Point", "coordinates": [-73.97, 40.78]}}]}',
            "polygons",
        ),
        (
            '{"type": "FeatureCollection", "features": [{"properties": {"LocationID": 1}, "geometry": {"type": '
            '"Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}}]}',
            "no zone contains",
        ),
    ],
)
def test_bad_zone_files_give_a_clear_error(
    manhattan: tuple[RoadNetwork, Router], tmp_path: Path, text: str, problem: str
) -> None:
    net, travel = manhattan
    path = tmp_path / "zones.geojson"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DispatchError, match=problem) as err:
        Zoning.from_geojson(net, travel, path)
    assert str(path) in str(err.value)
    with pytest.raises(DispatchError, match="not found"):
        Zoning.from_geojson(net, travel, tmp_path / "missing.geojson")

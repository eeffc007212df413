"""The marketplace in the simulator, on a 6x6 grid city (node = row * 6 + col, 20 s per block, dwell 30 s).

"west-av" robotaxis may only serve the three western columns (a polygon drawn around them); "drivers" is a
human-driven pool that answers offers at random (seeded).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely

from robotaxi.dispatch import MarketParams, Reason, make_policy
from robotaxi.fleet import TRANSITION_TABLE, EventType, Fleet, Hours, Operator, OperatorKind, ServiceArea, Shift
from robotaxi.network import Router, grid_city
from robotaxi.sim import Outcome, SimParams, Simulator
from robotaxi.sim.operators import build_marketplace

from .helpers import random_requests, requests_on

NET = grid_city(6, 6)
ROUTER = Router(NET)
_STEP_LON = 200 / (111_320 * math.cos(math.radians(50)))
_STEP_LAT = 200 / 111_320
# Columns 0..2, every row: a box reaching half a block past the last column and the grid's edges.
WEST = ServiceArea.from_geometries(
    [shapely.box(10 - _STEP_LON / 2, 50 - _STEP_LAT / 2, 10 + 2.5 * _STEP_LON, 50 + 5.5 * _STEP_LAT)], NET, what="t"
)


def test_the_polygon_mask_is_the_three_western_columns() -> None:
    assert np.array_equal(WEST.mask, (np.arange(36) % 6) <= 2)


def test_adjacent_zones_are_outlined_as_one_area_with_its_hole() -> None:
    # Two boxes sharing a border (like two TLC zones) and a third one apart: the outline is their union, so a map
    # draws the area's border, not the shared edge; a hole survives as an interior ring.
    left = shapely.box(10, 50, 10 + 2 * _STEP_LON, 50 + 5 * _STEP_LAT)
    right = shapely.box(10 + 2 * _STEP_LON, 50, 10 + 5 * _STEP_LON, 50 + 5 * _STEP_LAT)
    hole = shapely.box(10 + 3.2 * _STEP_LON, 50 + 1.2 * _STEP_LAT, 10 + 3.8 * _STEP_LON, 50 + 1.8 * _STEP_LAT)
    apart = shapely.box(10 + 10 * _STEP_LON, 50, 10 + 11 * _STEP_LON, 50 + _STEP_LAT)
    area = ServiceArea.from_geometries([left, right.difference(hole), apart], NET, what="t")
    rings = area.rings()
    assert len(rings) == 3  # the joined boxes' border, their hole, the box apart
    big = max(rings, key=lambda r: float(np.ptp(r[:, 0])))
    assert np.ptp(big[:, 0]) == pytest.approx(5 * _STEP_LON)
    perimeter = float(np.hypot(*np.diff(big, axis=0).T).sum())
    assert perimeter == pytest.approx(2 * (5 * _STEP_LON + 5 * _STEP_LAT))  # the shared edge is not drawn
    assert all(np.array_equal(r[0], r[-1]) for r in rings)  # closed rings
    assert ServiceArea(WEST.mask).rings() == []  # a bare mask has no outline


def fleet(av: Operator, *others: Operator, seed: int = 0) -> Fleet:
    return Fleet.build((av, *others), NET, np.random.default_rng(seed))


def run(fl: Fleet, reqs: object, *, end_s: int, objective: str = "fastest", seed: int = 0, **kw: object) -> object:
    market = build_marketplace(fl.operators, MarketParams(objective=objective))  # type: ignore[arg-type]
    sim = Simulator(
        ROUTER,
        fl,
        reqs,  # type: ignore[arg-type]
        make_policy("batch"),
        SimParams(end_s=end_s, seed=seed),
        market=market,
        **kw,  # type: ignore[arg-type]
    )
    return sim.run()


def mds_legal(res: object) -> None:
    ev = res.events  # type: ignore[attr-defined]
    for v in np.unique(ev.vehicle):
        rows = np.flatnonzero(ev.vehicle == v)
        state = 4  # non_operational before service_start
        for i in rows:
            e, s = int(ev.event[i]), int(ev.state[i])
            if e in (EventType.TRIP_RESUME,):
                state = s
                continue
            assert TRANSITION_TABLE[state, e] == s, f"vehicle {v}: {EventType(e).mds} from {state} to {s}"
            state = s


def test_an_av_never_leaves_its_area_and_crossing_trips_go_to_drivers() -> None:
    from robotaxi.dispatch import Rebalancing
    from robotaxi.dispatch.rebalance import MovingAverageForecast, RebalanceParams, ZoneFlowRebalancer, Zoning

    av = Operator("west-av", 6, area=WEST, pooling=False, depot=13)
    drivers = Operator(
        "drivers",
        4,
        kind=OperatorKind.HUMAN_DRIVEN,
        shifts=(Shift(Hours(), 4),),
        acceptance=0.8,
        response_s=(2, 15),
        offer_timeout_s=12,
    )
    fl = fleet(av, drivers)
    reqs = random_requests(NET, 300, 7200, seed=5)
    zoning = Zoning.grid(NET, ROUTER, cell_m=400)
    rb = Rebalancing(
        ZoneFlowRebalancer(RebalanceParams(interval_s=300, max_share=0.5)),
        zoning,
        MovingAverageForecast(zoning.n_zones, window_s=1800),
    )
    res = run(fl, reqs, end_s=7200, rebalancing=rb, seed=3)
    served = res.outcomes.outcome == Outcome.SERVED  # type: ignore[attr-defined]
    op = res.operator  # type: ignore[attr-defined]
    o, d = res.requests.o_node, res.requests.d_node  # type: ignore[attr-defined]
    inside = WEST.mask[o] & WEST.mask[d]
    assert np.all(inside[op == 0])  # robotaxis only take trips inside their area ...
    assert np.any(served & ~inside)  # ... the others are served by the drivers
    assert np.all(op[served & ~inside] == 1)
    legs = res.legs  # type: ignore[attr-defined]
    is_av = fl.operator[legs.vehicle] == 0
    assert is_av.any()
    assert np.any(is_av & (legs.kind == 2))
    for a, b in zip(legs.from_node[is_av].tolist(), legs.to_node[is_av].tolist(), strict=True):
        assert WEST.mask[ROUTER.path(a, b)].all()  # every node of every leg driven
    ev = res.events  # type: ignore[attr-defined]
    assert WEST.mask[ev.node[fl.operator[ev.vehicle] == 0]].all()
    mds_legal(res)


def test_an_av_finishes_its_trip_when_its_hours_end_then_leaves_and_comes_back() -> None:
    # Open 00:00-00:10 every day; a ride requested at 00:08 ends after 00:10; depot at node 35 (inside no area
    # restriction here). Requests at 00:15 find nobody on duty; the one the next day at 00:01 is served again.
    av = Operator("av", 1, start_nodes=(0,), hours=Hours(0, 600), depot=35)
    fl = fleet(av)
    day = 86_400
    reqs = requests_on(NET, [480, 900, day + 60], [1, 2, 3], [5, 4, 9])
    res = run(fl, reqs, end_s=day + 3600)
    o = res.outcomes  # type: ignore[attr-defined]
    assert o.outcome.tolist() == [Outcome.SERVED, Outcome.REJECTED, Outcome.SERVED]
    assert o.reason[1] == Reason.OUT_OF_HOURS
    assert o.dropoff_s[0] > 600  # the trip on board at closing time was finished
    ev = res.events  # type: ignore[attr-defined]
    names = [EventType(int(e)).mds for e in ev.event]
    end = names.index("service_end")
    assert names[end - 1] == "trip_end"
    assert ev.time_s[end - 1] > 600
    assert ev.node[end] == 35  # after the trip it drove to its depot, then ended service there
    assert ev.time_s[end] >= ev.time_s[end - 1] + ROUTER.time1(5, 35)
    restart = names.index("service_start", end)
    assert ev.time_s[restart] == day  # back at the next opening
    mds_legal(res)


def test_declined_offers_are_matched_again_and_riders_served_within_their_deadline() -> None:
    drivers = Operator(
        "drivers",
        8,
        kind=OperatorKind.HUMAN_DRIVEN,
        shifts=(Shift(Hours(), 8),),
        acceptance=0.5,
        response_s=(2, 25),
        offer_timeout_s=15,
    )
    av = Operator("av", 1, area=WEST, start_nodes=(0,))
    fl = fleet(av, drivers, seed=2)
    reqs = random_requests(NET, 200, 3600, seed=9)
    res = run(fl, reqs, end_s=3600, seed=11)
    o = res.outcomes  # type: ignore[attr-defined]
    served = o.outcome == Outcome.SERVED
    declines = res.declines  # type: ignore[attr-defined]
    assert np.any(served & (declines > 0))  # declined (or lapsed) first, then served
    wait = res.wait_s[served]  # type: ignore[attr-defined]
    assert wait.max() <= 600  # the engine's default max wait: nobody waited past their deadline
    lost = (o.outcome == Outcome.CANCELLED) & (o.reason == Reason.OFFER_DECLINED)
    assert np.all(declines[lost] > 0)
    assert np.all(res.offers >= declines)  # type: ignore[attr-defined]
    mds_legal(res)


def test_the_same_seed_gives_the_same_answers() -> None:
    drivers = Operator(
        "drivers", 5, kind=OperatorKind.HUMAN_DRIVEN, shifts=(Shift(Hours(), 5),), acceptance=0.6, response_s=(1, 30)
    )
    fl = fleet(Operator("av", 2, area=WEST), drivers)
    reqs = random_requests(NET, 80, 1800, seed=1)
    a = run(fl, reqs, end_s=1800, seed=4)
    b = run(fl, reqs, end_s=1800, seed=4)
    assert np.array_equal(a.outcomes.vehicle, b.outcomes.vehicle)  # type: ignore[attr-defined]
    assert np.array_equal(a.declines, b.declines)  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", ["25:00-26:00", "06:00", "06:00-06:00", "6:00-7:00", "24:00-06:00", 7])
def test_hours_out_of_range(bad: object) -> None:
    from robotaxi.errors import FleetError
    from robotaxi.fleet import parse_hours

    with pytest.raises(FleetError, match="operators\\[0\\] 'x': hours"):
        parse_hours(bad, "operators[0] 'x': hours")


def test_hours_cross_midnight() -> None:
    h = Hours(22 * 3600, 6 * 3600)
    assert h.is_open(23 * 3600)
    assert h.is_open(3600)
    assert not h.is_open(12 * 3600)
    assert h.changes(0, 86_400) == [(6 * 3600, False), (22 * 3600, True)]

"""Disengagements inside the simulator (``robotaxi.safety.insim``) on grid cities.

Grid blocks are 200 m at 36 km/h (20 s a block); node = row * cols + col. The operators here are autonomous; the
rates are far worse than any real operator's so that a short run holds hundreds of events.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Literal

import numpy as np
import pytest

from robotaxi.dispatch import MarketParams, Reason, make_policy
from robotaxi.fleet import TRANSITION_TABLE, EventType, Fleet, Operator
from robotaxi.network import RoadNetwork, Router, grid_city
from robotaxi.safety import DisengagementRates, LocationType, SafetyProfile, miles_per_disengagement
from robotaxi.safety.insim import Disengagements, OperatorSafety, SimSafety
from robotaxi.safety.process import METRES_PER_MILE
from robotaxi.sim import Outcome, SimParams, Simulator
from robotaxi.sim.operators import build_marketplace
from robotaxi.sim.result import SimResult

from ..sim.helpers import random_requests, requests_on

DAY = dt.date(2026, 11, 18)
NET = grid_city(8, 8)
ROUTER = Router(NET)


def settings(mpd: float, action: str = "continue", wait_s: int = 60, **rates: object) -> OperatorSafety:
    driver = action == "continue"
    profile = SafetyProfile(
        "op",
        DisengagementRates(mpd, **rates),  # type: ignore[arg-type]
        driver_present=driver,
        can_operate_without_driver=not driver,
    )
    return OperatorSafety(profile, action, wait_s)


def simulate(
    operators: tuple[Operator, ...],
    requests: object,
    safety: dict[int, OperatorSafety] | None,
    *,
    end_s: int,
    seed: int = 1,
    router: Router = ROUTER,
    net: RoadNetwork = NET,
) -> SimResult:
    fleet = Fleet.build(operators, net, np.random.default_rng(0))
    hook = None
    if safety is not None:
        hook = Disengagements(
            router,
            fleet.operator,
            [o.name for o in operators],
            safety,
            seed=seed,
            scenario="grid",
            day=DAY,
            timezone="UTC",
        )
    market = build_marketplace(fleet.operators, MarketParams()) if len(operators) > 1 else None
    sim = Simulator(
        router,
        fleet,
        requests,  # type: ignore[arg-type]
        make_policy("batch"),
        SimParams(end_s=end_s, seed=seed),
        market=market,
        safety=hook,
    )
    return sim.run()


def safety_of(res: SimResult) -> SimSafety:
    assert res.safety is not None
    s: SimSafety = res.safety
    return s


def autonomous_miles(res: SimResult, operator: int = 0) -> float:
    mine = res.fleet.operator[res.legs.vehicle] == operator
    return float(res.legs.length_m[mine].sum()) / METRES_PER_MILE


def test_the_configured_rate_is_recovered_over_a_long_run() -> None:
    reqs = random_requests(NET, 1500, 6 * 3600, seed=4)
    res = simulate((Operator("av", 25, pooling=False),), reqs, {0: settings(0.5, wait_s=30)}, end_s=6 * 3600)
    s = safety_of(res)
    miles = autonomous_miles(res)
    k = len(s.events.records)
    assert k > 300  # enough events for a tight interval
    est = miles_per_disengagement(miles, k)
    assert est.low <= 0.5 <= est.high
    assert abs(est.estimate - 0.5) / 0.5 < 0.15
    # Every event lies on a leg its vehicle drove, at a time within that leg.
    legs = res.legs
    for v, t, leg, off in zip(
        s.events.vehicle.tolist(),
        s.events.time_s.tolist(),
        s.events.leg.tolist(),
        s.events.offset_m.tolist(),
        strict=True,
    ):
        assert int(legs.vehicle[leg]) == v
        assert int(legs.start_s[leg]) <= t <= int(legs.end_s[leg])
        assert 0 <= off <= int(legs.length_m[leg])
    assert all(r.initiator.value in ("av_system", "test_driver") for r in s.events.records)
    assert list(s.events.time_s) == sorted(s.events.time_s.tolist())


def test_rates_by_location_type_apply_to_the_roads_they_name() -> None:
    """A grid whose row 3 is driven at 72 km/h (a speed-inferred motorway, hence a freeway) and a freeway rate so
    small that no event can fall there: every event is on a street, and streets keep their rate."""
    base = grid_city(8, 8)
    fast = (np.floor_divide(base.tail, 8) == 3) & (np.floor_divide(base.head, 8) == 3)
    net = RoadNetwork.from_edges(
        name="arterial",
        node_id=np.arange(base.n_nodes),
        lon=base.lon,
        lat=base.lat,
        tail=base.tail,
        head=base.head,
        length_m=base.length_m,
        speed_kmh=np.where(fast, 72.0, 36.0),
    )
    router = Router(net)
    reqs = random_requests(net, 600, 3 * 3600, seed=5)
    conf = settings(0.5, by_location={LocationType.FREEWAY: 1e9})
    res = simulate((Operator("av", 15, pooling=False),), reqs, {0: conf}, end_s=3 * 3600, router=router, net=net)
    recs = safety_of(res).events.records
    assert len(recs) > 100
    assert {r.location_type for r in recs} == {LocationType.STREET}
    assert {r.road_class for r in recs} == {"residential~speed"}


def test_a_safety_driver_delays_the_trip_by_the_delay_of_each_event() -> None:
    """One vehicle, one rider across the grid: with events every few blocks, the drop-off is later by exactly
    ``delay_s`` per event before it, and nothing else changes."""
    reqs = requests_on(NET, [0], [9], [63])
    ops = (Operator("av", 1, start_nodes=(0,), pooling=False),)
    plain = simulate(ops, reqs, None, end_s=600)
    held = simulate(ops, reqs, {0: settings(0.3, wait_s=45)}, end_s=600)
    s = safety_of(held)
    drop = int(held.outcomes.dropoff_s[0])
    before = int((s.events.time_s <= drop).sum())
    assert before >= 2
    assert drop - int(plain.outcomes.dropoff_s[0]) == 45 * before
    assert held.outcomes.outcome[0] == Outcome.SERVED
    assert int(held.legs.length_m.sum()) == int(plain.legs.length_m.sum())
    on_board = s.riders[s.events.time_s >= int(held.outcomes.board_s[0])]
    assert on_board[: before - int((s.events.time_s < int(held.outcomes.board_s[0])).sum())].min() == 1
    assert s.events.records[-1].trip_id is not None or s.riders[-1] == 0


def _mds_legal(res: SimResult) -> None:
    ev = res.events
    for v in np.unique(ev.vehicle):
        state = 4  # non_operational before service_start
        for i in np.flatnonzero(ev.vehicle == v):
            e, st = int(ev.event[i]), int(ev.state[i])
            if e == EventType.TRIP_RESUME:
                state = st
                continue
            assert TRANSITION_TABLE[state, e] == st, f"vehicle {v}: {EventType(e).mds} from {state} to {st}"
            state = st


def test_a_stopped_vehicle_hands_its_pickup_to_another_operator() -> None:
    """The robotaxi next to the rider is assigned, stops on its way (events are certain within a block) and
    hands the rider back; the other operator's vehicle serves the rider, once."""
    reqs = requests_on(NET, [0], [27], [30])
    ops = (
        Operator("av", 1, start_nodes=(24,), pooling=False),  # 3 blocks from the pickup
        Operator("other", 1, start_nodes=(56,), pooling=False),  # 4 blocks
    )
    res = simulate(ops, reqs, {0: settings(0.01, "stop", 1800)}, end_s=3600)
    s = safety_of(res)
    assert s.action[0] == "stop"
    assert int(s.redispatched[0]) == 1
    assert s.redispatched_requests.tolist() == [0]
    assert s.redispatched_by == ("av",)
    assert res.outcomes.outcome[0] == Outcome.SERVED
    assert int(res.outcomes.vehicle[0]) == 1  # the other operator's vehicle
    ev = res.events
    trip_ends = (ev.event == EventType.TRIP_END) & (ev.request == 0)
    assert int(trip_ends.sum()) == 1
    # The stopped vehicle left service and came back once recovered (1800 s after the end of its stretch).
    mine = ev.vehicle == 0
    kinds = [EventType(int(e)) for e in ev.event[mine]]
    assert EventType.SERVICE_END in kinds
    ends = ev.time_s[mine & (ev.event == EventType.SERVICE_END)]
    starts = ev.time_s[mine & (ev.event == EventType.SERVICE_START)]
    assert starts.size == 2
    assert int(starts[1]) - int(ends[0]) >= 1800 - 60
    _mds_legal(res)
    from robotaxi.safety.insim import run_safety_kpis

    k = run_safety_kpis(res)["av"]
    assert k["riders_redispatched"] == 1
    assert k["redispatched_served"] == 1
    assert k["redispatched_lost"] == 0
    assert k["recovery_hours"] == pytest.approx(1800 * len(s.action) / 3600, abs=1e-3)


def test_a_handed_back_rider_nobody_else_can_serve_is_recorded_unserved_with_its_reason() -> None:
    reqs = requests_on(NET, [0], [27], [30], max_wait_s=600)
    ops = (Operator("av", 1, start_nodes=(24,), pooling=False),)
    res = simulate(ops, reqs, {0: settings(0.01, "stop", 1800)}, end_s=3600)
    s = safety_of(res)
    assert s.redispatched_requests.tolist() == [0]
    assert res.outcomes.outcome[0] in (Outcome.CANCELLED, Outcome.REJECTED)
    from robotaxi.safety.insim import run_safety_kpis

    k = run_safety_kpis(res)["av"]
    assert k["redispatched_served"] == 0
    assert k["redispatched_lost"] == 1
    (why,) = k["redispatched_unserved_by_reason"]
    assert why.startswith(("cancelled: ", "rejected: "))
    assert why.split(": ")[1]


def test_a_rider_on_board_of_a_stopped_vehicle_gets_out_and_another_vehicle_takes_them_on() -> None:
    """The robotaxi at node 0 takes a rider from 0 to 7 (seven blocks east) and stops on the first block (events are
    certain within a block): the rider gets out at node 1, where it stopped, and the other operator's vehicle (at
    node 8, one block south of 0) picks them up there and drives them to 7. The ride is served once, its wait is
    the first pickup's, and it rode the whole way (1 + 6 blocks)."""
    reqs = requests_on(NET, [0], [0], [7])
    ops = (
        Operator("av", 1, start_nodes=(0,), pooling=False),
        Operator("other", 1, start_nodes=(8,), pooling=False),
    )
    plain = simulate(ops, reqs, None, end_s=600)
    res = simulate(ops, reqs, {0: settings(0.01, "stop", 1800)}, end_s=600)
    s = safety_of(res)
    o = res.outcomes
    assert s.action[0] == "stop"
    assert s.riders[0] == 1
    assert int(s.got_out[0]) == 1
    assert int(s.redispatched[0]) == 0
    assert s.out_requests.tolist() == [0]
    assert o.outcome.tolist() == [Outcome.SERVED]  # one request, served once
    assert int(o.vehicle[0]) == 0  # the trip is the first vehicle's (it picked the rider up)
    assert int(o.board_s[0]) == int(plain.outcomes.board_s[0])
    assert int(o.ride_m[0]) == 7 * 200 == int(o.direct_m[0])
    # The vehicle stopped at node 1 (its leg ends there, early), the rider got out there and waited for the other
    # vehicle: two blocks away and 30 s of boarding, after the simulator heard of the stop (when the leg would have
    # ended, 6 blocks later: it draws events over legs driven), and a batch tick. The wait counts from the stop.
    first = np.flatnonzero(res.legs.vehicle == 0)
    assert int(res.legs.to_node[first[-1]]) == 1
    out_s, again = int(s.out_s[0]), int(s.out_board_s[0])
    assert out_s == int(res.legs.end_s[first[-1]]) == int(o.board_s[0]) + 20
    assert 6 * 20 + 40 + 30 <= again - out_s <= 6 * 20 + 40 + 30 + 30
    assert int(o.dropoff_s[0]) > int(plain.outcomes.dropoff_s[0])
    ev = res.events
    assert ev.request[(ev.vehicle == 1) & (ev.event == EventType.TRIP_END)].tolist() == [0]
    # The stopped vehicle's MDS history: trip_stop and trip_end where it stopped, then out of service.
    mine = [EventType(x).mds for x in ev.event[ev.vehicle == 0].tolist()]
    assert mine[:8] == [
        "service_start",
        "reservation_start",
        "reservation_stop",
        "trip_start",
        "trip_stop",
        "trip_end",
        "service_end",  # out of service until recovered, 1800 s later
        "service_start",
    ]
    assert int(ev.node[ev.vehicle == 0][5]) == 1
    _mds_legal(res)
    from robotaxi.safety.insim import run_safety_kpis

    k = run_safety_kpis(res)["av"]
    assert k["riders_got_out"] == 1
    assert k["got_out_served"] == 1
    assert k["got_out_lost"] == 0
    assert k["got_out_wait_max_s"] == again - out_s
    assert k["rider_delay_minutes"] == pytest.approx((again - out_s) / 60, abs=0.05)
    assert k["riders_redispatched"] == 0


def test_a_rider_out_of_a_stopped_vehicle_nobody_picks_up_is_lost_with_its_reason() -> None:
    """The only vehicle stops with its rider: the new request from where it stopped expires unserved."""
    reqs = requests_on(NET, [0], [0], [7], max_wait_s=300)
    ops = (Operator("av", 1, start_nodes=(0,), pooling=False),)
    res = simulate(ops, reqs, {0: settings(0.01, "stop", 1800)}, end_s=600)
    s = safety_of(res)
    assert int(s.got_out[0]) == 1
    assert int(s.out_board_s[0]) == -1
    assert res.outcomes.outcome.tolist() == [Outcome.CANCELLED]
    assert int(res.outcomes.reason[0]) == Reason.MAX_WAIT_EXCEEDED
    from robotaxi.safety.insim import run_safety_kpis

    k = run_safety_kpis(res)["av"]
    assert k["got_out_lost"] == 1
    assert k["got_out_unserved_by_reason"] == {"cancelled: max_wait_exceeded": 1}
    _mds_legal(res)


def test_remote_assistance_is_counted_and_runs_repeat_exactly() -> None:
    reqs = random_requests(NET, 300, 2 * 3600, seed=6)
    ops = (Operator("av", 8, pooling=False), Operator("plain", 4, pooling=False))
    conf = {0: settings(1.0, "remote", 240)}
    a = simulate(ops, reqs, conf, end_s=2 * 3600, seed=3)
    b = simulate(ops, reqs, conf, end_s=2 * 3600, seed=3)
    c = simulate(ops, reqs, conf, end_s=2 * 3600, seed=4)
    ea, eb, ec = (safety_of(r).events for r in (a, b, c))
    assert [r.event_id for r in ea.records] == [r.event_id for r in eb.records]
    assert [(r.lon, r.lat, r.time_ms) for r in ea.records] == [(r.lon, r.lat, r.time_ms) for r in eb.records]
    assert np.array_equal(a.outcomes.dropoff_s, b.outcomes.dropoff_s)
    assert [r.event_id for r in ea.records] != [r.event_id for r in ec.records]
    assert {r.operator for r in ea.records} == {"av"}  # the operator without settings never disengages
    assert all(r.initiator.value in ("av_system", "remote_operator") for r in ea.records)
    from robotaxi.safety.insim import run_safety_kpis

    k = run_safety_kpis(a)
    assert set(k) == {"av"}
    n = len(ea.records)
    assert n > 5
    assert k["av"]["remote_assistance_hours"] == pytest.approx(240 * n / 3600, abs=1e-3)
    assert k["av"]["disengagements"] == n
    riders = safety_of(a).riders
    assert k["av"]["rider_delay_minutes"] == pytest.approx(float((240 * riders).sum()) / 60, abs=0.1)
    assert math.isclose(k["av"]["autonomous_miles"], autonomous_miles(a), abs_tol=0.05)


def test_without_settings_a_run_is_unchanged() -> None:
    """The safety stream is separate: an operator with a rate so low that nothing happens leaves every outcome as
    without the hook."""
    reqs = random_requests(NET, 200, 3600, seed=7)
    ops = (Operator("av", 6, pooling=False),)
    plain = simulate(ops, reqs, None, end_s=3600)
    quiet = simulate(ops, reqs, {0: settings(1e9)}, end_s=3600)
    assert len(safety_of(quiet).events.records) == 0
    assert np.array_equal(plain.outcomes.dropoff_s, quiet.outcomes.dropoff_s)
    assert np.array_equal(plain.legs.end_s, quiet.legs.end_s)


@pytest.mark.parametrize("policy", ["batch", "insertion", "pool"])
@pytest.mark.parametrize("action", ["continue", "stop"])
def test_vehicles_stay_continuous_under_frequent_events_and_replans(
    policy: Literal["batch", "insertion", "pool"], action: str
) -> None:
    """Pooling policies change moving vehicles' plans all the time; with events every few blocks, every vehicle's
    legs still join up (each starts where and after the previous one ended), and every request ends served or
    unserved, served at most once; without pooling the MDS events stay legal too (a pooled vehicle stops for a
    pickup while on a trip, which the simple check here does not model)."""
    reqs = random_requests(NET, 400, 3600, seed=8)
    fleet = Fleet.build((Operator("av", 10, pooling=True),), NET, np.random.default_rng(0))
    conf = settings(0.4, "stop" if action == "stop" else "continue", 400 if action == "stop" else 90)
    hook = Disengagements(ROUTER, fleet.operator, ["av"], {0: conf}, seed=2, scenario="g", day=DAY, timezone="UTC")
    res = Simulator(ROUTER, fleet, reqs, make_policy(policy), SimParams(end_s=3600, seed=2), safety=hook).run()
    s = safety_of(res)
    assert len(s.events.records) > 50
    legs = res.legs
    for v in range(len(fleet)):
        mine = np.flatnonzero(legs.vehicle == v)
        order = mine[np.lexsort((mine, legs.start_s[mine]))]
        assert np.all(legs.end_s[order] >= legs.start_s[order])
        assert np.all(legs.start_s[order][1:] >= legs.end_s[order][:-1])
        assert np.all(legs.from_node[order][1:] == legs.to_node[order][:-1])
    assert not np.any(res.outcomes.outcome == Outcome.PENDING)
    ev = res.events
    # A ride ends once (trip_end), plus once for each stopped vehicle its rider got out of (riding on as a new
    # request, which names the same ride in the events).
    n = len(reqs)
    ends = np.bincount(ev.request[ev.event == EventType.TRIP_END], minlength=n)
    assert np.all(ends <= 1 + np.bincount(s.out_requests, minlength=n))
    assert set(np.flatnonzero(res.served).tolist()) <= set(
        ev.request[np.isin(ev.event, (EventType.TRIP_END, EventType.TRIP_RESUME))].tolist()
    )
    if policy == "batch":
        _mds_legal(res)
    if action == "stop":
        assert int(s.redispatched.sum()) > 0
        assert int(s.got_out.sum()) > 0

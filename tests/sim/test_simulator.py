"""The discrete-event simulator on grid cities (every block takes 20 s, dwell 30 s at each end)."""

from __future__ import annotations

import numpy as np
import pytest

from robotaxi.dispatch import EngineParams, make_policy
from robotaxi.dispatch.policies import PolicyName
from robotaxi.errors import SimulationError
from robotaxi.fleet import EventType, Fleet, Operator, VehicleState
from robotaxi.network import RoadNetwork, Router, grid_city
from robotaxi.sim import Motion, Outcome, SimParams, Simulator

from .helpers import random_requests, requests_on


@pytest.fixture(scope="module")
def router3(grid3: RoadNetwork) -> Router:
    return Router(grid3)


def two_cars(net: RoadNetwork) -> Fleet:
    """Vehicle 0 at the south-west corner (node 0), vehicle 1 at the north-east corner (node 8)."""
    return Fleet.build((Operator("acme", 2, start_nodes=(0, 8)),), net, np.random.default_rng(0))


def test_two_vehicles_three_requests_exact_times(router3: Router) -> None:
    """r0 at t=10 from 2 to 8; r1 at t=10 from 6 to 0; r2 at t=200 from the centre (4) to 0.

    r0: nodes 0 and 8 are both 2 blocks (40 s) from node 2; the tie goes to node 0, so vehicle 0: pickup at 50,
    boards at 80, 2 blocks to node 8: dropoff at 120, free at 150. r1: vehicle 1 (node 8 -> 6, 40 s): pickup 50,
    dropoff at node 0 at 120. r2 at 200: vehicle 0 is at 8, vehicle 1 at 0, both 40 s from the centre; the tie
    goes to node 0, vehicle 1: pickup 240, board 270, dropoff 310.
    """
    net = router3.network
    reqs = requests_on(net, [10, 10, 200], [2, 6, 4], [8, 0, 0])
    res = Simulator(router3, two_cars(net), reqs, make_policy("immediate"), SimParams(end_s=3600)).run()
    o = res.outcomes
    assert o.outcome.tolist() == [Outcome.SERVED] * 3
    assert o.vehicle.tolist() == [0, 1, 1]
    assert o.pickup_s.tolist() == [50, 50, 240]
    assert o.board_s.tolist() == [80, 80, 270]
    assert o.dropoff_s.tolist() == [120, 120, 310]
    assert res.wait_s.tolist() == [40, 40, 40]
    assert res.ride_s.tolist() == [40, 40, 40]
    assert o.pickup_m.tolist() == [400, 400, 400]
    ev = res.events
    v0 = ev.vehicle == 0
    names = [EventType(e).mds for e in ev.event[v0]]
    assert names == [
        "service_start",
        "reservation_start",
        "reservation_stop",
        "trip_start",
        "trip_stop",
        "trip_end",
        "service_end",
    ]
    assert ev.time_s[v0].tolist() == [0, 10, 50, 80, 120, 150, 3600]
    assert np.all(np.diff(ev.time_s) >= 0)  # simulated time never goes backwards


def test_batch_waits_for_the_tick(router3: Router) -> None:
    net = router3.network
    reqs = requests_on(net, [10, 10], [2, 6], [8, 0])
    res = Simulator(router3, two_cars(net), reqs, make_policy("batch"), SimParams(end_s=3600)).run()
    assert res.outcomes.assigned_s.tolist() == [30, 30]
    assert res.outcomes.pickup_s.tolist() == [70, 70]
    assert res.wait_s.tolist() == [60, 60]


@pytest.mark.parametrize("policy", ["immediate", "batch"])
def test_every_request_is_accounted_for_and_runs_are_deterministic(policy: PolicyName) -> None:
    net = grid_city(6, 6)
    router = Router(net)
    reqs = random_requests(net, 400, 3600, seed=3)
    fleet = Fleet.build((Operator("acme", 6),), net, np.random.default_rng(1))
    params, eng = SimParams(end_s=3600), EngineParams(max_wait_s=300)
    a = Simulator(router, fleet, reqs, make_policy(policy), params, eng).run()
    b = Simulator(router, fleet, reqs, make_policy(policy), params, eng).run()
    out = a.outcomes.outcome
    assert np.all(out != Outcome.PENDING)
    assert {int(x) for x in np.unique(out)} <= {Outcome.SERVED, Outcome.REJECTED, Outcome.CANCELLED}
    assert (out == Outcome.SERVED).sum() > 0
    for name in ("outcome", "reason", "vehicle", "pickup_s", "dropoff_s"):
        assert np.array_equal(getattr(a.outcomes, name), getattr(b.outcomes, name))
    assert np.array_equal(a.events.time_s, b.events.time_s)
    assert np.array_equal(a.events.vehicle, b.events.vehicle)
    served = out == Outcome.SERVED
    assert np.all(a.wait_s[served] <= 300)
    # A vehicle serves one trip at a time: its next assignment comes after the previous trip's trip_end, i.e. after
    # the arrival at the dropoff plus the alighting dwell.
    v, ta = a.outcomes.vehicle[served], a.outcomes.assigned_s[served]
    te = a.outcomes.dropoff_s[served] + EngineParams().dropoff_dwell_s
    order = np.lexsort((ta, v))
    same = v[order][1:] == v[order][:-1]
    assert same.any()
    assert np.all(ta[order][1:][same] >= te[order][:-1][same])
    # Every vehicle ends out of service, having gone through legal transitions only.
    last = {int(x): int(s) for x, s in zip(a.events.vehicle, a.events.state, strict=True)}
    assert set(last.values()) == {VehicleState.NON_OPERATIONAL}


def test_positions_are_interpolated_along_the_path(router3: Router) -> None:
    net = router3.network
    motion = Motion(router3, np.array([0, 8], dtype=np.int32))
    # Vehicle 0 leaves node 0 at t=100 for node 2 (two blocks east), arriving at t=140 (20 s per block).
    motion.start_legs([0], [0], [2], [100], [140])
    pos = motion.position(0, 110)
    assert (pos.node_from, pos.node_to) == (0, 1)
    assert pos.fraction == pytest.approx(0.5)
    assert pos.lon == pytest.approx((net.lon[0] + net.lon[1]) / 2)
    assert motion.position(0, 130).node_from == 1
    assert motion.position(0, 130).nearest_node == 2
    assert motion.position(0, 50).node_to == 0
    assert motion.position(0, 999).node_to == 2
    assert motion.position(1, 120).node_to == 8  # parked


def test_empty_window_is_an_error(router3: Router) -> None:
    net = router3.network
    reqs = requests_on(net, [10], [2], [8])
    with pytest.raises(SimulationError, match="no requests in the time window"):
        Simulator(router3, two_cars(net), reqs, make_policy("batch"), SimParams(start_s=100, end_s=200))


def test_riders_cancel_after_max_wait(router3: Router) -> None:
    """One car, two riders at the same corner in one batch: the loser waits, the car is busy past the deadline."""
    net = router3.network
    fleet = Fleet.build((Operator("acme", 1, start_nodes=(0,)),), net, np.random.default_rng(0))
    reqs = requests_on(net, [0, 0], [1, 1], [8, 8])
    res = Simulator(router3, fleet, reqs, make_policy("batch"), SimParams(end_s=600), EngineParams(max_wait_s=60)).run()
    assert sorted(res.outcomes.outcome.tolist()) == [Outcome.SERVED, Outcome.CANCELLED]


def test_a_request_left_open_after_the_last_event_expires_at_its_deadline() -> None:
    """A policy deciding on arrivals only (``insertion``, no rebalancing: no periodic tick) can leave a request open
    once nothing else happens: the simulator wakes the engine when it expires, so it ends cancelled at its deadline
    instead of the run failing with a request left unresolved (found by the kernels' random runs: 6 x 6 grid, 3
    one-seat vehicles, a per-leg overhead, one candidate)."""
    from robotaxi.dispatch import PolicyParams, Reason
    from robotaxi.network import SpeedProfile

    net = grid_city(6, 6)
    router = Router(net, profile=SpeedProfile(tuple(1.0 + 0.9 * (k % 2) for k in range(96)), overhead_s=20.0))
    fleet = Fleet.build((Operator("acme", 3, capacity=1),), net, np.random.default_rng(10000))
    reqs = random_requests(net, 120, 1800, 10000)
    sim = Simulator(
        router,
        fleet,
        reqs,
        make_policy("insertion", PolicyParams(candidates=1)),
        SimParams(end_s=30_000),
        EngineParams(max_wait_s=300, max_delay_s=400),
    )
    res = sim.run()
    last = len(reqs) - 1
    assert res.outcomes.outcome[last] == Outcome.CANCELLED  # the request nothing could take
    assert res.outcomes.reason[last] == Reason.MAX_WAIT_EXCEEDED

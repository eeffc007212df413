"""The dispatch engine and its two policies on small grid cities (every block takes 20 s)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robotaxi.dispatch import DispatchEngine, RejectReason, make_policy, solve_assignment
from robotaxi.dispatch.policies import PolicyName
from robotaxi.errors import DispatchError, IllegalTransitionError
from robotaxi.fleet import EventType, VehicleState
from robotaxi.network import RoadNetwork, Router, grid_city


@pytest.fixture(scope="module")
def line5() -> Router:
    """A 1x5 grid city: five nodes on a line, 20 s apart."""
    return Router(grid_city(1, 5))


@pytest.fixture(scope="module")
def router3(grid3: RoadNetwork) -> Router:
    return Router(grid3)


def engine(router: Router, policy: PolicyName, nodes: list[int], max_wait_s: int = 600) -> DispatchEngine:
    e = DispatchEngine(router, make_policy(policy), start_nodes=nodes, capacity=4, max_wait_s=max_wait_s)
    e.vehicles_updated(np.arange(len(nodes)), EventType.SERVICE_START, nodes, 0)
    return e


def test_immediate_takes_the_nearest_idle_vehicle(line5: Router) -> None:
    e = engine(line5, "immediate", [0, 4])
    d = e.request_arrived(7, 5, 3)
    assert d.assign_request.tolist() == [7]
    assert d.assign_vehicle.tolist() == [1]
    assert d.assign_eta_s.tolist() == [20]
    assert e.vehicle_state[1] == VehicleState.RESERVED
    assert e.vehicle_of(7) == 1
    assert e.n_idle == 1


def test_batch_beats_greedy_on_total_wait(line5: Router) -> None:
    """Vehicles at 1 and 4; r1 at 2 then r2 at 0. Greedy gives r1 the car at 1 (20 s) and r2 the car at 4 (80 s);
    the batch swaps them: 40 s + 20 s."""
    imm = engine(line5, "immediate", [1, 4])
    first = imm.request_arrived(1, 0, 2)
    second = imm.request_arrived(2, 0, 0)
    greedy = int(first.assign_eta_s.sum() + second.assign_eta_s.sum())
    bat = engine(line5, "batch", [1, 4])
    assert bat.requests_arrived([1, 2], [0, 0], [2, 0]).empty  # nothing is decided before the tick
    d = bat.tick(0)
    assert dict(zip(d.assign_request.tolist(), d.assign_vehicle.tolist(), strict=True)) == {1: 1, 2: 0}
    assert greedy == 100
    assert int(d.assign_eta_s.sum()) == 60


def test_reject_reasons(line5: Router) -> None:
    e = engine(line5, "immediate", [0], max_wait_s=30)
    d = e.request_arrived(1, 0, 4)  # 80 s away, the rider waits at most 30 s
    assert d.reject_request.tolist() == [1]
    assert d.reject_reason.tolist() == [RejectReason.ETA_EXCEEDS_MAX_WAIT]
    d = e.request_arrived(2, 0, 1)
    assert d.assign_vehicle.tolist() == [0]
    d = e.request_arrived(3, 1, 1)  # the only vehicle is busy
    assert d.reject_reason.tolist() == [RejectReason.NO_VEHICLE_AVAILABLE]
    d = e.request_arrived(4, 2, 1, passengers=9)
    assert d.reject_reason.tolist() == [RejectReason.OVER_CAPACITY]


def test_batch_keeps_competition_losers_open(line5: Router) -> None:
    e = engine(line5, "batch", [2])
    e.requests_arrived([1, 2], [0, 0], [1, 3])
    d = e.tick(30)
    assert d.assign_request.size == 1
    assert d.reject_request.size == 0  # the loser could have been reached: it stays open
    ids, deadline = e.open_requests()
    assert ids.size == 1
    assert deadline.tolist() == [600]
    assert e.requests_cancelled(ids, 700).tolist() == [-1]
    assert e.open_requests()[0].size == 0


def test_vehicle_updates_follow_the_state_machine(line5: Router) -> None:
    e = engine(line5, "immediate", [0])
    e.request_arrived(1, 0, 2)
    with pytest.raises(IllegalTransitionError, match="trip_end from reserved"):
        e.vehicle_updated(0, EventType.TRIP_END, 2, 10)
    for ev in (EventType.RESERVATION_STOP, EventType.TRIP_START, EventType.TRIP_END):
        e.vehicle_updated(0, ev, 2, 50)
    assert e.vehicle_state[0] == VehicleState.AVAILABLE
    assert e.vehicle_node[0] == 2
    assert e.vehicle_of(1) == -1
    assert e.request_arrived(2, 60, 3).assign_eta_s.tolist() == [20]


def test_bad_inputs_raise(line5: Router) -> None:
    e = engine(line5, "batch", [0])
    e.request_arrived(1, 0, 2)
    with pytest.raises(DispatchError, match="already submitted"):
        e.request_arrived(1, 5, 2)
    with pytest.raises(DispatchError, match="outside the network"):
        e.request_arrived(2, 5, 99)
    with pytest.raises(DispatchError, match="not open and not assigned"):
        e.requests_cancelled([42], 10)
    with pytest.raises(DispatchError, match="at least one vehicle"):
        DispatchEngine(line5, make_policy("batch"), start_nodes=[], capacity=4)


@settings(max_examples=40, deadline=None)
@given(
    n_req=st.integers(1, 12),
    n_veh=st.integers(1, 12),
    seed=st.integers(0, 10_000),
    policy=st.sampled_from(["immediate", "batch"]),
)
def test_no_vehicle_is_assigned_twice(n_req: int, n_veh: int, seed: int, policy: PolicyName) -> None:
    rng = np.random.default_rng(seed)
    router = Router(grid_city(4, 4))
    nodes = rng.integers(0, 16, n_veh).tolist()
    e = engine(router, policy, nodes, max_wait_s=10_000)
    d = e.requests_arrived(np.arange(n_req), 0, rng.integers(0, 16, n_req))
    if policy == "batch":
        d = e.tick(0)
    assert np.unique(d.assign_vehicle).size == d.assign_vehicle.size
    assert d.assign_request.size == min(n_req, n_veh)  # generous max wait: everyone reachable
    assert d.assign_request.size + d.reject_request.size + e.open_requests()[0].size == n_req


def test_solver_maximises_matches_before_minimising_eta() -> None:
    # Row 0 could take v0 (1 s) or v1 (50 s); row 1 only v0 (1 s). Matching both beats the cheap single.
    rows = np.array([0, 0, 1])
    veh = np.array([0, 1, 0])
    eta = np.array([1, 50, 1])
    r, v, e = solve_assignment(rows, veh, eta, 2)
    assert r.tolist() == [0, 1]
    assert v.tolist() == [1, 0]
    assert e.tolist() == [50, 1]


def test_same_instant_arrivals_after_the_last_idle_vehicle_have_no_vehicle(line5: Router) -> None:
    """One car at node 0; three riders at node 1 at the same second. The first gets the car; the other two find no
    idle vehicle at all (not a vehicle too far away)."""
    e = engine(line5, "immediate", [0])
    d = e.requests_arrived([1, 2, 3], 0, [1, 1, 1])
    assert d.assign_request.tolist() == [1]
    assert d.reject_request.tolist() == [2, 3]
    assert d.reject_reason.tolist() == [RejectReason.NO_VEHICLE_AVAILABLE] * 2


def test_same_instant_arrivals_keep_the_eta_reason_while_vehicles_are_idle(line5: Router) -> None:
    """Cars at nodes 0 and 1, max wait 30 s; riders at node 4 (too far for both), then 1, then 4 again: the first
    is turned down for its ETA, the last for want of any idle car."""
    e = engine(line5, "immediate", [0, 1], max_wait_s=30)
    d = e.requests_arrived([1, 2, 3, 4], 0, [4, 1, 0, 4])
    assert dict(zip(d.assign_request.tolist(), d.assign_vehicle.tolist(), strict=True)) == {2: 1, 3: 0}
    reasons = dict(zip(d.reject_request.tolist(), d.reject_reason.tolist(), strict=True))
    assert reasons == {1: RejectReason.ETA_EXCEEDS_MAX_WAIT, 4: RejectReason.NO_VEHICLE_AVAILABLE}


def test_a_withdrawn_reservation_puts_the_request_back(line5: Router) -> None:
    """One car at node 0 is sent to a rider at node 2, then its driver withdraws: the rider is neither served nor
    turned down, so the request is open again (same deadline) and the next batch gives it a vehicle."""
    e = engine(line5, "batch", [0])
    e.request_arrived(1, 0, 2)
    assert e.tick(30).assign_vehicle.tolist() == [0]
    e.vehicle_updated(0, EventType.DRIVER_CANCELLATION, 1, 40)
    assert e.vehicle_of(1) == -1
    ids, deadline = e.open_requests()
    assert (ids.tolist(), deadline.tolist()) == ([1], [600])
    d = e.tick(60)
    assert (d.assign_request.tolist(), d.assign_vehicle.tolist(), d.assign_eta_s.tolist()) == ([1], [0], [20])


def test_a_rider_cancellation_or_a_stop_after_boarding_reopens_nothing(line5: Router) -> None:
    e = engine(line5, "batch", [0, 4])
    e.requests_arrived([1, 2], 0, [1, 3])
    assert sorted(e.tick(30).assign_request.tolist()) == [1, 2]
    assert e.requests_cancelled([1], 35).tolist() == [0]
    e.vehicle_updated(0, EventType.PASSENGER_CANCELLATION, 1, 40)
    for ev in (EventType.RESERVATION_STOP, EventType.TRIP_START, EventType.TRIP_STOP):
        e.vehicle_updated(1, ev, 3, 50)
    e.vehicle_updated(1, EventType.PROVIDER_CANCELLATION, 2, 60)  # legal from stopped; the rider already rode
    assert e.open_requests()[0].size == 0
    assert e.n_idle == 2


@pytest.mark.parametrize("policy", ["immediate", "batch"])
def test_a_large_party_gets_the_nearest_vehicle_with_enough_seats(line5: Router, policy: PolicyName) -> None:
    """A 4-seater at node 0 and a 6-seater at node 4; a party of five at node 1. The 4-seater is nearer but too
    small: the 6-seater (60 s away) takes them, under both policies."""
    e = DispatchEngine(line5, make_policy(policy), start_nodes=[0, 4], capacity=[4, 6], max_wait_s=600)
    e.vehicles_updated([0, 1], EventType.SERVICE_START, [0, 4], 0)
    d = e.request_arrived(1, 0, 1, passengers=5)
    if policy == "batch":
        d = e.tick(0)
    assert (d.assign_vehicle.tolist(), d.assign_eta_s.tolist()) == ([1], [60])
    d = e.request_arrived(2, 1, 1, passengers=2)
    if policy == "batch":
        d = e.tick(1)
    assert (d.assign_vehicle.tolist(), d.assign_eta_s.tolist()) == ([0], [20])


@settings(max_examples=40, deadline=None)
@given(
    n_req=st.integers(1, 12),
    n_veh=st.integers(1, 12),
    seed=st.integers(0, 10_000),
    policy=st.sampled_from(["immediate", "batch"]),
)
def test_mixed_fleets_seat_every_party_once(n_req: int, n_veh: int, seed: int, policy: PolicyName) -> None:
    rng = np.random.default_rng(seed)
    router = Router(grid_city(4, 4))
    nodes = rng.integers(0, 16, n_veh)
    cap = rng.choice([2, 4, 6], n_veh)
    e = DispatchEngine(router, make_policy(policy), start_nodes=nodes, capacity=cap, max_wait_s=10_000)
    e.vehicles_updated(np.arange(n_veh), EventType.SERVICE_START, nodes, 0)
    pax = rng.integers(1, 7, n_req)
    d = e.requests_arrived(np.arange(n_req), 0, rng.integers(0, 16, n_req), passengers=pax)
    if policy == "batch":
        d = e.tick(0)
    assert np.unique(d.assign_vehicle).size == d.assign_vehicle.size
    assert np.all(cap[d.assign_vehicle] >= pax[d.assign_request])
    if policy == "immediate":
        # With a generous max wait, immediate turns a party down only when every vehicle big enough is taken.
        for p in pax[d.reject_request]:
            assert np.all(np.isin(np.flatnonzero(cap >= p), d.assign_vehicle))

"""The dispatch engine and its unpooled policies on small grid cities (every block takes 20 s)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robotaxi.dispatch import (
    DispatchEngine,
    Reason,
    RequestsCancelled,
    RequestStatus,
    Tick,
    VehiclesDocked,
    VehiclesRetired,
    VehiclesUpdated,
    make_policy,
    solve_assignment,
)
from robotaxi.dispatch.policies import PolicyName
from robotaxi.errors import DispatchError, IllegalTransitionError
from robotaxi.fleet import EventType, VehicleState
from robotaxi.network import RoadNetwork, Router, grid_city

from .helpers import arrive, engine, pick_up_and_drop, update, vid


@pytest.fixture(scope="module")
def line5() -> Router:
    """A 1x5 grid city: five nodes on a line, 20 s apart."""
    return Router(grid_city(1, 5))


@pytest.fixture(scope="module")
def router3(grid3: RoadNetwork) -> Router:
    return Router(grid3)


def test_immediate_takes_the_nearest_idle_vehicle(line5: Router) -> None:
    e = engine(line5, "immediate", [0, 4])
    d = arrive(e, 5, [7], [3], [1])
    assert d.assign_request.tolist() == [7]
    assert d.assign_vehicle.tolist() == [1]
    assert d.assign_pickup_s.tolist() == [25]
    assert d.replanned.tolist() == [1]
    assert e.vehicle_state[1] == VehicleState.RESERVED
    assert e.vehicle_of(7) == 1
    assert e.plan(1) == [(0, 7, 3), (1, 7, 1)]
    assert e.leg(1) == (4, 5, False)
    assert e.n_idle == 1


def test_batch_beats_greedy_on_total_wait(line5: Router) -> None:
    """Vehicles at 1 and 4; r1 at 2 then r2 at 0. Greedy gives r1 the car at 1 (20 s) and r2 the car at 4 (80 s);
    the batch swaps them: 40 s + 20 s."""
    imm = engine(line5, "immediate", [1, 4])
    first = arrive(imm, 0, [1], [2])
    second = arrive(imm, 0, [2], [0])
    greedy = int(first.assign_pickup_s.sum() + second.assign_pickup_s.sum())
    bat = engine(line5, "batch", [1, 4])
    assert arrive(bat, 0, [1, 2], [2, 0]).empty  # nothing is decided before the tick
    d = bat.handle(Tick(0))
    assert dict(zip(d.assign_request.tolist(), d.assign_vehicle.tolist(), strict=True)) == {1: 1, 2: 0}
    assert greedy == 100
    assert int(d.assign_pickup_s.sum()) == 60


def test_reject_reasons(line5: Router) -> None:
    e = engine(line5, "immediate", [0], max_wait_s=30)
    d = arrive(e, 0, [1], [4])  # 80 s away, the rider waits at most 30 s
    assert d.reject_request.tolist() == [1]
    assert d.reasons() == [Reason.ETA_EXCEEDS_MAX_WAIT]
    d = arrive(e, 0, [2], [1])
    assert d.assign_vehicle.tolist() == [0]
    d = arrive(e, 1, [3], [1])  # the only vehicle is busy
    assert d.reasons() == [Reason.NO_VEHICLE_AVAILABLE]
    d = arrive(e, 2, [4], [1], passengers=9)
    assert d.reasons() == [Reason.OVER_CAPACITY]


def test_batch_keeps_competition_losers_open_and_the_engine_expires_them(line5: Router) -> None:
    e = engine(line5, "batch", [2])
    arrive(e, 0, [1, 2], [1, 3])
    d = e.handle(Tick(30))
    assert d.assign_request.size == 1
    assert d.reject_request.size == 0  # the loser could have been reached: it stays open
    ids, deadline = e.open_requests()
    assert ids.size == 1
    assert deadline.tolist() == [600]
    assert e.handle(Tick(600)).expired_request.size == 0  # at its deadline it may still be served
    d = e.handle(Tick(601))
    assert (d.expired_request.tolist(), d.expired_s.tolist()) == (ids.tolist(), [600])
    assert e.request_status(int(ids[0])) == RequestStatus.CANCELLED
    assert e.open_requests()[0].size == 0


def test_vehicle_updates_follow_the_plan_and_the_state_machine(line5: Router) -> None:
    e = engine(line5, "immediate", [0])
    arrive(e, 0, [1], [2], [4])
    with pytest.raises(DispatchError, match="out of plan order"):
        update(e, 10, 0, EventType.TRIP_STOP, 4, 1)
    with pytest.raises(DispatchError, match="trip_end for request 1 out of plan order"):
        update(e, 10, 0, EventType.TRIP_END, 2, 1)
    with pytest.raises(IllegalTransitionError, match="service_start from reserved"):
        update(e, 10, 0, EventType.SERVICE_START, 0)
    end = pick_up_and_drop(e, 40, 0, 1, 2, 4)
    assert e.vehicle_state[0] == VehicleState.AVAILABLE
    assert e.leg(0) == (4, end, False)
    assert e.request_status(1) == RequestStatus.DONE
    assert arrive(e, end + 1, [2], [3]).assign_pickup_s.tolist() == [end + 21]


def test_bad_inputs_raise(line5: Router) -> None:
    e = engine(line5, "batch", [0])
    arrive(e, 0, [1], [2])
    with pytest.raises(DispatchError, match="already submitted"):
        arrive(e, 5, [1], [2])
    with pytest.raises(DispatchError, match="not in the network"):
        arrive(e, 5, [2], [99])
    with pytest.raises(DispatchError, match="unknown request id 42"):
        e.handle(RequestsCancelled(10, [42]))
    with pytest.raises(DispatchError, match="unknown vehicle id"):
        e.handle(VehiclesUpdated(10, ["nope"], EventType.SERVICE_END, [0]))
    with pytest.raises(DispatchError, match="time went backwards"):
        e.handle(Tick(-5))
    with pytest.raises(DispatchError, match="already docked"):
        e.handle(VehiclesDocked(10, [vid(0)], [1]))


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
    d = arrive(e, 0, list(range(n_req)), rng.integers(0, 16, n_req).tolist())
    if policy == "batch":
        d = e.handle(Tick(0))
    assert np.unique(d.assign_vehicle).size == d.assign_vehicle.size
    assert d.assign_request.size == min(n_req, n_veh)  # generous max wait: everyone reachable
    assert d.assign_request.size + d.reject_request.size + e.open_requests()[0].size == n_req


def test_solver_maximises_matches_before_minimising_eta() -> None:
    # Row 0 could take v0 (1 s) or v1 (50 s); row 1 only v0 (1 s). Matching both beats the cheap single.
    rows = np.array([0, 0, 1])
    veh = np.array([0, 1, 0], dtype=np.int32)
    eta = np.array([1, 50, 1])
    r, v, e = solve_assignment(rows, veh, eta, 2)
    assert r.tolist() == [0, 1]
    assert v.tolist() == [1, 0]
    assert e.tolist() == [50, 1]


def test_same_instant_arrivals_after_the_last_idle_vehicle_have_no_vehicle(line5: Router) -> None:
    """One car at node 0; three riders at node 1 at the same second. The first gets the car; the other two find no
    idle vehicle at all (not a vehicle too far away)."""
    e = engine(line5, "immediate", [0])
    d = arrive(e, 0, [1, 2, 3], [1, 1, 1])
    assert d.assign_request.tolist() == [1]
    assert d.reject_request.tolist() == [2, 3]
    assert d.reasons() == [Reason.NO_VEHICLE_AVAILABLE] * 2


def test_same_instant_arrivals_keep_the_eta_reason_while_vehicles_are_idle(line5: Router) -> None:
    """Cars at nodes 0 and 1, max wait 30 s; riders at node 4 (too far for both), then 1, then 4 again: the first
    is turned down for its ETA, the last for want of any idle car."""
    e = engine(line5, "immediate", [0, 1], max_wait_s=30)
    d = arrive(e, 0, [1, 2, 3, 4], [4, 1, 0, 4])
    assert dict(zip(d.assign_request.tolist(), d.assign_vehicle.tolist(), strict=True)) == {2: 1, 3: 0}
    reasons = dict(zip(d.reject_request.tolist(), d.reasons(), strict=True))
    assert reasons == {1: Reason.ETA_EXCEEDS_MAX_WAIT, 4: Reason.NO_VEHICLE_AVAILABLE}


def test_a_withdrawn_reservation_puts_the_request_back(line5: Router) -> None:
    """One car at node 0 is sent to a rider at node 2, then its driver withdraws: the rider is neither served nor
    turned down, so the request is open again (same deadline) and the next batch gives it a vehicle."""
    e = engine(line5, "batch", [0])
    arrive(e, 0, [1], [2])
    assert e.handle(Tick(30)).assign_vehicle.tolist() == [0]
    d = update(e, 40, 0, EventType.DRIVER_CANCELLATION, 1, 1)
    assert d.reopened_request.tolist() == [1]
    assert e.vehicle_of(1) == -1
    ids, deadline = e.open_requests()
    assert (ids.tolist(), deadline.tolist()) == ([1], [600])
    d = e.handle(Tick(60))
    assert (d.assign_request.tolist(), d.assign_vehicle.tolist(), d.assign_pickup_s.tolist()) == ([1], [0], [80])


def test_immediate_decides_a_reopened_request_again_when_a_vehicle_frees_up(line5: Router) -> None:
    """The bug the old engine had: under the immediate policy a request re-opened by a driver cancellation was
    never decided again. Here the only car withdraws, then becomes idle: the request is served at once."""
    e = engine(line5, "immediate", [0])
    assert arrive(e, 0, [1], [2]).assign_vehicle.tolist() == [0]
    d = update(e, 10, 0, EventType.DRIVER_CANCELLATION, 1, 1)
    # The withdrawing vehicle is idle again at node 1 and is the only one: the engine re-decides in the same answer.
    assert d.reopened_request.tolist() == [1]
    assert (d.assign_request.tolist(), d.assign_vehicle.tolist(), d.assign_pickup_s.tolist()) == ([1], [0], [30])


def test_a_vehicle_freed_near_an_open_request_serves_it_now(line5: Router) -> None:
    """Batch keeps a competition loser open; under immediate it is decided on the next vehicle update."""
    e = engine(line5, "immediate", [0])
    arrive(e, 0, [1], [1], [2])
    e.handle(VehiclesUpdated(5, [vid(0)], EventType.DRIVER_CANCELLATION, [0], [1]))  # serves it again at once
    assert e.request_status(1) == RequestStatus.ASSIGNED


def test_a_rider_cancellation_or_a_stop_after_boarding_reopens_nothing(line5: Router) -> None:
    e = engine(line5, "batch", [0, 4])
    arrive(e, 0, [1, 2], [1, 3], [2, 4])
    assert sorted(e.handle(Tick(30)).assign_request.tolist()) == [1, 2]
    e.handle(RequestsCancelled(35, [1]))  # the rider cancels: the vehicle's plan loses the stops
    assert e.plan(0) == []
    assert e.vehicle_state[0] == VehicleState.AVAILABLE
    update(e, 50, 1, EventType.RESERVATION_STOP, 3, 2)
    update(e, 80, 1, EventType.TRIP_START, 3, 2)
    with pytest.raises(DispatchError, match="which is on_board"):
        update(e, 90, 1, EventType.PROVIDER_CANCELLATION, 3, 2)
    assert e.open_requests()[0].size == 0
    assert e.n_idle == 1


@pytest.mark.parametrize("policy", ["immediate", "batch"])
def test_a_large_party_gets_the_nearest_vehicle_with_enough_seats(line5: Router, policy: PolicyName) -> None:
    """A 4-seater at node 0 and a 6-seater at node 4; a party of five at node 1. The 4-seater is nearer but too
    small: the 6-seater (60 s away) takes them, under both policies."""
    e = engine(line5, policy, [0, 4], capacity=[4, 6])
    d = arrive(e, 0, [1], [1], passengers=5)
    if policy == "batch":
        d = e.handle(Tick(0))
    assert (d.assign_vehicle.tolist(), d.assign_pickup_s.tolist()) == ([1], [60])
    d = arrive(e, 1, [2], [1], passengers=2)
    if policy == "batch":
        d = e.handle(Tick(1))
    assert (d.assign_vehicle.tolist(), d.assign_pickup_s.tolist()) == ([0], [21])


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
    nodes = rng.integers(0, 16, n_veh).tolist()
    cap = rng.choice([2, 4, 6], n_veh)
    e = engine(router, policy, nodes, capacity=cap.tolist(), max_wait_s=10_000)
    pax = rng.integers(1, 7, n_req)
    d = arrive(e, 0, list(range(n_req)), rng.integers(0, 16, n_req).tolist(), passengers=pax)
    if policy == "batch":
        d = e.handle(Tick(0))
    assert np.unique(d.assign_vehicle).size == d.assign_vehicle.size
    assert np.all(cap[d.assign_vehicle] >= pax[d.assign_request])
    if policy == "immediate":
        # With a generous max wait, immediate turns a party down only when every vehicle big enough is taken.
        for p in pax[d.reject_request]:
            assert np.all(np.isin(np.flatnonzero(cap >= p), d.assign_vehicle))


def test_operator_constraint_is_respected(line5: Router) -> None:
    e = DispatchEngine(line5, make_policy("immediate"))
    e.handle(VehiclesDocked(0, ["a", "b"], [0, 4], operator=[0, 1]))
    e.handle(VehiclesUpdated(0, ["a", "b"], EventType.SERVICE_START, [0, 4]))
    d = arrive(e, 1, [1], [1], operator=1)
    assert d.assign_vehicle.tolist() == [1]  # the nearer car belongs to another operator


def test_vehicles_dock_and_retire_while_running(line5: Router) -> None:
    e = engine(line5, "immediate", [0])
    arrive(e, 0, [1], [1], [3])
    d = e.handle(VehiclesRetired(5, [vid(0)]))
    assert d.retired.size == 0  # it has a rider to serve first
    assert arrive(e, 6, [2], [0]).reasons() == [Reason.NO_VEHICLE_AVAILABLE]  # retiring: no new work
    e.handle(VehiclesDocked(7, ["new"], [4]))
    e.handle(VehiclesUpdated(7, ["new"], EventType.SERVICE_START, [4]))
    assert arrive(e, 8, [3], [2]).assign_vehicle.tolist() == [1]
    update(e, 20, 0, EventType.RESERVATION_STOP, 1, 1)
    update(e, 50, 0, EventType.TRIP_START, 1, 1)
    update(e, 90, 0, EventType.TRIP_STOP, 3, 1)
    d = update(e, 120, 0, EventType.TRIP_END, 3, 1)
    assert d.retired.tolist() == [0]
    assert e.vehicle_id(1) == "new"


def test_a_bad_vehicle_update_changes_nothing(line5: Router) -> None:
    """The old engine moved a vehicle in its idle index before failing on a bad id or node. Now a batch is checked
    whole first: a bad node, an unknown id, or a bad second row leaves the engine byte-for-byte as it was."""
    e = engine(line5, "immediate", [0, 4])
    before = e.snapshot()
    for bad in (
        VehiclesUpdated(5, [vid(0)], EventType.SERVICE_END, [99]),
        VehiclesUpdated(5, [vid(0), "ghost"], [EventType.SERVICE_END, EventType.SERVICE_END], [0, 0]),
        VehiclesUpdated(5, [vid(0), vid(1)], [EventType.SERVICE_END, EventType.TRIP_END], [0, 4], [-1, 3]),
        VehiclesUpdated(5, [vid(0), vid(0)], [EventType.SERVICE_END, EventType.SERVICE_END], [0, 0]),
    ):
        with pytest.raises(DispatchError):
            e.handle(bad)
        assert e.snapshot() == before
    assert e.n_idle == 2


def test_snapshot_restore_round_trip(line5: Router) -> None:
    e = engine(line5, "batch", [0, 4])
    arrive(e, 0, [1, 2], [1, 3], [2, 4])
    restored = DispatchEngine.restore(e.snapshot(), line5)
    a, b = e.handle(Tick(30)), restored.handle(Tick(30))
    assert a.assign_request.tolist() == b.assign_request.tolist()
    assert a.assign_vehicle.tolist() == b.assign_vehicle.tolist()
    assert restored.snapshot() == e.snapshot()
    with pytest.raises(DispatchError, match="wrong header"):
        DispatchEngine.restore(b"junk", line5)
    with pytest.raises(DispatchError, match="network of 5 nodes"):
        DispatchEngine.restore(e.snapshot(), Router(grid_city(2, 2)))

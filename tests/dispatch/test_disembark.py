"""Riders who leave a stopped vehicle on the way and ride on as new requests (RidersDisembarked), on a 1x5 line city
(nodes 20 s apart)."""

from __future__ import annotations

import pytest

from robotaxi.dispatch import (
    LOCATED,
    DispatchEngine,
    Reason,
    RequestStatus,
    RidersDisembarked,
    VehiclesOffDuty,
    continuation_id,
)
from robotaxi.dispatch.events import CONTINUATION_ID_STEP
from robotaxi.errors import DispatchError
from robotaxi.fleet import EventType, VehicleState
from robotaxi.network import Router, grid_city

from .helpers import arrive, engine, update, vid

E = EventType


@pytest.fixture(scope="module")
def line5() -> Router:
    return Router(grid_city(1, 5))


def on_board(line5: Router) -> DispatchEngine:
    """Vehicle 0 (at node 0) picks up request 1 at node 0 for node 4 and drives to node 2; vehicle 1 idles at 4."""
    e = engine(line5, "immediate", [0, 4])
    d = arrive(e, 0, [1], [0], [4])
    assert d.assign_vehicle.tolist() == [0]
    update(e, 0, 0, E.RESERVATION_STOP, 0, 1)
    update(e, 30, 0, E.TRIP_START, 0, 1)
    update(e, 70, 0, LOCATED, 2)
    return e


def test_a_rider_out_on_the_way_gets_a_new_request_that_another_vehicle_serves(line5: Router) -> None:
    e = on_board(line5)
    e.handle(VehiclesOffDuty(70, [vid(0)]))
    d = e.handle(RidersDisembarked(70, [vid(0)], [1], [2], [100]))
    assert d.redispatched_request.tolist() == [1]
    assert d.redispatched_as.tolist() == [100]
    assert e.request_status(1) == RequestStatus.REDISPATCHED
    assert e.origin_of(100) == 1
    assert e.origin_of(1) == -1
    # The vehicle is empty, its plan too: off duty, it is reported so (the caller ends its service).
    assert e.vehicle_load[0] == 0
    assert e.plan(0) == []
    assert e.vehicle_state[0] == VehicleState.AVAILABLE
    assert d.off_duty.tolist() == [0]
    # The new request goes from node 2 to the old drop-off, and vehicle 1 (two blocks away) takes it at once.
    assert d.assign_request.tolist() == [100]
    assert d.assign_vehicle.tolist() == [1]
    assert d.assign_pickup_s.tolist() == [110]
    assert e.plan(1) == [(0, 100, 2), (1, 100, 4)]
    row = e.requests.row(100)
    assert int(e.requests.cols["deadline"][row]) == 70 + 600  # the original's max wait, from now
    assert int(e.requests.cols["operator"][row]) == -1
    assert Reason.VEHICLE_STOPPED.label == "vehicle_stopped"


def test_the_default_new_id_is_derived_and_other_riders_stay(line5: Router) -> None:
    e = engine(line5, "insertion", [0], capacity=4)
    arrive(e, 0, [1, 2], [0, 0], [4, 3], shareable=True)
    assert {r for _k, r, _n in e.plan(0)} == {1, 2}
    update(e, 0, 0, E.RESERVATION_STOP, 0, e.plan(0)[0][1])
    first, second = e.plan(0)[0][1], e.plan(0)[1][1]
    update(e, 30, 0, E.TRIP_START, 0, first)
    update(e, 30, 0, E.RESERVATION_STOP, 0, second)
    update(e, 60, 0, E.TRIP_START, 0, second)
    update(e, 80, 0, LOCATED, 1)
    d = e.handle(RidersDisembarked(80, vid(0), [1], [1]))
    assert d.redispatched_as.tolist() == [continuation_id(1)] == [1 + CONTINUATION_ID_STEP]
    # Rider 2 stays on board with the vehicle, which goes on from node 1 now; rider 1's new request joins a plan.
    assert e.vehicle_load[0] == 1
    assert e.vehicle_state[0] == VehicleState.ON_TRIP
    assert e.request_status(2) == RequestStatus.ON_BOARD
    assert (1, 2, 3) in e.plan(0)
    assert e.leg(0) == (1, 80, False)


@pytest.mark.parametrize(
    ("event", "match"),
    [
        (RidersDisembarked(70, ["nobody"], [1], [2], [100]), "unknown vehicle id"),
        (
            RidersDisembarked(70, [vid(1)], [1], [2], [100]),
            "request 1 is not on board \\(it is on_board of vehicle 'v0'\\)",
        ),
        (RidersDisembarked(70, [vid(0)], [7], [2], [100]), "unknown request id 7"),
        (RidersDisembarked(70, [vid(0)], [1], [3], [100]), "last reported at node 2"),
        (RidersDisembarked(70, [vid(0)], [1], [99], [100]), "node 99 is not in the network"),
        (RidersDisembarked(70, [vid(0)], [1], [2], [1]), "new request id 1 was already submitted"),
        (RidersDisembarked(70, [vid(0)], [1], [2], [-4]), "negative"),
        (RidersDisembarked(70, [vid(0), vid(0)], [1, 1], [2, 2], [100, 101]), "appears twice"),
        (RidersDisembarked(60, [vid(0)], [1], [2], [100]), "time went backwards"),
    ],
)
def test_bad_disembarkations_raise_and_change_nothing(line5: Router, event: RidersDisembarked, match: str) -> None:
    e = on_board(line5)
    before = e.snapshot()
    with pytest.raises(DispatchError, match=match):
        e.handle(event)
    assert e.snapshot() == before


def test_not_on_board_and_at_the_drop_off_are_refused(line5: Router) -> None:
    e = engine(line5, "immediate", [0])
    arrive(e, 0, [1], [2], [4])
    before = e.snapshot()
    with pytest.raises(DispatchError, match="request 1 is not on board \\(it is assigned\\)"):
        e.handle(RidersDisembarked(5, [vid(0)], [1], [0], [100]))
    assert e.snapshot() == before
    update(e, 40, 0, E.RESERVATION_STOP, 2, 1)
    update(e, 70, 0, E.TRIP_START, 2, 1)
    update(e, 110, 0, E.TRIP_STOP, 4, 1)
    before = e.snapshot()
    with pytest.raises(DispatchError, match="at its drop-off node 4: report trip_end"):
        e.handle(RidersDisembarked(120, [vid(0)], [1], [4], [100]))
    assert e.snapshot() == before


def test_the_new_request_and_its_link_survive_a_snapshot(line5: Router) -> None:
    e = on_board(line5)
    e.handle(VehiclesOffDuty(70, [vid(0), vid(1)]))  # nobody takes the new request: it stays open
    e.handle(RidersDisembarked(70, [vid(0)], [1], [2], [100]))
    twin = DispatchEngine.restore(e.snapshot(), line5)
    assert twin.snapshot() == e.snapshot()
    assert twin.origin_of(100) == 1
    assert twin.request_status(1) == RequestStatus.REDISPATCHED
    assert twin.open_requests()[0].tolist() == [100]

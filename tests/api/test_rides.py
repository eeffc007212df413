"""Riders: request (stored, decided, idempotent), follow, cancel; the ride's whole life with a docked vehicle."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from robotaxi.store import tables

from .conftest import Platform, node_location

pytestmark = pytest.mark.integration


def test_ride_life_cycle(platform: Platform) -> None:
    p = platform
    op = p.operator("waymo")
    car = p.vehicle(op, node=0)
    alice = p.rider("alice")
    r = p.ride(alice, 2, 14, passengers=2)  # 2 blocks east of the car; then to (2, 2)
    assert r.status_code == 201, r.text
    ride = r.json()
    assert ride["status"] == "assigned"
    assert ride["vehicle"]["device_id"] == car
    assert ride["quote"]["direct_duration_s"] == 40
    assert ride["quote"]["direct_distance_m"] == 400
    assert ride["quote"]["pickup_eta_ms"] == p.now_ms + 40_000  # two 20 s blocks
    trip = ride["trip_id"]
    veh = p.client.get(f"/v1/operator/vehicles/{car}", headers=op).json()
    assert veh["state"] == "reserved"
    assert [s["kind"] for s in veh["plan"]] == ["pickup", "dropoff"]
    assert veh["plan"][0]["trip_id"] == trip
    # the vehicle drives and reports its stops
    p.advance(40)
    assert p.event(op, car, "reservation_stop", 2, trip).status_code == 200
    p.advance(10)
    assert p.event(op, car, "trip_start", 2, trip).status_code == 200
    assert p.client.get(f"/v1/rides/{ride['ride_id']}", headers=alice).json()["status"] == "on_board"
    p.advance(40)
    assert p.event(op, car, "trip_stop", 14, trip).status_code == 200
    r = p.event(op, car, "trip_end", 14, trip)
    assert r.status_code == 200, r.text
    done = p.client.get(f"/v1/rides/{ride['ride_id']}", headers=alice).json()
    assert done["status"] == "completed"
    assert done["dropoff_ms"] == p.now_ms
    with p.service.db.connect() as conn:
        row = conn.execute(sa.select(tables.trips)).one()
    assert row.trip_id == trip
    assert row.distance_m == 400
    assert row.duration_s == 40
    assert row.passengers == 2
    assert p.client.get(f"/v1/operator/vehicles/{car}", headers=op).json()["state"] == "available"


def test_idempotency_key(platform: Platform) -> None:
    p = platform
    op = p.operator("waymo")
    p.vehicle(op, node=0)
    alice, bob = p.rider("alice"), p.rider("bob")
    first = p.ride(alice, 1, 7, key="k-1")
    assert first.status_code == 201
    again = p.ride(alice, 1, 7, key="k-1")
    assert again.status_code == 200
    assert again.json() == first.json()
    other = p.ride(alice, 1, 8, key="k-1")
    assert other.status_code == 422
    assert other.json()["error"] == "idempotency_key_reused"
    assert other.json()["error_details"] == ["Idempotency-Key"]
    # another rider's key is their own
    assert p.ride(bob, 1, 7, key="k-1").status_code == 201
    with p.service.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.ride_requests)).scalar_one() == 2
    assert len(p.client.get("/v1/rides", headers=alice).json()) == 1


def test_no_vehicle_and_cancel(platform: Platform) -> None:
    p = platform
    op = p.operator("waymo")
    alice, bob = p.rider("alice"), p.rider("bob")
    r = p.ride(alice, 1, 7)
    assert r.json()["status"] == "rejected"
    assert r.json()["reason"] == "no_vehicle_available"
    car = p.vehicle(op, node=0)
    r = p.ride(alice, 1, 7)
    ride = r.json()
    assert ride["status"] == "assigned"
    # bob cannot see or cancel it
    assert p.client.get(f"/v1/rides/{ride['ride_id']}", headers=bob).status_code == 404
    assert p.client.post(f"/v1/rides/{ride['ride_id']}/cancel", headers=bob).status_code == 404
    c = p.client.post(f"/v1/rides/{ride['ride_id']}/cancel", headers=alice)
    assert c.status_code == 200
    assert c.json()["status"] == "cancelled"
    assert c.json()["reason"] == "rider_cancelled"
    assert p.client.post(f"/v1/rides/{ride['ride_id']}/cancel", headers=alice).status_code == 409
    veh = p.client.get(f"/v1/operator/vehicles/{car}", headers=op).json()
    assert veh["state"] == "available"
    assert veh["plan"] == []


def test_bad_ride_requests_name_the_field(platform: Platform) -> None:
    p = platform
    alice = p.rider("alice")
    far = {"lat": 51.0, "lng": 10.0}
    cases = [
        ({"origin": far, "destination": node_location(3)}, 422, "origin"),
        ({"origin": node_location(3), "destination": node_location(3)}, 422, "destination"),
        ({"origin": {"lat": 95, "lng": 10}, "destination": node_location(3)}, 422, "origin.lat"),
        ({"origin": node_location(1), "destination": node_location(3), "passengers": 0}, 422, "passengers"),
        ({"origin": node_location(1), "destination": node_location(3), "operator": "nobody"}, 422, "operator"),
        ({"origin": node_location(1)}, 422, "destination"),
    ]
    for body, status, field in cases:
        r = p.client.post("/v1/rides", json=body, headers={**alice, "Idempotency-Key": "x"})
        assert r.status_code == status, (body, r.text)
        assert field in r.json()["error_details"], (body, r.json())
    r = p.client.post("/v1/rides", json={"origin": node_location(1), "destination": node_location(3)}, headers=alice)
    assert r.status_code == 422
    assert r.json()["error_details"] == ["Idempotency-Key"]
    with p.service.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.ride_requests)).scalar_one() == 0


def test_ride_requests_queued_together_are_one_engine_input(platform: Platform) -> None:
    """Ride requests waiting together for the engine thread run as one group: one engine input, one insert; each
    still gets its own answer, a bad one is refused alone, and a retry in the same group sees the first request."""
    import threading

    from robotaxi.api.rides import request_ride
    from robotaxi.api.schemas import Location, RideRequestIn
    from robotaxi.errors import ServiceError

    p = platform
    op = p.operator("waymo")
    cars = {p.vehicle(op, n) for n in (0, 17, 35)}
    p.rider("ana")
    with p.service.db.connect() as conn:
        logged = conn.execute(sa.select(sa.func.count()).select_from(tables.engine_log)).scalar_one()

    def body(o: int, d: int, operator: str | None = None) -> RideRequestIn:
        o_at, d_at = Location(**node_location(o)), Location(**node_location(d))
        return RideRequestIn(origin=o_at, destination=d_at, passengers=1, operator=operator)

    far = body(1, 3).model_copy(update={"origin": Location(lat=10.0, lng=10.0)})
    gate = threading.Event()
    blocker = p.service.submit(lambda ctx: gate.wait(10))  # hold the engine thread while the rides queue up
    futures = [
        p.service.submit(request_ride("ana", k, b))
        for k, b in (
            ("k1", body(1, 20)),
            ("k2", far),  # off the network: refused, alone
            ("k3", body(30, 5)),
            ("k1", body(1, 20)),  # a retry of k1 in the same batch: the same ride, not a second booking
            ("k4", body(14, 15, operator="nobody")),
            ("k5", body(2, 9)),
        )
    ]
    gate.set()
    assert blocker.result(10)
    errors = {i: f.exception(10) for i, f in enumerate(futures)}
    for i, field in ((1, "origin"), (4, "operator")):
        e = errors[i]
        assert isinstance(e, ServiceError)
        assert (e.status, e.field) == (422, field)
    answers = {i: f.result(10) for i, f in enumerate(futures) if errors[i] is None}
    assert sorted(answers) == [0, 2, 3, 5]
    assert [answers[i][1] for i in (0, 2, 3, 5)] == [True, True, False, True]  # created; the retry was not
    assert answers[3][0] == answers[0][0]
    rides = [answers[i][0] for i in (0, 2, 5)]
    assert {r.status for r in rides} == {"assigned"}
    assert {r.vehicle.device_id for r in rides if r.vehicle} == cars
    with p.service.db.connect() as conn:
        stored = conn.execute(sa.select(tables.ride_requests.c.idempotency_key)).scalars().all()
        entries = conn.execute(sa.select(sa.func.count()).select_from(tables.engine_log)).scalar_one()
    assert sorted(stored) == ["k1", "k3", "k5"]
    # k1, k3 and k5 were one RequestsArrived; the retry of k1 ran in a group of its own (it must see k1)
    assert entries - logged <= 3

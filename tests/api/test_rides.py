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

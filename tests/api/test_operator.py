"""Operators: vehicles, telemetry and events; bad batches are clear errors that change nothing; an operator never
sees or changes another operator's vehicles or trips."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from robotaxi.store import tables

from .conftest import Platform, node_location

pytestmark = pytest.mark.integration


def _state(p: Platform) -> dict[str, Any]:
    """Everything an operator batch could change: rows of every table and the engine snapshot."""
    with p.service.db.connect() as conn:
        rows = {t.name: sorted(map(repr, conn.execute(sa.select(t)))) for t in tables.metadata.sorted_tables}
    p.service.call(lambda ctx: None)
    return {**rows, "engine": p.service.engine.snapshot()}


def _tele(device: str, t: int, node: int, **extra: Any) -> dict[str, Any]:
    return {"device_id": device, "timestamp": t, "location": node_location(node), **extra}


def test_register_and_retire(platform: Platform) -> None:
    p = platform
    op = p.operator("waymo")
    device = str(uuid.uuid4())
    body = {
        "device_id": device,
        "vehicle_id": "W-1",
        "location": node_location(7),
        "capacity": 3,
        "propulsion_types": ["electric"],
        "accessibility_attributes": ["wheelchair_accessible"],
    }
    r = p.client.post("/v1/operator/vehicles", json=body, headers=op)
    assert r.status_code == 201, r.text
    v = r.json()
    assert v["device_id"] == device
    assert v["state"] == "non_operational"
    assert v["capacity"] == 3
    assert v["plan"] == []
    again = p.client.post("/v1/operator/vehicles", json=body, headers=op)
    assert again.status_code == 409
    assert again.json()["error_details"] == ["device_id"]
    plate = p.client.post("/v1/operator/vehicles", json={**body, "device_id": str(uuid.uuid4())}, headers=op)
    assert plate.status_code == 409
    assert plate.json()["error_details"] == ["vehicle_id"]
    off = p.client.post(
        "/v1/operator/vehicles",
        json={**body, "device_id": None, "vehicle_id": "W-2", "location": {"lat": 0, "lng": 0}},
        headers=op,
    )
    assert off.status_code == 422
    assert off.json()["error_details"] == ["location"]
    # where the network's projection is singular (schemathesis found it: it was a 503)
    sing = p.client.post(
        "/v1/operator/vehicles",
        json={**body, "device_id": None, "vehicle_id": "W-3", "location": {"lat": 0, "lng": -80}},
        headers=op,
    )
    assert sing.status_code == 422
    assert sing.json()["error_details"] == ["location"]
    assert [x["device_id"] for x in p.client.get("/v1/operator/vehicles", headers=op).json()] == [device]
    r = p.client.post(f"/v1/operator/vehicles/{device}/retire", headers=op)
    assert r.status_code == 200
    assert r.json()["state"] == "removed"
    assert r.json()["retired_ms"] == p.now_ms
    assert p.client.post(f"/v1/operator/vehicles/{device}/retire", headers=op).status_code == 409
    t = p.client.post("/v1/operator/telemetry", json={"data": [_tele(device, p.now_ms, 7)]}, headers=op)
    assert t.status_code == 409
    assert t.json()["error"] == "retired"


def test_telemetry_moves_the_vehicle_and_bad_batches_change_nothing(platform: Platform) -> None:
    p = platform
    op = p.operator("waymo")
    a = p.vehicle(op, node=0)
    b = p.vehicle(op, node=35)
    t0 = p.now_ms
    ok = p.client.post(
        "/v1/operator/telemetry",
        json={"data": [_tele(a, t0 - 2000, 0, battery_percent=80), _tele(a, t0 - 1000, 1), _tele(b, t0, 34)]},
        headers=op,
    )
    assert ok.status_code == 200
    assert ok.json() == {"success": 3, "total": 3}
    va = p.client.get(f"/v1/operator/vehicles/{a}", headers=op).json()
    assert va["location"] == node_location(1)
    assert va["battery_percent"] == 80
    assert va["last_telemetry_ms"] == t0 - 1000
    # a ride from node 2 now goes to a (at node 1), not b
    ride = p.ride(p.rider("alice"), 2, 8).json()
    assert ride["vehicle"]["device_id"] == a
    assert ride["quote"]["pickup_eta_ms"] == p.now_ms + 20_000
    before = _state(p)
    stranger = str(uuid.uuid4())
    bad = [
        ([_tele(a, t0 + 1, 1), _tele(stranger, t0 + 2, 3)], 404, "data[1].device_id", "unknown_vehicle"),
        ([_tele(b, t0 + 1, 33), _tele(a, t0 - 1000, 2)], 409, "data[1].timestamp", "out_of_order"),
        ([_tele(a, t0 + 5, 2), _tele(a, t0 + 5, 3)], 409, "data[1].timestamp", "out_of_order"),
        ([_tele(a, t0 + 1, 2), _tele(b, t0 + 60_000, 33)], 422, "data[1].timestamp", "from_the_future"),
        (
            [_tele(a, t0 + 1, 2), {**_tele(b, t0 + 1, 33), "location": {"lat": 10, "lng": 10}}],
            422,
            "data[1].location",
            "off_network",
        ),
        ([_tele(a, t0 + 1, 2, battery_percent=101)], 422, "data[0].battery_percent", "bad_param"),
        ([{**_tele(a, t0 + 1, 2), "speed": 3}], 422, "data[0].speed", "bad_param"),
        ([_tele(a, 1000, 2)], 422, "data[0].timestamp", "bad_param"),
    ]
    for rows, status, field, code in bad:
        r = p.client.post("/v1/operator/telemetry", json={"data": rows}, headers=op)
        assert r.status_code == status, (rows, r.text)
        assert (r.json()["error"], r.json()["error_details"]) == (code, [field])
    assert p.client.post("/v1/operator/telemetry", json={"data": []}, headers=op).status_code == 422
    assert _state(p) == before


def test_telemetry_ids_and_stored_rows(platform: Platform) -> None:
    """The rows a telemetry batch stores (one statement per table on PostgreSQL, ``robotaxi.api._bulk``): every
    point with its id, the vehicle's latest point and battery (kept when a point has none); a ``telemetry_id``
    repeated in the batch or already received is refused and changes nothing."""
    p = platform
    op = p.operator("waymo")
    a = p.vehicle(op, node=0)
    b = p.vehicle(op, node=35)
    t0 = p.now_ms
    ids = [str(uuid.uuid4()) for _ in range(3)]
    rows = [
        _tele(a, t0 - 3000, 0, battery_percent=70, telemetry_id=ids[0]),
        _tele(b, t0 - 2000, 34, telemetry_id=ids[1]),
        _tele(a, t0 - 1000, 1, telemetry_id=ids[2]),
        _tele(b, t0, 33),  # the server draws its id
    ]
    r = p.client.post("/v1/operator/telemetry", json={"data": rows}, headers=op)
    assert r.status_code == 200, r.text
    with p.service.db.connect() as conn:
        t = tables.telemetry
        stored = conn.execute(
            sa.select(t.c.telemetry_id, t.c.device_id, t.c.timestamp_ms, t.c.battery_percent, t.c.trip_ids).order_by(
                t.c.timestamp_ms
            )
        ).all()
        v = tables.vehicles
        cars = {
            r.device_id: r
            for r in conn.execute(
                sa.select(v.c.device_id, v.c.node, v.c.battery_percent, v.c.last_telemetry_id, v.c.last_telemetry_ms)
            )
        }
    assert [tuple(x) for x in stored[:3]] == [
        (ids[0], a, t0 - 3000, 70, None),
        (ids[1], b, t0 - 2000, None, None),
        (ids[2], a, t0 - 1000, None, None),
    ]
    drawn = stored[3].telemetry_id
    assert str(uuid.UUID(drawn)) == drawn
    assert uuid.UUID(drawn).version == 7  # time-ordered (robotaxi.store.ids): a batch's keys sit together
    assert drawn not in ids
    assert (cars[a].node, cars[a].battery_percent, cars[a].last_telemetry_id, cars[a].last_telemetry_ms) == (
        1, 70, ids[2], t0 - 1000,
    )  # fmt: skip
    assert (cars[b].node, cars[b].battery_percent, cars[b].last_telemetry_id, cars[b].last_telemetry_ms) == (
        33, None, drawn, t0,
    )  # fmt: skip
    before = _state(p)
    again = [_tele(a, t0 + 1, 2), _tele(b, t0 + 1, 32, telemetry_id=ids[1])]
    r = p.client.post("/v1/operator/telemetry", json={"data": again}, headers=op)
    assert r.status_code == 409, r.text
    assert (r.json()["error"], r.json()["error_details"]) == ("already_registered", ["data[1].telemetry_id"])
    new = str(uuid.uuid4())
    twice = [_tele(a, t0 + 1, 2, telemetry_id=new), _tele(b, t0 + 1, 32, telemetry_id=new)]
    r = p.client.post("/v1/operator/telemetry", json={"data": twice}, headers=op)
    assert r.status_code == 422, r.text
    assert (r.json()["error"], r.json()["error_details"]) == ("duplicate_id", ["data[1].telemetry_id"])
    assert _state(p) == before


def test_illegal_events_change_nothing(platform: Platform) -> None:
    p = platform
    op = p.operator("waymo")
    car = p.vehicle(op, node=0, in_service=False)
    before = _state(p)
    r = p.event(op, car, "trip_end", 0, trip_id=str(uuid.uuid4()))
    assert r.status_code == 409
    assert r.json()["error_details"] == ["data[0].trip_id"]
    r = p.event(op, car, "service_end", 0)  # not in service yet
    assert r.status_code == 409
    assert "illegal MDS transition" in r.json()["error_description"]
    r = p.event(op, car, "trip_start", 0)
    assert r.status_code == 422
    assert r.json()["error_details"] == ["data[0].trip_id"]
    r = p.event(op, car, "teleport", 0)
    assert r.status_code == 422
    assert r.json()["error_details"] == ["data[0].event_type"]
    assert _state(p) == before
    assert p.event(op, car, "service_start", 0).status_code == 200
    assert p.event(op, car, "service_start", 0, at_ms=p.now_ms - 1).status_code == 409  # before the last one


def test_operators_are_isolated(platform: Platform) -> None:
    p = platform
    waymo, zoox = p.operator("waymo"), p.operator("zoox")
    car = p.vehicle(waymo, node=0)
    ride = p.ride(p.rider("alice"), 1, 7).json()
    assert ride["vehicle"]["device_id"] == car
    before = _state(p)
    assert p.client.get(f"/v1/operator/vehicles/{car}", headers=zoox).status_code == 404
    assert p.client.get("/v1/operator/vehicles", headers=zoox).json() == []
    assert p.client.post(f"/v1/operator/vehicles/{car}/retire", headers=zoox).status_code == 404
    r = p.client.post("/v1/operator/telemetry", json={"data": [_tele(car, p.now_ms, 1)]}, headers=zoox)
    assert r.status_code == 404
    assert r.json()["error"] == "unknown_vehicle"
    r = p.event(zoox, car, "reservation_stop", 1, trip_id=ride["trip_id"])
    assert r.status_code == 404
    # a vehicle with the same device_id cannot be registered by another operator either
    r = p.client.post(
        "/v1/operator/vehicles", json={"device_id": car, "vehicle_id": "Z", "location": node_location(0)}, headers=zoox
    )
    assert r.status_code == 409
    assert _state(p) == before
    # MDS data is scoped too
    mds = {"Accept": "application/vnd.mds+json;version=2.0"}
    assert p.client.get("/mds/vehicles", headers={**zoox, **mds}).json()["vehicles"] == []
    assert p.client.get(f"/mds/vehicles/{car}", headers={**zoox, **mds}).status_code == 404
    assert len(p.client.get("/mds/vehicles", headers={**waymo, **mds}).json()["vehicles"]) == 1


def test_oversize_body_is_refused(platform: Platform) -> None:
    p = platform
    op = p.operator("waymo")
    big = b'{"data": [' + b" " * 2_000_000 + b"]}"
    r = p.client.post("/v1/operator/telemetry", content=big, headers={**op, "Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"] == "too_large"

"""Admin: operators' service areas (GeoJSON, checked like the marketplace's ``[[operators]] area``), wired into
the live engine: an operator serves only trips whose pickup and dropoff lie in its area."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from robotaxi.market.config import parse_fares
from robotaxi.store import tables

from .conftest import Platform, node_location

pytestmark = pytest.mark.integration


def _box(lng0: float, lat0: float, lng1: float, lat1: float) -> dict[str, Any]:
    ring = [[lng0, lat0], [lng1, lat0], [lng1, lat1], [lng0, lat1], [lng0, lat0]]
    return {"type": "Polygon", "coordinates": [ring]}


def _west(cols: int = 3) -> dict[str, Any]:
    """The grid's columns 0..cols-1 (every row)."""
    a, b = node_location(0), node_location(35)
    mid = (node_location(cols - 1)["lng"] + node_location(cols)["lng"]) / 2
    box = _box(a["lng"] - 0.001, a["lat"] - 0.001, mid, b["lat"] + 0.001)
    return {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": box}]}


def test_service_areas_limit_what_an_operator_serves(platform: Platform) -> None:
    p = platform
    op = p.operator("westco")
    p.vehicle(op, 0)
    rider = p.rider("ana")
    r = p.client.put("/v1/admin/operators/westco/area", json=_west(), headers=p.admin)
    assert r.status_code == 200, r.text
    assert r.json()["area"]["type"] == "FeatureCollection"
    listed = p.client.get("/v1/admin/operators", headers=p.admin).json()
    assert listed[0]["area"] == _west()
    inside = p.ride(rider, 1, 14).json()  # columns 1 and 2
    assert inside["status"] == "assigned", inside
    p.advance(1)
    outside = p.ride(rider, 4, 11).json()  # columns 4 and 5: nobody serves them
    assert outside["status"] == "rejected"
    assert outside["reason"] == "outside_service_area"
    # without the area the operator serves everywhere again
    r = p.client.delete("/v1/admin/operators/westco/area", headers=p.admin)
    assert r.status_code == 200, r.text
    assert r.json()["area"] is None
    op2 = p.operator("spare")
    p.vehicle(op2, 35)
    assert p.ride(rider, 34, 29).json()["status"] == "assigned"


def test_bad_areas_are_refused_and_change_nothing(platform: Platform) -> None:
    p = platform
    p.operator("westco")
    assert p.client.put("/v1/admin/operators/westco/area", json=_west(), headers=p.admin).status_code == 200
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[10.0, 50.0], [10.01, 50.01], [10.01, 50.0], [10.0, 50.01], [10.0, 50.0]]],
    }
    cases = [
        (bowtie, "not a valid polygon"),
        ({"type": "Point", "coordinates": [10.0, 50.0]}, "not a Polygon"),
        (_box(20.0, 60.0, 20.1, 60.1), "contains no node"),
        ({"type": "FeatureCollection", "features": []}, "no polygons"),
        ({"type": "Polygon", "coordinates": "junk"}, "not a geometry"),
        ({"type": "FeatureCollection", "features": 3}, "list of features"),
        (_box(10.0, 95.0, 10.1, 96.0), "WGS84"),
    ]
    for body, text in cases:
        r = p.client.put("/v1/admin/operators/westco/area", json=body, headers=p.admin)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error_details"] == ["area"]
        assert text in r.json()["error_description"], r.text
    assert p.client.get("/v1/admin/operators", headers=p.admin).json()[0]["area"] == _west()
    r = p.client.post("/v1/admin/operators", json={"name": "b", "area": bowtie}, headers=p.admin)
    assert r.status_code == 422
    assert [o["name"] for o in p.client.get("/v1/admin/operators", headers=p.admin).json()] == ["westco"]
    assert p.client.put("/v1/admin/operators/nobody/area", json=_west(), headers=p.admin).status_code == 404
    assert p.client.put("/v1/admin/operators/westco/area", json=_west(), headers=p.rider("x")).status_code == 403


FARES = {"base_cents": 250, "per_km_cents": 120, "per_minute_cents": 30, "minimum_cents": 500}


def test_operator_fares_price_its_quotes_and_trips(platform: Platform) -> None:
    p = platform
    assert p.service.settings.fares is None  # the platform itself sets no fares
    r = p.client.post("/v1/admin/operators", json={"name": "pricey", "fares": FARES}, headers=p.admin)
    assert r.status_code == 201, r.text
    assert r.json()["fares"] == FARES
    op = p.auth(p.token_for(p.key("operator", "pricey-ops", operator="pricey")))
    car = p.vehicle(op, 0)
    rider = p.rider("ana")
    schedule = parse_fares(FARES)
    ride = p.ride(rider, 2, 14, operator="pricey").json()
    q = ride["quote"]
    assert q["fare_cents"] == int(schedule.fare_cents([q["direct_distance_m"]], [q["direct_duration_s"]])[0])
    assert q["fare_cents"] > 0
    assert q["currency"] == "USD"
    # a ride for any operator is quoted with the platform's fares (none here)
    assert p.ride(rider, 3, 15).json()["quote"]["fare_cents"] is None
    trip = ride["trip_id"]
    p.advance(40)
    assert p.event(op, car, "reservation_stop", 2, trip).status_code == 200
    assert p.event(op, car, "trip_start", 2, trip).status_code == 200
    p.advance(50)
    assert p.event(op, car, "trip_stop", 14, trip).status_code == 200
    assert p.event(op, car, "trip_end", 14, trip).status_code == 200
    with p.service.db.connect() as conn:
        row = conn.execute(sa.select(tables.trips).where(tables.trips.c.trip_id == trip)).one()
    assert row.fare_cents == int(schedule.fare_cents([row.distance_m], [row.duration_s])[0])
    assert row.duration_s == 50
    # bad tables are refused, naming the field; a null clears the operator's fares
    for bad in ({**FARES, "base_cents": -1}, {**FARES, "tip_cents": 5}, {**FARES, "per_km_cents": 1.5}):
        r = p.client.patch("/v1/admin/operators/pricey", json={"fares": bad}, headers=p.admin)
        assert (r.status_code, r.json()["error_details"]) == (422, ["fares"]), r.text
    assert p.client.get("/v1/admin/operators", headers=p.admin).json()[0]["fares"] == FARES
    r = p.client.patch("/v1/admin/operators/pricey", json={"offers": None}, headers=p.admin)
    assert (r.status_code, r.json()["error_details"]) == (422, ["offers"])
    r = p.client.patch("/v1/admin/operators/pricey", json={"fares": None}, headers=p.admin)
    assert r.status_code == 200
    assert r.json()["fares"] is None
    assert p.ride(rider, 4, 16, operator="pricey").json()["quote"]["fare_cents"] is None

"""The MDS 2.0 Provider API: every response validated against the official schemas; versions, errors, hours."""

from __future__ import annotations

import csv
import dataclasses
import io
from typing import Any

import pytest

from .conftest import START_S, Platform, node_location
from .mds_schemas import errors, response_validator, validator

pytestmark = pytest.mark.integration

MDS = {"Accept": "application/vnd.mds+json;version=2.0"}


def _hour(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H")


def _get(p: Platform, who: dict[str, str], path: str, spec_path: str, status: int = 200, **params: Any) -> Any:
    r = p.client.get(path, headers={**who, **MDS}, params=params)
    assert r.status_code == status, (path, r.text)
    if status == 200:
        assert r.headers["content-type"] == "application/vnd.mds+json;version=2.0"
        body = r.json()
        assert body["version"] == "2.0.0"
        assert errors(response_validator(spec_path), body) == []
        return body
    body = r.json()
    assert errors(validator("response/error.yaml"), body) == [], body
    return body


def _serve_one_ride(p: Platform) -> tuple[dict[str, str], str, dict[str, Any]]:
    op = p.operator("waymo")
    car = p.vehicle(op, node=0)
    p.client.post(
        "/v1/operator/telemetry",
        json={
            "data": [
                {"device_id": car, "timestamp": p.now_ms, "location": {"lat": 50.0, "lng": 10.0}, "battery_percent": 90}
            ]
        },
        headers=op,
    )
    ride = p.ride(p.rider("alice"), 2, 14).json()
    trip = ride["trip_id"]
    p.advance(40)
    assert p.event(op, car, "reservation_stop", 2, trip).status_code == 200
    assert p.event(op, car, "trip_start", 2, trip).status_code == 200
    p.client.post(
        "/v1/operator/telemetry",
        json={"data": [{"device_id": car, "timestamp": p.now_ms + 1, "location": {"lat": 50.0018, "lng": 10.0056}}]},
        headers=op,
    )
    p.advance(40)
    assert p.event(op, car, "trip_stop", 14, trip).status_code == 200
    assert p.event(op, car, "trip_end", 14, trip).status_code == 200
    return op, car, ride


def test_mds_endpoints_validate_against_the_official_schemas(platform: Platform) -> None:
    p = platform
    _, car, ride = _serve_one_ride(p)
    reg_key = p.key("regulator", "city")
    reg = p.auth(p.token_for(reg_key))
    vehicles = _get(p, reg, "/mds/vehicles", "/vehicles")["vehicles"]
    assert [v["device_id"] for v in vehicles] == [car]
    assert errors(validator("vehicle.yaml"), vehicles[0]) == []
    one = _get(p, reg, f"/mds/vehicles/{car}", "/vehicles/{device_id}")
    assert one["vehicles"] == vehicles
    status = _get(p, reg, "/mds/vehicles/status", "/vehicles/status")["vehicles_status"]
    assert status[0]["last_event"]["event_types"] == ["trip_end"]
    assert status[0]["last_event"]["vehicle_state"] == "available"
    _get(p, reg, f"/mds/vehicles/status/{car}", "/vehicles/status/{device_id}")
    # the hour is not over yet: 404; an hour later the trip is there
    now_hour = _hour(p.now_ms)
    _get(p, reg, "/mds/trips", "/trips", 404, end_time=now_hour)
    p.clock.t += 3600
    reg = p.auth(p.token_for(reg_key))  # tokens live an hour
    trips = _get(p, reg, "/mds/trips", "/trips", end_time=now_hour)["trips"]
    assert len(trips) == 1
    t = trips[0]
    assert t["trip_id"] == ride["trip_id"]
    assert t["device_id"] == car
    assert t["distance"] == 400
    assert t["duration"] == 40
    assert t["trip_type"] == ["private"]
    assert t["trip_attributes"]["passenger_count"] == 1
    events = _get(p, reg, "/mds/events/historical", "/events/historical", event_time=now_hour)["events"]
    types = [e["event_types"][0] for e in events]
    assert types == ["service_start", "reservation_start", "reservation_stop", "trip_start", "trip_stop", "trip_end"]
    assert [e["vehicle_state"] for e in events] == [
        "available",
        "reserved",
        "stopped",
        "on_trip",
        "stopped",
        "available",
    ]
    for e in events:
        assert errors(validator("event.yaml"), e) == [], e
    recent = _get(p, reg, "/mds/events/recent", "/events/recent", start_time=START_S * 1000, end_time=p.now_ms)[
        "events"
    ]
    assert recent == events
    tele = _get(p, reg, "/mds/telemetry", "/telemetry", telemetry_time=now_hour)["telemetry"]
    assert [x["trip_ids"] for x in tele] == [None, [ride["trip_id"]]]
    # the month's report, once the month is over
    r = p.client.get(f"/mds/reports/{_hour(p.now_ms)[:7]}.csv", headers={**reg, **MDS})
    assert r.status_code == 404
    p.clock.t += 31 * 86400
    reg = p.auth(p.token_for(reg_key))
    r = p.client.get(f"/mds/reports/{now_hour[:7]}.csv", headers={**reg, **MDS})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert errors(validator("report.yaml"), r.text) == []
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["trip_count"], x["rider_count"], x["special_group_type"]) for x in rows] == [("1", "1", "all_riders")]


def test_mds_errors_and_version_negotiation(platform: Platform) -> None:
    p = platform
    p.operator("waymo")
    reg = p.regulator()
    for params, field in (
        ({}, "end_time"),
        ({"end_time": "2026-13-01T00"}, "end_time"),
        ({"end_time": "yesterday"}, "end_time"),
    ):
        body = _get(p, reg, "/mds/trips", "/trips", 400, **params)
        assert body["error"] in ("bad_param", "missing_param")
        assert body["error_details"] == [field]
        assert errors(validator(f"response/error_{body['error']}.yaml"), body) == []
    _get(p, reg, "/mds/events/recent", "/events/recent", 400, start_time=1)
    _get(p, reg, "/mds/events/recent", "/events/recent", 400, start_time=p.now_ms, end_time=p.now_ms - 1)
    old = p.now_ms - 15 * 86_400_000
    _get(p, reg, "/mds/events/recent", "/events/recent", 400, start_time=old, end_time=p.now_ms)
    # Times past any database integer (found by schemathesis: SQLite raised OverflowError, a 500): a bad_param.
    for times in ({"start_time": p.now_ms, "end_time": 2**63}, {"start_time": -(2**63) - 1, "end_time": p.now_ms}):
        body = _get(p, reg, "/mds/events/recent", "/events/recent", 400, **times)
        assert body["error"] == "bad_param"
    _get(p, reg, "/mds/events/historical", "/events/historical", 404, event_time="2020-01-01T00")
    _get(p, reg, "/mds/vehicles/not-a-uuid", "/vehicles/{device_id}", 400)
    _get(p, reg, "/mds/vehicles/00000000-0000-4000-8000-000000000000", "/vehicles/{device_id}", 404)
    _get(p, reg, "/mds/reports/2026-1.csv", "/reports/{filename}", 400)
    for accept, status in (
        ("application/vnd.mds+json;version=1.2", 406),
        ("application/vnd.mds+json;version=2.0", 200),
        ("application/vnd.mds+json", 200),
        ("application/vnd.mds+json;version=1.2, */*;q=0.1", 200),
        ("application/json", 200),
    ):
        r = p.client.get("/mds/vehicles", headers={**reg, "Accept": accept})
        assert r.status_code == status, (accept, r.text)
        if status == 406:
            assert r.json()["error"] == "unsupported_version"
    r = p.client.get("/mds/vehicles")
    assert r.status_code == 401
    assert errors(validator("response/error.yaml"), r.json()) == []


def _pages(p: Platform, who: dict[str, str], path: str, key: str, **params: Any) -> list[Any]:
    """Follow the ``links.next`` of a paged MDS endpoint; check first/last/prev on the way."""
    body = _get(p, who, f"/mds{path}", path, **params)
    out, seen = [], 0
    while True:
        out.extend(body[key])
        links = body["links"]
        assert links["first"].endswith("page=0")
        assert (links["prev"] is None) == (seen == 0)
        if seen:
            assert links["prev"].endswith(f"page={seen - 1}")
        if links["next"] is None:
            assert links["last"].endswith(f"page={seen}")
            return out
        seen += 1
        assert links["next"].endswith(f"page={seen}")
        url = links["next"].removeprefix("http://testserver")
        r = p.client.get(url, headers={**who, **MDS})
        assert r.status_code == 200, r.text
        body = r.json()
        assert errors(response_validator(path), body) == []


def test_mds_paging_links(platform: Platform) -> None:
    p = platform
    p.service.settings = dataclasses.replace(p.service.settings, mds_page_size=2)
    op = p.operator("waymo")
    cars = [p.vehicle(op, node=n) for n in range(5)]
    p.client.post(
        "/v1/operator/telemetry",
        json={
            "data": [{"device_id": c, "timestamp": p.now_ms, "location": node_location(n)} for n, c in enumerate(cars)]
        },
        headers=op,
    )
    reg = p.regulator()
    # registered in the same millisecond of the test clock: in device_id order
    assert [v["device_id"] for v in _pages(p, reg, "/vehicles", "vehicles")] == sorted(cars)
    assert [v["device_id"] for v in _pages(p, reg, "/vehicles/status", "vehicles_status")] == sorted(cars)
    events = _pages(p, reg, "/events/recent", "events", start_time=START_S * 1000, end_time=p.now_ms + 1)
    assert [e["device_id"] for e in events] == cars  # service_start of each, in the order recorded
    assert all(e["event_types"] == ["service_start"] for e in events)
    body = _get(p, reg, "/mds/vehicles", "/vehicles", page=2)
    assert len(body["vehicles"]) == 1
    assert body["links"]["next"] is None
    bad = _get(p, reg, "/mds/vehicles", "/vehicles", 400, page=3)
    assert bad["error"] == "bad_param"
    assert _get(p, reg, "/mds/vehicles", "/vehicles", 400, page=-1)["error"] == "bad_param"
    # another provider's token pages over its own vehicles only (none): one empty page
    empty = _get(p, p.operator("zoox"), "/mds/vehicles", "/vehicles")
    assert empty["vehicles"] == []
    assert empty["links"]["next"] is None
    assert empty["links"]["prev"] is None

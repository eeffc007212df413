"""Admin: operators' operating hours in the live engine (the marketplace's ``[[operators]] hours`` on the wall
clock). The test clock starts at 2026-12-02 10:00 UTC; the platform's time zone is UTC unless a test says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from robotaxi.api import LiveService, create_app
from robotaxi.store import tables

from .conftest import FakeClock, Platform, make_settings

pytestmark = pytest.mark.integration
HOUR = 3600
DAY_TOKENS = {"token_ttl_s": 2 * 86400}  # the tests move the clock by hours: tokens outlive them


@pytest.fixture
def platform(database_url: str, tmp_path: Path) -> Iterator[Platform]:
    clock = FakeClock()
    service = LiveService(make_settings(tmp_path / "data", database_url, clock, **DAY_TOKENS))
    with TestClient(create_app(service)) as client:
        yield Platform(client, service, clock)


def _hours(p: Platform, name: str, hours: str | None, **extra: str) -> dict[str, object]:
    if hours is None:
        r = p.client.delete(f"/v1/admin/operators/{name}/hours", headers=p.admin)
    else:
        r = p.client.put(f"/v1/admin/operators/{name}/hours", json={"hours": hours, **extra}, headers=p.admin)
    assert r.status_code == 200, r.text
    out: dict[str, object] = r.json()
    return out


def _operators_table(p: Platform) -> list[tuple[object, ...]]:
    with p.service.db.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(tables.operators).order_by(tables.operators.c.id))]


def test_rides_go_to_the_operators_that_are_open(platform: Platform) -> None:
    p = platform
    near, far = p.operator("nightco"), p.operator("dayco")
    night_car = p.vehicle(near, 0)
    day_car = p.vehicle(far, 35)
    rider = p.rider("ana")
    assert _hours(p, "nightco", "22:00-06:00")["hours"] == "22:00-06:00"  # closed at 10:00
    ride = p.ride(rider, 1, 7).json()
    assert ride["status"] == "assigned", ride
    assert ride["vehicle"]["device_id"] == day_car  # the nearer car's operator is closed
    # every open operator busy or closed: the rider is told nobody open could take it
    p.advance(1)
    assert p.ride(rider, 2, 8, operator="nightco").json()["reason"] == "out_of_hours"
    # open again (the window now includes 10:00): the near car serves
    _hours(p, "nightco", "09:30-10:30")
    p.advance(1)
    ride = p.ride(rider, 1, 13).json()
    assert ride["vehicle"]["device_id"] == night_car, ride
    # the operators' list and the OpenAPI document show the hours
    listed = {o["name"]: o["hours"] for o in p.client.get("/v1/admin/operators", headers=p.admin).json()}
    assert listed == {"nightco": "09:30-10:30", "dayco": None}
    doc = p.client.get("/openapi.json").json()
    assert {"put", "delete"} <= set(doc["paths"]["/v1/admin/operators/{name}/hours"])
    assert "hours" in doc["components"]["schemas"]["OperatorOut"]["properties"]


def test_no_operator_open_is_out_of_hours_and_hours_may_cross_midnight(platform: Platform) -> None:
    p = platform
    op = p.operator("owl")
    car = p.vehicle(op, 0)
    rider = p.rider("ana")
    _hours(p, "owl", "22:00-06:00")
    closed = p.ride(rider, 1, 7).json()
    assert (closed["status"], closed["reason"]) == ("rejected", "out_of_hours")
    p.advance(12 * HOUR)  # 22:00: open
    ride = p.ride(rider, 1, 7).json()
    assert ride["status"] == "assigned"
    assert ride["vehicle"]["device_id"] == car
    assert p.client.post(f"/v1/rides/{ride['ride_id']}/cancel", headers=rider).status_code == 200
    p.advance(7 * HOUR + 59 * 60)  # 05:59 the next day: still open
    assert p.ride(rider, 2, 8).json()["status"] == "assigned"
    p.advance(60)  # 06:00: closed; the rider already assigned keeps the car (it finishes its plan)
    assert p.ride(rider, 3, 9).json()["reason"] == "out_of_hours"
    plan = p.client.get(f"/v1/operator/vehicles/{car}", headers=op).json()["plan"]
    assert [s["kind"] for s in plan] == ["pickup", "dropoff"]


def test_a_vehicle_entering_service_while_closed_takes_no_rides(platform: Platform) -> None:
    p = platform
    op = p.operator("owl")
    _hours(p, "owl", "22:00-06:00")
    p.vehicle(op, 0)  # registered and service_start at 10:00, while closed
    rider = p.rider("ana")
    assert p.ride(rider, 1, 7).json()["reason"] == "out_of_hours"
    _hours(p, "owl", None)  # all day again: back on duty at once
    assert p.ride(rider, 1, 7).json()["status"] == "assigned"


def test_hours_follow_the_platform_time_zone(database_url: str, tmp_path: Path) -> None:
    clock = FakeClock()  # 10:00 UTC is 12:00 in Helsinki (EET, UTC+2, in December)
    settings = make_settings(tmp_path / "data", database_url, clock, timezone="Europe/Helsinki")
    service = LiveService(settings)
    with TestClient(create_app(service)) as client:
        p = Platform(client, service, clock)
        op = p.operator("hki")
        p.vehicle(op, 0)
        rider = p.rider("ana")
        _hours(p, "hki", "09:00-11:00", timezone="Europe/Helsinki")  # open in UTC, closed in Helsinki
        assert p.ride(rider, 1, 7).json()["reason"] == "out_of_hours"
        _hours(p, "hki", "11:30-12:30")
        assert p.ride(rider, 1, 7).json()["status"] == "assigned"
        r = p.client.put(
            "/v1/admin/operators/hki/hours", json={"hours": "09:00-11:00", "timezone": "UTC"}, headers=p.admin
        )
        assert (r.status_code, r.json()["error_details"]) == (422, ["timezone"]), r.text
        assert "Europe/Helsinki" in r.json()["error_description"]


def test_bad_hours_are_refused_and_change_nothing(platform: Platform) -> None:
    p = platform
    p.operator("owl")
    _hours(p, "owl", "22:00-06:00")
    before = _operators_table(p)
    engine = p.service.engine.snapshot()
    cases = [
        ("25:00-06:00", "out of range"),
        ("06:00-06:00", "empty window"),
        ("6:00-07:00", "HH:MM"),
        ("06:00", "HH:MM-HH:MM"),
        ("24:00-06:00", "before 24:00"),
        ("06:60-07:00", "out of range"),
    ]
    for text, why in cases:
        r = p.client.put("/v1/admin/operators/owl/hours", json={"hours": text}, headers=p.admin)
        assert r.status_code == 422, (text, r.text)
        assert r.json()["error_details"] == ["hours"], r.text
        assert why in r.json()["error_description"], r.text
        r = p.client.patch("/v1/admin/operators/owl", json={"hours": text}, headers=p.admin)
        assert (r.status_code, r.json()["error_details"]) == (422, ["hours"]), r.text
    r = p.client.post("/v1/admin/operators", json={"name": "b", "hours": "25:00-01:00"}, headers=p.admin)
    assert (r.status_code, r.json()["error_details"]) == (422, ["hours"]), r.text
    r = p.client.put("/v1/admin/operators/owl/hours", json={"hours": "08:00-09:00", "tz": "x"}, headers=p.admin)
    assert r.status_code == 422
    r = p.client.put("/v1/admin/operators/nobody/hours", json={"hours": "08:00-09:00"}, headers=p.admin)
    assert r.status_code == 404
    assert p.client.delete("/v1/admin/operators/nobody/hours", headers=p.admin).status_code == 404
    assert _operators_table(p) == before
    assert p.service.engine.snapshot() == engine
    # PATCH and POST take hours too; an explicit null clears them
    r = p.client.patch("/v1/admin/operators/owl", json={"hours": "08:00-20:00"}, headers=p.admin)
    assert r.json()["hours"] == "08:00-20:00"
    assert p.client.patch("/v1/admin/operators/owl", json={"hours": None}, headers=p.admin).json()["hours"] is None
    r = p.client.post("/v1/admin/operators", json={"name": "late", "hours": "20:00-24:00"}, headers=p.admin)
    assert (r.status_code, r.json()["hours"]) == (201, "20:00-24:00")


def test_hours_survive_a_restart(database_url: str, tmp_path: Path) -> None:
    clock = FakeClock()
    settings = make_settings(tmp_path / "data", database_url, clock, **DAY_TOKENS)
    service = LiveService(settings)
    with TestClient(create_app(service)) as client:
        p = Platform(client, service, clock)
        op = p.operator("owl")
        p.vehicle(op, 0)
        _hours(p, "owl", "22:00-06:00")
        rider = p.rider("ana")
        before = service.engine.snapshot()
    service = LiveService(settings)
    with TestClient(create_app(service)) as client:
        p = Platform(client, service, clock, tokens=p.tokens)  # the tokens are signed with the same secret
        assert service.engine.snapshot() == before
        assert p.ride(rider, 1, 7).json()["reason"] == "out_of_hours"
        assert p.client.get("/v1/admin/operators", headers=p.admin).json()[0]["hours"] == "22:00-06:00"
        p.advance(12 * HOUR)
        assert p.ride(rider, 1, 7).json()["status"] == "assigned"

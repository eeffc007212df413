"""DMV-format safety reports over HTTP: the disengagement report and the annual mileage report of a reporting
year, from the operators' reported disengagements and their vehicles' telemetry (the test clock is 2026-12-02,
in the 2027 reporting year: December 2026 to November 2027)."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import pytest

from robotaxi.safety.dmv import DISENGAGEMENT_COLUMNS

from .conftest import Platform, node_location

pytestmark = pytest.mark.integration


def _car(p: Platform, op: dict[str, str], node: int, vin: str | None) -> str:
    attrs: dict[str, Any] = {"make": "Zoox"}
    if vin is not None:
        attrs["vin"] = vin
    body = {"vehicle_id": f"P-{node}", "location": node_location(node), "vehicle_attributes": attrs}
    r = p.client.post("/v1/operator/vehicles", json=body, headers=op)
    assert r.status_code == 201, r.text
    device: str = r.json()["device_id"]
    return device


def _telemetry(p: Platform, op: dict[str, str], car: str, nodes: list[int]) -> None:
    for node in nodes:
        p.advance(1)
        row = {"device_id": car, "timestamp": p.now_ms, "location": node_location(node)}
        r = p.client.post("/v1/operator/telemetry", json={"data": [row]}, headers=op)
        assert r.status_code == 200, r.text


def _disengage(p: Platform, op: dict[str, str], car: str, who: str, text: str) -> Any:
    event = {
        "device_id": car, "event_type": "disengagement", "timestamp": p.now_ms, "location": node_location(1),
        "initiated_by": who, "driver_present": who == "safety_driver", "location_type": "street", "description": text,
    }  # fmt: skip
    return p.client.post("/v1/operator/safety-events", json={"data": [event]}, headers=op)


def _csv(p: Platform, path: str, headers: dict[str, str]) -> list[list[str]]:
    r = p.client.get(path, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(r.text)))


def test_dmv_reports_of_the_platforms_records(platform: Platform) -> None:
    p = platform
    r = p.client.post("/v1/admin/operators", json={"name": "waymo", "dmv_permit": "AVT001"}, headers=p.admin)
    assert r.status_code == 201, r.text
    assert r.json()["dmv_permit"] == "AVT001"
    op = p.auth(p.token_for(p.key("operator", "w", operator="waymo")))
    moving = _car(p, op, 0, "5YJ3E1EA7KF000001")
    parked = _car(p, op, 35, "5yj3e1ea7kf000002")
    _telemetry(p, op, moving, [0, 1, 2, 8])  # three blocks of 200 m
    _telemetry(p, op, parked, [35])
    assert _disengage(p, op, moving, "safety_driver", "construction zone").status_code == 200
    p.advance(1)  # the report lists events in time order
    assert _disengage(p, op, moving, "ads", "sensor fault, stopped").status_code == 200
    reg = p.regulator()
    rows = _csv(p, "/v1/safety/dmv/2027/disengagements.csv", reg)
    assert tuple(rows[0]) == DISENGAGEMENT_COLUMNS
    assert rows[1:] == [
        ["waymo", "AVT001", "12/02/2026", "5YJ3E1EA7KF000001", "Yes", "Yes", "Test Driver", "Street",
         "construction zone"],
        ["waymo", "AVT001", "12/02/2026", "5YJ3E1EA7KF000001", "Yes", "No", "AV System", "Street",
         "sensor fault, stopped"],
    ]  # fmt: skip
    rows = _csv(p, "/v1/safety/dmv/2027/mileage.csv", p.admin)
    assert rows[0][:4] == ["Manufacturer", "Permit Number", "VIN NUMBER", "Annual Total of Disengagements"]
    assert rows[0][4] == "DEC 2026"
    assert rows[0][-2:] == ["NOV 2027", "ANNUAL TOTAL"]
    by_vin = {row[2]: row for row in rows[1:]}
    assert set(by_vin) == {"5YJ3E1EA7KF000001", "5YJ3E1EA7KF000002"}
    miles = 600 / 1609.344  # three 200 m blocks of the grid (great-circle, within a metre)
    assert by_vin["5YJ3E1EA7KF000001"][3:5] == ["2", f"{miles:.1f}"]
    assert by_vin["5YJ3E1EA7KF000001"][-1] == f"{miles:.1f}"
    assert math.isclose(float(by_vin["5YJ3E1EA7KF000001"][4]), miles, abs_tol=0.05)
    assert by_vin["5YJ3E1EA7KF000002"][3:] == ["0"] + ["0.0"] * 13  # docked, never moved: still listed
    # the last period (before the platform existed) is empty; a period not started is 404
    assert _csv(p, "/v1/safety/dmv/2026/disengagements.csv", reg) == [list(DISENGAGEMENT_COLUMNS)]
    assert len(_csv(p, "/v1/safety/dmv/2026/mileage.csv", reg)) == 1
    assert p.client.get("/v1/safety/dmv/2028/mileage.csv", headers=reg).status_code == 404
    assert p.client.get("/v1/safety/dmv/1999/mileage.csv", headers=reg).status_code == 422
    assert p.client.get("/v1/safety/dmv/2027/mileage.csv", headers=op).status_code == 403


def test_dmv_reports_refuse_missing_permits_and_vins(platform: Platform) -> None:
    p = platform
    op = p.operator("cruise")  # no permit number
    car = _car(p, op, 0, None)  # no VIN
    reg = p.regulator()
    r = p.client.get("/v1/safety/dmv/2027/mileage.csv", headers=reg)
    assert (r.status_code, r.json()["error"], r.json()["error_details"]) == (409, "incomplete", ["dmv_permit"])
    r = p.client.patch("/v1/admin/operators/cruise", json={"dmv_permit": "AVT002"}, headers=p.admin)
    assert r.status_code == 200, r.text
    r = p.client.get("/v1/safety/dmv/2027/mileage.csv", headers=reg)
    assert (r.status_code, r.json()["error_details"]) == (409, ["vin"])
    assert car in r.json()["error_description"]
    # no disengagement yet: the disengagement report needs nothing of the vehicle
    assert _csv(p, "/v1/safety/dmv/2027/disengagements.csv", reg) == [list(DISENGAGEMENT_COLUMNS)]
    r = _disengage(p, op, car, "none", "nobody did it")
    assert (r.status_code, r.json()["error_details"]) == (422, ["data[0].initiated_by"])
    assert _disengage(p, op, car, "remote_operator", "remote stop").status_code == 200
    r = p.client.get("/v1/safety/dmv/2027/disengagements.csv", headers=reg)
    assert (r.status_code, r.json()["error_details"]) == (409, ["vin"])

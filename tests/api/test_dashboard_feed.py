"""The live dashboard's feed (``robotaxi serve --dashboard``): who may watch, and what the feed says as the platform
runs. On each database; the browser side is in ``tests/dashboard/test_live.py``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from robotaxi.api import LiveService, create_app
from robotaxi.api import dashboard_feed as feed_module
from robotaxi.dashboard import _payload

from .conftest import COLS, ROWS, FakeClock, Platform, make_settings, node_location
from .test_admin import _box, _west

FEED = "/v1/dashboard/feed"


@pytest.fixture
def live(database_url: str, tmp_path: Path) -> Iterator[Platform]:
    clock = FakeClock()
    service = LiveService(make_settings(tmp_path / "data", database_url, clock))
    app = create_app(service)
    feed_module.register(app, interval_s=0.05)
    with TestClient(app) as client:
        yield Platform(client, service, clock)


def _refused(p: Platform, first: str) -> tuple[dict[str, Any], int]:
    """Open the feed, send ``first``: the error message and the close code."""
    with p.client.websocket_connect(FEED) as ws:
        ws.send_text(first)
        message = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_bytes()
    return message, closed.value.code


def _token(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def test_only_admins_and_regulators_may_watch(live: Platform) -> None:
    p = live
    for who in (p.rider("alice"), p.operator("waymo")):
        message, code = _refused(p, json.dumps({"token": _token(who)}))
        assert code == feed_module.CLOSE_FORBIDDEN
        assert message["error"] == "forbidden"
        assert "(admin, regulator only)" in message["error_description"]
    for first in ("hello", "{}", json.dumps({"token": ""}), json.dumps({"token": "not-a-token"})):
        message, code = _refused(p, first)
        assert code == feed_module.CLOSE_UNAUTHORIZED, first
        assert message["type"] == "error"
    regulator = _token(p.regulator())
    p.clock.t += 3601  # tokens live an hour
    message, code = _refused(p, json.dumps({"token": regulator}))
    assert (code, message["error"]) == (feed_module.CLOSE_UNAUTHORIZED, "invalid_token")
    assert "expired" in message["error_description"]
    # The page itself holds no data and is served to anyone (like a sign-in form).
    page = p.client.get("/dashboard")
    assert page.status_code == 200
    assert '<script id="replay-data" type="application/octet-stream"></script>' in page.text


def _until(ws: WebSocketTestSession, ok: Callable[[dict[str, Any]], bool], limit: int = 400) -> dict[str, Any]:
    """The first update for which ``ok`` holds (updates come every 50 ms; a bound on their number, not on time)."""
    for _ in range(limit):
        message: dict[str, Any] = ws.receive_json()
        assert message["type"] == "update", message
        if ok(message):
            return message
    pytest.fail(f"no such update in {limit} messages")


def test_the_feed_follows_the_platform(live: Platform) -> None:
    p = live
    op = p.operator("waymo")
    car = p.vehicle(op, node=0, plate="W-1")
    with p.client.websocket_connect(FEED) as ws:
        ws.send_text(json.dumps({"token": _token(p.regulator())}))
        meta, arrays = _payload.decode(ws.receive_bytes())
        assert meta["live"] is True
        assert meta["categories"] == list(feed_module.CATEGORIES)
        assert arrays["node_lon"].size == ROWS * COLS
        assert arrays["map_a"].size == 2 * ROWS * (COLS - 1)  # every street of the grid once
        first = ws.receive_json()
        assert first["snapshot"] is True
        assert [v["vehicle_id"] for v in first["new_vehicles"]] == ["W-1"]
        (index, lon, lat, cat, operator) = first["vehicles"][0]
        assert (lon, lat) == (pytest.approx(node_location(0)["lng"]), pytest.approx(node_location(0)["lat"]))
        assert feed_module.CATEGORIES[cat] == "idle"
        assert first["kpis"]["by_category"][feed_module.CATEGORIES.index("idle")] == 1
        assert first["operators"][0] | {"vehicles": 1} == first["operators"][0]
        assert first["kpis"]["open"] == 0
        assert first["events"] == []

        # A ride: requested and assigned, the vehicle goes to the pickup.
        ride = p.ride(p.rider("alice"), 2, 14).json()
        m = _until(ws, lambda m: bool(m["requests"]))
        assert m["requests"][0][0] == ride["ride_id"]
        assert m["requests"][0][4] == "assigned"
        assert [e[1] for e in m["events"]] == ["requested", "assigned"]
        assert m["events"][1][3] == index
        assert m["vehicles"] == [[index, lon, lat, feed_module.CATEGORIES.index("to_pickup"), operator]]
        assert m["kpis"]["open"] == 1
        # It moves (telemetry), picks the rider up: the request closes as served, the wait counts.
        p.advance(20)
        tele = {"device_id": car, "timestamp": p.now_ms, "location": node_location(1)}
        assert p.client.post("/v1/operator/telemetry", json={"data": [tele]}, headers=op).status_code == 200
        m = _until(ws, lambda m: bool(m["vehicles"]))
        assert m["vehicles"][0][1:3] == [pytest.approx(node_location(1)["lng"]), pytest.approx(node_location(1)["lat"])]
        p.advance(20)
        trip = ride["trip_id"]
        assert p.event(op, car, "reservation_stop", 2, trip).status_code == 200
        assert p.event(op, car, "trip_start", 2, trip).status_code == 200
        m = _until(ws, lambda m: bool(m["closed"]))
        assert m["closed"] == [[ride["ride_id"], "served", None]]
        assert "picked_up" in [e[1] for e in m["events"]]
        assert m["kpis"]["open"] == 0
        assert m["kpis"]["served_pct_hour"] == 100.0
        assert m["kpis"]["mean_wait_hour_s"] == 40.0
        # The trip ends: a completed trip for the operator.
        p.advance(40)
        assert p.event(op, car, "trip_stop", 14, trip).status_code == 200
        assert p.event(op, car, "trip_end", 14, trip).status_code == 200
        m = _until(ws, lambda m: any(e[1] == "trip_completed" for e in m["events"]))
        assert m["kpis"]["trips_hour"] == 1
        assert m["operators"] == [
            {"id": 0, "name": "waymo", "vehicles": 1, "trips_hour": 1, "revenue_hour_cents": None}
        ]
        # A click on the vehicle: its plan and trips.
        ws.send_text(json.dumps({"type": "vehicle", "device_id": car}))
        detail = _until_type(ws, "vehicle")
        assert detail["vehicle_id"] == "W-1"
        assert detail["state"] == "available"
        assert [t["trip_id"] for t in detail["trips"]] == [trip]
        ws.send_text(json.dumps({"type": "vehicle", "device_id": "nope"}))
        assert _until_type(ws, "error")["error"] == "unknown_vehicle"
        # A ride nobody can serve (the only car is retired): rejected.
        assert p.client.post(f"/v1/operator/vehicles/{car}/retire", headers=op).status_code in (200, 202)
        m = _until(ws, lambda m: bool(m["gone"]))
        assert m["gone"] == [index]
        r = p.ride(p.rider("bob"), 3, 9).json()
        m = _until(ws, lambda m: bool(m["closed"]) or any(e[1] == "rejected" for e in m["events"]))
        events = [e for e in m["events"] if e[2] == r["ride_id"]]
        assert [e[1] for e in events][-1] == "rejected", (r, m)
        assert m["kpis"]["served_pct_hour"] == 50.0


def _until_type(ws: WebSocketTestSession, kind: str, limit: int = 400) -> dict[str, Any]:
    for _ in range(limit):
        message: dict[str, Any] = ws.receive_json()
        if message["type"] == kind:
            return message
    pytest.fail(f"no {kind} message in {limit}")


def test_service_areas_reach_the_feed_when_set_and_when_removed(live: Platform) -> None:
    p = live
    p.operator("westco")
    p.operator("eastco")
    west = _west()
    ring = west["features"][0]["geometry"]["coordinates"][0]
    assert p.client.put("/v1/admin/operators/westco/area", json=west, headers=p.admin).status_code == 200
    with p.client.websocket_connect(FEED) as ws:
        ws.send_text(json.dumps({"token": _token(p.admin)}))
        ws.receive_bytes()
        first = ws.receive_json()
        assert first["snapshot"] is True
        (area,) = first["areas"]
        assert (area["operator"], area["index"]) == ("westco", first["operators"][0]["id"])
        (path,) = area["paths"]  # one ring, closed, on the box's corners
        assert path[0] == path[-1]
        assert sorted(map(tuple, path[:-1])) == sorted((round(x, 6), round(y, 6)) for x, y in ring[:-1])
        quiet = ws.receive_json()
        assert "areas" not in quiet  # unchanged areas are not sent again
        # An admin gives eastco an area and takes westco's away: the next update carries the new set.
        east = _box(node_location(3)["lng"], node_location(0)["lat"], node_location(5)["lng"], node_location(35)["lat"])
        assert p.client.put("/v1/admin/operators/eastco/area", json=east, headers=p.admin).status_code == 200
        m = _until(ws, lambda m: "areas" in m)
        assert [a["operator"] for a in m["areas"]] == ["westco", "eastco"]
        assert p.client.delete("/v1/admin/operators/westco/area", headers=p.admin).status_code == 200
        m = _until(ws, lambda m: "areas" in m)
        assert [a["operator"] for a in m["areas"]] == ["eastco"]

"""Trip offers to operators: accept, decline, lapse, late answers, push over a WebSocket, long-poll.

The 6x6 grid city of the conftest; ``ferry`` is an operator that answers offers (timeout 30 s), ``robo`` one whose
trips are assigned at once. The engine ticks every second of the test's clock.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from robotaxi.api import LiveService, create_app
from robotaxi.store import tables

from .conftest import FakeClock, Platform, make_settings

pytestmark = pytest.mark.integration
TIMEOUT_S = 30


def _offering(p: Platform, name: str = "ferry", timeout: int = TIMEOUT_S) -> dict[str, str]:
    r = p.client.post("/v1/admin/operators", json={"name": name, "offers": True, "offer_timeout_s": timeout},
                      headers=p.admin)  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["offers"] is True
    assert r.json()["offer_timeout_s"] == timeout
    return p.auth(p.token_for(p.key("operator", f"{name}-dispatch", operator=name)))


def _offers(p: Platform, op: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = p.client.get("/v1/operator/offers", headers=op, params=params)
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


def _ride(p: Platform, rider: dict[str, str], ride_id: int) -> dict[str, Any]:
    r = p.client.get(f"/v1/rides/{ride_id}", headers=rider)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _state(p: Platform) -> tuple[list[Any], bytes]:
    """Every table's rows and the engine snapshot (to show that a refusal changed nothing)."""
    out = []
    with p.service.db.connect() as conn:
        for t in tables.metadata.sorted_tables:
            if t.name != "engine_state":
                out.append(sorted(map(repr, conn.execute(sa.select(t)).all())))
    return out, p.service.engine.snapshot()


def test_accepted_offer_becomes_the_assignment(platform: Platform) -> None:
    p = platform
    op = _offering(p)
    device = p.vehicle(op, 0)
    rider = p.rider("alice")
    r = p.ride(rider, 1, 20)
    assert r.status_code == 201, r.text
    ride = r.json()
    assert ride["status"] == "open"  # offered, not yet assigned: the rider sees an open request
    (offer,) = _offers(p, op)
    assert offer["status"] == "pending"
    assert offer["device_id"] == device
    assert offer["trip_id"] == ride["trip_id"]
    assert offer["expires_ms"] == p.now_ms + TIMEOUT_S * 1000
    assert offer["pickup_eta_ms"] >= p.now_ms
    assert p.client.get(f"/v1/operator/vehicles/{device}", headers=op).json()["plan"] == []
    p.advance(10)
    r = p.client.post(f"/v1/operator/offers/{offer['offer_id']}/accept", headers=op)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted"
    assert r.json()["closed_ms"] == p.now_ms
    after = _ride(p, rider, ride["ride_id"])
    assert after["status"] == "assigned"
    assert after["vehicle"]["device_id"] == device
    plan = p.client.get(f"/v1/operator/vehicles/{device}", headers=op).json()["plan"]
    assert [s["kind"] for s in plan] == ["pickup", "dropoff"]
    assert _offers(p, op) == []
    # answering twice is refused and changes nothing
    before = _state(p)
    r = p.client.post(f"/v1/operator/offers/{offer['offer_id']}/decline", headers=op)
    assert r.status_code == 409
    assert r.json()["error"] == "offer_closed"
    assert _state(p) == before


def test_declined_offer_goes_to_another_vehicle_then_expires_at_the_deadline(platform: Platform) -> None:
    p = platform
    op = _offering(p)
    first = p.vehicle(op, 0)
    second = p.vehicle(op, 35)
    rider = p.rider("bob")
    ride = p.ride(rider, 1, 20).json()
    (offer,) = _offers(p, op)
    assert offer["device_id"] == first  # the nearer one
    r = p.client.post(f"/v1/operator/offers/{offer['offer_id']}/decline", headers=op)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "declined"
    (again,) = _offers(p, op)
    assert again["device_id"] == second  # back to matching, without the vehicle that declined
    assert again["trip_id"] == ride["trip_id"]
    r = p.client.post(f"/v1/operator/offers/{again['offer_id']}/decline", headers=op)
    assert r.status_code == 200
    assert _offers(p, op) == []  # no vehicle left that has not declined it
    assert _ride(p, rider, ride["ride_id"])["status"] == "open"
    p.advance(601)
    done = _ride(p, rider, ride["ride_id"])
    assert done["status"] == "expired"
    assert done["reason"] == "offer_declined"
    with p.service.db.connect() as conn:
        closed = conn.execute(
            sa.select(tables.ride_requests.c.closed_ms).where(tables.ride_requests.c.request_id == ride["ride_id"])
        ).scalar_one()
    assert closed == ride["requested_ms"] + 600_000  # expired at its deadline, not later


def test_lapsed_offer_is_refused_and_the_rider_is_served_in_time(platform: Platform) -> None:
    p = platform
    op = _offering(p)
    robo = p.operator("robo")
    p.vehicle(op, 0)
    rider = p.rider("carol")
    ride = p.ride(rider, 1, 20).json()
    (offer,) = _offers(p, op)
    # robo's vehicle docks after the offer was made: the trip is the human fleet's until the offer lapses
    far = p.vehicle(robo, 35)
    # Past expires_ms by half a second: the engine (whole seconds) would still take the answer, the service does not.
    p.advance(TIMEOUT_S + 0.5)
    before = _state(p)
    r = p.client.post(f"/v1/operator/offers/{offer['offer_id']}/accept", headers=op)
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "offer_expired"
    assert _state(p) == before  # a late answer changes nothing
    p.advance(1)  # the engine ticks: the offer lapses, the trip goes back to matching
    with p.service.db.connect() as conn:
        status = conn.execute(
            sa.select(tables.offers.c.status).where(tables.offers.c.offer_id == offer["offer_id"])
        ).scalar_one()
    assert status == "lapsed"
    r = p.client.post(f"/v1/operator/offers/{offer['offer_id']}/accept", headers=op)
    assert r.status_code == 409
    assert r.json()["error"] == "offer_closed"
    served = _ride(p, rider, ride["ride_id"])
    assert served["status"] == "assigned"
    assert served["vehicle"]["device_id"] == far
    # the offer never made the rider wait past the deadline
    assert served["quote"]["pickup_eta_ms"] <= ride["requested_ms"] + 600_000


def test_offers_are_the_operators_own(platform: Platform) -> None:
    p = platform
    op = _offering(p)
    other = _offering(p, "otherco")
    p.vehicle(op, 0)
    p.ride(p.rider("dan"), 1, 20)
    (offer,) = _offers(p, op)
    assert _offers(p, other) == []
    before = _state(p)
    r = p.client.post(f"/v1/operator/offers/{offer['offer_id']}/accept", headers=other)
    assert r.status_code == 404
    assert r.json()["error"] == "unknown_offer"
    r = p.client.post(f"/v1/operator/offers/{uuid.uuid4()}/accept", headers=op)
    assert r.status_code == 404
    r = p.client.post("/v1/operator/offers/not-a-uuid/accept", headers=op)
    assert r.status_code == 422
    assert _state(p) == before


def test_rider_cancellation_withdraws_the_offer_and_the_socket_says_so(platform: Platform) -> None:
    p = platform
    op = _offering(p)
    device = p.vehicle(op, 0)
    rider = p.rider("erin")
    token = op["Authorization"].split()[1]
    with p.client.websocket_connect("/v1/operator/offers/ws", headers=op) as ws:
        ride = p.ride(rider, 1, 20).json()
        msg = ws.receive_json()
        assert msg["type"] == "offer"
        assert msg["offer"]["trip_id"] == ride["trip_id"]
        assert msg["offer"]["device_id"] == device
        r = p.client.post(f"/v1/rides/{ride['ride_id']}/cancel", headers=rider)
        assert r.status_code == 200, r.text
        assert ws.receive_json() == {"type": "withdrawn", "offer_id": msg["offer"]["offer_id"]}
    # a new connection (token in the query, as browsers do) first gets what is pending
    p.ride(rider, 2, 30)
    with p.client.websocket_connect(f"/v1/operator/offers/ws?access_token={token}") as ws:
        msg = ws.receive_json()
        assert msg["type"] == "offer"
        assert msg["offer"]["status"] == "pending"
        p.clock.t += TIMEOUT_S + 1
        p.advance(1)
        assert ws.receive_json() == {"type": "lapsed", "offer_id": msg["offer"]["offer_id"]}


def test_long_poll_wakes_on_a_new_offer(platform: Platform) -> None:
    p = platform
    op = _offering(p)
    p.vehicle(op, 0)
    assert _offers(p, op, wait_s=0) == []
    got: list[list[dict[str, Any]]] = []
    poll = threading.Thread(target=lambda: got.append(_offers(p, op, wait_s=30)))
    poll.start()
    # the poll is waiting (not answered yet) while no offer exists
    poll.join(timeout=0.5)
    assert poll.is_alive()
    ride = p.ride(p.rider("fay"), 1, 20).json()
    poll.join(timeout=60)
    assert not poll.is_alive()
    ((offer,),) = got
    assert offer["trip_id"] == ride["trip_id"]
    r = p.client.get("/v1/operator/offers", headers=op, params={"wait_s": 61})
    assert r.status_code == 422


def test_rules_change_only_when_the_engine_can_take_them(platform: Platform) -> None:
    p = platform
    op = _offering(p)
    p.vehicle(op, 0)
    p.ride(p.rider("gus"), 1, 20)
    assert len(_offers(p, op)) == 1
    before = _state(p)
    r = p.client.patch("/v1/admin/operators/ferry", json={"offers": False}, headers=p.admin)
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "offers_pending"
    assert _state(p) == before
    r = p.client.patch("/v1/admin/operators/ferry", json={"offer_timeout_s": 60}, headers=p.admin)
    assert r.status_code == 200, r.text
    assert r.json()["offer_timeout_s"] == 60
    assert p.client.patch("/v1/admin/operators/nobody", json={}, headers=p.admin).status_code == 404
    r = p.client.patch("/v1/admin/operators/ferry", json={"offer_timeout_s": 1}, headers=p.admin)
    assert r.status_code == 422
    # an operator without offers is assigned at once, as before
    robo = p.operator("robo")
    car = p.vehicle(robo, 35)
    assert p.ride(p.rider("hal"), 30, 2).json()["vehicle"]["device_id"] == car


def test_offers_need_an_unpooled_policy(database_url: str, tmp_path: Path) -> None:
    clock = FakeClock()
    service = LiveService(make_settings(tmp_path / "data", database_url, clock, policy="insertion"))
    with TestClient(create_app(service)) as client:
        p = Platform(client, service, clock)
        r = p.client.post("/v1/admin/operators", json={"name": "ferry", "offers": True}, headers=p.admin)
        assert r.status_code == 422
        assert r.json()["error_details"] == ["offers"]
        assert p.client.get("/v1/admin/operators", headers=p.admin).json() == []


def test_pending_offers_survive_a_restart(database_url: str, tmp_path: Path) -> None:
    clock = FakeClock()
    settings = make_settings(tmp_path / "data", database_url, clock)
    service = LiveService(settings)
    with TestClient(create_app(service)) as client:
        p = Platform(client, service, clock)
        op = _offering(p)
        key = p.key("operator", "again", operator="ferry")
        p.vehicle(op, 0)
        rider_key = p.key("rider", "ivy")
        rider = p.auth(p.token_for(rider_key))
        ride = p.ride(rider, 1, 20).json()
        (offer,) = _offers(p, op)
    service = LiveService(settings)
    with TestClient(create_app(service)) as client:
        p = Platform(client, service, clock)
        op = p.auth(p.token_for(key))
        assert _offers(p, op) == [offer]
        r = p.client.post(f"/v1/operator/offers/{offer['offer_id']}/accept", headers=op)
        assert r.status_code == 200, r.text
        assert _ride(p, p.auth(p.token_for(rider_key)), ride["ride_id"])["status"] == "assigned"


def test_socket_refuses_other_roles(platform: Platform) -> None:
    p = platform
    for headers in ({}, {"Authorization": "Bearer junk"}, p.rider("x"), p.regulator(), p.admin):
        with (
            pytest.raises(WebSocketDisconnect) as e,
            p.client.websocket_connect("/v1/operator/offers/ws", headers=headers),
        ):
            pass
        assert e.value.code == 1008

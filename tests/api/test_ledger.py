"""Completed trips and reported safety events are appended to the ledger; the regulator gets the latest signed
checkpoint and inclusion proofs that verify offline with the verifier key alone."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
import sqlalchemy as sa

from robotaxi.errors import VerificationError
from robotaxi.ledger import VerifierKey, open_checkpoint, verify_bundle
from robotaxi.store import tables

from .conftest import Platform, node_location
from .test_mds import _serve_one_ride

pytestmark = pytest.mark.integration


def test_trips_and_safety_events_reach_the_ledger_with_proofs(platform: Platform) -> None:
    p = platform
    op, car, ride = _serve_one_ride(p)
    reg = p.regulator()
    event = {
        "device_id": car, "event_type": "disengagement", "timestamp": p.now_ms, "location": node_location(14),
        "initiated_by": "safety_driver", "driver_present": True, "location_type": "street",
        "description": "construction zone", "trip_id": ride["trip_id"],
    }  # fmt: skip
    r = p.client.post("/v1/operator/safety-events", json={"data": [event]}, headers=op)
    assert r.status_code == 200, r.text
    p.advance(11)  # past the checkpoint interval
    cp = p.client.get("/v1/ledger/checkpoint", headers=reg).json()
    vkey = VerifierKey.parse(cp["verifier_key"])
    assert (p.service.settings.data_dir / "ledger.vkey").read_text().strip() == cp["verifier_key"]
    assert open_checkpoint(cp["note"], vkey).size == cp["size"] == 2
    bundle = p.client.get(f"/v1/ledger/trips/{ride['trip_id']}/proof", headers=reg).json()
    verified = verify_bundle(json.dumps(bundle), vkey)
    entry = json.loads(verified.entry)  # type: ignore[union-attr]
    assert entry["kind"] == "trip"
    assert entry["trip_id"] == ride["trip_id"]
    assert entry["distance_m"] == 400
    with p.service.db.connect() as conn:
        event_id = conn.execute(sa.select(tables.safety_events.c.event_id)).scalar_one()
    bundle = p.client.get(f"/v1/ledger/safety-events/{event_id}/proof", headers=reg).json()
    entry = json.loads(verify_bundle(json.dumps(bundle), vkey).entry)  # type: ignore[union-attr]
    assert entry["kind"] == "safety_event"
    assert entry["initiated_by"] == "safety_driver"
    # unknown ids; operators and riders may not read the ledger routes
    assert p.client.get(f"/v1/ledger/trips/{uuid.uuid4()}/proof", headers=reg).status_code == 404
    assert p.client.get("/v1/ledger/checkpoint", headers=op).status_code == 403


def test_ledger_catch_up_appends_each_record_once(platform: Platform) -> None:
    p = platform
    _, _, ride = _serve_one_ride(p)
    p.advance(11)
    with p.service.db.begin() as conn:
        index = conn.execute(sa.select(tables.trips.c.ledger_index)).scalar_one()
        assert index == 0
        # as after a crash between the database commit and the ledger append
        conn.execute(tables.trips.update().values(ledger_index=None))
    p.service.ledger.pending = True
    p.advance(1)
    with p.service.db.connect() as conn:
        assert conn.execute(sa.select(tables.trips.c.ledger_index)).scalar_one() == 0
    with p.service.ledger.reader() as ledger:
        assert ledger.size == 1
        assert ledger.find_id("trip", ride["trip_id"]) == 0


def test_bad_safety_events_change_nothing(platform: Platform) -> None:
    p = platform
    op = p.operator("waymo")
    other = p.operator("zoox")
    car = p.vehicle(op, node=0)
    base = {
        "device_id": car, "event_type": "collision", "timestamp": p.now_ms, "location": node_location(0),
        "initiated_by": "none", "driver_present": False, "location_type": "street", "description": "rear-ended",
    }  # fmt: skip
    cases = [
        ({**base, "timestamp": p.now_ms + 60_000}, 422, "data[0].timestamp"),
        ({**base, "trip_id": str(uuid.uuid4())}, 409, "data[0].trip_id"),
        ({**base, "location_type": "moon"}, 422, "data[0].location_type"),
        ({**base, "injuries": -1}, 422, "data[0].injuries"),
    ]
    for body, status, field in cases:
        r = p.client.post("/v1/operator/safety-events", json={"data": [body]}, headers=op)
        assert (r.status_code, r.json()["error_details"]) == (status, [field]), r.text
    r = p.client.post("/v1/operator/safety-events", json={"data": [base]}, headers=other)
    assert r.status_code == 404
    with p.service.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.safety_events)).scalar_one() == 0


def _disengagement(p: Platform, op: dict[str, str], car: str, n: int) -> None:
    event = {
        "device_id": car, "event_type": "disengagement", "timestamp": p.now_ms, "location": node_location(0),
        "initiated_by": "ads", "driver_present": False, "location_type": "street", "description": f"event {n}",
    }  # fmt: skip
    r = p.client.post("/v1/operator/safety-events", json={"data": [event]}, headers=op)
    assert r.status_code == 200, r.text


def test_consistency_proofs_between_checkpoints(platform: Platform) -> None:
    p = platform
    op = p.operator("waymo")
    car = p.vehicle(op, node=0)
    reg = p.regulator()
    assert p.client.get("/v1/ledger/consistency", params={"old_size": 0}, headers=reg).status_code == 404
    _disengagement(p, op, car, 1)
    p.advance(11)
    _disengagement(p, op, car, 2)
    _disengagement(p, op, car, 3)
    p.advance(11)
    listed = p.client.get("/v1/ledger/checkpoints", headers=reg).json()
    sizes = [c["size"] for c in listed["data"]]
    assert sizes == sorted(set(sizes))
    assert sizes[-1] == 3
    first = min(s for s in sizes if s > 0)
    assert first < 3
    vkey = VerifierKey.parse(listed["verifier_key"])
    for c in listed["data"]:
        assert open_checkpoint(c["note"], vkey).size == c["size"]
    r = p.client.get("/v1/ledger/consistency", params={"old_size": first}, headers=reg)
    assert r.status_code == 200, r.text
    bundle = r.json()
    old, new = verify_bundle(json.dumps(bundle), vkey).verify(vkey)  # type: ignore[misc]
    assert (old.size, new.size) == (first, 3)
    # a proof that does not fit the two roots fails offline
    forged = {**bundle, "proof": [base64.b64encode(bytes(32)).decode(), *bundle["proof"][1:]]}
    with pytest.raises(VerificationError):
        verify_bundle(json.dumps(forged), vkey)
    same = p.client.get("/v1/ledger/consistency", params={"old_size": 3, "new_size": 3}, headers=reg)
    assert same.status_code == 200
    assert same.json()["proof"] == []
    # unknown sizes, the wrong order, bad numbers, roles
    r = p.client.get("/v1/ledger/consistency", params={"old_size": 7, "new_size": 9}, headers=reg)
    assert (r.status_code, r.json()["error"], r.json()["error_details"]) == (404, "unknown_checkpoint", ["old_size"])
    r = p.client.get("/v1/ledger/consistency", params={"old_size": 3, "new_size": 9}, headers=reg)
    assert (r.status_code, r.json()["error_details"]) == (404, ["new_size"])
    r = p.client.get("/v1/ledger/consistency", params={"old_size": 3, "new_size": first}, headers=reg)
    assert (r.status_code, r.json()["error_details"]) == (422, ["new_size"])
    r = p.client.get("/v1/ledger/consistency", params={"old_size": 4}, headers=reg)
    assert (r.status_code, r.json()["error_details"]) == (422, ["old_size"])
    assert p.client.get("/v1/ledger/consistency", params={"old_size": -1}, headers=reg).status_code == 422
    assert p.client.get("/v1/ledger/consistency", headers=reg).status_code == 422
    assert p.client.get("/v1/ledger/consistency", params={"old_size": 1}, headers=op).status_code == 403
    assert p.client.get("/v1/ledger/checkpoints", headers=p.admin).status_code == 200


def test_the_ledger_is_served_as_a_tlog_tiles_log(platform: Platform) -> None:
    """A ride and a safety event, then a signed checkpoint of 2 entries: the tlog-tiles routes give the checkpoint
    (text), the partial level-0 tile and the entry bundle, which verify with the key alone; resources past the
    checkpoint are 404, malformed paths 422 naming the path, and only regulators and admins may read them."""
    from robotaxi.ledger.tiles import verify_tiles

    p = platform
    op, car, ride = _serve_one_ride(p)
    event = {
        "device_id": car, "event_type": "collision", "timestamp": p.now_ms, "location": node_location(14),
        "initiated_by": "none", "driver_present": False, "location_type": "street",
        "description": "rear-ended at a light", "trip_id": ride["trip_id"],
    }  # fmt: skip
    assert p.client.post("/v1/operator/safety-events", json={"data": [event]}, headers=op).status_code == 200
    p.advance(11)
    reg = p.regulator()
    base = "/v1/ledger/tlog/"
    r = p.client.get(base + "checkpoint", headers=reg)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    vkey = VerifierKey.parse(p.client.get("/v1/ledger/checkpoint", headers=reg).json()["verifier_key"])
    assert open_checkpoint(r.text, vkey).size == 2
    tile = p.client.get(base + "tile/0/000.p/2", headers=reg)
    assert tile.status_code == 200
    assert tile.headers["content-type"] == "application/octet-stream"
    assert "immutable" in tile.headers["cache-control"]
    assert len(tile.content) == 64

    def fetch(path: str) -> bytes:
        got = p.client.get(base + path, headers=reg)
        assert got.status_code == 200, (path, got.text)
        return bytes(got.content)

    report = verify_tiles(fetch, vkey)
    assert (report.size, report.entries) == (2, 2)
    bundle = fetch("tile/entries/000.p/2")
    first_len = int.from_bytes(bundle[:2], "big")
    assert json.loads(bundle[2 : 2 + first_len])["trip_id"] == ride["trip_id"]
    # past the checkpoint, malformed, not allowed
    missing = p.client.get(base + "tile/0/000.p/3", headers=reg)
    assert missing.status_code == 404
    assert "latest signed checkpoint (size 2" in missing.json()["error_description"]
    bad = p.client.get(base + "tile/0/7", headers=reg)
    assert bad.status_code == 422
    assert "3-digit" in bad.json()["error_description"]
    assert p.client.get(base + "tile/0/000.p/2", headers=op).status_code == 403
    assert p.client.get(base + "checkpoint").status_code == 401

"""Nothing acknowledged is lost: a real ``robotaxi serve`` killed with SIGKILL and restarted resumes with every
confirmed ride and vehicle, the engine restored from the stored snapshot (it still knows every vehicle's plan)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from robotaxi.api import LiveService, create_app
from robotaxi.store import tables

from .conftest import FakeClock, Platform, make_settings, node_location

pytestmark = [pytest.mark.integration, pytest.mark.slow]
FORBIDDEN_PORTS = {5432, 6379, 4222, 5672}


def _free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in FORBIDDEN_PORTS:
            return port


class Server:
    def __init__(self, url: str, data_dir: Path) -> None:
        self.args = [
            str(Path(sys.executable).parent / "robotaxi"), "serve", "--database", url, "--data-dir", str(data_dir),
            "--network", "grid:6x6", "--port", str(_free_port()), "--log-level", "warning",
        ]  # fmt: skip
        self.base = f"http://127.0.0.1:{self.args[self.args.index('--port') + 1]}"
        self.data = data_dir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                pytest.fail(f"robotaxi serve exited with {self.proc.returncode}: {err}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail("robotaxi serve did not answer /healthz within 60 s")

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _token(c: httpx.Client, key: str) -> dict[str, str]:
    r = c.post("/v1/auth/token", json={"api_key": key})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _event(c: httpx.Client, op: dict[str, str], device: str, kind: str, node: int, trip: str | None = None) -> None:
    row: dict[str, Any] = {
        "device_id": device,
        "event_type": kind,
        "timestamp": int(time.time() * 1000),
        "location": node_location(node),
    }
    if trip:
        row["trip_id"] = trip
    r = c.post("/v1/operator/events", json={"data": [row]}, headers=op)
    assert r.status_code == 200, r.text


def test_sigkill_and_restart_lose_nothing(database_url: str, tmp_path: Path) -> None:
    server = Server(database_url, tmp_path / "data")
    server.start()
    try:
        admin_key = (tmp_path / "data" / "admin.key").read_text().strip()
        with httpx.Client(base_url=server.base, timeout=30) as c:
            admin = _token(c, admin_key)
            assert c.post("/v1/admin/operators", json={"name": "waymo"}, headers=admin).status_code == 201
            keys = {}
            for role, subject, extra in (("operator", "ops", {"operator": "waymo"}), ("rider", "alice", {})):
                r = c.post("/v1/admin/credentials", json={"role": role, "subject": subject, **extra}, headers=admin)
                keys[role] = r.json()["api_key"]
            op, alice = _token(c, keys["operator"]), _token(c, keys["rider"])
            cars = []
            for node in (0, 35):
                body = {"vehicle_id": f"W-{node}", "location": node_location(node)}
                r = c.post("/v1/operator/vehicles", json=body, headers=op)
                cars.append(r.json()["device_id"])
                _event(c, op, cars[-1], "service_start", node)
            first = c.post(
                "/v1/rides",
                json={"origin": node_location(2), "destination": node_location(14)},
                headers={**alice, "Idempotency-Key": "ride-1"},
            )
            assert first.status_code == 201
            assert first.json()["vehicle"]["device_id"] == cars[0]
            # riders keep requesting while the server is killed: every ride confirmed must survive
            confirmed: list[int] = []
            stop = threading.Event()

            def load() -> None:
                with httpx.Client(base_url=server.base, timeout=5) as lc:
                    while not stop.is_set():
                        body = {"origin": node_location(30), "destination": node_location(5)}
                        try:
                            r = lc.post("/v1/rides", json=body, headers={**alice, "Idempotency-Key": uuid.uuid4().hex})
                        except httpx.HTTPError:
                            return
                        if r.status_code == 201:
                            confirmed.append(r.json()["ride_id"])

            t = threading.Thread(target=load)
            t.start()
            time.sleep(1.5)
            before_rides = {x["ride_id"]: x for x in c.get("/v1/rides", headers=alice).json()}
            before_cars = {v["device_id"]: v for v in c.get("/v1/operator/vehicles", headers=op).json()}
            server.kill()
            stop.set()
            t.join(10)
        assert len(confirmed) >= 3
        server.start()
        with httpx.Client(base_url=server.base, timeout=30) as c:
            op, alice = _token(c, keys["operator"]), _token(c, keys["rider"])
            # Each confirmed ride by its own id: the list holds only the newest 100, and a quiet machine confirms more.
            lost = [rid for rid in confirmed if c.get(f"/v1/rides/{rid}", headers=alice).status_code != 200]
            assert lost == []
            for rid, ride in before_rides.items():
                now = c.get(f"/v1/rides/{rid}", headers=alice).json()
                assert now["status"] == ride["status"]
                assert now["trip_id"] == ride["trip_id"]
            cars_after = {v["device_id"]: v for v in c.get("/v1/operator/vehicles", headers=op).json()}
            assert set(cars_after) == set(before_cars)
            for d, v in before_cars.items():
                assert (cars_after[d]["state"], cars_after[d]["plan"][:2]) == (v["state"], v["plan"][:2])
            # a retry of a confirmed request is answered from the store, not booked again
            again = c.post(
                "/v1/rides",
                json={"origin": node_location(2), "destination": node_location(14)},
                headers={**alice, "Idempotency-Key": "ride-1"},
            )
            assert again.status_code == 200
            assert again.json()["ride_id"] == first.json()["ride_id"]
            # the restored engine still knows the plan: the car can serve ride 1
            trip = first.json()["trip_id"]
            for kind, node in (("reservation_stop", 2), ("trip_start", 2), ("trip_stop", 14), ("trip_end", 14)):
                _event(c, op, cars[0], kind, node, trip)
            done = c.get(f"/v1/rides/{first.json()['ride_id']}", headers=alice).json()
            assert done["status"] == "completed"
    finally:
        server.stop()


def test_restore_replays_the_inputs_logged_since_the_snapshot(database_url: str, tmp_path: Path) -> None:
    """Snapshots are taken at most every ``snapshot_interval_s``; in between only the engine's inputs are stored.
    A restart rebuilds exactly the engine that ran: the snapshot plus the logged inputs replayed."""
    clock = FakeClock()
    settings = make_settings(tmp_path / "data", database_url, clock, snapshot_interval_s=3600.0)
    service = LiveService(settings)
    with TestClient(create_app(service)) as client:
        p = Platform(client, service, clock)
        op = p.operator("waymo")
        cars = [p.vehicle(op, n) for n in (0, 17, 35)]
        rider = p.rider("ann")
        rides = [p.ride(rider, o, d).json() for o, d in ((1, 20), (30, 5), (14, 15))]
        assert [r["status"] for r in rides] == ["assigned"] * 3
        p.advance(30)
        car = rides[0]["vehicle"]["device_id"]
        assert p.event(op, car, "reservation_stop", 1, rides[0]["trip_id"]).status_code == 200
        assert p.client.post(f"/v1/rides/{rides[1]['ride_id']}/cancel", headers=rider).status_code == 200
        p.advance(5)
        with service.db.connect() as conn:
            logged = conn.execute(sa.select(sa.func.count()).select_from(tables.engine_log)).scalar_one()
            saved = conn.execute(sa.select(tables.engine_state.c.log_seq)).scalar_one()
        assert logged > 10  # every input since the first snapshot, none folded into a snapshot since
        before = service.engine.snapshot()
        plans = [service.engine.plan(service.engine.vehicle_index(c)) for c in cars]
    service = LiveService(settings)
    with TestClient(create_app(service)) as client:
        assert service.engine.snapshot() == before
        assert [service.engine.plan(service.engine.vehicle_index(c)) for c in cars] == plans
        assert service._log_seq == saved + logged

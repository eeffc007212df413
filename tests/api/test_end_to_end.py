"""The whole live platform on one machine: ``robotaxi serve`` + ``robotaxi fleet connect`` (a virtual fleet that
docks through the operator API and drives the plans it is given) + riders booking through the rider API. Every
ride booked is driven, picked up and dropped off, and shows in the regulator's MDS feed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from .conftest import node_location
from .test_restart import Server, _token

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def virtual_fleet(server: Server, args: list[str], stdout: int = subprocess.PIPE) -> subprocess.Popen[bytes]:
    """``robotaxi fleet connect`` against ``server`` on a 6x6 grid with telemetry every second, plus ``args``."""
    admin_key = (server.data / "admin.key").read_text().strip()
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "robotaxi"), "fleet", "connect", "--server", server.base,
         "--admin-key", admin_key, "--network", "grid:6x6", "--telemetry", "1", *args],
        stdout=stdout, stderr=subprocess.PIPE,
    )  # fmt: skip


@contextmanager
def live_platform(
    tmp_path: Path, fleet_args: list[str], *, dashboard: bool = False, stdout: int = subprocess.PIPE
) -> Iterator[tuple[Server, subprocess.Popen[bytes], str]]:
    """``robotaxi serve`` on a SQLite file and a virtual fleet docked to it: (server, fleet, admin key); both are
    stopped on the way out."""
    server = Server(f"sqlite:///{tmp_path / 'live.db'}", tmp_path / "data")
    if dashboard:
        server.args.append("--dashboard")
    server.start()
    fleet = None
    try:
        admin_key = (tmp_path / "data" / "admin.key").read_text().strip()
        fleet = virtual_fleet(server, fleet_args, stdout)
        yield server, fleet, admin_key
    finally:
        if fleet is not None and fleet.poll() is None:
            fleet.terminate()
            fleet.wait(15)
        server.stop()


def book_four_rides(c: httpx.Client, rider: dict[str, str], status: str) -> list[int]:
    """Four rides across the grid, each answered 201 with ``status``; their ids."""
    rides = []
    for o, d in ((0, 35), (7, 20), (30, 5), (14, 15)):
        r = c.post(
            "/v1/rides",
            json={"origin": node_location(o), "destination": node_location(d)},
            headers={**rider, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert r.status_code == 201, r.text
        assert r.json()["status"] == status, r.json()
        rides.append(r.json()["ride_id"])
    return rides


def wait_until_completed(c: httpx.Client, rider: dict[str, str], rides: list[int], within_s: float) -> None:
    """Poll the rides until every one is completed (fails after ``within_s`` with their states)."""
    deadline = time.monotonic() + within_s
    states: list[str] = []
    while time.monotonic() < deadline:
        states = [c.get(f"/v1/rides/{i}", headers=rider).json()["status"] for i in rides]
        if all(x == "completed" for x in states):
            return
        time.sleep(0.5)
    assert states == ["completed"] * len(rides)


def test_serve_fleet_connect_and_riders(tmp_path: Path) -> None:
    args = ["--operator", "virtual", "--vehicles", "4", "--speedup", "20", "--duration", "120", "--seed", "3"]
    with (
        live_platform(tmp_path, args) as (server, fleet, admin_key),
        httpx.Client(base_url=server.base, timeout=30) as c,
    ):
        admin = _token(c, admin_key)
        regulator = c.post(
            "/v1/admin/credentials", json={"role": "regulator", "subject": "city"}, headers=admin
        ).json()["api_key"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until the fleet has docked and entered service
            reg = _token(c, regulator)
            status = c.get("/mds/vehicles/status", headers=reg)
            if status.status_code == 200 and len(status.json()["vehicles_status"]) == 4:
                break
            if fleet.poll() is not None:
                pytest.fail(f"fleet connect exited: {fleet.stderr.read().decode() if fleet.stderr else ''}")
            time.sleep(0.5)
        else:
            pytest.fail("the virtual fleet did not dock within 60 s")
        rider_key = c.post("/v1/admin/credentials", json={"role": "rider", "subject": "alice"}, headers=admin).json()[
            "api_key"
        ]
        alice = _token(c, rider_key)
        rides = book_four_rides(c, alice, "assigned")
        wait_until_completed(c, alice, rides, 90)
        start = int(time.time() * 1000) - 600_000
        events = c.get(
            "/mds/events/recent",
            params={"start_time": start, "end_time": start + 1_200_000},
            headers=_token(c, regulator),
        ).json()["events"]
        ends = [e for e in events if e["event_types"] == ["trip_end"]]
        assert len(ends) == 4
        # The ledger as a tlog-tiles log: once a signed checkpoint covers the four trips, a regulator checks every
        # tile and entry over HTTP with the verifier key alone.
        deadline = time.monotonic() + 30
        while c.get("/v1/ledger/checkpoint", headers=_token(c, regulator)).json().get("size", 0) < 4:
            assert time.monotonic() < deadline, "no signed checkpoint covers the four trips within 30 s"
            time.sleep(0.5)
        check = subprocess.run(
            [str(Path(sys.executable).parent / "robotaxi"), "ledger", "verify-tiles", server.base,
             "--key", str(server.data / "ledger.vkey"), "--api-key", regulator],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert check.returncode == 0, check.stderr
        assert "entries in 1 tiles verify against the signed root" in check.stdout


def test_fleet_answers_trip_offers(tmp_path: Path) -> None:
    """The fleet's operator gets every trip as an offer and accepts half of them (evenly: decline, accept, ...):
    a declined trip is offered to another vehicle, and every ride is still driven and completed."""
    args = ["--operator", "ferry", "--offers", "--accept-rate", "0.5", "--vehicles", "6", "--speedup", "20",
            "--duration", "150", "--seed", "5"]  # fmt: skip
    with live_platform(tmp_path, args) as (server, fleet, admin_key):
        with httpx.Client(base_url=server.base, timeout=30) as c:
            admin = _token(c, admin_key)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # wait until the fleet has docked and entered service
                ops = c.get("/v1/admin/operators", headers=admin).json()
                if ops and ops[0]["offers"]:
                    key = c.post(
                        "/v1/admin/credentials",
                        json={"role": "operator", "subject": "watch", "operator": "ferry"},
                        headers=admin,
                    ).json()["api_key"]
                    cars = c.get("/v1/operator/vehicles", headers=_token(c, key)).json()
                    if len(cars) == 6 and all(v["state"] == "available" for v in cars):
                        break
                if fleet.poll() is not None:
                    pytest.fail(f"fleet connect exited: {fleet.stderr.read().decode() if fleet.stderr else ''}")
                time.sleep(0.5)
            else:
                pytest.fail("the virtual fleet did not dock within 60 s")
            made = c.post("/v1/admin/credentials", json={"role": "rider", "subject": "bo"}, headers=admin)
            bo = _token(c, made.json()["api_key"])
            rides = book_four_rides(c, bo, "open")  # offered: assigned once the operator accepts
            wait_until_completed(c, bo, rides, 120)
        fleet.send_signal(signal.SIGINT)  # ends its run; it prints its counts
        out, _ = fleet.communicate(timeout=30)
        text = out.decode()
        assert "offers accepted 4, declined 4" in text, text

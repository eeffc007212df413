"""A live platform in the test process: a 6x6 grid city, a clock the test moves, and each database.

The clock starts at 2026-12-02 10:00:00 UTC and only moves when the test says so; the engine ticks when it passes
a tick boundary (``Platform.advance``).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from robotaxi.api import LiveService, ServiceSettings, create_app

START_S = 1_796_205_600  # 2026-12-02T10:00:00Z
ROWS = COLS = 6
SPACING_M = 200.0


class FakeClock:
    def __init__(self, t: float = START_S) -> None:
        self.t = float(t)

    def __call__(self) -> float:
        return self.t


def node_location(node: int) -> dict[str, float]:
    """Where grid node ``node`` is (the grid of ``robotaxi.network.grid_city`` with its default origin)."""
    r, c = divmod(node, COLS)
    lat = 50.0 + r * SPACING_M / 111_320.0
    lng = 10.0 + c * SPACING_M / (111_320.0 * math.cos(math.radians(50.0)))
    return {"lat": lat, "lng": lng}


@dataclass
class Platform:
    """A running service and a test client, with helpers for the usual set-up steps."""

    client: TestClient
    service: LiveService
    clock: FakeClock
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def token_for(self, api_key: str) -> str:
        r = self.client.post("/v1/auth/token", json={"api_key": api_key})
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token

    @property
    def admin(self) -> dict[str, str]:
        if "admin" not in self.tokens:
            assert self.service.admin_key is not None
            self.tokens["admin"] = self.token_for(self.service.admin_key)
        return self.auth(self.tokens["admin"])

    def key(self, role: str, subject: str, operator: str | None = None) -> str:
        body: dict[str, Any] = {"role": role, "subject": subject}
        if operator is not None:
            body["operator"] = operator
        r = self.client.post("/v1/admin/credentials", json=body, headers=self.admin)
        assert r.status_code == 201, r.text
        key: str = r.json()["api_key"]
        return key

    def operator(self, name: str) -> dict[str, str]:
        """Create an operator; the headers of a token for it."""
        r = self.client.post("/v1/admin/operators", json={"name": name}, headers=self.admin)
        assert r.status_code == 201, r.text
        return self.auth(self.token_for(self.key("operator", f"{name}-dispatch", operator=name)))

    def rider(self, name: str) -> dict[str, str]:
        return self.auth(self.token_for(self.key("rider", name)))

    def regulator(self, name: str = "city") -> dict[str, str]:
        return self.auth(self.token_for(self.key("regulator", name)))

    def vehicle(
        self, op: dict[str, str], node: int, *, plate: str | None = None, capacity: int = 4, in_service: bool = True
    ) -> str:
        """Register a vehicle at a node (and put it in service); its device_id."""
        body = {
            "vehicle_id": plate or f"P-{uuid.uuid4().hex[:6]}",
            "capacity": capacity,
            "location": node_location(node),
            "vehicle_attributes": {"make": "Zoox", "license_plate": "X1"},
        }
        r = self.client.post("/v1/operator/vehicles", json=body, headers=op)
        assert r.status_code == 201, r.text
        device: str = r.json()["device_id"]
        if in_service:
            self.event(op, device, "service_start", node)
        return device

    def event(
        self,
        op: dict[str, str],
        device: str,
        event_type: str,
        node: int,
        trip_id: str | None = None,
        at_ms: int | None = None,
    ) -> httpx.Response:
        row: dict[str, Any] = {
            "device_id": device,
            "event_type": event_type,
            "timestamp": at_ms or self.now_ms,
            "location": node_location(node),
        }
        if trip_id is not None:
            row["trip_id"] = trip_id
        r: httpx.Response = self.client.post("/v1/operator/events", json={"data": [row]}, headers=op)
        return r

    def ride(self, rider: dict[str, str], o: int, d: int, key: str | None = None, **extra: Any) -> httpx.Response:
        body = {"origin": node_location(o), "destination": node_location(d), **extra}
        headers = {**rider, "Idempotency-Key": key or uuid.uuid4().hex}
        r: httpx.Response = self.client.post("/v1/rides", json=body, headers=headers)
        return r

    @property
    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def advance(self, seconds: float) -> None:
        """Move the clock and let the engine tick (a no-op command waits until the batch after the tick)."""
        self.clock.t += seconds
        self.service.call(lambda ctx: None)
        self.service.call(lambda ctx: None)


def make_settings(data_dir: Path, url: str, clock: FakeClock, **kw: Any) -> ServiceSettings:
    return ServiceSettings(
        data_dir=data_dir, database_url=url, network=f"grid:{ROWS}x{COLS}", clock=clock, tick_s=1.0, **kw
    )


@pytest.fixture
def platform(database_url: str, tmp_path: Path) -> Iterator[Platform]:
    clock = FakeClock()
    service = LiveService(make_settings(tmp_path / "data", database_url, clock))
    with TestClient(create_app(service)) as client:
        yield Platform(client, service, clock)

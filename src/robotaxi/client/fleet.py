"""A virtual fleet that docks like a real one: simulated robotaxis register through the operator API, drive the
stop plans the platform gives them along the router's fastest routes (each edge at its travel time, divided by a
speed-up factor), send telemetry, and report the MDS events of each stop on the wall clock.

At a pickup a vehicle reports ``reservation_stop`` on arrival and ``trip_start`` after the boarding dwell; at a
dropoff ``trip_stop`` then ``trip_end`` (or ``trip_resume`` when other riders stay aboard); a repositioning target
is reported by the telemetry point taken there. The fleet reads its plans with ``GET /v1/operator/vehicles``.

For an operator that answers trip offers, the fleet reads its pending offers (``GET /v1/operator/offers``, the
long-poll route without waiting) as often as its plans and accepts a share ``accept_rate`` of them, spread evenly
and reproducibly (the k-th offer is accepted when ``floor((k + 1) * rate) > floor(k * rate)``), declining the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ServiceError
from ..network import RoadNetwork, Router
from .http import PlatformClient

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FleetParams:
    """How the virtual fleet behaves.

    Parameters
    ----------
    vehicles : int
        How many robotaxis to dock.
    speedup : float
        Wall-clock speed-up of driving and dwelling (1 = real time).
    telemetry_s : float
        Seconds (wall) between telemetry batches.
    poll_s : float
        Seconds (wall) between reads of the plans.
    dwell_s : float
        Boarding and alighting time (simulated seconds).
    capacity : int
        Seats per vehicle.
    seed : int
        Start positions.
    accept_rate : float
        Share of trip offers accepted (0..1; only for an operator that gets offers).
    """

    vehicles: int
    speedup: float = 1.0
    telemetry_s: float = 5.0
    poll_s: float = 1.0
    dwell_s: float = 30.0
    capacity: int = 4
    seed: int = 0
    accept_rate: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.accept_rate <= 1:
            raise ValueError(f"accept_rate: must be in [0, 1], got {self.accept_rate}")
        if self.vehicles < 1:
            raise ValueError(f"vehicles: must be >= 1, got {self.vehicles}")
        if self.speedup <= 0 or self.telemetry_s <= 0 or self.poll_s <= 0 or self.dwell_s < 0:
            raise ValueError("speedup, telemetry_s and poll_s must be > 0, dwell_s >= 0")
        if self.capacity < 1:
            raise ValueError(f"capacity: must be >= 1, got {self.capacity}")


@dataclass(slots=True)
class _Car:
    device_id: str
    node: int
    target: tuple[str, str | None, int] | None = None  # (kind, trip_id, node) of the stop driven to
    route: list[int] = field(default_factory=list)
    arrive: list[float] = field(default_factory=list)  # wall time at each route node
    dwell_until: float = 0.0
    stage: str = "idle"  # idle, driving, dwelling
    aboard: set[str] = field(default_factory=set)
    last_telemetry_ms: int = 0


class VirtualFleet:
    """Simulated robotaxis of one operator, driven by the platform's plans.

    Parameters
    ----------
    client : PlatformClient
        Holding the operator's API key.
    network : RoadNetwork
        The same network the server runs on.
    params : FleetParams
    clock : callable
        Wall time in seconds (injectable).
    """

    def __init__(
        self,
        client: PlatformClient,
        network: RoadNetwork,
        params: FleetParams,
        *,
        router: Router | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.network = network
        self.router = router or Router(network, workers=1)
        self.params = params
        self.clock = clock
        self.cars: dict[str, _Car] = {}
        self.events_sent = 0
        self.telemetry_sent = 0
        self.errors = 0
        self.offers_accepted = 0
        self.offers_declined = 0
        self._answered: set[str] = set()
        self._next_telemetry = 0.0
        self._next_poll = 0.0

    # ------------------------------------------------------------------ positions
    def _loc(self, node: int) -> dict[str, float]:
        return {"lat": float(self.network.lat[node]), "lng": float(self.network.lon[node])}

    def _node_of(self, loc: dict[str, float]) -> int:
        idx, _ = self.network.nearest([loc["lng"]], [loc["lat"]])
        return int(idx[0])

    # ------------------------------------------------------------------ docking
    def dock(self) -> None:
        """Register the vehicles on seeded random nodes and put them in service."""
        rng = np.random.default_rng(self.params.seed)
        nodes = rng.integers(0, self.network.n_nodes, size=self.params.vehicles)
        for i, node in enumerate(nodes.tolist()):
            v = self.client.post(
                "/v1/operator/vehicles",
                {
                    "vehicle_id": f"VF-{self.params.seed}-{i:05d}",
                    "capacity": self.params.capacity,
                    "location": self._loc(node),
                },
            )
            car = _Car(v["device_id"], node)
            self.cars[car.device_id] = car
            self._event(car, "service_start", node)

    def _event(self, car: _Car, kind: str, node: int, trip: str | None = None) -> bool:
        row: dict[str, Any] = {
            "device_id": car.device_id,
            "event_type": kind,
            "timestamp": int(self.clock() * 1000),
            "location": self._loc(node),
        }
        if trip is not None:
            row["trip_id"] = trip
        try:
            self.client.post("/v1/operator/events", {"data": [row]})
        except ServiceError as e:
            self.errors += 1
            logger.warning("vehicle %s: %s refused: %s", car.device_id, kind, e)
            return False
        self.events_sent += 1
        return True

    # ------------------------------------------------------------------ the loop
    def step(self) -> None:
        """One pass: read plans when due, move every car, report stops, send telemetry when due."""
        now = self.clock()
        if now >= self._next_poll:
            self._answer_offers()
            self._read_plans(now)
            self._next_poll = now + self.params.poll_s
        for car in self.cars.values():
            self._advance(car, now)
        if now >= self._next_telemetry:
            self._telemetry(now)
            self._next_telemetry = now + self.params.telemetry_s

    def run(self, duration_s: float, *, tick_s: float = 0.2, stop: Callable[[], bool] | None = None) -> None:
        """Step every ``tick_s`` seconds for ``duration_s`` seconds (or until ``stop()``)."""
        end = self.clock() + duration_s
        while self.clock() < end and not (stop and stop()):
            self.step()
            time.sleep(tick_s)

    def _answer_offers(self) -> None:
        """Accept or decline the pending offers (a share ``accept_rate`` accepted, spread evenly)."""
        try:
            offers = self.client.get("/v1/operator/offers")["data"]
        except ServiceError as e:
            self.errors += 1
            logger.warning("reading offers failed: %s", e)
            return
        rate = self.params.accept_rate
        for offer in offers:
            oid = offer["offer_id"]
            if oid in self._answered or offer["device_id"] not in self.cars:
                continue
            k = self.offers_accepted + self.offers_declined
            accept = int((k + 1) * rate) > int(k * rate)
            self._answered.add(oid)
            try:
                self.client.post(f"/v1/operator/offers/{oid}/{'accept' if accept else 'decline'}")
            except ServiceError as e:  # expired or withdrawn meanwhile: the platform matches the trip again
                logger.info("offer %s: %s", oid, e)
                continue
            if accept:
                self.offers_accepted += 1
            else:
                self.offers_declined += 1

    def _read_plans(self, now: float) -> None:
        for v in self.client.get("/v1/operator/vehicles"):
            car = self.cars.get(v["device_id"])
            if car is None or v["retired_ms"] is not None:
                continue
            plan = v["plan"]
            if not plan:
                if car.stage == "driving" and car.target is not None and car.target[0] == "reposition":
                    continue  # finishing a move the plan no longer lists
                if car.stage != "dwelling":
                    car.target, car.stage = None, "idle"
                continue
            first = plan[0]
            target = (first["kind"], first["trip_id"], self._node_of(first["location"]))
            if target != car.target and car.stage != "dwelling":
                self._drive(car, target, now)

    def _drive(self, car: _Car, target: tuple[str, str | None, int], now: float) -> None:
        start = self._current_node(car, now)
        path = self.router.path(start, target[2]).tolist()
        edges = self.router.path_edges(path)
        dt = self.network.travel_time_s[edges].astype(np.float64) / self.params.speedup
        car.node, car.target, car.route = start, target, path
        car.arrive = (now + np.concatenate(([0.0], np.cumsum(dt)))).tolist()
        car.stage = "driving"

    def _current_node(self, car: _Car, now: float) -> int:
        if car.stage != "driving" or not car.route:
            return car.node
        i = int(np.searchsorted(car.arrive, now, side="right")) - 1
        return int(car.route[max(i, 0)])

    def _advance(self, car: _Car, now: float) -> None:
        if car.stage == "driving" and car.target is not None and now >= car.arrive[-1]:
            car.node = car.route[-1]
            kind, trip, node = car.target
            arrived = {"pickup": "reservation_stop", "dropoff": "trip_stop"}.get(kind)
            if arrived is not None and trip is not None and self._event(car, arrived, node, trip):
                car.stage, car.dwell_until = "dwelling", now + self.params.dwell_s / self.params.speedup
            elif kind == "reposition":
                self._telemetry(now, only=car)  # the position report at the target ends the move
                car.stage, car.target = "idle", None
            else:
                car.stage, car.target = "idle", None  # refused: read the plan again
        elif car.stage == "dwelling" and now >= car.dwell_until and car.target is not None:
            kind, trip, node = car.target
            assert trip is not None
            if kind == "pickup":
                if self._event(car, "trip_start", node, trip):
                    car.aboard.add(trip)
            else:
                car.aboard.discard(trip)
                self._event(car, "trip_resume" if car.aboard else "trip_end", node, trip)
            car.stage, car.target = "idle", None
            self._next_poll = 0.0  # read the next stop at once

    def _telemetry(self, now: float, only: _Car | None = None) -> None:
        cars = [only] if only is not None else list(self.cars.values())
        ms = int(now * 1000)
        rows = []
        for c in cars:
            c.last_telemetry_ms = max(ms, c.last_telemetry_ms + 1)  # strictly increasing per vehicle
            rows.append(
                {
                    "device_id": c.device_id,
                    "timestamp": c.last_telemetry_ms,
                    "location": self._loc(self._current_node(c, now)),
                }
            )
        try:
            for i in range(0, len(rows), 1000):
                self.client.post("/v1/operator/telemetry", {"data": rows[i : i + 1000]})
                self.telemetry_sent += len(rows[i : i + 1000])
        except ServiceError as e:
            self.errors += 1
            logger.warning("telemetry refused: %s", e)

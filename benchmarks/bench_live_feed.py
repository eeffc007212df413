"""The live dashboard's feed at the live service's goal scale: how long one read of the platform takes.

Usage::

    python benchmarks/bench_live_feed.py [--vehicles 5000] [--rate 20] [--history-h 4] [--reads 10]
                                         [--database sqlite|postgresql://...]

Fills a fresh database (SQLite in a temporary folder, or the PostgreSQL URL given: use an empty database) with what
``--rate`` rides per second leave behind over ``--history-h`` hours (80 % completed with a trip 13 minutes after the
request; the rest, and those too recent to have ended, rejected, expired or cancelled), ``--vehicles`` docked
vehicles, and the requests open now (``rate`` x 60 s).
Then times :class:`robotaxi.api.dashboard_feed.FeedReader` reads as the feed makes them once a second while a
dashboard is open: the first read (no baseline), then ``--reads`` reads in which every vehicle moved (the worst
case: telemetry from the whole fleet every second) and a second of new requests arrived. Prints the read times and the
size of the JSON update sent to each client.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import sqlalchemy as sa

from robotaxi.api.dashboard_feed import FeedReader
from robotaxi.ledger import Ledger
from robotaxi.store import Database, tables

LON, LAT = -73.98, 40.75


class _LedgerStub:
    def __init__(self, path: Path) -> None:
        Ledger.open_or_create(path, origin="bench/ledger").close()
        self.path = path

    def reader(self) -> Ledger:
        return Ledger.open(self.path)


def _fill(db: Database, now_ms: int, vehicles: int, rate: float, history_h: float, seed: int) -> int:
    rng = np.random.default_rng(seed)
    with db.begin() as conn:
        conn.execute(tables.operators.insert(), [
            {"id": k, "name": f"op{k}", "provider_id": str(uuid.uuid4()), "created_ms": now_ms} for k in range(3)
        ])  # fmt: skip
        devices = [str(uuid.uuid4()) for _ in range(vehicles)]
        states = rng.choice(["available", "reserved", "on_trip", "stopped"], size=vehicles, p=[0.4, 0.2, 0.35, 0.05])
        conn.execute(tables.vehicles.insert(), [
            {"device_id": d, "operator_id": i % 3, "vehicle_id": f"V{i}", "vehicle_type": "car",
             "propulsion_types": ["electric"], "capacity": 4, "state": str(states[i]), "registered_ms": now_ms,
             "node": 0, "lon": LON + rng.normal(0, 0.02), "lat": LAT + rng.normal(0, 0.02),
             "plan": [{"kind": "pickup", "trip_id": None, "location": {"lat": LAT, "lng": LON}}],
             "updated_ms": now_ms}
            for i, d in enumerate(devices)
        ])  # fmt: skip
        n = int(rate * history_h * 3600)
        requested = np.sort(now_ms - rng.integers(60_000, int(history_h * 3_600_000), size=n))
        rows: list[dict[str, Any]] = []
        trips: list[dict[str, Any]] = []
        for rid in range(n):
            t = int(requested[rid])
            kind = rng.random()
            base = {"request_id": rid + 1, "trip_id": str(uuid.uuid4()), "rider": f"r{rid % 5000}",
                    "idempotency_key": str(rid), "body_sha256": "0" * 64, "origin_lon": LON, "origin_lat": LAT,
                    "destination_lon": LON, "destination_lat": LAT, "o_node": 0, "d_node": 1, "passengers": 1,
                    "max_wait_s": 600, "requested_ms": t, "direct_s": 600, "direct_m": 3000,
                    "updated_ms": t, "device_id": None, "assigned_ms": None, "pickup_ms": None, "dropoff_ms": None,
                    "closed_ms": None, "fare_cents": None, "reason": None}  # fmt: skip
            if kind < 0.8 and t + 780_000 < now_ms:
                pickup, drop = t + 180_000, t + 780_000
                device = devices[rid % vehicles]
                base |= {"status": "completed", "device_id": device, "assigned_ms": t, "pickup_ms": pickup,
                         "dropoff_ms": drop, "closed_ms": drop, "fare_cents": 1500}  # fmt: skip
                trips.append({"trip_id": base["trip_id"], "request_id": rid + 1, "device_id": device,
                              "operator_id": rid % vehicles % 3, "start_ms": pickup, "end_ms": drop,
                              "start_lon": LON, "start_lat": LAT, "end_lon": LON, "end_lat": LAT,
                              "duration_s": 600, "distance_m": 3000, "passengers": 1, "fare_cents": 1500,
                              "requested_ms": t, "quoted_pickup_ms": pickup, "dispatch_ms": t,
                              "publication_ms": drop})  # fmt: skip
            else:
                status = ("rejected", "expired", "cancelled")[int(kind * 100) % 3]
                base |= {"status": status, "reason": "no_vehicle", "closed_ms": t + 30_000}
            rows.append(base)
            if len(rows) >= 20_000:
                conn.execute(tables.ride_requests.insert(), rows)
                rows = []
        if rows:
            conn.execute(tables.ride_requests.insert(), rows)
        for i in range(0, len(trips), 20_000):
            conn.execute(tables.trips.insert(), trips[i : i + 20_000])
    return n


def _new_requests(db: Database, first_id: int, count: int, now_ms: int) -> None:
    rows = [
        {"request_id": first_id + k, "trip_id": str(uuid.uuid4()), "rider": "live",
         "idempotency_key": f"live{first_id + k}", "body_sha256": "0" * 64, "origin_lon": LON, "origin_lat": LAT,
         "destination_lon": LON, "destination_lat": LAT,
         "o_node": 0, "d_node": 1, "passengers": 1, "max_wait_s": 600, "requested_ms": now_ms, "direct_s": 600,
         "direct_m": 3000, "updated_ms": now_ms, "status": "open"}
        for k in range(count)
    ]  # fmt: skip
    with db.begin() as conn:
        conn.execute(tables.ride_requests.insert(), rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vehicles", type=int, default=5000)
    ap.add_argument("--rate", type=float, default=20.0, help="ride requests per second")
    ap.add_argument("--history-h", type=float, default=4.0, help="hours of closed requests already stored")
    ap.add_argument("--reads", type=int, default=10)
    ap.add_argument("--database", default="sqlite")
    args = ap.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-feed-"))
    url = f"sqlite:///{folder / 'feed.db'}" if args.database == "sqlite" else args.database
    db = Database.open(url)
    clock = SimpleNamespace(t=time.time())
    service = SimpleNamespace(
        db=db, clock=lambda: clock.t, settings=SimpleNamespace(max_wait_s=600), ledger=_LedgerStub(folder / "l.db")
    )
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs; database {db.display_url}")
    t0 = time.perf_counter()
    now_ms = int(clock.t * 1000)
    n = _fill(db, now_ms, args.vehicles, args.rate, args.history_h, seed=1)
    open_now = int(args.rate * 60)
    _new_requests(db, n + 1, open_now, now_ms)
    print(f"filled: {args.vehicles:,} vehicles, {n:,} closed requests ({args.history_h:g} h at {args.rate:g}/s), "
          f"{open_now:,} open, in {time.perf_counter() - t0:.1f} s")  # fmt: skip

    reader = FeedReader(service)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    first = reader.read()
    first_s = time.perf_counter() - t0
    snapshot = len(json.dumps(first.snapshot(reader.registry), separators=(",", ":")))
    print(f"first read: {first_s * 1000:.0f} ms; snapshot message {snapshot / 1e3:.0f} kB")
    times, sizes = [], []
    next_id = n + 1 + open_now
    rng = np.random.default_rng(2)
    for _ in range(args.reads):
        clock.t += 1.0
        now_ms = int(clock.t * 1000)
        with db.begin() as conn:  # every vehicle moved; a second of requests arrived
            conn.execute(
                tables.vehicles.update()
                .where(tables.vehicles.c.device_id == sa.bindparam("d"))
                .values(lon=sa.bindparam("x"), updated_ms=now_ms),
                [{"d": d, "x": LON + float(rng.normal(0, 0.02))} for d in reader.registry],
            )
        _new_requests(db, next_id, int(args.rate), now_ms)
        next_id += int(args.rate)
        t0 = time.perf_counter()
        r = reader.read()
        times.append(time.perf_counter() - t0)
        sizes.append(len(json.dumps(r.update(), separators=(",", ":"))))
    print(f"reads with the whole fleet moved: median {statistics.median(times) * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms ({args.reads} reads); update message median "
          f"{statistics.median(sizes) / 1e3:.0f} kB; load average after {os.getloadavg()[0]:.2f}")  # fmt: skip
    db.close()


if __name__ == "__main__":
    main()

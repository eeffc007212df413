"""Load on the live platform: docked vehicles sending telemetry and riders requesting rides (issue 13).

Usage::

    python benchmarks/bench_live.py [--vehicles 5000] [--telemetry-s 5] [--rate 20] [--duration 300]
                                    [--database sqlite|postgresql://...] [--network grid:60x60]

Starts ``robotaxi serve`` as a separate process on a free port (a fresh data directory; a fresh SQLite file, or the
PostgreSQL URL given: use an empty database), docks ``--vehicles`` vehicles through the operator API, then for
``--duration`` seconds sends every vehicle's position every ``--telemetry-s`` seconds (in batches of 1,000, spread
over the period) and ``--rate`` ride requests per second (open loop: requests are sent on schedule whether or not
earlier ones were answered). Vehicles stay near their docking node (the load is the platform's, not a motion
model's). Prints throughput, p50/p99/max latency and errors for ride requests and telemetry batches. The goal
(issue 13): p99 under 200 ms for ride requests, zero errors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from robotaxi.api.live import load_network

GOAL_P99_MS = 200.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(database: str, network: str, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"sqlite:///{data_dir / 'bench.db'}" if database == "sqlite" else database
    exe = Path(sys.executable).with_name("robotaxi")
    proc = subprocess.Popen(
        [str(exe), "serve", "--database", url, "--data-dir", str(data_dir), "--network", network, "--port", str(port),
         "--log-level", "warning"],
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("robotaxi serve did not start")


async def token(c: httpx.AsyncClient, key: str) -> dict[str, str]:
    r = await c.post("/v1/auth/token", json={"api_key": key})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def setup(c: httpx.AsyncClient, data_dir: Path, vehicles: int, lon: Any, lat: Any) -> dict[str, Any]:
    admin = await token(c, (data_dir / "admin.key").read_text().strip())
    await c.post("/v1/admin/operators", json={"name": "bench"}, headers=admin)
    keys = {}
    for role, extra in (("operator", {"operator": "bench"}), ("rider", {})):
        r = await c.post(
            "/v1/admin/credentials", json={"role": role, "subject": f"bench-{role}", **extra}, headers=admin
        )
        keys[role] = r.json()["api_key"]
    op, rider = await token(c, keys["operator"]), await token(c, keys["rider"])
    rng = np.random.default_rng(1)
    nodes = rng.integers(0, len(lon), size=vehicles)
    devices: list[str] = []
    sem = asyncio.Semaphore(16)

    async def dock(i: int, node: int) -> None:
        async with sem:
            body = {"vehicle_id": f"B-{i:05d}", "location": {"lat": float(lat[node]), "lng": float(lon[node])}}
            r = await c.post("/v1/operator/vehicles", json=body, headers=op)
            r.raise_for_status()
            d = r.json()["device_id"]
            ev = {
                "device_id": d,
                "event_type": "service_start",
                "timestamp": int(time.time() * 1000),
                "location": body["location"],
            }
            (await c.post("/v1/operator/events", json={"data": [ev]}, headers=op)).raise_for_status()
            devices.append(d)

    t0 = time.perf_counter()
    await asyncio.gather(*(dock(i, int(n)) for i, n in enumerate(nodes)))
    print(f"docked {vehicles} vehicles in {time.perf_counter() - t0:.1f} s")
    by_device = dict(zip(devices, (int(n) for n in nodes), strict=False))
    return {"op": op, "rider": rider, "devices": by_device}


class Load:
    """Open-loop load: rides at a fixed rate, telemetry batches spread over the period; latencies and errors."""

    def __init__(self, c: httpx.AsyncClient, ctx: dict[str, Any], lon: Any, lat: Any) -> None:
        self.c, self.ctx, self.lon, self.lat = c, ctx, lon, lat
        self.ride_ms: list[float] = []
        self.tele_ms: list[float] = []
        self.errors: dict[str, int] = {}
        self.statuses: dict[str, int] = {}
        self.rng = np.random.default_rng(2)

    def _error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def _loc(self, node: int) -> dict[str, float]:
        return {"lat": float(self.lat[node]), "lng": float(self.lon[node])}

    async def ride(self) -> None:
        o, d = (int(x) for x in self.rng.choice(len(self.lon), size=2, replace=False))
        body = {"origin": self._loc(o), "destination": self._loc(d)}
        headers = {**self.ctx["rider"], "Idempotency-Key": uuid.uuid4().hex}
        t = time.perf_counter()
        try:
            r = await self.c.post("/v1/rides", json=body, headers=headers)
        except httpx.HTTPError as e:
            self._error(type(e).__name__)
            return
        self.ride_ms.append((time.perf_counter() - t) * 1000)
        if r.status_code != 201:
            self._error(f"ride {r.status_code}")
        else:
            s = r.json()["status"]
            self.statuses[s] = self.statuses.get(s, 0) + 1

    async def telemetry(self, batch: list[tuple[str, int]], lock: asyncio.Lock) -> None:
        # Like a real fleet, a group of vehicles sends its next batch once the previous one was answered (else a
        # later batch could overtake an earlier one and be refused, correctly, as out of order); the latency is
        # counted from when the batch was due.
        t = time.perf_counter()
        async with lock:
            ms = int(time.time() * 1000)
            rows = [{"device_id": dv, "timestamp": ms, "location": self._loc(nd)} for dv, nd in batch]
            try:
                r = await self.c.post("/v1/operator/telemetry", json={"data": rows}, headers=self.ctx["op"])
            except httpx.HTTPError as e:
                self._error(type(e).__name__)
                return
        self.tele_ms.append((time.perf_counter() - t) * 1000)
        if r.status_code != 200:
            self._error(f"telemetry {r.status_code}")

    async def run(self, args: argparse.Namespace) -> float:
        devices = list(self.ctx["devices"].items())
        batches = [devices[i : i + 1000] for i in range(0, len(devices), 1000)]
        locks = [asyncio.Lock() for _ in batches]
        tasks: list[asyncio.Task[None]] = []
        start = time.perf_counter()
        next_ride = next_batch = start
        b = 0
        while time.perf_counter() < start + args.duration:
            now = time.perf_counter()
            while next_ride <= now:
                tasks.append(asyncio.create_task(self.ride()))
                next_ride += 1.0 / args.rate
            while next_batch <= now and batches:
                tasks.append(asyncio.create_task(self.telemetry(batches[b % len(batches)], locks[b % len(batches)])))
                b += 1
                next_batch += args.telemetry_s / len(batches)
            await asyncio.sleep(0.005)
        await asyncio.gather(*tasks)
        return time.perf_counter() - start


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_load(
    c: httpx.AsyncClient, ctx: dict[str, Any], args: argparse.Namespace, lon: Any, lat: Any, server_pid: int
) -> None:
    load = Load(c, ctx, lon, lat)
    gen0, srv0 = time.process_time(), cpu_s(server_pid)
    elapsed = await load.run(args)
    gen, srv = time.process_time() - gen0, cpu_s(server_pid)
    # On one machine the load generator competes with the server for the cores: say how much it took.
    print(
        f"CPU during the load: load generator {gen:.1f} s ({gen / elapsed:.0%} of one core), server "
        + (
            f"{srv - srv0:.1f} s ({(srv - srv0) / elapsed:.0%} of one core)"
            if srv is not None and srv0 is not None
            else "n/a"
        )
        + f", over {elapsed:.0f} s wall; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    report("ride requests", load.ride_ms, elapsed)
    report("telemetry batches (<= 1000 points)", load.tele_ms, elapsed)
    print(f"ride outcomes: {load.statuses}")
    print(f"errors: {load.errors or 'none'}")
    if load.ride_ms:
        p99 = float(np.percentile(load.ride_ms, 99))
        print(f"goal p99 < {GOAL_P99_MS:.0f} ms for ride requests: {'met' if p99 < GOAL_P99_MS else 'NOT met'}")


def report(what: str, ms: list[float], elapsed: float) -> None:
    if not ms:
        print(f"{what}: none answered")
        return
    a = np.asarray(ms)
    print(
        f"{what}: {a.size} in {elapsed:.0f} s ({a.size / elapsed:.1f}/s); latency p50 {np.percentile(a, 50):.1f} ms, "
        f"p99 {np.percentile(a, 99):.1f} ms, max {a.max():.1f} ms, mean {statistics.fmean(ms):.1f} ms"
    )


async def main_async(args: argparse.Namespace) -> None:
    net = load_network(args.network)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        proc, base = start_server(args.database, args.network, data_dir)
        try:
            # Idle connections expire on the client before the server's keep-alive timeout (uvicorn: 5 s): else a
            # request may go out on a connection the server is closing at that moment (a client ReadError).
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=2.0)
            async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as c:
                ctx = await setup(c, data_dir, args.vehicles, net.lon, net.lat)
                await run_load(c, ctx, args, net.lon, net.lat, proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vehicles", type=int, default=5000)
    ap.add_argument("--telemetry-s", type=float, default=5.0)
    ap.add_argument("--rate", type=float, default=20.0, help="ride requests per second")
    ap.add_argument("--duration", type=float, default=300.0)
    ap.add_argument("--database", default="sqlite", help="'sqlite' (a fresh file) or an empty PostgreSQL URL")
    ap.add_argument("--network", default="grid:60x60")
    args = ap.parse_args()
    print(
        f"{platform.node()} {platform.processor() or platform.machine()}, python {platform.python_version()}; "
        f"{args.vehicles} vehicles, telemetry every {args.telemetry_s:g} s, {args.rate:g} rides/s, "
        f"{args.duration:g} s, {args.database}, {args.network}"
    )
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()

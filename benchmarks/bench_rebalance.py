"""Rebalancing figures: the time of one ``ZoneFlowRebalancer.rebalance`` call on the Manhattan network.

Run: ``.venv/bin/python benchmarks/bench_rebalance.py`` (reads ../shared/data). Two cases:

* the 69 TLC taxi zones that hold network nodes, 3,000 idle vehicles in a fleet of 8,000;
* about 300 square grid cells, 10,000 idle vehicles in a fleet of 20,000.

Idle vehicles are drawn skewed towards the north of the island and demand towards the south (a seeded generator),
so that many zones are in surplus or deficit and the share limit binds: the hard case for the flow LP. Prints the
median and the worst of ``--repeat`` calls, the LP size and the number of moves; the figures go into
benchmarks/RESULTS.md by hand with the date and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from robotaxi.dispatch.rebalance import RebalanceParams, RebalanceView, ZoneFlowRebalancer, Zoning
from robotaxi.network import RoadNetwork, Router, load_network

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NETWORK = SHARED / "nyc_manhattan_hive" / "manhattan_network.json"
ZONES = SHARED / "nyc_tlc_taxi_zones" / "taxi_zones.geojson"


def skewed_view(net: RoadNetwork, zoning: Zoning, n_idle: int, fleet: int, seed: int) -> RebalanceView:
    """Idle vehicles piled up in the north, demand heavier in the south."""
    rng = np.random.default_rng(seed)
    north = (net.y - net.y.min()) / np.ptp(net.y)
    p = (0.2 + north**2) / (0.2 + north**2).sum()
    node = rng.choice(net.n_nodes, size=n_idle, p=p).astype(np.int32)
    zone_y = np.bincount(np.maximum(zoning.zone_of_node, 0), weights=north, minlength=zoning.n_zones)
    zone_y /= np.maximum(np.bincount(np.maximum(zoning.zone_of_node, 0), minlength=zoning.n_zones), 1)
    expected = rng.gamma(2.0, 1.0, zoning.n_zones) * (1.2 - zone_y) * (n_idle / zoning.n_zones)
    soon = rng.integers(-1, zoning.n_zones, fleet // 10).astype(np.int32)
    vehicle = rng.permutation(fleet)[:n_idle].astype(np.int32)
    return RebalanceView(1_541_340_000, vehicle, node, soon, fleet, expected)


def time_calls(
    rebalancer: ZoneFlowRebalancer, view: RebalanceView, zoning: Zoning, router: Router, repeat: int
) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        rebalancer.rebalance(view, zoning, router)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    machine = platform.processor() or platform.machine()
    print(f"# {platform.node()} {machine}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}")
    net = load_network(NETWORK)
    router = Router(net)
    t0 = time.perf_counter()
    tlc = Zoning.from_geojson(net, router, ZONES)
    tlc_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    cells = Zoning.grid(net, router, cell_m=440.0)
    grid_build = time.perf_counter() - t0
    rebalancer = ZoneFlowRebalancer(RebalanceParams())
    cases = [("TLC zones", tlc, tlc_build, 3_000, 8_000), ("grid 440 m", cells, grid_build, 10_000, 20_000)]
    print("case        zones  idle   fleet  build_s  median_ms  worst_ms  moves")
    for label, zoning, build_s, n_idle, fleet in cases:
        view = skewed_view(net, zoning, n_idle, fleet, seed=7)
        rebalancer.rebalance(view, zoning, router)  # warm-up
        times = time_calls(rebalancer, view, zoning, router, args.repeat)
        moves = rebalancer.rebalance(view, zoning, router)
        print(
            f"{label:<11} {zoning.n_zones:>5}  {n_idle:>5}  {fleet:>6}  {build_s:>7.2f}  "
            f"{1e3 * float(np.median(times)):>9.1f}  {1e3 * max(times):>8.1f}  {moves.vehicle.shape[0]:>5}"
        )


if __name__ == "__main__":
    main()

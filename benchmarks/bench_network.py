"""Road network and routing figures: load, cached load, full-table build, look-ups, paths, memory.

Run: ``.venv/bin/python benchmarks/bench_network.py`` (reads ../shared/data for Manhattan). Prints one row per
network; the figures go into benchmarks/RESULTS.md by hand with the date and the machine.

Compares, in the same run, our table build (composite time+length weights, predecessors kept, split over
processes writing into shared memory) against one plain ``scipy.sparse.csgraph.dijkstra`` call over all sources.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.sparse.csgraph import dijkstra

from robotaxi.network import RoadNetwork, Router, load_network, load_network_cache, save_network

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def best_of(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def peak_rss_mb() -> float:
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(self_kb, child_kb) / 1024


def bench(label: str, source: str | None, repeat: int) -> dict[str, float | int | str]:
    t0 = time.perf_counter()
    net: RoadNetwork = load_network(source)
    load_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        cache = save_network(net, Path(tmp) / "net.npz")
        cached_s = best_of(lambda: load_network_cache(cache), repeat)
    graph = net.matrix(net.travel_time_s.astype(np.float64))
    plain_s = best_of(lambda: dijkstra(graph, directed=True), 1)
    serial_s = best_of(lambda: Router(net, workers=1), 1)
    t0 = time.perf_counter()
    router = Router(net, workers=os.cpu_count())
    table_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    o = rng.integers(0, net.n_nodes, 1_000_000)
    d = rng.integers(0, net.n_nodes, 1_000_000)
    lookup_s = best_of(lambda: router.times(o, d), repeat)
    lookup_dist_s = best_of(lambda: router.distances(o, d), repeat)
    pairs = list(zip(o[:2000].tolist(), d[:2000].tolist(), strict=True))
    t0 = time.perf_counter()
    for a, b in pairs:
        router.path(a, b)
    path_us = (time.perf_counter() - t0) / len(pairs) * 1e6
    return {
        "network": label,
        "nodes": net.n_nodes,
        "edges": net.n_edges,
        "load_s": round(load_s, 3),
        "cached_load_s": round(cached_s, 4),
        "plain_scipy_all_sources_s": round(plain_s, 3),
        "table_1_process_s": round(serial_s, 3),
        f"table_{os.cpu_count()}_processes_s": round(table_s, 3),
        "table_MB": round(router.memory_bytes / 1e6, 1),
        "times_1e6_lookups_s": round(lookup_s, 4),
        "distances_1e6_lookups_s": round(lookup_dist_s, 4),
        "path_us": round(path_us, 1),
        "peak_rss_MB_so_far": round(peak_rss_mb(), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"# {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    manhattan = SHARED / "nyc_manhattan_hive" / "manhattan_network.json"
    runs = [("Helsinki (embedded)", None)]
    if manhattan.is_file():
        runs.append(("Manhattan", str(manhattan)))
    else:
        print(f"(skipping Manhattan: {manhattan} not found)")
    for label, source in runs:
        for k, v in bench(label, source, args.repeat).items():
            print(f"{k:>28}: {v}")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Demand figures: the Manhattan Wednesday build, and streaming a 10M-row TLC-format Parquet month.

Run: ``.venv/bin/python benchmarks/bench_demand.py`` (reads ../shared/data; writes the Parquet month to a temporary
folder, about 200 MB, deleted at the end). ``--rows`` changes the size of the month file. The figures go into
benchmarks/RESULTS.md by hand with the date and the machine.

Goals: Manhattan Wednesday (about 440,000 requests on the 4,197-node network) in <= 10 s; the Parquet month streamed
at >= 1M rows/s with peak memory <= 1 GB. The streaming run happens in a child process so that its peak RSS is its
own, not the generator's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from robotaxi.demand import TLCSource, manhattan_weekday, synthetic_demand
from robotaxi.network import load_network

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NETWORK = SHARED / "nyc_manhattan_hive" / "manhattan_network.json"
TRIPS = SHARED / "nyc_manhattan_pyhailing" / "trips.csv"
ZONES = SHARED / "nyc_tlc_taxi_zones" / "taxi_zones.geojson"
#: The 61 Manhattan taxi zones plus a few others (airports, Brooklyn) and 264 (unknown), as in the real files.
PU_ZONES = np.array([
    4, 13, 24, 41, 42, 43, 48, 50, 68, 79, 100, 107, 113, 114, 137, 140, 141, 142, 143, 161, 162,
    163, 164, 170, 186, 230, 234, 236, 237, 238, 239, 246, 249, 262, 263, 132, 138, 181, 264,
])  # fmt: skip


def bench_manhattan(repeat: int) -> dict[str, float]:
    t0 = time.perf_counter()
    net = load_network(NETWORK)
    t_net = time.perf_counter() - t0
    best = float("inf")
    n = 0
    for seed in range(repeat):
        t0 = time.perf_counter()
        n = len(manhattan_weekday(net, TRIPS, ZONES, weekday=2, seed=seed))
        best = min(best, time.perf_counter() - t0)
    return {"network_load_s": t_net, "wednesday_build_s": best, "requests": n, "nodes": net.n_nodes}


def bench_synthetic() -> dict[str, float]:
    out: dict[str, float] = {}
    for name, path, n in (("helsinki", None, 100_000), ("manhattan", NETWORK, 440_000)):
        net = load_network(path)
        t0 = time.perf_counter()
        synthetic_demand(net, n, seed=0)
        out[f"synthetic_{name}_{n}_s"] = time.perf_counter() - t0
    return out


def write_month(path: Path, rows: int, seed: int = 0, chunk: int = 1_000_000) -> None:
    """A June 2018 yellow-taxi month in the official Parquet schema (zone-based), written chunk by chunk."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2018-06-01T00:00:00", "us")
    p = np.ones(PU_ZONES.size)
    p[-1] = 0.2
    p /= p.sum()
    schema = None
    writer = None
    try:
        for lo in range(0, rows, chunk):
            n = min(chunk, rows - lo)
            pu = start + rng.integers(0, 30 * 86400, n).astype("timedelta64[s]")
            dur = rng.integers(-5, 3600, n).astype("timedelta64[s]")  # a few drop-offs before the pickup
            table = pa.table({
                "VendorID": pa.array(rng.integers(1, 3, n), pa.int64()),
                "tpep_pickup_datetime": pa.array(pu, pa.timestamp("us")),
                "tpep_dropoff_datetime": pa.array(pu + dur, pa.timestamp("us")),
                "passenger_count": pa.array(rng.integers(0, 5, n).astype(np.float64)),
                "trip_distance": pa.array(np.round(rng.exponential(2.5, n), 2)),
                "RatecodeID": pa.array(np.ones(n)),
                "store_and_fwd_flag": pa.array(np.full(n, "N")),
                "PULocationID": pa.array(rng.choice(PU_ZONES, n, p=p), pa.int64()),
                "DOLocationID": pa.array(rng.choice(PU_ZONES, n, p=p), pa.int64()),
                "payment_type": pa.array(rng.integers(1, 3, n), pa.int64()),
                "fare_amount": pa.array(np.round(rng.uniform(2.5, 60, n), 2)),
                "total_amount": pa.array(np.round(rng.uniform(3, 80, n), 2)),
            })  # fmt: skip
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(path, schema, compression="snappy")
            writer.write_table(table, row_group_size=1_000_000)
    finally:
        if writer is not None:
            writer.close()


def stream_child(path: Path) -> None:
    """Run in a child process: stream the month, keep 2018-06-13, print figures as JSON."""
    net = load_network(NETWORK)
    t0 = time.perf_counter()
    res = TLCSource(path=path, zones=ZONES, date=dt.date(2018, 6, 13)).load(net, np.random.default_rng(0))
    secs = time.perf_counter() - t0
    rep = res.report
    print(
        json.dumps(
            {
                "rows": rep.rows_read,
                "seconds": secs,
                "rows_per_s": rep.rows_read / secs,
                "accepted": rep.accepted,
                "rejected": dict(rep.rejected),
                "skipped": dict(rep.skipped),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def bench_stream(rows: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="robotaxi-bench-") as tmp:
        path = Path(tmp) / "yellow_tripdata_2018-06.parquet"
        t0 = time.perf_counter()
        write_month(path, rows)
        made = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(path)], check=True, capture_output=True, text=True
        )
        figures: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    figures.update({"file_mb": size_mb, "generate_s": made})
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        stream_child(args.child)
        return
    print(f"# {dt.date.today()} {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}")
    m = bench_manhattan(args.repeat)
    print(f"Manhattan network load (OSMnx JSON): {m['network_load_s']:.3f} s, {m['nodes']:,} nodes")
    print(f"Manhattan Wednesday build (best of {args.repeat}): {m['wednesday_build_s']:.3f} s, "
          f"{m['requests']:,} requests  [goal <= 10 s]")  # fmt: skip
    for k, v in bench_synthetic().items():
        print(f"{k}: {v:.3f} s")
    s = bench_stream(args.rows)
    print(f"TLC Parquet month: {s['rows']:,} rows, {s['file_mb']:.0f} MB (generated in {s['generate_s']:.1f} s)")
    print(f"  streamed in {s['seconds']:.2f} s = {s['rows_per_s'] / 1e6:.2f} M rows/s  [goal >= 1 M rows/s]")
    print(f"  peak RSS of the streaming process: {s['peak_rss_mb']:.0f} MB  [goal <= 1024 MB]")
    print(f"  accepted {s['accepted']:,} (2018-06-13), rejected {s['rejected']}, skipped {s['skipped']}")


if __name__ == "__main__":
    main()

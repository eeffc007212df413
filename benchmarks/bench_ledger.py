"""Ledger benchmark: durable append throughput, its drift with size, and proof costs.

Usage::

    python benchmarks/bench_ledger.py                 # 10 million 1 KiB entries (about 11 GB, deleted after)
    python benchmarks/bench_ledger.py --n 1000000     # smaller run
    python benchmarks/bench_ledger.py --n 200000 --keep --dir /tmp/x

Appends batches of ``--batch`` entries of ``--entry-size`` bytes (canonical JSON objects, all distinct)
with the default durable settings (WAL, synchronous=FULL: every batch is fsynced before append returns),
prints the rate of every million (or every tenth of the run), then times inclusion-proof generation and
verification at the final size. Goals (issue 5): >= 50,000 entries/s; last million no slower than 2x the
first; proof generation <= 0.5 ms and verification <= 0.1 ms at 10 million.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from robotaxi.ledger import Ledger, SigningKey, hash_leaf, verify_consistency, verify_inclusion

ORIGIN = "bench.robotaxi/ledger"


def make_batch(start: int, count: int, size: int, ids: bool = False) -> list[bytes]:
    """``count`` distinct canonical JSON objects of exactly ``size`` bytes, for indices ``start..``.

    With ``ids`` they are trips (``kind`` ``trip`` with a random-looking UUIDv5 ``trip_id``, as the simulator
    writes), so every append also checks and extends the id index.
    """
    out = []
    for i in range(start, start + count):
        if ids:
            tid = uuid.uuid5(uuid.NAMESPACE_URL, f"bench/{i}")
            head = b'{"i":%d,"kind":"trip","pad":"' % i
            tail = b'","trip_id":"%s"}' % str(tid).encode()
        else:
            head, tail = b'{"i":%d,"kind":"bench","pad":"' % i, b'"}'
        out.append(head + b"x" * (size - len(head) - len(tail)) + tail)
    return out


def bench_appends(
    led: Ledger, n: int, batch: int, entry_size: int, report_every: int, ids: bool = False
) -> list[float]:
    """Append ``n`` entries; return the rate (entries/s) of each ``report_every`` slice."""
    rates: list[float] = []
    t_slice = 0.0
    done = 0
    t_all = 0.0
    while done < n:
        k = min(batch, n - done)
        entries = make_batch(done, k, entry_size, ids)
        t0 = time.perf_counter()
        led.append(entries)
        dt = time.perf_counter() - t0
        t_slice += dt
        t_all += dt
        done += k
        if done % report_every == 0 or done == n:
            part = done % report_every or report_every
            rates.append(part / t_slice)
            print(f"  {done:>11,} entries   {rates[-1]:>9,.0f} entries/s   ({t_all:,.1f} s appending)", flush=True)
            t_slice = 0.0
    return rates


def bench_proofs(led: Ledger, samples: int, rng: random.Random) -> dict[str, float]:
    """Median and p99 times (ms) of inclusion-proof generation and verification at the ledger's size."""
    n = led.size
    root = led.root()
    gen: list[float] = []
    ver: list[float] = []
    for _ in range(samples):
        i = rng.randrange(n)
        leaf = hash_leaf(led.entry(i))
        t0 = time.perf_counter()
        proof = led.inclusion_proof(i, n)
        t1 = time.perf_counter()
        verify_inclusion(leaf, i, n, proof, root)
        t2 = time.perf_counter()
        gen.append((t1 - t0) * 1e3)
        ver.append((t2 - t1) * 1e3)
    cons: list[float] = []
    for _ in range(samples // 4):
        m = rng.randrange(1, n)
        t0 = time.perf_counter()
        proof = led.consistency_proof(m, n)
        cons.append((time.perf_counter() - t0) * 1e3)
        verify_consistency(m, n, led.root(m), root, proof)
    q = 0.99
    return {
        "inclusion_gen_median_ms": statistics.median(gen),
        "inclusion_gen_p99_ms": sorted(gen)[int(q * len(gen))],
        "inclusion_verify_median_ms": statistics.median(ver),
        "inclusion_verify_p99_ms": sorted(ver)[int(q * len(ver))],
        "consistency_gen_median_ms": statistics.median(cons),
    }


def bench_ids(led: Ledger, n: int, batch: int, entry_size: int) -> None:
    """Lookups by id (fresh ledger object: cold index, then warm) and a re-append of batches already there."""
    rng = random.Random(11)
    path = led.store.path  # type: ignore[attr-defined]
    with Ledger.open(path) as cold:
        i = n - 1
        tid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench/{i}"))
        t = time.perf_counter()
        found = cold.find_id("trip", tid)
        print(f"lookup by id, cold (index runs read from disk): {(time.perf_counter() - t) * 1e3:,.1f} ms -> {found}")
        times = []
        for _ in range(200):
            i = rng.randrange(n)
            tid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench/{i}"))
            t = time.perf_counter()
            assert cold.find_id("trip", tid) == i
            times.append((time.perf_counter() - t) * 1e3)
        print(f"lookup by id, warm, median of 200: {statistics.median(times):.3f} ms")
        t = time.perf_counter()
        again = 0
        for start in range(0, min(n, 100 * batch), batch):
            again += cold.add(make_batch(start, min(batch, n - start), entry_size, True)).skipped
        dt = time.perf_counter() - t
        print(f"re-append of {again:,} entries already recorded (all skipped): {again / dt:,.0f} entries/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000_000, help="entries to append (default 10 million)")
    ap.add_argument("--batch", type=int, default=1000, help="entries per append (default 1000)")
    ap.add_argument("--entry-size", type=int, default=1024, help="bytes per entry (default 1024)")
    ap.add_argument("--samples", type=int, default=2000, help="proofs to time")
    ap.add_argument("--dir", type=Path, default=None, help="directory for the database (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument("--ids", action="store_true", help="append trips with ids (exercises the id index)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_ledger_", dir=args.dir))
    path = work / "bench.ledger"
    report_every = 1_000_000 if args.n >= 2_000_000 else max(args.batch, args.n // 10 // args.batch * args.batch)
    print(f"ledger benchmark: {args.n:,} entries of {args.entry_size} B in batches of {args.batch:,} -> {path}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.platform()}"
    )
    try:
        with Ledger.create(path, origin=ORIGIN) as led:
            t0 = time.perf_counter()
            rates = bench_appends(led, args.n, args.batch, args.entry_size, report_every, args.ids)
            wall = time.perf_counter() - t0
            print(f"append: {args.n / wall:,.0f} entries/s overall (wall, including building the entries)")
            print(
                f"append: first slice {rates[0]:,.0f}/s, last slice {rates[-1]:,.0f}/s, "
                f"slowdown x{rates[0] / rates[-1]:.2f} (goal <= 2)"
            )
            key = SigningKey.generate(ORIGIN)
            t = time.perf_counter()
            led.sign_checkpoint(key)
            print(f"checkpoint: signed at size {led.size:,} in {(time.perf_counter() - t) * 1e3:.2f} ms")
            figures = bench_proofs(led, args.samples, random.Random(7))
            for k, v in figures.items():
                print(f"{k}: {v:.4f}")
            if args.ids:
                bench_ids(led, args.n, args.batch, args.entry_size)
            else:
                t = time.perf_counter()
                found = led.find(make_batch(args.n - 1, 1, args.entry_size)[0])
                ms = (time.perf_counter() - t) * 1e3
                print(f"lookup by entry hash (last entry, full scan): {ms:,.0f} ms -> {found}")
        size_gb = sum(f.stat().st_size for f in work.iterdir()) / 1e9
        print(f"database: {size_gb:.2f} GB on disk")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

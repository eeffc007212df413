"""Benchmark: the marketplace example against the single-operator flagship, in one benchmark run.

Usage::

    .venv/bin/python benchmarks/bench_marketplace.py                 # both whole days, one after the other
    .venv/bin/python benchmarks/bench_marketplace.py --window 07:00-10:00   # a shorter window for both

Each scenario runs in its own process (``benchmarks/bench_sim.py``), so that each peak memory is its own, and
back to back, so that both see the same machine load. Prints each run's figures, the per-operator figures of the
marketplace, and the ratios marketplace / flagship of the event loop and of the whole run. Asserts nothing (goal:
the marketplace within 1.5x the flagship's time and within 4 GB).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FLAGSHIP = REPO / "examples" / "manhattan_weekday.toml"
MARKET = REPO / "examples" / "manhattan_marketplace.toml"


def _windowed(path: Path, window: str | None, folder: Path) -> Path:
    if not window:
        return path
    start, end = window.split("-")
    text = path.read_text(encoding="utf-8")
    text = re.sub(r'(?m)^start = "[0-9:]+"', f'start = "{start}"', text, count=1)
    text = re.sub(r'(?m)^end = "[0-9:]+"', f'end = "{end}"', text, count=1)
    out = path.parent / f"_bench_{path.stem}.toml"  # beside the original: its relative paths still resolve
    out.write_text(text, encoding="utf-8")
    return out


def _run(scenario: Path) -> tuple[str, float, float, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_sim.py"), str(scenario)],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{scenario.name} failed:\n{proc.stdout}\n{proc.stderr}")
    m = re.search(r"wall total: ([0-9.]+) s \(simulation event loop ([0-9.]+) s\)", proc.stdout)
    mem = re.search(r"peak memory: ([0-9.]+) GB", proc.stdout)
    if not m or not mem:
        raise SystemExit(f"unexpected output of bench_sim.py:\n{proc.stdout}")
    print(f"=== {scenario.name} ({wall:.0f} s including start-up)\n{proc.stdout}")
    return proc.stdout, float(m.group(1)), float(m.group(2)), float(mem.group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--window", default=None, help='e.g. "07:00-10:00" (default: the scenarios\' own window)')
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_market_"))
    made = []
    try:
        flagship = _windowed(FLAGSHIP, args.window, tmp)
        market = _windowed(MARKET, args.window, tmp)
        made = [p for p in (flagship, market) if p.name.startswith("_bench_")]
        print(f"load average at the start: {os.getloadavg()[0]:.2f}")
        _, f_total, f_loop, f_mem = _run(flagship)
        _, m_total, m_loop, m_mem = _run(market)
    finally:
        for p in made:
            p.unlink(missing_ok=True)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print(
        f"marketplace / flagship: event loop {m_loop:.1f} / {f_loop:.1f} s = {m_loop / f_loop:.2f}x, "
        f"whole run {m_total:.1f} / {f_total:.1f} s = {m_total / f_total:.2f}x; "
        f"peak memory {m_mem:.2f} GB / {f_mem:.2f} GB (goal: <= 1.5x and <= 4 GB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Command-line start-up: ``robotaxi --help`` and one-line ``robotaxi ledger append`` (goal <= 0.3 s each).

Usage::

    python benchmarks/bench_cli.py [--repeat 15]

Runs each command as a fresh process (as a user or a script would), ``--repeat`` times, and prints the median and
the fastest wall time. For scale it also times a bare ``python -c pass``. The appends go to a fresh ledger in a
temporary folder: one line of a plain JSON object, then one line of a trip (which goes through the id index).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_S = 0.3


def robotaxi_exe() -> list[str]:
    """The console script beside this interpreter, or ``python -m`` style fallback."""
    exe = Path(sys.executable).with_name("robotaxi")
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from robotaxi.cli import run; run()"]


def timed(cmd: list[str], repeat: int, before: list[str] | None = None) -> list[float]:
    """Wall seconds of ``repeat`` runs of ``cmd`` (``before`` runs untimed ahead of each)."""
    out = []
    for _ in range(repeat):
        if before is not None:
            subprocess.run(before, check=True, capture_output=True)
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    rt = robotaxi_exe()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"load average: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        note = work / "note.jsonl"
        note.write_text(json.dumps({"kind": "note", "text": "hello"}) + "\n")
        trip = work / "trip.jsonl"
        trip.write_text(
            json.dumps({"kind": "trip", "trip_id": "t1", "provider_id": "op", "vehicle_id": "v1", "v": 1}) + "\n"
        )
        db = work / "l.db"
        subprocess.run([*rt, "ledger", "init", "--log", str(db)], check=True, capture_output=True)
        cases = {
            "python -c pass": timed([sys.executable, "-c", "pass"], args.repeat),
            "robotaxi --help": timed([*rt, "--help"], args.repeat),
            "robotaxi ledger append --help": timed([*rt, "ledger", "append", "--help"], args.repeat),
            "robotaxi ledger append (one plain line)": timed(
                [*rt, "ledger", "append", str(note), "--log", str(db)], args.repeat
            ),
            "robotaxi ledger append (one trip, already there after the first)": timed(
                [*rt, "ledger", "append", str(trip), "--log", str(db)], args.repeat
            ),
        }
    for name, times in cases.items():
        med = statistics.median(times)
        goal = "" if name.startswith("python") else f"  (goal <= {GOAL_S} s: {'met' if med <= GOAL_S else 'NOT met'})"
        print(f"{name:<68} median {med:.3f} s, fastest {min(times):.3f} s{goal}")


if __name__ == "__main__":
    main()

"""Benchmark: the flagship Manhattan weekday simulation (or any scenario), wall time and peak memory.

Usage::

    .venv/bin/python benchmarks/bench_sim.py                       # examples/manhattan_weekday.toml, batch
    .venv/bin/python benchmarks/bench_sim.py --policy immediate
    .venv/bin/python benchmarks/bench_sim.py --profile prof.txt    # cProfile of the simulation, top 30
    .venv/bin/python benchmarks/bench_sim.py examples/helsinki.toml

Prints figures; asserts nothing (goals: <= 300 s wall and <= 4 GB peak for the flagship on 2 cores).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import os
import platform
import pstats
import resource
import sys
import tempfile
import time
from pathlib import Path

from robotaxi.sim import Scenario, run_scenario

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario", nargs="?", default=str(REPO / "examples" / "manhattan_weekday.toml"))
    ap.add_argument("--policy", choices=["batch", "immediate"], default=None)
    ap.add_argument("--profile", type=Path, default=None, help="write a cProfile summary of the run here")
    ap.add_argument("--keep", type=Path, default=None, help="write the outputs here (default: a temp folder)")
    args = ap.parse_args()

    sc = Scenario.from_file(args.scenario)
    if args.policy:
        sc = dataclasses.replace(sc, policy=args.policy)
    out_dir = args.keep or Path(tempfile.mkdtemp(prefix="bench_sim_")) / "out"
    prof = cProfile.Profile() if args.profile else None
    stages: dict[str, float] = {}
    last_t = [time.perf_counter()]
    last_name = [""]

    def stage(name: str) -> None:
        now = time.perf_counter()
        if last_name[0]:
            stages[last_name[0]] = now - last_t[0]
        last_t[0], last_name[0] = now, name
        if name == "simulation" and prof is not None:
            prof.enable()
        if name == "outputs" and prof is not None:
            prof.disable()

    t0 = time.perf_counter()
    out = run_scenario(sc, output=out_dir, stage=stage)
    total = time.perf_counter() - t0
    stage("done")
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    k = out.kpis
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {platform.system()}")
    print(f"scenario: {sc.name}, policy {sc.policy}, {k['vehicles']:,} vehicles, {k['requests']:,} requests")
    print("stages (s): " + ", ".join(f"{name} {sec:.1f}" for name, sec in stages.items()))
    print(f"wall total: {total:.1f} s (simulation event loop {out.result.wall_s:.1f} s)")
    print(f"peak memory: {self_kb / 1e6:.2f} GB (main process), {child_kb / 1e6:.2f} GB (largest table worker)")
    print(
        f"served {k['served_pct']} %, rejected {k['rejected']:,} {k['rejected_by_reason']}, "
        f"cancelled {k['cancelled']:,} {k['cancelled_by_reason']}"
    )
    print(
        f"wait mean {k['wait_mean_s']} s, median {k['wait_median_s']:.0f} s, p90 {k['wait_p90_s']:.0f} s, "
        f"p95 {k['wait_p95_s']:.0f} s; in-vehicle mean {k['in_vehicle_mean_s']} s"
    )
    print(
        f"utilisation {k['fleet_utilisation_pct']} %, trips/vehicle {k['trips_per_vehicle_mean']}, "
        f"vehicle-km occupied {k['vehicle_km_occupied']:,.0f} / empty {k['vehicle_km_empty']:,.0f}, "
        f"{k['sim_vehicle_km_per_wall_s']:,.0f} simulated vehicle-km per wall-clock second"
    )
    print(f"vehicle events: {len(out.result.events):,}; outputs in {out.folder}")
    if prof is not None:
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(30)
        args.profile.write_text(buf.getvalue(), encoding="utf-8")
        print(f"profile (by own time) written to {args.profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

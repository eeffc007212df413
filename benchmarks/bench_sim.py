"""Benchmark: the flagship Manhattan weekday simulation (or any scenario), wall time and peak memory.

Usage::

    .venv/bin/python benchmarks/bench_sim.py                       # examples/manhattan_weekday.toml, batch
    .venv/bin/python benchmarks/bench_sim.py --policy immediate
    .venv/bin/python benchmarks/bench_sim.py --profile prof.txt    # cProfile of the simulation, top 30
    .venv/bin/python benchmarks/bench_sim.py --no-rebalancing       # the flagship as it was before rebalancing
    .venv/bin/python benchmarks/bench_sim.py examples/manhattan_pooled.toml [--policy insertion]
    .venv/bin/python benchmarks/bench_sim.py examples/helsinki.toml

Prints figures, served % and mean wait by hour included (and per operator for a marketplace; see also
``bench_marketplace.py``, which runs the marketplace example and the flagship back to back); asserts
nothing (goals on 2 cores: the flagship with
rebalancing <= 75 s and <= 1.5 GB; the pooled example <= 10 min and <= 4 GB, insertion <= 3 min).
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

from robotaxi.sim import RunOutput, Scenario, run_scenario

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario", nargs="?", default=str(REPO / "examples" / "manhattan_weekday.toml"))
    ap.add_argument("--policy", choices=["batch", "immediate", "insertion", "pool"], default=None)
    ap.add_argument("--no-rebalancing", action="store_true", help="switch the scenario's rebalancing off")
    ap.add_argument("--profile", type=Path, default=None, help="write a cProfile summary of the run here")
    ap.add_argument("--keep", type=Path, default=None, help="write the outputs here (default: a temp folder)")
    args = ap.parse_args()

    sc = Scenario.from_file(args.scenario)
    if args.policy:
        sc = dataclasses.replace(sc, policy=args.policy)
    if args.no_rebalancing:
        sc = dataclasses.replace(sc, rebalancing=dataclasses.replace(sc.rebalancing, enabled=False))
    out_dir = args.keep or Path(tempfile.mkdtemp(prefix="bench_sim_")) / "out"
    prof = cProfile.Profile() if args.profile else None
    stages: dict[str, float] = {}
    cpu: dict[str, float] = {}  # CPU seconds of this process per stage (comparable on a busy machine, wall is not)
    last_cpu = [time.process_time()]
    last_t = [time.perf_counter()]
    last_name = [""]

    def stage(name: str) -> None:
        now = time.perf_counter()
        if last_name[0]:
            stages[last_name[0]] = now - last_t[0]
            cpu[last_name[0]] = time.process_time() - last_cpu[0]
        last_t[0], last_name[0] = now, name
        last_cpu[0] = time.process_time()
        if name == "simulation" and prof is not None:
            prof.enable()
        if name == "outputs" and prof is not None:
            prof.disable()

    t0 = time.perf_counter()
    out = run_scenario(sc, output=out_dir, stage=stage)
    total = time.perf_counter() - t0
    stage("done")
    _report(sc, out, total, stages)
    print("CPU s of this process (table workers apart): " + ", ".join(f"{n} {c:.1f}" for n, c in cpu.items()))
    print(f"vehicle events: {len(out.result.events):,}; outputs in {out.folder}")
    if prof is not None:
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(30)
        args.profile.write_text(buf.getvalue(), encoding="utf-8")
        prof.dump_stats(args.profile.with_suffix(".prof"))  # the whole profile, for pstats/snakeviz
        print(f"profile (by own time) written to {args.profile}")
    return 0


def _report(sc: Scenario, out: RunOutput, total: float, stages: dict[str, float]) -> None:
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    k = out.kpis
    wall = out.result.wall_s
    km = k.vehicle_km_total
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {platform.system()}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print(
        f"scenario: {sc.name}, policy {sc.policy}, rebalancing {'on' if sc.rebalancing.enabled else 'off'}, "
        f"{k.vehicles:,} vehicles, {k.requests:,} requests"
    )
    print("stages (s): " + ", ".join(f"{name} {sec:.1f}" for name, sec in stages.items()))
    print(f"wall total: {total:.1f} s (simulation event loop {wall:.1f} s)")
    print(f"peak memory: {self_kb / 1e6:.2f} GB (main process), {child_kb / 1e6:.2f} GB (largest table worker)")
    print(
        f"served {k.served_pct} %, rejected {k.rejected:,} {k.rejected_by_reason}, "
        f"cancelled {k.cancelled:,} {k.cancelled_by_reason}"
    )
    print(
        f"wait mean {k.wait_mean_s} s, median {k.wait_median_s} s, p90 {k.wait_p90_s} s; "
        f"in-vehicle mean {k.in_vehicle_mean_s} s, delay mean {k.delay_mean_s} s, detour {k.detour_mean}"
    )
    print(
        f"pooled trips {k.pooled_trips_pct} %, occupancy {k.occupancy_mean}, vehicle-km occupied "
        f"{k.vehicle_km_occupied:,.0f} / empty {k.vehicle_km_empty:,.0f} / rebalancing {k.vehicle_km_rebalancing:,.0f}"
        f" (direct passenger-km {k.passenger_km_direct:,.0f}, saved {k.vehicle_km_saved_pct} %)"
    )
    print(f"utilisation {k.fleet_utilisation_pct} %, {km / wall:,.0f} simulated vehicle-km per wall-clock second")
    print("served % by hour: " + " ".join("-" if x is None else f"{x:.1f}" for x in k.served_pct_by_hour))
    print("mean wait s by hour: " + " ".join("-" if x is None else f"{x:.0f}" for x in k.wait_mean_s_by_hour))
    print("fleet busy % by hour: " + " ".join("-" if x is None else f"{x:.1f}" for x in k.utilisation_pct_by_hour))
    if len(k.by_operator) > 1 or sc.fleet is None:
        for name, o in k.by_operator.items():
            offers = f", offers {o['offers']:,} ({o['offers_declined']:,} declined or lapsed)" if "offers" in o else ""
            print(
                f"operator {name} ({o['kind']}, {o['vehicles']:,}): {o['trips']:,} trips "
                f"({o['share_of_trips_pct']} %), "
                f"wait mean {o['wait_mean_s']} s, utilisation {o['utilisation_pct']} %{offers}"
            )
            print(f"  trips by hour: {' '.join(str(x) for x in o['trips_by_hour'])}")


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: a sweep's total wall time against its runs made one at a time, and simulated vehicle-km per hour.

Usage::

    .venv/bin/python benchmarks/bench_sweep.py                         # examples/manhattan_fleet_sizing.toml
    .venv/bin/python benchmarks/bench_sweep.py --set time.start='"07:00"' --set time.end='"09:00"'
    .venv/bin/python benchmarks/bench_sweep.py --grid 'fleet.vehicles=[4000, 7000, 10000]' --ray
    .venv/bin/python benchmarks/bench_sweep.py SWEEP.toml --no-singles   # the sweep alone

``--set KEY=VALUE`` adds an override for every run and ``--grid KEY=[...]`` replaces (or adds) a grid key; values
are TOML (strings quoted). The sweep runs first (``--workers``, default 2), from building the shared inputs to the
report; then every run again on its own, one after the other, each as ``robotaxi simulate`` would run it (its own
network, routing table and demand). Prints the goal's ratio: sweep wall / (sum of single-run walls / workers),
goal <= 1.15 on 2 cores, and the simulated vehicle-km per wall-clock hour of the sweep. Also prints the CPU seconds
(user + system, this process and its finished child processes: the sweep's workers, the table builders) each
phase used: on a machine shared with other jobs the walls depend on what share of the cores the phase got, the
CPU seconds only on the work done, so their ratio says whether the sweep does more work than its runs alone.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

from robotaxi.sim import run_scenario
from robotaxi.sweep import LocalBackend, RunRecord, SweepSpec, dump_toml, ray_backend, run_sweep

REPO = Path(__file__).resolve().parents[1]


class _Hooks:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.done = 0

    def stage(self, message: str) -> None:
        print(f"  {time.perf_counter() - self.t0:7.1f} s  building {message}", flush=True)

    def started(self, total: int, skipped: int) -> None:
        print(f"  {time.perf_counter() - self.t0:7.1f} s  workers ready; {total} runs, {skipped} finished before")

    def finished(self, record: RunRecord) -> None:
        self.done += 1
        k = record.kpis or {}
        print(
            f"  {time.perf_counter() - self.t0:7.1f} s  [{self.done}] {record.name}: {record.status}, "
            f"served {k.get('served_pct')} %, wall {record.wall_s} s, load {os.getloadavg()[0]:.1f}",
            flush=True,
        )


def _cpu_s() -> float:
    """User + system CPU seconds of this process and of its children that have finished and been waited for."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _value(text: str) -> Any:
    return tomllib.loads(f"v = {text}")["v"]


def _spec(path: Path, sets: list[str], grids: list[str]) -> SweepSpec:
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    for item in sets:
        key, _, value = item.partition("=")
        doc.setdefault("set", {})[key.strip()] = _value(value)
    for item in grids:
        key, _, value = item.partition("=")
        doc.setdefault("grid", {})[key.strip()] = _value(value)
    doc["scenario"] = str(path.parent / doc["scenario"]) if isinstance(doc.get("scenario"), str) else doc["scenario"]
    return SweepSpec.from_toml(dump_toml(doc), source=path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep", nargs="?", default=str(REPO / "examples" / "manhattan_fleet_sizing.toml"))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every run")
    ap.add_argument("--grid", action="append", default=[], metavar="KEY=[...]", help="replace a grid key")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--ray", action="store_true", help="run the sweep on a local Ray instance")
    ap.add_argument("--no-singles", action="store_true", help="do not run each run on its own afterwards")
    ap.add_argument("--keep", type=Path, default=None, help="write the outputs here (default: a temp folder)")
    args = ap.parse_args()

    spec = _spec(Path(args.sweep), args.set, args.grid)
    out = args.keep or Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {platform.system()}")
    print(f"sweep {spec.name}: {len(spec.runs)} runs, varied {', '.join(spec.varied)}, {args.workers} workers, "
          f"{'ray' if args.ray else 'local'} backend; load average at the start {os.getloadavg()[0]:.2f}")  # fmt: skip
    backend = ray_backend(None, args.workers) if args.ray else LocalBackend(args.workers)
    c0, t0 = _cpu_s(), time.perf_counter()
    outcome = run_sweep(spec, backend, output=out / "sweep", hooks=_Hooks())
    wall = time.perf_counter() - t0
    cpu_sweep = _cpu_s() - c0
    load_sweep = os.getloadavg()[0]
    km = outcome.vehicle_km
    print(f"sweep wall: {wall:,.1f} s for {outcome.ran} runs ({len(outcome.failed)} failed); load at its end "
          f"{load_sweep:.2f}; CPU {cpu_sweep:,.1f} s")  # fmt: skip
    print(f"simulated vehicle-km: {km:,.0f}; {km / wall * 3600:,.0f} vehicle-km per wall-clock hour "
          f"({km / wall * 86_400 / 1e6:,.2f} million a day)")  # fmt: skip
    if args.no_singles:
        return 0
    singles: list[float] = []
    c1 = _cpu_s()
    for run in spec.runs:
        t1 = time.perf_counter()
        run_scenario(run.scenario, output=out / "single" / run.name, report=spec.run_reports)
        singles.append(time.perf_counter() - t1)
        print(f"  single {run.name}: {singles[-1]:,.1f} s, load {os.getloadavg()[0]:.1f}", flush=True)
    cpu_singles = _cpu_s() - c1
    ideal = sum(singles) / args.workers
    print(f"sum of single-run walls: {sum(singles):,.1f} s; / {args.workers} = {ideal:,.1f} s")
    print(f"CPU: sweep {cpu_sweep:,.1f} s, singles {cpu_singles:,.1f} s, ratio {cpu_sweep / cpu_singles:.3f}")
    print(f"sweep wall / (sum of singles / {args.workers}) = {wall / ideal:.3f} (goal <= 1.15); load at the end "
          f"{os.getloadavg()[0]:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``robotaxi sweep SWEEP.toml``: run a parameter sweep, locally or on Ray, and write its table and report."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import SimulationError
from .app import app, console, err_console, print_table

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID
    from rich.table import Table

    from ..sweep import RunRecord, SweepOutcome, SweepSpec


class _Hooks:
    """The sweep's progress: stage lines first, then a bar over runs (started only once the workers exist)."""

    def __init__(self, name: str, quiet: bool) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.name, self.quiet = name, quiet
        self.bar: Progress = Progress(
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}", markup=False),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            disable=quiet,
            transient=True,
        )
        self.task: TaskID | None = None
        self.failed = 0

    def stage(self, message: str) -> None:
        if not self.quiet:
            err_console.print(f"{self.name}: building {message}")

    def started(self, total: int, skipped: int) -> None:
        note = f"{skipped} finished before" if skipped else ""
        self.bar.start()
        self.task = self.bar.add_task(f"{self.name}: runs", total=total, completed=skipped, note=note)

    def finished(self, record: RunRecord) -> None:
        if not record.ok:
            self.failed += 1
            if not self.quiet:
                self.bar.console.print(f"run {record.name} failed: {record.error}")
        if self.task is not None:
            self.bar.update(self.task, advance=1, note=f"{self.failed} failed" if self.failed else "")

    def stop(self) -> None:
        self.bar.stop()


@app.command("sweep")
def sweep(
    sweep_file: Annotated[Path, typer.Argument(help="Sweep TOML file: a base scenario and its overrides.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Output folder (overrides the file).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Runs in parallel (default: the file's, else one per CPU).")
    ] = None,
    ray: Annotated[bool, typer.Option("--ray", help="Run on Ray (a local instance unless --ray-address).")] = False,
    ray_address: Annotated[
        str | None, typer.Option(help="Run on the Ray cluster at this address (implies --ray), e.g. auto.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and list the runs; run nothing.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no warnings; errors only.")] = False,
) -> None:
    """Run every run of a sweep in parallel; write sweep.parquet, sweep.html and each run's outputs under runs/.

    A sweep started again resumes: finished runs are skipped, failed ones tried again.
    """
    from ..sweep import LocalBackend, SweepSpec, ray_backend, run_sweep

    if quiet:
        logging.getLogger("robotaxi").setLevel(logging.ERROR)
    spec = SweepSpec.from_file(sweep_file)
    if dry_run:
        print_table(_plan_table(spec))
        console.print(f"{len(spec.runs)} runs; output {output or spec.output}")
        return
    n = workers or spec.workers
    backend = ray_backend(ray_address, n) if ray or ray_address else LocalBackend(n)
    hooks = _Hooks(spec.name, quiet)
    try:
        outcome = run_sweep(spec, backend, output=output, hooks=hooks)
    finally:
        hooks.stop()
    print_table(_result_table(spec, outcome))
    _summary(outcome)
    if outcome.failed:
        raise SimulationError(
            f"{len(outcome.failed)} of {len(outcome.records)} runs failed (their errors are in the table and in "
            f"runs/<run>/run.json)",
            hint="run the sweep again to retry them; finished runs are skipped",
        )


def _summary(outcome: SweepOutcome) -> None:
    done = f"{outcome.ran} run now" + (f", {outcome.skipped} finished before (skipped)" if outcome.skipped else "")
    rate = outcome.vehicle_km / outcome.wall_s * 3600 if outcome.wall_s > 0 else 0.0
    console.print(f"{done}; {outcome.wall_s:,.1f} s wall, {outcome.vehicle_km:,.0f} simulated vehicle-km "
                  f"({rate:,.0f} per wall-clock hour)")  # fmt: skip
    console.print(f"table: {outcome.table}")
    console.print(f"report: {outcome.report}")


def _plan_table(spec: SweepSpec) -> Table:
    from rich.table import Table

    table = Table(title=f"robotaxi sweep: {spec.name} (dry run)")
    table.add_column("run")
    for path in spec.varied:
        table.add_column(path)
    for run in spec.runs:
        own = dict(run.overrides)
        table.add_row(run.name, *[str(own.get(p, "-")) for p in spec.varied])
    return table


def _result_table(spec: SweepSpec, outcome: SweepOutcome) -> Table:
    from rich.table import Table

    table = Table(title=f"robotaxi sweep: {spec.name}")
    for col in ("run", "status", "vehicles", "served %", "wait mean s", "vehicle-km", "wall s"):
        table.add_column(col)
    for r in outcome.records:
        k = r.kpis or {}
        cells = [k.get("vehicles"), k.get("served_pct"), k.get("wait_mean_s"), k.get("vehicle_km_total"), r.wall_s]
        table.add_row(r.name, r.status, *["-" if c is None else f"{c:,}" for c in cells])
    return table

"""Running a sweep: shared inputs built once, runs on a backend, a completion marker per run, resume.

Each run writes its outputs into ``OUTPUT/runs/<name>/`` (as ``robotaxi simulate`` would) and then, atomically,
``run.json``: the run's record (status, overrides, KPIs, wall time, or the error). A run whose ``run.json`` says
``ok`` for the same scenario (same digest of the overridden document) is skipped when the sweep is started again;
failed runs are tried again. The table and the report are built from the records of all the sweep's runs.

The network with its routing table, each seed's demand draw and each seed's forecast draw are built once, in this
process, and handed to the runs: through fork (the local backend) or the object store (Ray). They are identical to
what a run builds for itself, so a run in a sweep gives the same KPIs as the same scenario run alone.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import RobotaxiError, SimulationError
from ..sim import Scenario, run_scenario
from ..sim.run import SharedInputs, build_router, draw_demand, draw_forecast_sample, needs_forecast_sample
from .spec import RunSpec, SweepSpec, dump_toml

logger = logging.getLogger(__name__)

#: The completion marker each run writes last.
MARKER = "run.json"
RUNS = "runs"
TABLE = "sweep.parquet"
REPORT = "sweep.html"
SWEEP_FILE = "sweep.toml"
_SWEEP_FILES = frozenset((RUNS, TABLE, REPORT, SWEEP_FILE))


@dataclass(frozen=True, slots=True)
class InputKeys:
    """Which shared inputs a run uses (the same key means the same object)."""

    router: str
    demand: str
    forecast: str | None


def input_keys(scenario: Scenario) -> InputKeys:
    """The keys of ``scenario``'s network/routing table, demand draw and forecast draw."""
    router = repr((scenario.network, str(scenario.speed_profile), scenario.timezone))
    demand = repr((router, repr(scenario.demand), scenario.seed))
    return InputKeys(router, demand, demand + "/forecast" if needs_forecast_sample(scenario) else None)


@dataclass(frozen=True, slots=True)
class RunTask:
    """What a worker needs to run one run (small: the shared inputs travel separately)."""

    index: int
    name: str
    folder: Path
    key: str
    overrides: tuple[tuple[str, Any], ...]
    document: Mapping[str, Any] = field(repr=False)
    base_dir: Path
    base_source: Path | None
    keys: InputKeys
    report: bool = True


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A finished run, as written to its ``run.json``.

    ``status`` is ``ok`` or ``failed``; ``kpis`` is :meth:`robotaxi.sim.Kpis.to_dict` of an ok run, ``error`` the
    message of a failed one. ``wall_s`` is the run's whole wall time in its worker (set-up from the shared inputs,
    simulation, writing); ``simulate_s`` the event loop alone.
    """

    index: int
    name: str
    key: str
    status: str
    overrides: list[list[Any]]
    seed: int | None
    kpis: dict[str, Any] | None = None
    wall_s: float | None = None
    simulate_s: float | None = None
    error: str | None = None
    traceback: str | None = None
    finished_at: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        return cls(**json.loads(text))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def write_record(folder: Path, record: RunRecord) -> None:
    """Write ``record`` as ``folder/run.json``, atomically (a reader sees the whole file or none)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{MARKER}.{os.getpid()}.tmp"
    with tmp.open("w", encoding="utf-8") as f:
        f.write(record.to_json())
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(folder / MARKER)


def read_record(folder: Path) -> RunRecord | None:
    """The record in ``folder``, or None if there is none (or it cannot be read)."""
    try:
        return RunRecord.from_json((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return None


def failed_record(task: RunTask, seed: int | None, error: str, tb: str | None = None) -> RunRecord:
    return RunRecord(
        index=task.index,
        name=task.name,
        key=task.key,
        status="failed",
        overrides=[[p, v] for p, v in task.overrides],
        seed=seed,
        error=error,
        traceback=tb,
        finished_at=_now(),
    )


def execute_run(task: RunTask, inputs: SharedInputs) -> RunRecord:
    """Run one run in this process, write its outputs and its record, and return the record (never raises for a
    failed run: the error is recorded and the sweep goes on)."""
    t0 = time.perf_counter()
    (task.folder / MARKER).unlink(missing_ok=True)  # an earlier failed attempt's record; outputs are replaced
    seed = task.document.get("seed")
    try:
        scenario = Scenario.from_mapping(
            task.document, base_dir=task.base_dir, source=task.base_source, where=f"run {task.name}"
        )
        seed = scenario.seed
        header = (
            f"Run {task.name} of a sweep: the base scenario {task.base_source or '(inline)'} with\n"
            + "".join(f"  {p} = {json.dumps(v, default=str)}\n" for p, v in task.overrides)
            + f"Relative input paths are relative to {task.base_dir}."
        )
        out = run_scenario(
            scenario,
            output=task.folder,
            inputs=inputs,
            scenario_text=dump_toml(task.document, header),
            report=task.report,
        )
        record = RunRecord(
            index=task.index,
            name=task.name,
            key=task.key,
            status="ok",
            overrides=[[p, v] for p, v in task.overrides],
            seed=seed,
            kpis=out.kpis.to_dict(),
            wall_s=round(time.perf_counter() - t0, 3),
            simulate_s=round(out.result.wall_s, 3),
            finished_at=_now(),
        )
    except RobotaxiError as e:
        record = failed_record(task, seed if isinstance(seed, int) else None, str(e))
    except Exception as e:  # any other failure of one run is recorded too, with its traceback; the sweep goes on
        record = failed_record(
            task, seed if isinstance(seed, int) else None, f"{type(e).__name__}: {e}", traceback.format_exc()
        )
    if not record.ok:
        record = _with_wall(record, time.perf_counter() - t0)
    write_record(task.folder, record)
    return record


def _with_wall(record: RunRecord, wall: float) -> RunRecord:
    d = asdict(record)
    d["wall_s"] = round(wall, 3)
    return RunRecord(**d)


#: ``done(record)`` for every run a backend finishes; ``started(n)`` once the workers exist (a progress display,
#: which runs a thread, may start only then: the local backend forks its workers first).
DoneHook = Callable[[RunRecord], None]
StartedHook = Callable[[int], None]


class Backend(Protocol):
    """Where runs execute: this machine's processes (:class:`~.local.LocalBackend`) or Ray (``--ray``)."""

    name: str

    def run(self, tasks: Sequence[RunTask], inputs: Mapping[str, Any], started: StartedHook, done: DoneHook) -> None:
        """Run ``tasks`` (``inputs``: the shared objects by key) and call ``done`` as each one finishes."""
        ...


def shared_for(task: RunTask, inputs: Mapping[str, Any]) -> SharedInputs:
    """The shared inputs of ``task`` from the objects by key."""
    return SharedInputs(
        router=inputs[task.keys.router],
        demand=inputs[task.keys.demand],
        forecast_sample=inputs[task.keys.forecast] if task.keys.forecast else None,
    )


@dataclass(frozen=True, slots=True)
class SweepOutcome:
    """What :func:`run_sweep` did: every run's record in sweep order, how many ran now and how many were already
    finished, the wall time and the simulated vehicle-km of the runs made now."""

    folder: Path
    records: tuple[RunRecord, ...]
    ran: int
    skipped: int
    wall_s: float
    vehicle_km: float
    table: Path
    report: Path

    @property
    def failed(self) -> tuple[RunRecord, ...]:
        return tuple(r for r in self.records if not r.ok)


class SweepHooks(Protocol):
    """What a caller sees of a sweep's progress (the CLI draws a progress bar)."""

    def stage(self, message: str) -> None: ...

    def started(self, total: int, skipped: int) -> None: ...

    def finished(self, record: RunRecord) -> None: ...


def check_sweep_folder(folder: Path) -> None:
    """Refuse an output folder that holds anything but a previous sweep's outputs (nothing is deleted)."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise SimulationError(f"sweep output folder {folder} exists and is not a folder")
    foreign = sorted(p.name for p in folder.iterdir() if p.name not in _SWEEP_FILES and not p.name.startswith("."))
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise SimulationError(
            f"sweep output folder {folder} holds files that are not sweep outputs ({shown})",
            hint="name a fresh folder with -o, or the folder of an earlier run of this sweep to resume it",
        )


def plan(spec: SweepSpec, folder: Path) -> tuple[list[RunTask], dict[int, RunRecord]]:
    """The tasks still to run, and the records of runs already finished (kept on resume), by index."""
    tasks: list[RunTask] = []
    finished: dict[int, RunRecord] = {}
    for run in spec.runs:
        run_folder = folder / RUNS / run.name
        record = read_record(run_folder)
        if record is not None and record.ok and record.key == run.key:
            finished[run.index] = record
            continue
        tasks.append(_task(spec, run, run_folder))
    return tasks, finished


def _task(spec: SweepSpec, run: RunSpec, folder: Path) -> RunTask:
    return RunTask(
        index=run.index,
        name=run.name,
        folder=folder,
        key=run.key,
        overrides=run.overrides,
        document=run.document,
        base_dir=spec.base_dir,
        base_source=spec.base_source,
        keys=input_keys(run.scenario),
        report=spec.run_reports,
    )


def build_inputs(
    spec: SweepSpec, tasks: Sequence[RunTask], stage: Callable[[str], None]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Build every shared input the tasks need, once each: ``(objects by key, errors by key)``."""
    scenarios = {run.index: run.scenario for run in spec.runs}
    objects: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for task in tasks:
        sc, keys = scenarios[task.index], task.keys
        if keys.router not in objects and keys.router not in errors:
            stage(f"network and routing table: {sc.network}")
            _build(objects, errors, keys.router, build_router, sc)
        if keys.router in errors:
            continue
        network = objects[keys.router].network
        if keys.demand not in objects and keys.demand not in errors:
            stage(f"demand: {sc.demand.kind}, seed {sc.seed}")
            _build(objects, errors, keys.demand, draw_demand, sc, network)
        if keys.forecast and keys.forecast not in objects and keys.forecast not in errors:
            stage(f"forecast demand draw: seed {sc.seed}")
            _build(objects, errors, keys.forecast, draw_forecast_sample, sc, network)
    return objects, errors


def _build(objects: dict[str, Any], errors: dict[str, str], key: str, make: Callable[..., Any], *args: Any) -> None:
    try:
        objects[key] = make(*args)
    except RobotaxiError as e:
        errors[key] = str(e)
    except ValueError as e:
        errors[key] = f"{type(e).__name__}: {e}"


def _input_error(task: RunTask, errors: Mapping[str, str]) -> str | None:
    for key in (task.keys.router, task.keys.demand, task.keys.forecast):
        if key is not None and key in errors:
            return errors[key]
    return None


def run_sweep(spec: SweepSpec, backend: Backend, *, output: Path | None = None, hooks: SweepHooks) -> SweepOutcome:
    """Run every run of ``spec`` that has not finished yet, then write the table and the report.

    Raises
    ------
    SimulationError
        If the output folder holds anything but a previous sweep's outputs (checked before anything runs).
    """
    from .report import write_report
    from .table import write_table

    # Absolute: a Ray worker's working directory is not necessarily ours (it is the driver's at ``ray.init``).
    folder = Path(output or spec.output).absolute()
    check_sweep_folder(folder)
    t0 = time.perf_counter()
    tasks, finished = plan(spec, folder)
    (folder / RUNS).mkdir(parents=True, exist_ok=True)
    (folder / SWEEP_FILE).write_text(spec.text, encoding="utf-8")
    objects, errors = build_inputs(spec, tasks, hooks.stage) if tasks else ({}, {})
    records: list[RunRecord] = []

    def done(record: RunRecord) -> None:
        records.append(record)
        hooks.finished(record)

    runnable = []
    for task in tasks:
        error = _input_error(task, errors)
        if error is None:
            runnable.append(task)
            continue
        record = failed_record(task, None, error)
        shutil.rmtree(task.folder, ignore_errors=True)
        write_record(task.folder, record)
        records.append(record)

    def started(_workers: int) -> None:
        hooks.started(len(spec.runs), len(finished))
        for record in records:  # runs whose shared inputs failed
            hooks.finished(record)

    if runnable:
        backend.run(runnable, objects, started, done)
    else:
        started(0)
    wall = time.perf_counter() - t0
    by_index = {r.index: r for r in records}
    ordered = tuple(by_index.get(run.index) or finished[run.index] for run in spec.runs)
    table = write_table(spec, ordered, folder / TABLE)
    report = write_report(spec, ordered, folder / REPORT, wall_s=wall, backend=backend.name)
    return SweepOutcome(
        folder=folder,
        records=ordered,
        ran=len(records),
        skipped=len(finished),
        wall_s=wall,
        vehicle_km=sum(float((r.kpis or {}).get("vehicle_km_total", 0.0)) for r in records if r.ok),
        table=table,
        report=report,
    )

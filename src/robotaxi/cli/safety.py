"""``robotaxi safety``: disengagements of a run (offline), DMV-format reports, published DMV files, collisions.

The domain modules (NumPy, SciPy, pyarrow) are imported inside the commands, so ``robotaxi --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import SafetyError
from .app import app, console, print_table, sub_app

if TYPE_CHECKING:
    from ..ledger import SafetyEvent
    from ..network import Router
    from ..safety import DisengagementRecord
    from ..safety.runs import RunInfo

safety_app = sub_app(
    "Safety: disengagements and collisions, miles per disengagement, DMV-format reports (docs/safety.md)."
)
app.add_typer(safety_app, name="safety")

RunDir = Annotated[Path, typer.Argument(help="A `robotaxi simulate` output folder.", show_default=False)]

#: How the ledger's SafetyEvent names who initiated a disengagement.
_LEDGER_INITIATOR = {
    "av_system": "ads",
    "test_driver": "safety_driver",
    "remote_operator": "remote_operator",
    "passenger": "passenger",
}


def _router(info: RunInfo, network: Path | None) -> Router:
    from ..network import Router, load_network
    from ..sim.scenario import resolve_input

    if network is not None:
        return Router(load_network(network))
    if info.network is None:
        raise SafetyError(f"{info.folder}/scenario.toml names no [network] path", hint="pass --network PATH")
    if info.network == "helsinki":
        return Router(load_network("helsinki"))
    try:
        path = resolve_input(info.network, info.folder.resolve(), "network.path")
    except ValueError as e:
        raise SafetyError(f"{info.folder}/scenario.toml: {e}", hint="pass --network PATH") from e
    return Router(load_network(path))


def ledger_event(record: DisengagementRecord) -> SafetyEvent:
    """The ledger's record of a disengagement (``docs/ledger.md``)."""
    from ..ledger import SafetyEvent

    if record.time_ms is None or record.lon is None or record.lat is None or record.vehicle_id is None:
        raise SafetyError(f"event {record.event_id}: the ledger needs its time, position and vehicle")
    return SafetyEvent(
        event_id=record.event_id,
        event_type="disengagement",
        provider_id=record.operator,
        vehicle_id=record.vehicle_id,
        time_ms=record.time_ms,
        lon=record.lon,
        lat=record.lat,
        initiated_by=_LEDGER_INITIATOR[record.initiator.value],  # type: ignore[arg-type]
        driver_present=record.driver_present,
        location_type=record.location_type.value,
        description=record.description,
        trip_id=record.trip_id,
    )


@safety_app.command("simulate")
def simulate(
    run_dir: RunDir,
    miles_per_disengagement: Annotated[
        float | None,
        typer.Option("--miles-per-disengagement", "-m", help="Miles per disengagement of every autonomous operator."),
    ] = None,
    profiles: Annotated[
        Path | None, typer.Option(help="TOML file of per-operator safety profiles (instead of -m; docs/safety.md).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the draw; the same seed gives the same events.")] = 0,
    permit: Annotated[str, typer.Option(help="Permit number printed for the operators (with -m).")] = "SIM-0000",
    driverless: Annotated[
        bool, typer.Option(help="With -m: no safety driver on board (initiators: AV system, remote operator).")
    ] = False,
    network: Annotated[Path | None, typer.Option(help="Network file (default: the run's scenario.toml).")] = None,
    ledger: Annotated[
        Path | None, typer.Option(help="Also append the events to this ledger (created if missing).")
    ] = None,
) -> None:
    """Draw disengagements over the legs a run drove and write RUN_DIR/safety_events.parquet (offline: the
    trips are not affected; in-simulation events come with the marketplace)."""
    import numpy as np

    from ..safety import DisengagementRates, SafetyProfile, SafetyProfiles
    from ..safety.runs import RunData, RunInfo, SafetyEvents, simulate_disengagements, write_events

    if (miles_per_disengagement is None) == (profiles is None):
        raise SafetyError("give exactly one of --miles-per-disengagement and --profiles")
    if seed < 0:
        raise SafetyError(f"--seed: must be >= 0, got {seed}")
    info = RunInfo.from_folder(run_dir)
    data = RunData.read(info)
    if profiles is not None:
        table = dict(SafetyProfiles.from_file(profiles).profiles)
    else:
        try:
            rates = DisengagementRates(float(miles_per_disengagement or 0))
            table = {
                op: SafetyProfile(
                    op,
                    rates,
                    permit_number=permit,
                    driver_present=not driverless,
                    can_operate_without_driver=driverless,
                )
                for op in data.autonomous_operators()
            }
        except ValueError as e:
            raise SafetyError(f"--miles-per-disengagement: {e}") from e
    unknown = sorted(set(table) - set(data.autonomous_operators()))
    if unknown:
        raise SafetyError(f"{profiles}: operator(s) {', '.join(unknown)} drive no autonomous vehicle in this run")
    events = simulate_disengagements(data, _router(info, network), table, np.random.default_rng(seed))
    meta = {
        "source": "robotaxi safety simulate (offline, over legs.parquet)",
        "seed": seed,
        "profiles": {
            op: {
                "permit_number": p.permit_number,
                "driver_present": p.driver_present,
                "can_operate_without_driver": p.can_operate_without_driver,
                "initiators": {k.value: v for k, v in (p.initiators or {}).items()},
                **p.rates.as_dict(),
            }
            for op, p in table.items()
        },
    }
    events = SafetyEvents(events.records, events.vehicle, events.time_s, events.leg, events.offset_m, meta)
    out = write_events(run_dir, events)
    miles = float(data.length_m.sum()) / 1609.344
    console.print(f"{len(events.records)} disengagement(s) over {miles:,.1f} vehicle miles -> {out}")
    if ledger is not None:
        from ..ledger import DEFAULT_ORIGIN, Ledger

        recs = [ledger_event(r) for r in events.records]
        with Ledger.open_or_create(ledger, origin=DEFAULT_ORIGIN) as log:
            res = log.add_records(recs)
        console.print(
            f"ledger {ledger}: appended {res.appended}, already there {res.skipped} "
            "(sign a checkpoint with `robotaxi ledger checkpoint`)"
        )


@safety_app.command("report")
def report(
    run_dir: RunDir,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Folder for the report (default: RUN_DIR/safety).")
    ] = None,
) -> None:
    """DMV disengagement and mileage reports (CSV) of a run, and safety_report.html with miles per
    disengagement per operator and its exact 95 % interval."""
    from rich.table import Table

    from ..safety.report import build_report, write_report
    from ..safety.runs import RunData, RunInfo, read_events

    info = RunInfo.from_folder(run_dir)
    data = RunData.read(info)
    rep = build_report(data, read_events(run_dir))
    written = write_report(rep, output if output is not None else run_dir / "safety")
    t = Table("operator", "vehicles", "miles", "disengagements", "miles / disengagement", "95 % interval")
    for o in rep.operators:
        m = o.mpd
        est = "-" if m.disengagements == 0 else f"{m.estimate:,.0f}"
        high = "unbounded" if m.disengagements == 0 else f"{m.high:,.0f}"
        t.add_row(o.operator, str(o.vehicles), f"{m.miles:,.1f}", str(m.disengagements), est, f"{m.low:,.0f} - {high}")
    print_table(t)
    if not rep.has_events_file:
        console.print("no safety_events.parquet in the run: zero events reported (see `robotaxi safety simulate`)")
    for p in written:
        console.print(f"wrote {p}")

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
    from ..network import RoadNetwork
    from ..safety.runs import RunInfo

safety_app = sub_app(
    "Safety: disengagements and collisions, miles per disengagement, DMV-format reports (docs/safety.md)."
)
app.add_typer(safety_app, name="safety")

RunDir = Annotated[Path, typer.Argument(help="A `robotaxi simulate` output folder.", show_default=False)]


def _network(info: RunInfo, network: Path | None) -> RoadNetwork:
    from ..network import load_network
    from ..sim.scenario import resolve_input

    if network is not None:
        return load_network(network)
    if info.network is None:
        raise SafetyError(f"{info.folder}/scenario.toml names no [network] path", hint="pass --network PATH")
    if info.network == "helsinki":
        return load_network("helsinki")
    try:
        path = resolve_input(info.network, info.folder.resolve(), "network.path")
    except ValueError as e:
        raise SafetyError(f"{info.folder}/scenario.toml: {e}", hint="pass --network PATH") from e
    return load_network(path)


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
    driver: Annotated[
        bool | None,
        typer.Option(
            "--driver/--driverless",
            help="With -m: a safety driver on board or not (default: the scenario's safety_driver, else a driver).",
        ),
    ] = None,
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
                    driver_present=present,
                    can_operate_without_driver=not present,
                )
                for op in data.autonomous_operators()
                for present in [driver if driver is not None else info.safety_driver.get(op, True)]
            }
        except ValueError as e:
            raise SafetyError(f"--miles-per-disengagement: {e}") from e
    unknown = sorted(set(table) - set(data.autonomous_operators()))
    if unknown:
        raise SafetyError(f"{profiles}: operator(s) {', '.join(unknown)} drive no autonomous vehicle in this run")
    from ..network import Router

    events = simulate_disengagements(data, Router(_network(info, network)), table, np.random.default_rng(seed))
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
    autonomous = np.isin(data.leg_vehicle, [v for v, op in data.operator_of.items() if op in table])
    miles = float(data.length_m[autonomous].sum()) / 1609.344
    console.print(f"{len(events.records)} disengagement(s) over {miles:,.1f} autonomous miles -> {out}")
    if ledger is not None:
        from ..ledger import DEFAULT_ORIGIN, Ledger
        from ..safety.ledgering import ledger_event

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
    with_map: Annotated[
        bool, typer.Option("--map/--no-map", help="Draw the events on the run's network in the HTML page.")
    ] = True,
    network: Annotated[Path | None, typer.Option(help="Network file (default: the run's scenario.toml).")] = None,
) -> None:
    """DMV disengagement and mileage reports (CSV) of a run, and safety_report.html with miles per
    disengagement per operator and its exact 95 % interval."""
    from rich.table import Table

    from ..safety.report import build_report, write_report
    from ..safety.runs import RunData, RunInfo, read_events

    info = RunInfo.from_folder(run_dir)
    data = RunData.read(info)
    rep = build_report(data, read_events(run_dir))
    if with_map:
        from dataclasses import replace

        from ..safety.report import event_map

        rep = replace(rep, map_png=event_map(rep.events, _network(info, network)))
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


def _default_collisions() -> Path:
    """``shared/data/ca_av_collisions/AutonomousD.csv`` in the working directory or the nearest parent holding it."""
    rel = Path("shared/data/ca_av_collisions/AutonomousD.csv")
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / rel).is_file():
            return folder / rel
    raise SafetyError(f"no {rel} in {here} or its parent folders", hint="pass the file's path")


@safety_app.command("collisions")
def collisions(
    path: Annotated[
        Path | None,
        typer.Argument(help="Compiled OL 316 table (default: ../shared/data/ca_av_collisions/AutonomousD.csv)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Load California AV collision reports (OL 316) and summarise them by company, mode engaged and fault."""
    import json

    from rich.table import Table

    from ..safety.collisions import load_collisions, summarise

    loaded = load_collisions(path if path is not None else _default_collisions())
    s = summarise(loaded.records)
    if as_json:
        out = {
            "collisions": s.total,
            "first": s.first.isoformat() if s.first else None,
            "last": s.last.isoformat() if s.last else None,
            "by_company": s.by_company,
            "by_mode_and_fault": s.by_mode_fault,
            "corrections": [{"column": c, "value": v, "rows": n} for (c, v), n in sorted(loaded.corrections.items())],
        }
        console.out(json.dumps(out, indent=2))
        return
    console.print(f"{s.total} collisions, {s.first} to {s.last}")
    t = Table(
        "company", "collisions", "autonomous mode", "conventional", "AV at fault", "other party", "unclear", "unknown"
    )
    for name, c in s.by_company.items():
        t.add_row(
            name,
            *(str(c[k]) for k in ("total", "autonomous", "conventional", "av", "other", "unclear", "unknown")),
        )
    print_table(t)
    m = Table("mode engaged", "AV at fault", "other party", "unclear", "unknown (not judged)")
    for mode, f in s.by_mode_fault.items():
        m.add_row(mode, *(str(f[k]) for k in ("av", "other", "unclear", "unknown")))
    print_table(m)
    for (col, value), n in sorted(loaded.corrections.items()):
        console.print(f"corrected: {col} {value!r} in {n} row(s) (docs/safety.md)")


def _fmt_miles(x: float | None, digits: int = 0) -> str:
    import math

    if x is None:
        return "-"
    return "unbounded" if not math.isfinite(x) else f"{x:,.{digits}f}"


@safety_app.command("analyze")
def analyze(
    files: Annotated[list[Path], typer.Argument(help="DMV disengagement and mileage CSV files, as published.")],
    year: Annotated[
        int | None, typer.Option(help="The reporting year of every file (needed when month columns have no year).")
    ] = None,
    strict: Annotated[bool, typer.Option(help="Exit 1 if any row is rejected.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Miles per disengagement by manufacturer and reporting year, with exact 95 % intervals, from the DMV's
    published files (layouts of 2015-2017 and 2018 on; docs/safety.md). Rows that cannot be read are listed with
    their line numbers and left out of the figures."""
    import json

    from rich.table import Table

    from ..safety.analyze import analyse, read_dmv_file
    from .app import err_console

    read = [read_dmv_file(f, year=year) for f in files]
    lines, join_warnings = analyse(read)
    rejected = sum(len(f.rejected) for f in read)
    if as_json:
        out = {
            "files": [
                {
                    "path": str(f.path),
                    "layout": f.layout.value,
                    "disengagements": len(f.disengagements),
                    "mileage_rows": len(f.mileage),
                    "rejected": [{"line": n, "reason": why} for n, why in f.rejected],
                    "warnings": dict(f.warnings),
                }
                for f in read
            ],
            "warnings": dict(join_warnings),
            "results": [
                {
                    "manufacturer": x.manufacturer,
                    "year": x.year,
                    "vehicles": x.vehicles,
                    "count_from": x.source,
                    **(
                        x.mpd.as_dict()
                        if x.mpd is not None
                        else {"miles": x.miles, "disengagements": x.disengagements, "miles_per_disengagement": None}
                    ),
                }
                for x in lines
            ],
        }
        console.out(json.dumps(out, indent=2))
    else:
        for f in read:
            console.print(
                f"{f.path}: {f.layout.value}, {len(f.disengagements)} disengagement(s), "
                f"{len(f.mileage)} mileage row(s), {len(f.rejected)} rejected"
            )
            for what, n in f.warnings.items():
                console.print(f"  warning: {n} {what}")
        for what, n in join_warnings.items():
            console.print(f"warning: {n} {what}")
        t = Table(
            "year", "manufacturer", "vehicles", "miles", "disengagements", "miles / disengagement", "95 % interval"
        )
        for x in lines:
            m = x.mpd
            t.add_row(
                str(x.year),
                x.manufacturer,
                "-" if x.vehicles is None else str(x.vehicles),
                _fmt_miles(x.miles),
                "-" if x.disengagements is None else str(x.disengagements),
                "-" if m is None or m.disengagements == 0 else _fmt_miles(m.estimate),
                "-" if m is None else f"{_fmt_miles(m.low)} - {_fmt_miles(m.high)}",
            )
        print_table(t)
    for f in read:
        for n, why in f.rejected:
            err_console.print(f"{f.path}: line {n}: rejected: {why}")
    if strict and rejected:
        raise SafetyError(f"{rejected} row(s) rejected (--strict)")


@safety_app.command("zones")
def zones(
    run_dir: RunDir,
    zones_file: Annotated[
        Path, typer.Option("--zones", help="Zone polygons (GeoJSON or shapefile, e.g. the TLC taxi zones).")
    ],
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold-mpd", help="Flag zones whose miles per disengagement is significantly below this figure."
        ),
    ],
    network: Annotated[Path | None, typer.Option(help="Network file (default: the run's scenario.toml).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Miles, disengagements and miles per disengagement of each autonomous operator by zone, with the zones
    where it is significantly worse than --threshold-mpd (the candidates to take out of its service area)."""
    import json

    import numpy as np
    from rich.table import Table

    from ..demand.zones import Zones
    from ..network import Router
    from ..safety.runs import RunData, RunInfo, read_events
    from ..safety.zones import zone_safety

    info = RunInfo.from_folder(run_dir)
    data = RunData.read(info)
    events = read_events(run_dir)
    if events is None:
        raise SafetyError(f"{run_dir}: no safety_events.parquet", hint="draw events with `robotaxi safety simulate`")
    net = _network(info, network)
    polygons = Zones.from_file(zones_file)
    tail, head = net.tail, net.head
    edge_zone = polygons.locate((net.lon[tail] + net.lon[head]) / 2, (net.lat[tail] + net.lat[head]) / 2)
    try:
        lines = zone_safety(data, events, Router(net), np.asarray(edge_zone), threshold_mpd=threshold)
    except ValueError as e:
        raise SafetyError(str(e)) from e
    flagged: dict[str, list[int]] = {}
    for z in lines:
        if z.flagged and z.zone >= 0:  # road outside every zone cannot be taken out of an area of zones
            flagged.setdefault(z.operator, []).append(z.zone)
    if as_json:
        rows = [{"operator": z.operator, "zone": z.zone, "flagged": z.flagged, **z.mpd.as_dict()} for z in lines]
        console.out(json.dumps({"threshold_mpd": threshold, "zones": rows, "flagged": flagged}, indent=2))
        return
    t = Table("operator", "zone", "miles", "disengagements", "miles / disengagement", "95 % interval", "flagged")
    for z in lines:
        m = z.mpd
        t.add_row(
            z.operator,
            "outside" if z.zone < 0 else str(z.zone),
            f"{m.miles:,.1f}",
            str(m.disengagements),
            "-" if m.disengagements == 0 else _fmt_miles(m.estimate),
            f"{_fmt_miles(m.low)} - {_fmt_miles(m.high)}",
            "yes" if z.flagged else "",
        )
    print_table(t)
    for op in sorted({z.operator for z in lines}):
        ids = flagged.get(op, [])
        console.print(f"{op}: {len(ids)} zone(s) significantly below {threshold:,.0f} miles per disengagement: {ids}")

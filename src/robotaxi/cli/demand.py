"""``robotaxi demand inspect`` and ``robotaxi demand build``."""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import DemandError, RobotaxiError
from .app import app, console, print_table, sub_app

if TYPE_CHECKING:
    from ..demand import DemandResult, DemandSpec, Requests
    from ..network import RoadNetwork

# The demand and network packages (NumPy, Arrow, SciPy) are imported inside the commands, so that
# `robotaxi --help` starts in a fraction of a second (issue 11, item 8).

demand_app = sub_app("Demand: read, validate, inspect and materialise ride requests.")
app.add_typer(demand_app, name="demand")

SourceArg = Annotated[
    str,
    typer.Argument(
        help="A demand file (TLC CSV/Parquet, OD-count table, CSV/Parquet with --column, robotaxi requests Parquet), "
        "a scenario .toml with a [demand] table, or 'synthetic'."
    ),
]
NetworkOpt = Annotated[
    str, typer.Option("--network", "-n", help="Road network file, or 'helsinki' (embedded default).")
]
KindOpt = Annotated[
    str | None, typer.Option(help="odcounts, tlc, csv, parquet, synthetic or requests (default: detected).")
]
ZonesOpt = Annotated[Path | None, typer.Option(help="Zone polygons (GeoJSON or shapefile) for zone-based sources.")]
DateOpt = Annotated[str | None, typer.Option(help="Service day YYYY-MM-DD.")]
WeekdayOpt = Annotated[int | None, typer.Option(help="OD counts: weekday to build, 0 = Monday.")]
SeedOpt = Annotated[int, typer.Option(help="Random seed (same seed, same requests).")]
#: The fields a --column mapping may name (robotaxi.demand.ColumnMapping; a test keeps the two equal). Kept here
#: as text so that `--help` does not import the demand package.
MAPPING_FIELDS = (
    "time", "request_id", "dropoff_time", "o_lon", "o_lat", "d_lon", "d_lat", "o_zone", "d_zone", "passengers",
    "fare", "max_wait", "trip_distance",
)  # fmt: skip
ColumnOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--column",
        "-c",
        help="Column mapping FIELD=COLUMN (repeat), e.g. -c time=pickup. FIELD is one of: "
        + ", ".join(MAPPING_FIELDS)
        + " (time and either o_lon, o_lat, d_lon, d_lat or o_zone, d_zone are required). Not needed for TLC, "
        "OD-count and NREL HIVE request files, which are recognised by their header.",
    ),
]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Source option KEY=VALUE (repeat), e.g. scale=0.5, n_requests=1000.")
]
RejectsOpt = Annotated[Path | None, typer.Option(help="Write every rejected row to this CSV file.")]


def _value(text: str) -> Any:
    """A --set value: TOML scalar syntax (numbers, true/false, quoted strings), else the raw text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise RobotaxiError(f"{what}: expected KEY=VALUE, got {item!r}")
        out[key.strip()] = val.strip()
    return out


def _detect_kind(path: Path, has_columns: bool) -> str:
    from ..demand import _parse as parse
    from ..demand import detect_layout, detect_tlc_columns
    from ..demand.requests import COLUMNS as REQUEST_COLUMNS

    if not path.is_file():
        raise DemandError(f"demand file not found: {path}")
    if has_columns:
        return "parquet" if parse.table_kind(path) == "parquet" else "csv"
    names = parse.header(path)
    if all(c in names for c in REQUEST_COLUMNS):
        return "requests"
    if {"dow", "puzone", "dozone", "n_trips"} <= set(names):
        return "odcounts"
    if detect_layout(names) is not None:  # e.g. NREL HIVE requests: mapped without --column
        return "parquet" if parse.table_kind(path) == "parquet" else "csv"
    try:
        detect_tlc_columns(names)
    except DemandError as e:
        raise DemandError(
            f"{path}: cannot tell what kind of demand file this is ({e})",
            hint="give --kind and, for a generic table, --column FIELD=COLUMN",
        ) from e
    return "tlc"


def _base_table(source: str, kind: str | None, columns: list[str] | None) -> tuple[dict[str, Any], Path | None]:
    """The [demand] table of a scenario file, or one started from a demand file path, and its base folder."""
    if source.lower().endswith(".toml"):
        p = Path(source)
        try:
            doc = tomllib.loads(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise DemandError(f"{p}: not a TOML text file (byte 0x{e.object[e.start]:02x} at offset {e.start})") from e
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise DemandError(f"{p}: cannot read the scenario file: {e}") from e
        if not isinstance(doc.get("demand"), dict):
            raise DemandError(f"{p}: no [demand] table")
        return dict(doc["demand"]), p.parent
    cols = _pairs(columns, "--column")
    table: dict[str, Any]
    if source == "synthetic":
        table = {"kind": kind or "synthetic"}
    else:
        table = {"kind": kind or _detect_kind(Path(source), bool(cols)), "path": source}
    if cols:
        table["columns"] = cols
    return table, None


def make_spec(
    source: str,
    *,
    kind: str | None,
    zones: Path | None,
    date: str | None,
    weekday: int | None,
    columns: list[str] | None,
    settings: list[str] | None,
    rejects: Path | None,
) -> DemandSpec:
    """The DemandSpec the command-line arguments describe."""
    from ..demand import DemandSpec

    table, base_dir = _base_table(source, kind, columns)
    # Paths typed on the command line are relative to the working folder, not to a scenario file's folder.
    if zones is not None:
        table["zones"] = str(zones.absolute())
    if rejects is not None:
        table["rejects"] = str(rejects.absolute())
    if date is not None:
        table["date"] = date
    if weekday is not None:
        table["weekday"] = weekday
    for key, text in _pairs(settings, "--set").items():
        value = _value(text)
        if key in ("service_area", "osm_path") and isinstance(value, str):
            value = str(Path(value).absolute())
        table[key] = value
    if table.get("kind") == "synthetic" and "n_requests" not in table and "rate_per_hour" not in table:
        table["n_requests"] = 10_000
    try:
        return DemandSpec.from_mapping(table, base_dir=base_dir)
    except ValueError as e:
        raise DemandError(str(e)) from e


def _run(spec: DemandSpec, network: str, seed: int) -> tuple[RoadNetwork, DemandResult, float]:
    from ..demand import build_demand
    from ..network import load_network

    net = load_network(network)
    t0 = time.perf_counter()
    res = build_demand(spec, net, seed)
    return net, res, time.perf_counter() - t0


def _hms(seconds: int) -> str:
    d, rem = divmod(int(seconds), 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    return (f"+{d}d " if d else "") + f"{h:02d}:{m:02d}:{s:02d}"


def _facts(net: RoadNetwork, res: DemandResult, seconds: float) -> dict[str, Any]:
    r = res.requests
    return {
        "network": net.name,
        "report": res.report.as_dict(),
        "requests": len(r),
        "day_start": r.day_start.isoformat() if r.day_start else None,
        "first": _hms(int(r.time_s[0])) if len(r) else None,
        "last": _hms(int(r.time_s[-1])) if len(r) else None,
        "per_hour": r.per_hour().tolist(),
        "seconds": round(seconds, 3),
    }


def plot_profile(requests: Requests, out: Path, title: str) -> Path:
    """Write the hourly request profile as a PNG bar chart."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5), dpi=110)
    try:
        ax.bar(np.arange(24), requests.per_hour(), color="#3b6ea8")
        ax.set_xticks(range(0, 24, 2))
        ax.set_xlabel("hour of day")
        ax.set_ylabel("requests")
        ax.set_title(title)
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out)
    finally:
        plt.close(fig)
    return out


def _print(facts: dict[str, Any], res: DemandResult) -> None:
    from rich.table import Table

    for line in res.report.summary_lines():
        console.print(line, markup=False)
    console.print(f"network: {facts['network']}; built in {facts['seconds']} s", markup=False)
    if facts["requests"]:
        console.print(f"time range: {facts['first']} .. {facts['last']} (day start {facts['day_start']})", markup=False)
        table = Table(title="requests per hour")
        table.add_column("hour", justify="right")
        table.add_column("requests", justify="right")
        table.add_column("share", justify="right")
        total = max(1, facts["requests"])
        for h, n in enumerate(facts["per_hour"]):
            table.add_row(f"{h:02d}", f"{n:,}", f"{100 * n / total:.1f} %")
        print_table(table)


@demand_app.command("inspect")
def inspect(
    source: SourceArg,
    network: NetworkOpt = "helsinki",
    kind: KindOpt = None,
    zones: ZonesOpt = None,
    date: DateOpt = None,
    weekday: WeekdayOpt = None,
    seed: SeedOpt = 0,
    column: ColumnOpt = None,
    set_: SetOpt = None,
    rejects: RejectsOpt = None,
    plot: Annotated[Path | None, typer.Option(help="Write the hourly profile to this PNG file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Load a demand source: summary (rows read, accepted, rejected by reason), time range, requests per hour."""
    spec = make_spec(
        source, kind=kind, zones=zones, date=date, weekday=weekday, columns=column, settings=set_, rejects=rejects
    )
    net, res, seconds = _run(spec, network, seed)
    facts = _facts(net, res, seconds)
    if plot is not None:
        facts["plot"] = str(plot_profile(res.requests, plot, f"{res.report.source}: requests per hour"))
    if as_json:
        console.print_json(json.dumps(facts))
        return
    _print(facts, res)
    if plot is not None:
        console.print(f"hourly profile written to {plot}", markup=False)


@demand_app.command("build")
def build(
    source: SourceArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Requests Parquet file to write.")],
    network: NetworkOpt = "helsinki",
    kind: KindOpt = None,
    zones: ZonesOpt = None,
    date: DateOpt = None,
    weekday: WeekdayOpt = None,
    seed: SeedOpt = 0,
    column: ColumnOpt = None,
    set_: SetOpt = None,
    rejects: RejectsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="Write the file even when no request is left (all rows rejected).")
    ] = False,
) -> None:
    """Materialise a day of requests, snapped to the network, as a Parquet file the simulator reads fastest.

    A source that yields no request at all is refused (exit 1, nothing written) unless --allow-empty is given.
    """
    spec = make_spec(
        source, kind=kind, zones=zones, date=date, weekday=weekday, columns=column, settings=set_, rejects=rejects
    )
    net, res, seconds = _run(spec, network, seed)
    if len(res.requests) == 0 and not allow_empty:
        rep = res.report
        why = "; ".join(line for line in rep.summary_lines()[1:] if not line.startswith("  e.g."))
        first = f"; first: {rep.examples[0]}" if rep.examples else ""
        raise DemandError(
            f"{rep.source}: no requests to write ({why}){first}; {out} was not written",
            hint="fix the input, or pass --allow-empty to write an empty file",
        )
    path = res.requests.to_parquet(out)
    facts = _facts(net, res, seconds)
    facts["out"] = str(path)
    if as_json:
        console.print_json(json.dumps(facts))
        return
    for line in res.report.summary_lines():
        console.print(line, markup=False)
    console.print(f"{len(res.requests):,} requests on {net.name} written to {path}", markup=False)

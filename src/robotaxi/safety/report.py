"""``robotaxi safety report RUN_DIR``: DMV-format reports of a run and a short HTML page.

For each DMV reporting period the run touches, writes ``dmv_disengagements_<year>.csv`` (one row per event) and
``dmv_mileage_<year>.csv`` (one row per VIN of every autonomous operator's vehicles, miles December to November
and total), and ``safety_report.html`` with miles per disengagement per operator and its exact 95 % interval.
Events come from the run's ``safety_events.parquet``; without one the report says zero events and still gives
the mileage.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SafetyError
from .dmv import disengagement_csv, mileage_csv
from .records import DisengagementRecord, Initiator, LocationType
from .runs import EVENTS_FILE, RunData, SafetyEvents
from .stats import MilesPerDisengagement, miles_per_disengagement

if TYPE_CHECKING:
    from ..network import RoadNetwork

__all__ = ["OperatorSafety", "RunSafetyReport", "build_report", "event_map", "write_report"]


@dataclass(frozen=True, slots=True)
class OperatorSafety:
    """One autonomous operator's line of the report."""

    operator: str
    permit_number: str
    vehicles: int
    mpd: MilesPerDisengagement
    configured_mpd: float | None


@dataclass(frozen=True, slots=True)
class RunSafetyReport:
    """Everything ``safety report`` writes, before it is written."""

    run: str
    day: dt.date
    has_events_file: bool
    operators: list[OperatorSafety]
    csv_files: dict[str, str] = field(default_factory=dict)  # file name -> text
    by_initiator: dict[str, int] = field(default_factory=dict)
    by_location: dict[str, int] = field(default_factory=dict)
    events: list[DisengagementRecord] = field(default_factory=list)
    by_hour: list[int] = field(default_factory=lambda: [0] * 24)  # local hour of day
    map_png: str | None = None  # data URI of the event map, when a network was given


def _check_events(data: RunData, events: SafetyEvents) -> None:
    """Every event must belong to a vehicle of the run with that VIN (a VIN without a mileage row is an error),
    and fall in a reporting period the run drove in (or it would be in no report)."""
    from .runs import reporting_periods

    autonomous = set(data.autonomous_operators())
    periods = reporting_periods(data)
    for i, r in enumerate(events.records):
        v = int(events.vehicle[i])
        where = f"{EVENTS_FILE}: row {i} (event {r.event_id})"
        if v not in data.operator_of:
            raise SafetyError(f"{where}: vehicle {v} is not a vehicle of this run, so its VIN has no mileage row")
        if r.operator != data.operator_of[v] or r.operator not in autonomous:
            raise SafetyError(f"{where}: operator {r.operator!r} does not run vehicle {v} autonomously in this run")
        if r.vin != data.vin(v):
            raise SafetyError(f"{where}: VIN {r.vin} has no mileage row (vehicle {v} is {data.vin(v)})")
        if not any(r.date in p for p in periods):
            shown = ", ".join(str(p) for p in periods)
            raise SafetyError(f"{where}: date {r.date} is outside the run's reporting period(s) {shown}")


def build_report(data: RunData, events: SafetyEvents | None) -> RunSafetyReport:
    """Mileage, events and miles per disengagement of a run (nothing written yet).

    Raises
    ------
    SafetyError
        For events that do not match the run (vehicle, operator or VIN), or a run without a calendar date.
    """
    from .runs import reporting_periods

    day = data.info.require_day()
    if events is not None:
        _check_events(data, events)
    records = events.records if events is not None else []
    profiles: dict[str, Any] = dict(events.metadata.get("profiles", {})) if events is not None else {}
    monthly = data.monthly_miles()
    operators = data.autonomous_operators()
    permits = {r.operator: r.permit_number or "" for r in records}
    lines = []
    for op in operators:
        vehicles = [v for v in data.vehicles.tolist() if data.operator_of[v] == op]
        miles = sum(sum(monthly[v].values()) for v in vehicles)
        n = sum(1 for r in records if r.operator == op)
        prof = profiles.get(op, {})
        permit = permits.get(op) or str(prof.get("permit_number", ""))
        configured = prof.get("miles_per_disengagement")
        lines.append(OperatorSafety(op, permit, len(vehicles), miles_per_disengagement(miles, n), configured))
    files: dict[str, str] = {}
    permit_of = {o.operator: o.permit_number for o in lines}
    for period in reporting_periods(data):
        in_period = [r for r in records if r.date in period]
        per_vin = Counter(r.vin for r in in_period)
        files[f"dmv_disengagements_{period.year}.csv"] = disengagement_csv(in_period, period)
        rows = []
        for op in operators:
            for v in data.vehicles.tolist():
                if data.operator_of[v] != op:
                    continue
                vin = data.vin(v)
                months = {ym: m for ym, m in monthly[v].items() if ym in period.months()}
                rows.append((op, permit_of[op], vin, months, per_vin[vin]))
        files[f"dmv_mileage_{period.year}.csv"] = mileage_csv(period, rows)
    return RunSafetyReport(
        run=data.info.name,
        day=day,
        has_events_file=events is not None,
        operators=lines,
        csv_files=files,
        by_initiator=dict(Counter(r.initiator.label for r in records)),
        by_location=dict(Counter(r.location_type.label for r in records)),
        events=list(records),
        by_hour=_by_hour(events),
    )


def _by_hour(events: SafetyEvents | None) -> list[int]:
    out = [0] * 24
    if events is not None:
        for t in events.time_s.tolist():
            if t >= 0:
                out[(t // 3600) % 24] += 1
    return out


_INITIATOR_COLOURS = {
    Initiator.AV_SYSTEM: "#1e88e5",
    Initiator.TEST_DRIVER: "#e53935",
    Initiator.REMOTE_OPERATOR: "#8e24aa",
    Initiator.PASSENGER: "#fb8c00",
}


def event_map(records: list[DisengagementRecord], network: RoadNetwork) -> str:
    """A PNG data URI: the network's streets in grey and the events coloured by who initiated them."""
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.collections import LineCollection

    tail, head = network.tail, network.head
    segments = np.stack(
        [
            np.column_stack((network.lon[tail], network.lat[tail])),
            np.column_stack((network.lon[head], network.lat[head])),
        ],
        axis=1,
    )
    fig, ax = plt.subplots(figsize=(7, 7))
    ax.add_collection(LineCollection(list(segments), colors="#c8c8c8", linewidths=0.5))
    for who, colour in _INITIATOR_COLOURS.items():
        pts = [(r.lon, r.lat) for r in records if r.initiator is who and r.lon is not None]
        if pts:
            xy = np.asarray(pts, dtype=float)
            ax.scatter(xy[:, 0], xy[:, 1], s=18, color=colour, label=f"{who.label} ({len(pts)})", zorder=3)
    ax.autoscale()
    ax.set_aspect(1 / np.cos(np.radians(float(np.mean(network.lat)))))
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    if records:
        ax.legend(loc="upper left", fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _num(x: float, digits: int = 0) -> str:
    return "unbounded" if not math.isfinite(x) else f"{x:,.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: RunSafetyReport) -> str:
    """A short self-contained page: the operators' miles per disengagement and the events."""
    ops = [
        [
            o.operator,
            o.permit_number or "(unknown)",
            str(o.vehicles),
            _num(o.mpd.miles, 1),
            str(o.mpd.disengagements),
            _num(o.mpd.estimate),
            f"{_num(o.mpd.low)} - {_num(o.mpd.high)}",
            _num(o.configured_mpd) if o.configured_mpd is not None else "-",
        ]
        for o in report.operators
    ]
    header = [
        "operator",
        "permit",
        "vehicles",
        "autonomous miles",
        "disengagements",
        "miles per disengagement",
        "95 % interval (exact Poisson)",
        "configured",
    ]
    note = (
        ""
        if report.has_events_file
        else f"<p class=note>This run has no {EVENTS_FILE}: zero disengagements are reported. "
        "<code>robotaxi safety simulate RUN_DIR</code> draws them offline.</p>"
    )
    who = [[k, str(report.by_initiator.get(k, 0))] for k in (i.label for i in Initiator)]
    where = [[k, str(report.by_location.get(k, 0))] for k in (loc.label for loc in LocationType)]
    shown = report.events[:200]
    events = [
        [
            r.date.isoformat(),
            dt.datetime.fromtimestamp((r.time_ms or 0) / 1000, dt.UTC).strftime("%H:%M:%S") if r.time_ms else "",
            r.vehicle_id or "",
            r.vin or "",
            r.initiator.label,
            r.location_type.label,
            f"{r.lon:.5f}, {r.lat:.5f}" if r.lon is not None and r.lat is not None else "",
            r.trip_id or "",
        ]
        for r in shown
    ]
    files = "".join(f"<li><code>{html.escape(name)}</code></li>" for name in report.csv_files)
    hours = _table(["hour", *(f"{h:02d}" for h in range(24))], [["events", *(str(n) for n in report.by_hour)]])
    figure = (
        f'<h2>Where</h2><img alt="map of the disengagements" src="{report.map_png}" style="max-width:100%">'
        if report.map_png
        else ""
    )
    more = f"<p>First {len(shown)} of {len(report.events)} events.</p>" if len(report.events) > len(shown) else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Safety report: {html.escape(report.run)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:75em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:left}}th{{background:#f3f3f3}}.note{{color:#a15c00}}</style>
</head><body>
<h1>Safety report: {html.escape(report.run)} ({report.day.isoformat()})</h1>
{note}
<h2>Miles per disengagement</h2>
{_table(header, ops)}
<p>Interval: Garwood's exact Poisson interval, [miles / (chi2(0.975; 2k+2)/2), miles / (chi2(0.025; 2k)/2)]
for k disengagements; unbounded above when k = 0.</p>
<h2>Disengagements by initiator and location</h2>
{_table(["initiated by", "events"], who)}
{_table(["location", "events"], where)}
<h2>Disengagements by local hour</h2>
{hours}
{figure}
<h2>Events</h2>
{more}{_table(["date", "time (UTC)", "vehicle", "VIN", "initiated by", "location", "lon, lat", "trip"], events)}
<h2>DMV files</h2><ul>{files}</ul>
</body></html>
"""


def write_report(report: RunSafetyReport, folder: str | Path) -> list[Path]:
    """Write the CSV files and ``safety_report.html`` into ``folder`` (created if needed)."""
    out = Path(folder)
    written = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in report.csv_files.items():
            (out / name).write_text(text, encoding="utf-8", newline="")
            written.append(out / name)
        (out / "safety_report.html").write_text(render_html(report), encoding="utf-8")
        written.append(out / "safety_report.html")
    except OSError as e:
        raise SafetyError(f"cannot write the safety report to {out}: {e.strerror}") from e
    return written

"""The report's safety section: disengagements drawn inside the run (``[operators.safety]``,
:mod:`robotaxi.safety.insim`), their cost and where they happened, on the map of the road network."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from ..network import RoadNetwork
from .result import SimResult

_COLOURS = ("#e53935", "#1e88e5", "#43a047", "#fb8c00", "#8e24aa", "#00897b")
_MARKERS = {"continue": "o", "remote": "s", "stop": "X"}
_ACTION_LABELS = {
    "continue": "safety driver takes over, trip goes on",
    "remote": "waits for a remote operator",
    "stop": "stops until recovered, riders re-dispatched",
}

#: (label, key, how to show it) of each row of the table, one column per operator.
ROWS: tuple[tuple[str, str, str], ...] = (
    ("What a disengagement does", "on_disengagement", "action"),
    ("Autonomous miles driven", "autonomous_miles", "miles"),
    ("Disengagements", "disengagements", "count"),
    ("Miles per disengagement (95 % interval)", "miles_per_disengagement", "mpd"),
    ("Configured miles per disengagement", "configured_miles_per_disengagement", "miles"),
    ("Disengagements with riders on board", "with_riders_on_board", "count"),
    ("Vehicle-hours lost (waits and recoveries)", "vehicle_hours_lost", "hours"),
    ("Rider delay (rider-minutes: on board, or waiting after getting out)", "rider_delay_minutes", "minutes"),
    ("Remote assistance (hours)", "remote_assistance_hours", "hours"),
    ("Remote assistance cost", "remote_assistance_cents", "money"),
    ("Recovery of stopped vehicles (hours)", "recovery_hours", "hours"),
    ("Riders re-dispatched (pickups handed back)", "riders_redispatched", "count"),
    ("… served by another vehicle", "redispatched_served", "count"),
    ("… lost (not served)", "redispatched_lost", "count"),
    ("Riders on board who got out and rode on (re-dispatched)", "riders_got_out", "count"),
    ("… reached their destination", "got_out_served", "count"),
    ("… lost (not served)", "got_out_lost", "count"),
    ("… mean wait for the next vehicle (s)", "got_out_wait_mean_s", "seconds"),
    ("… longest wait for the next vehicle (s)", "got_out_wait_max_s", "seconds"),
)


def _cell(row: dict[str, Any], key: str, how: str) -> str:
    v = row.get(key)
    if how == "action":
        return f"{v} ({_ACTION_LABELS.get(str(v), '')})"
    if how == "mpd":
        lo, hi = row["mpd_interval_95"]
        hi_s = "unbounded" if hi is None else f"{hi:,.0f}"
        est = "-" if v is None else f"{v:,.1f}"
        return f"{est} ({lo:,.0f} - {hi_s})"
    if how == "money":
        return f"{int(v or 0) / 100:,.2f}"
    if how in ("miles", "minutes"):
        return f"{float(v or 0):,.1f}"
    if how == "seconds":
        return "-" if v is None else f"{float(v):,.0f}"
    if how == "hours":
        return f"{float(v or 0):,.2f}"
    return f"{int(v or 0):,}"


def safety_table(kpis: dict[str, dict[str, Any]]) -> str:
    """One column per operator with safety settings (``safety_kpis.json``)."""
    head = "".join(f"<th>{html.escape(n)}</th>" for n in kpis)
    body = []
    for label, key, how in ROWS:
        cells = "".join(f"<td>{html.escape(_cell(row, key, how))}</td>" for row in kpis.values())
        body.append(f"<tr><th>{html.escape(label)}</th>{cells}</tr>")
    unserved = {
        f"{op}: {why}": n for op, row in kpis.items() for why, n in row["redispatched_unserved_by_reason"].items()
    }
    table = f'<table class="safety"><thead><tr><th></th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    if unserved:
        items = "".join(f"<li>{html.escape(k)}: {n:,}</li>" for k, n in sorted(unserved.items()))
        table += f"<p>Re-dispatched riders not served, by outcome and reason:</p><ul>{items}</ul>"
    return table


def event_map(result: SimResult, network: RoadNetwork | None) -> str:
    """Where the events happened: the road network in grey, one colour per operator, one marker per action."""
    from .report import _draw_network, _png, _pyplot, _scale_bar

    s = result.safety
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 7), layout="constrained")
    if network is not None:
        _draw_network(ax, network)
    recs = s.events.records
    ops = list(s.settings)
    for j, op in enumerate(ops):
        for action, marker in _MARKERS.items():
            pts = [(r.lon, r.lat) for r, a in zip(recs, s.action, strict=True) if r.operator == op and a == action]
            if pts:
                xy = np.asarray(pts, dtype=float)
                ax.scatter(
                    xy[:, 0],
                    xy[:, 1],
                    s=22,
                    marker=marker,
                    color=_COLOURS[j % len(_COLOURS)],
                    edgecolors="k",
                    linewidths=0.3,
                    label=f"{op}: {action} ({len(pts)})",
                    zorder=5,
                )
    lat0 = float(np.mean(network.lat)) if network is not None else float(np.mean([r.lat or 0 for r in recs] or [0]))
    if network is not None:
        x0, y0, x1, y1 = network.bbox
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
    ax.set_aspect(1 / np.cos(np.radians(lat0)))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("Where disengagements happened")
    if recs:
        ax.legend(loc="upper left", fontsize=7)
    _scale_bar(ax, lat0)
    return str(_png(fig))


def safety_section(result: SimResult, network: RoadNetwork | None) -> str:
    """The section's HTML: the KPIs per operator and the map (the events themselves are in
    ``safety_events.parquet``; ``robotaxi safety report`` writes the DMV files)."""
    from ..safety.insim import run_safety_kpis

    kpis = run_safety_kpis(result)
    n = len(result.safety.events.records)
    img = event_map(result, network)
    return (
        "<h2>Safety: disengagements</h2>\n"
        f"<p>{n:,} disengagement(s), drawn as the vehicles drove (a Poisson process over each operator's miles, "
        "<code>[operators.safety]</code>); miles per disengagement with its exact 95 % interval (Garwood). "
        "Delays are taken where the vehicle's stretch of road ends; riders on board count in the rider delay. "
        "Events: <code>safety_events.parquet</code>; DMV files: <code>robotaxi safety report</code>.</p>\n"
        f"{safety_table(kpis)}\n"
        f'<figure><img alt="map of disengagements" src="{img}"></figure>'
    )

"""The report's per-operator section (several operators, or one with a service area or hours): who served what,
when and where, and why requests went unserved. The money per operator is the market section's
(:mod:`.report_market`)."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from ..network import RoadNetwork
from .kpis import Kpis
from .result import REASON_LABELS, Outcome, SimResult

_COLOURS = ("#1e88e5", "#e53935", "#43a047", "#fb8c00", "#8e24aa", "#00897b", "#6d4c41", "#3949ab")


def wanted(result: SimResult) -> bool:
    """Whether the run has a marketplace worth a section (more than one operator, or areas, hours or shifts)."""
    ops = result.fleet.operators
    return len(ops) > 1 or any(o.area is not None or not o.hours.all_day or o.shifts for o in ops)


def _colour(j: int) -> str:
    return _COLOURS[j % len(_COLOURS)]


def _cell(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}{unit}"
    if isinstance(v, int):
        return f"{v:,}{unit}"
    return html.escape(str(v))


def operator_table(kpis: Kpis) -> str:
    """One column per operator: what it is, what it served, what it drove."""
    ops = kpis.by_operator
    rows = (
        ("Kind", "kind", ""),
        ("Vehicles (drivers)", "vehicles", ""),
        ("Trips", "trips", ""),
        ("Share of the platform's trips", "share_of_trips_pct", " %"),
        ("Mean wait of its riders", "wait_mean_s", " s"),
        ("Km with riders", "vehicle_km_occupied", ""),
        ("Km empty to pickups", "vehicle_km_empty", ""),
        ("Km rebalancing or to the depot", "vehicle_km_rebalancing", ""),
        ("Vehicle-hours in service", "vehicle_hours_in_service", ""),
        ("Utilisation (busy share of service)", "utilisation_pct", " %"),
        ("Offers made to its drivers", "offers", ""),
        ("… declined or lapsed", "offers_declined", ""),
    )
    head = "".join(f"<th>{html.escape(n)}</th>" for n in ops)
    body = []
    for label, key, unit in rows:
        if not any(key in o for o in ops.values()):
            continue
        cells = "".join(f"<td>{_cell(o.get(key), unit)}</td>" for o in ops.values())
        body.append(f"<tr><th>{html.escape(label)}</th>{cells}</tr>")
    return f"<table><tr><th></th>{head}</tr>{''.join(body)}</table>"


def unserved_table(result: SimResult) -> str:
    """Why requests went unserved: every reason with its count and share of all requests."""
    o = result.outcomes
    lost = (o.outcome == Outcome.REJECTED) | (o.outcome == Outcome.CANCELLED)
    n = max(len(result.requests), 1)
    codes, counts = np.unique(o.reason[lost], return_counts=True)
    rows = [
        f"<tr><th>{html.escape(REASON_LABELS.get(int(c), str(int(c))).replace('_', ' '))}</th>"
        f"<td>{int(k):,}</td><td>{100 * int(k) / n:.2f} %</td></tr>"
        for c, k in sorted(zip(codes.tolist(), counts.tolist(), strict=True), key=lambda x: -x[1])
    ]
    if not rows:
        return "<p>Every request was served.</p>"
    return f"<table><tr><th>reason</th><th>requests</th><th>of all requests</th></tr>{''.join(rows)}</table>"


def _trips_by_hour(kpis: Kpis, start_s: int, end_s: int) -> str:
    from .report import _hour_axis, _png, _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.5))
    bottom = None
    for j, (name, o) in enumerate(kpis.by_operator.items()):
        y = np.asarray(o["trips_by_hour"], dtype=np.float64)
        x = np.arange(y.size) + 0.5
        ax.bar(x, y, width=0.9, bottom=bottom, color=_colour(j), label=name)
        bottom = y if bottom is None else bottom + y
    _hour_axis(ax, start_s, end_s)
    ax.set_ylabel("trips (by hour requested)")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Trips by hour, by operator")
    return _png(fig)


def _areas_map(result: SimResult, network: RoadNetwork) -> str:
    from .report import _draw_network, _png, _pyplot, _scale_bar

    plt = _pyplot()
    ops = result.fleet.operators
    fig, axes = plt.subplots(1, 2, figsize=(8, 7), layout="constrained")
    lon, lat = network.lon, network.lat
    for ax in axes:
        _draw_network(ax, network)
    for j, op in enumerate(ops):
        if op.area is not None:
            rings = op.area.rings()
            if rings:  # the area's own border, shaded inside
                for k, ring in enumerate(rings):
                    label = f"{op.name} area" if k == 0 else None
                    axes[0].fill(ring[:, 0], ring[:, 1], color=_colour(j), alpha=0.12, zorder=1)
                    axes[0].plot(ring[:, 0], ring[:, 1], color=_colour(j), lw=1.6, zorder=4, label=label)
            else:  # an area given as a bare node mask has no polygon: show its nodes
                m = op.area.mask
                axes[0].scatter(lon[m], lat[m], s=2, color=_colour(j), alpha=0.35, label=f"{op.name} area")
        if op.depot >= 0:
            axes[0].scatter(lon[op.depot], lat[op.depot], s=90, marker="*", color=_colour(j), edgecolor="k", zorder=5)
    axes[0].set_title("Service areas and depots (*)\n(an operator without an area serves everywhere)", fontsize=10)
    r = result.requests
    op_of = result.operator
    rng = np.random.default_rng(0)  # a fixed sample keeps the map readable and the page small
    for j, op in enumerate(ops):
        rows = np.flatnonzero(op_of == j)
        if rows.size > 4000:
            rows = np.sort(rng.choice(rows, 4000, replace=False))
        axes[1].scatter(r.o_lon[rows], r.o_lat[rows], s=1.5, color=_colour(j), alpha=0.5, label=op.name)
    axes[1].set_title("Where each operator picked riders up", fontsize=10)
    lat0 = float(np.mean(lat))
    x0, y0, x1, y1 = network.bbox
    for ax in axes:
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect(1 / np.cos(np.radians(lat0)))
        ax.set_xticks([])
        ax.set_yticks([])
        if ax.get_legend_handles_labels()[0]:  # no operator with an area: nothing to name on the left
            ax.legend(loc="upper left", fontsize=7, markerscale=4)
        _scale_bar(ax, lat0)
    return _png(fig)


def operators_section(result: SimResult, kpis: Kpis, network: RoadNetwork | None) -> str:
    """The per-operator section of the report."""
    images = [_trips_by_hour(kpis, result.start_s, max(result.end_s, result.start_s + 3600))]
    if network is not None:
        images.append(_areas_map(result, network))
    figs = "\n".join(f'<figure><img alt="plot" src="{src}"></figure>' for src in images)
    return (
        "<h2>Operators</h2>\n"
        f"{operator_table(kpis)}\n<h3>Why requests went unserved</h3>\n{unserved_table(result)}\n{figs}"
    )

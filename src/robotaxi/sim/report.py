"""A self-contained ``report.html`` for people: the run's inputs, its KPIs with readable labels and units, plots
(each map drawn over the run's own road network) and, apart, a small section of developer figures.

Everything is embedded (plots as PNG data URIs): the file opens offline and can be mailed around.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..fleet import VehicleState
from ..network import RoadNetwork
from .kpis import Kpis, leg_km_class
from .result import Outcome, SimResult

if TYPE_CHECKING:
    from .pricing import MarketRun

_STATE_COLOURS = {
    VehicleState.AVAILABLE: "#4caf50",
    VehicleState.RESERVED: "#ff9800",
    VehicleState.STOPPED: "#9c27b0",
    VehicleState.ON_TRIP: "#2196f3",
}
_STATE_LABELS = {
    VehicleState.AVAILABLE: "idle (available)",
    VehicleState.RESERVED: "driving to a pickup (reserved)",
    VehicleState.STOPPED: "boarding or alighting (stopped)",
    VehicleState.ON_TRIP: "riders on board (on_trip)",
}


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend, imported on first use (it costs ~0.6 s at start-up)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> str:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# ---------------------------------------------------------------------------------------------------- KPI table
def _minutes(v: Any) -> str:
    return "n/a" if v is None else f"{v / 60:,.1f} min"


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{round(v, 1) + 0.0:,.1f} %"  # + 0.0: no "-0.0 %"


def _km(v: Any) -> str:
    return "n/a" if v is None else f"{v:,.0f} km"


def _count(v: Any) -> str:
    return "n/a" if v is None else f"{v:,}"


def _ratio(v: Any) -> str:
    return "n/a" if v is None else f"{v:,.2f}"


def _by_label(v: Any) -> str:
    if not v:
        return "none"
    return ", ".join(f"{k.replace('_', ' ')}: {x:,}" for k, x in sorted(v.items(), key=lambda kv: -kv[1]))


def _state_hours(v: Any) -> str:
    return ", ".join(f"{k.replace('_', ' ')}: {x:,.0f} h" for k, x in v.items()) or "none"


#: Sections of the KPI table: (heading, [(field, label, formatter)]). Every field of :class:`Kpis` that is shown as a
#: number belongs here; the by-hour lists are plotted, ``scenario``/``policy``/``vehicles``/window in the inputs.
KPI_SECTIONS: tuple[tuple[str, tuple[tuple[str, str, Callable[[Any], str]], ...]], ...] = (
    (
        "Service",
        (
            ("requests", "Ride requests", _count),
            ("served", "Served", _count),
            ("served_pct", "Served share", _pct),
            ("rejected", "Turned down at request", _count),
            ("rejected_by_reason", "… why turned down", _by_label),
            ("cancelled", "Cancelled while waiting", _count),
            ("cancelled_by_reason", "… why cancelled", _by_label),
        ),
    ),
    (
        "Waiting and riding (served riders)",
        (
            ("wait_mean_s", "Mean wait for pickup", _minutes),
            ("wait_median_s", "Median wait", _minutes),
            ("wait_p90_s", "90th percentile wait", _minutes),
            ("wait_p95_s", "95th percentile wait", _minutes),
            ("in_vehicle_mean_s", "Mean time in the vehicle", _minutes),
            ("delay_mean_s", "Mean delay against riding alone at once", _minutes),
            ("detour_mean", "Mean ride time over direct time", _ratio),
        ),
    ),
    (
        "Pooling",
        (
            ("pooled_trips_pct", "Trips shared with another rider", _pct),
            ("occupancy_mean", "Riders per occupied vehicle-km", _ratio),
            ("vehicle_km_saved_pct", "Vehicle-km saved against riding alone", _pct),
        ),
    ),
    (
        "Distance driven",
        (
            ("vehicle_km_occupied", "With riders on board", _km),
            ("vehicle_km_empty", "Empty, to pickups", _km),
            ("vehicle_km_rebalancing", "Empty, rebalancing", _km),
            ("vehicle_km_total", "Total", _km),
            ("empty_km_share_pct", "Empty share (pickup + rebalancing)", _pct),
            ("passenger_km_direct", "Riders' direct distance", _km),
        ),
    ),
    (
        "Fleet",
        (
            ("vehicles_in_service", "Vehicles that entered service", _count),
            ("fleet_utilisation_pct", "Utilisation (busy share of time in service)", _pct),
            ("trips_per_vehicle_mean", "Trips per vehicle, mean", _ratio),
            ("trips_per_vehicle_max", "Trips per vehicle, most", _count),
            ("vehicle_state_hours", "Vehicle-hours by state", _state_hours),
        ),
    ),
)
#: Kpis fields shown elsewhere in the report (inputs, by-hour plots) rather than in the table.
KPI_ELSEWHERE = frozenset(
    {
        "scenario",
        "policy",
        "vehicles",
        "window_start_s",
        "window_end_s",
        "last_event_s",
        "served_pct_by_hour",
        "wait_mean_s_by_hour",
        "occupancy_by_hour",
        "utilisation_pct_by_hour",
        "by_operator",  # the operators section (robotaxi.sim.report_operators)
    }
)


def _humanise(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _generic(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_generic(x)}" for k, x in v.items()) or "none"
    return str(v)


def kpi_table(kpis: Kpis) -> list[tuple[str, list[tuple[str, str]]]]:
    """The KPI table's sections as (heading, [(label, formatted value)]); fields added to :class:`Kpis` later and
    not yet given a label appear under "Other indicators" with a readable form of their name."""
    values = kpis.to_dict()
    sections: list[tuple[str, list[tuple[str, str]]]] = []
    placed = set(KPI_ELSEWHERE)
    for heading, rows in KPI_SECTIONS:
        sections.append((heading, [(label, fmt(values[key])) for key, label, fmt in rows if key in values]))
        placed.update(key for key, _, _ in rows)
    other = [(_humanise(k), _generic(v)) for k, v in values.items() if k not in placed and not k.endswith("_by_hour")]
    if other:
        sections.append(("Other indicators", other))
    return sections


# ---------------------------------------------------------------------------------------------------- plots
def _hour_axis(ax: Any, start_s: int, end_s: int) -> None:
    lo, hi = start_s / 3600, end_s / 3600
    ax.set_xlim(lo, hi)
    step = 1 if hi - lo <= 6 else 3
    ax.set_xticks(np.arange(np.floor(lo), np.ceil(hi) + 1e-9, step))
    ax.set_xlabel("hour of day")


def _hours_of(result: SimResult) -> tuple[int, int]:
    """First and one-past-last hour of the demand window."""
    return result.start_s // 3600, max(result.start_s // 3600 + 1, -(-result.end_s // 3600))


def _hourly(result: SimResult, kpis: Kpis) -> str:
    """Requests and served share by hour, with the fleet's busy share: served % falling while the fleet is near
    100 % busy means too few vehicles, not a poor match."""
    plt = _pyplot()
    lo, hi = _hours_of(result)
    hours = np.clip((result.requests.time_s // 3600).astype(np.int64), lo, hi - 1) - lo
    total = np.bincount(hours, minlength=hi - lo)
    served = np.bincount(hours[result.served], minlength=hi - lo)
    rate = np.divide(100.0 * served, total, out=np.full(total.size, np.nan), where=total > 0)
    centres = np.arange(lo, hi) + 0.5
    fig, ax = plt.subplots(figsize=(9, 3.5), layout="constrained")
    ax.bar(centres, total, width=0.9, color="#90caf9", label="requests")
    ax.bar(centres, served, width=0.9, color="#1e88e5", label="served")
    ax.set_ylabel("requests per hour")
    ax2 = ax.twinx()
    ax2.plot(centres, rate, color="#d32f2f", marker="o", ms=3, label="served %")
    util = np.full(hi - lo, np.nan)
    by_hour = kpis.utilisation_pct_by_hour[lo:hi]
    util[: len(by_hour)] = [np.nan if x is None else x for x in by_hour]
    ax2.plot(centres, util, color="#424242", linestyle="--", label="fleet busy %")
    ax2.set_ylim(0, 105)
    ax2.set_ylabel("served; fleet busy (%)")
    _hour_axis(ax, lo * 3600, hi * 3600)
    ax.legend(loc="upper left")
    ax2.legend(loc="lower right")
    ax.set_title("Requests and share served by hour of request; the fleet's busy share")
    return _png(fig)


def _by_hour(result: SimResult, kpis: Kpis) -> str:
    """Mean wait and average occupancy by hour (the service-rate curve is in the first plot)."""
    plt = _pyplot()
    lo, hi = _hours_of(result)
    wait = np.array([np.nan if w is None else w / 60 for w in kpis.wait_mean_s_by_hour], dtype=np.float64)
    occ = np.array([np.nan if x is None else x for x in kpis.occupancy_by_hour], dtype=np.float64)
    centres = np.arange(wait.size) + 0.5
    fig, ax = plt.subplots(figsize=(9, 3.5), layout="constrained")
    ax.plot(centres, wait, color="#1e88e5", marker="o", ms=3, label="mean wait (min)")
    ax.set_ylabel("mean wait (min)")
    ax.set_ylim(bottom=0)
    ax2 = ax.twinx()
    ax2.plot(centres, occ, color="#8e24aa", marker="s", ms=3, label="riders per occupied vehicle-km")
    ax2.set_ylabel("average occupancy (riders)")
    ax2.set_ylim(0, max(2.0, float(np.nanmax(occ)) * 1.2) if np.isfinite(occ).any() else 2.0)
    _hour_axis(ax, lo * 3600, hi * 3600)
    ax.legend(loc="upper left")
    ax2.legend(loc="upper right")
    ax.set_title("Mean wait and occupancy, by hour")
    return _png(fig)


def km_by_hour(result: SimResult) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Vehicle-km by hour in which each leg started: (hours, hours x [with riders, to pickups, rebalancing])."""
    legs = result.legs
    lo, hi = _hours_of(result)
    hours = np.arange(lo, hi)  # legs after the window (riders still on board) count in its last hour
    out = np.zeros((hours.size, 3))
    if len(legs):
        h = (legs.start_s // 3600).astype(np.int64) - lo
        km = legs.length_m.astype(np.float64) / 1000
        np.add.at(out, (np.clip(h, 0, hours.size - 1), leg_km_class(result)), km)
    return hours, out


def _km_plot(result: SimResult) -> str:
    plt = _pyplot()
    hours, km = km_by_hour(result)
    fig, ax = plt.subplots(figsize=(9, 3.5), layout="constrained")
    bottom = np.zeros(hours.size)
    for col, (label, colour) in enumerate(
        (("with riders", "#2196f3"), ("empty, to pickups", "#ff9800"), ("empty, rebalancing", "#9e9e9e"))
    ):
        ax.bar(hours + 0.5, km[:, col], width=0.9, bottom=bottom, color=colour, label=label)
        bottom += km[:, col]
    ax.set_ylabel("vehicle-km per hour")
    _hour_axis(ax, int(hours[0]) * 3600, (int(hours[-1]) + 1) * 3600)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Distance driven by hour: occupied, empty to pickups and rebalancing")
    return _png(fig)


def _waits(result: SimResult) -> str:
    plt = _pyplot()
    w = result.wait_s[result.served] / 60
    fig, ax = plt.subplots(figsize=(9, 3.5), layout="constrained")
    ax.hist(w, bins=60, color="#1e88e5")
    for q, style in ((50, "-"), (90, "--"), (95, ":")):
        if w.size:
            ax.axvline(float(np.percentile(w, q)), color="k", ls=style, lw=1, label=f"{q}th percentile")
    ax.set_xlabel("wait for pickup (min)")
    ax.set_ylabel("served requests")
    ax.legend()
    ax.set_title("How long served riders waited")
    return _png(fig)


def fleet_states_over_time(result: SimResult, bin_s: int = 300) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Number of vehicles in each MDS state at the start of every ``bin_s`` interval (bins x states)."""
    ev = result.events
    order = np.lexsort((np.arange(len(ev)), ev.vehicle))
    v, t, s = ev.vehicle[order], ev.time_s[order], ev.state[order].astype(np.int64)
    prev = np.empty_like(s)
    prev[1:] = s[:-1]
    first = np.ones(v.size, dtype=bool)
    first[1:] = v[1:] != v[:-1]
    prev[first] = int(VehicleState.NON_OPERATIONAL)
    t0, t1 = int(t.min()), int(t.max())
    edges = np.arange(t0 - t0 % bin_s, t1 + bin_s, bin_s)
    # An event at time t shows from the first bin edge at or after t on (the count at an edge is the state there).
    b = np.searchsorted(edges, t, side="left")
    k = len(VehicleState)
    size = (edges.size + 1) * k
    into = np.bincount((b + 1) * k + s, minlength=size)  # (np.add.at is ten times slower on millions of events)
    out_of = np.bincount((b + 1) * k + prev, minlength=size)
    delta = (into - out_of).reshape(edges.size + 1, k).astype(np.float64)
    counts = np.cumsum(delta, axis=0)[1:]
    counts[:, int(VehicleState.NON_OPERATIONAL)] += len(result.fleet)
    return edges, counts


def _states(result: SimResult) -> str:
    plt = _pyplot()
    edges, counts = fleet_states_over_time(result)
    fig, ax = plt.subplots(figsize=(9, 3.5), layout="constrained")
    ax.stackplot(
        edges / 3600,
        *[counts[:, int(s)] for s in _STATE_COLOURS],
        labels=[_STATE_LABELS[s] for s in _STATE_COLOURS],
        colors=list(_STATE_COLOURS.values()),
        step="post",
    )
    ax.set_ylabel("vehicles")
    lo, hi = _hours_of(result)
    _hour_axis(ax, lo * 3600, hi * 3600)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("What the fleet was doing (MDS vehicle states)")
    return _png(fig)


def _draw_network(ax: Any, network: RoadNetwork, max_edges: int = 200_000) -> None:
    """The road network as thin grey lines on a map (every edge once; a sample of them on huge networks)."""
    from matplotlib.collections import LineCollection

    tail, head = network.tail.astype(np.int64), network.head.astype(np.int64)
    n = np.int64(network.n_nodes)
    # One line per street: a two-way street has both (u, v) and (v, u); draw the one with u < v, and every one-way.
    has_reverse = np.isin(head * n + tail, tail * n + head)
    idx = np.flatnonzero((tail < head) | ~has_reverse)
    if idx.size > max_edges:
        idx = idx[:: -(-idx.size // max_edges)]
    segs = np.stack(
        [np.c_[network.lon[tail[idx]], network.lat[tail[idx]]], np.c_[network.lon[head[idx]], network.lat[head[idx]]]],
        axis=1,
    )
    # Over the hexagons, thin and translucent: the streets show through where demand is and alone where it is not.
    ax.add_collection(LineCollection(list(segs), colors="#303030", linewidths=0.35, alpha=0.45, zorder=3))


def _scale_bar(ax: Any, lat0: float) -> None:
    """A scale bar of a round number of km in the lower-right corner (maps have no lon/lat ticks)."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    km_per_deg = 111.32 * np.cos(np.radians(lat0))
    width_km = (x1 - x0) * km_per_deg
    bar_km = next((b for b in (50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1) if b <= width_km / 4), 0.1)
    length = bar_km / km_per_deg
    xs = x1 - (x1 - x0) * 0.05 - length
    ys = y0 + (y1 - y0) * 0.04
    ax.plot([xs, xs + length], [ys, ys], color="k", lw=2)
    ax.text(xs + length / 2, ys + (y1 - y0) * 0.015, f"{bar_km:g} km", ha="center", va="bottom", fontsize=8)


def _map(result: SimResult, network: RoadNetwork | None) -> str:
    plt = _pyplot()
    r = result.requests
    served = result.served
    fig, axes = plt.subplots(1, 2, figsize=(11, 6), layout="constrained")
    lat0 = float(np.mean(r.o_lat))
    panels = (
        (
            r.o_lon[served],
            r.o_lat[served],
            result.wait_s[served] / 60,
            "magma_r",
            "mean wait (min)",
            "Where waits are longest (by pickup)",
        ),
        (
            r.o_lon,
            r.o_lat,
            (~served).astype(float) * 100,
            "Reds",
            "requests not served (%)",
            "Where requests go unserved",
        ),
    )
    for ax, (lon, lat, c, cmap, clabel, title) in zip(axes, panels, strict=True):
        if network is not None:
            _draw_network(ax, network)
        hb = ax.hexbin(lon, lat, C=c, reduce_C_function=np.mean, gridsize=30, cmap=cmap, mincnt=3, zorder=1)
        fig.colorbar(hb, ax=ax, label=clabel, shrink=0.8)
        ax.set_title(title)
        ax.set_aspect(1 / np.cos(np.radians(lat0)))
        if network is not None:
            x0, y0, x1, y1 = network.bbox
            ax.set_xlim(min(x0, float(lon.min())), max(x1, float(lon.max())))
            ax.set_ylim(min(y0, float(lat.min())), max(y1, float(lat.max())))
        ax.set_xticks([])
        ax.set_yticks([])
        _scale_bar(ax, lat0)
    return _png(fig)


# ---------------------------------------------------------------------------------------------------- the page
@dataclass(frozen=True, slots=True)
class DevFigures:
    """Figures about the software rather than the service: wall-clock time of each stage and throughput."""

    timings_s: Mapping[str, float]

    def rows(self, result: SimResult, kpis: Kpis) -> list[tuple[str, str]]:
        names = {"prepare": "loading network, demand and routing table", "simulate": "simulation (event loop)"}
        out = [(f"{names.get(name, name)}, wall", f"{s:,.1f} s") for name, s in self.timings_s.items()]
        loop = result.wall_s
        if loop > 0:
            out.append(("vehicle-km simulated per wall second", f"{kpis.vehicle_km_total / loop:,.0f}"))
            out.append(("requests simulated per wall second", f"{kpis.requests / loop:,.0f}"))
            span = max(result.last_event_s, result.end_s) - result.start_s
            out.append(("simulated time over wall time", f"{span / loop:,.0f} times"))
        return out


def _table(rows: Sequence[tuple[str, str]], cls: str = "") -> str:
    body = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="{cls}">{body}</table>' if cls else f"<table>{body}</table>"


def render_report(
    result: SimResult,
    kpis: Kpis,
    *,
    title: str,
    inputs: Sequence[tuple[str, str]] = (),
    network: RoadNetwork | None = None,
    dev: DevFigures | None = None,
    market: MarketRun | None = None,
) -> str:
    """The report page as one HTML string.

    Parameters
    ----------
    inputs : sequence of (label, value)
        What the run was given (network, demand, fleet, dispatch settings), shown first; see
        :func:`robotaxi.sim.run.scenario_inputs`.
    network : RoadNetwork, optional
        Drawn behind the maps.
    dev : DevFigures, optional
        Wall-clock figures, shown in a separate small section at the end.
    market : MarketRun, optional
        A priced run: adds the money section (``robotaxi.sim.report_market``).
    """
    sections = "\n".join(f"<h3>{html.escape(h)}</h3>\n{_table(rows)}" for h, rows in kpi_table(kpis) if rows)
    images = [_hourly(result, kpis), _by_hour(result, kpis), _waits(result), _km_plot(result), _states(result)]
    if int(result.served.sum()) >= 3:
        images.append(_map(result, network))
    figs = "\n".join(f'<figure><img alt="plot" src="{src}"></figure>' for src in images)
    n_out = {o.label: int((result.outcomes.outcome == o).sum()) for o in Outcome if o is not Outcome.PENDING}
    summary = ", ".join(f"{v:,} {k}" for k, v in n_out.items())
    inputs_html = f"<h2>Inputs</h2>\n{_table(inputs)}" if inputs else ""
    from .report_operators import operators_section, wanted

    operators_html = operators_section(result, kpis, network) if wanted(result) else ""
    market_html = ""
    if market is not None:
        from .report_market import market_section

        market_html = market_section(market)
    safety_html = ""
    if result.safety is not None:  # disengagements drawn inside the run ([operators.safety])
        from .report_safety import safety_section

        safety_html = safety_section(result, network)
    dev_html = f'<h2 class="dev">For developers</h2>\n{_table(dev.rows(result, kpis), "dev")}' if dev else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; width: 100%; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 4px 12px; text-align: left; vertical-align: top; }}
th {{ font-weight: 600; color: #444; width: 22em; }}
h3 {{ margin-bottom: 0.3em; }}
img {{ max-width: 100%; }} figure {{ margin: 1.5em 0; }}
.dev, table.dev {{ font-size: 0.85em; color: #666; }} table.dev {{ width: auto; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{len(result.requests):,} ride requests, {len(result.fleet):,} vehicles, dispatch policy
<b>{html.escape(result.policy)}</b>: {summary}.</p>
{inputs_html}
<h2>Key performance indicators</h2>
{sections}
<h2>Plots</h2>
{figs}
{operators_html}
{market_html}
{safety_html}
{dev_html}
</body></html>
"""

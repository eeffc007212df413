"""A self-contained ``report.html``: the KPI table and plots embedded as PNG data URIs (no external files)."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..fleet import VehicleState
from .kpis import Kpis
from .result import Outcome, SimResult

_STATE_COLOURS = {
    VehicleState.AVAILABLE: "#4caf50",
    VehicleState.RESERVED: "#ff9800",
    VehicleState.STOPPED: "#9c27b0",
    VehicleState.ON_TRIP: "#2196f3",
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
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _hourly(result: SimResult) -> str:
    plt = _pyplot()
    t = result.requests.time_s
    hours = (t // 3600).astype(np.int64)
    lo, hi = int(hours.min()), int(hours.max()) + 1
    bins = np.arange(lo, hi + 1)
    total = np.bincount(hours - lo, minlength=hi - lo)
    served = np.bincount(hours[result.served] - lo, minlength=hi - lo)
    rate = np.divide(100.0 * served, total, out=np.zeros(total.size), where=total > 0)
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.bar(bins[:-1], total, width=0.9, color="#90caf9", label="requests")
    ax.bar(bins[:-1], served, width=0.9, color="#1e88e5", label="served")
    ax.set_xlabel("hour of day")
    ax.set_ylabel("requests per hour")
    ax2 = ax.twinx()
    ax2.plot(bins[:-1], rate, color="#d32f2f", marker="o", ms=3, label="served %")
    ax2.set_ylim(0, 105)
    ax2.set_ylabel("served %")
    ax.legend(loc="upper left")
    ax.set_title("Requests and service rate by hour")
    return _png(fig)


def _waits(result: SimResult) -> str:
    plt = _pyplot()
    w = result.wait_s[result.served] / 60
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.hist(w, bins=60, color="#1e88e5")
    for q, style in ((50, "-"), (90, "--"), (95, ":")):
        if w.size:
            ax.axvline(float(np.percentile(w, q)), color="k", ls=style, lw=1, label=f"p{q}")
    ax.set_xlabel("wait for pickup (min)")
    ax.set_ylabel("served requests")
    ax.legend()
    ax.set_title("Wait-time distribution (served requests)")
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
    delta = np.zeros((edges.size + 1, k))
    np.add.at(delta, (b + 1, s), 1)
    np.add.at(delta, (b + 1, prev), -1)
    counts = np.cumsum(delta, axis=0)[1:]
    counts[:, int(VehicleState.NON_OPERATIONAL)] += len(result.fleet)
    return edges, counts


def _states(result: SimResult) -> str:
    plt = _pyplot()
    edges, counts = fleet_states_over_time(result)
    fig, ax = plt.subplots(figsize=(9, 3.5))
    hours = edges / 3600
    ax.stackplot(
        hours,
        *[counts[:, int(s)] for s in _STATE_COLOURS],
        labels=[s.mds for s in _STATE_COLOURS],
        colors=list(_STATE_COLOURS.values()),
        step="post",
    )
    ax.set_xlabel("hour of day")
    ax.set_ylabel("vehicles")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Fleet states over the day (MDS)")
    return _png(fig)


def _map(result: SimResult) -> str:
    plt = _pyplot()
    r = result.requests
    served = result.served
    fig, axes = plt.subplots(1, 2, figsize=(10, 5.5))
    hb = axes[0].hexbin(
        r.o_lon[served],
        r.o_lat[served],
        C=result.wait_s[served] / 60,
        reduce_C_function=np.mean,
        gridsize=30,
        cmap="magma_r",
        mincnt=3,
    )
    fig.colorbar(hb, ax=axes[0], label="mean wait (min)")
    axes[0].set_title("Where waits are longest (by pickup)")
    lost = ~served
    hb2 = axes[1].hexbin(
        r.o_lon, r.o_lat, C=lost.astype(float) * 100, reduce_C_function=np.mean, gridsize=30, cmap="Reds", mincnt=3
    )
    fig.colorbar(hb2, ax=axes[1], label="not served (%)")
    axes[1].set_title("Where requests go unserved")
    for ax in axes:
        ax.set_aspect(1 / np.cos(np.radians(float(np.mean(r.o_lat)))))
        ax.set_xlabel("lon")
        ax.set_ylabel("lat")
    return _png(fig)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items()) or "none"
    return str(v)


def _by_hour(kpis: Kpis) -> str:
    """Mean wait and average occupancy by hour (the service-rate curve is in the first plot)."""
    plt = _pyplot()
    hours = np.arange(len(kpis.wait_mean_s_by_hour))
    wait = np.array([np.nan if w is None else w / 60 for w in kpis.wait_mean_s_by_hour])
    occ = np.array([np.nan if x is None else x for x in kpis.occupancy_by_hour])
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot(hours, wait, color="#1e88e5", marker="o", ms=3, label="mean wait (min)")
    ax.set_xlabel("hour of day")
    ax.set_ylabel("mean wait (min)")
    ax2 = ax.twinx()
    ax2.plot(hours, occ, color="#8e24aa", marker="s", ms=3, label="riders per occupied vehicle-km")
    ax2.set_ylabel("average occupancy (riders)")
    ax2.set_ylim(0, max(2.0, float(np.nanmax(occ)) * 1.2) if np.isfinite(occ).any() else 2.0)
    ax.legend(loc="upper left")
    ax2.legend(loc="upper right")
    ax.set_title("Mean wait and occupancy by hour")
    return _png(fig)


def render_report(result: SimResult, kpis: Kpis, *, title: str) -> str:
    """The report page as one HTML string."""
    table = {k: v for k, v in kpis.to_dict().items() if not k.endswith("_by_hour")}
    rows = "\n".join(
        f"<tr><th>{html.escape(k.replace('_', ' '))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in table.items()
    )
    images = [_hourly(result), _by_hour(kpis), _waits(result), _states(result)]
    if int(result.served.sum()) >= 3:
        images.append(_map(result))
    figs = "\n".join(f'<figure><img alt="plot" src="{src}"></figure>' for src in images)
    n_out = {o.label: int((result.outcomes.outcome == o).sum()) for o in Outcome if o is not Outcome.PENDING}
    summary = ", ".join(f"{k} {v:,}" for k, v in n_out.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 4px 12px; text-align: left; }}
th {{ font-weight: 600; color: #444; }}
img {{ max-width: 100%; }} figure {{ margin: 1.5em 0; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{len(result.requests):,} requests, {len(result.fleet):,} vehicles, policy <b>{html.escape(result.policy)}</b>:
{summary}.</p>
<h2>Key performance indicators</h2>
<table>{rows}</table>
<h2>Plots</h2>
{figs}
</body></html>
"""

"""Simulator runs side by side (``robotaxi compare``): one self-contained ``compare.html`` with each run's headline
KPIs and, by hour of the day, its served share, mean wait and fleet utilisation, one line per run.

The page is built from each run's ``kpis.json`` alone (and ``scenario.toml`` for its inputs), so any runs can be
compared after the fact: the flagship with and without rebalancing, pooled against unpooled, two fleet sizes.
"""

from __future__ import annotations

import html
import json
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SimulationError
from .report import _count, _km, _minutes, _pct, _png, _pyplot, _ratio

#: What a run's kpis.json must hold to be compared (the by-hour lists are plotted).
_REQUIRED = ("requests", "served_pct", "served_pct_by_hour", "wait_mean_s_by_hour")

#: Rows of the headline table: (kpis.json field, label, formatter).
_ROWS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("vehicles", "Vehicles", _count),
    ("requests", "Ride requests", _count),
    ("served_pct", "Served share", _pct),
    ("rejected", "Turned down at request", _count),
    ("cancelled", "Cancelled while waiting", _count),
    ("wait_mean_s", "Mean wait for pickup", _minutes),
    ("wait_p90_s", "90th percentile wait", _minutes),
    ("in_vehicle_mean_s", "Mean time in the vehicle", _minutes),
    ("delay_mean_s", "Mean delay against riding alone at once", _minutes),
    ("pooled_trips_pct", "Trips shared with another rider", _pct),
    ("occupancy_mean", "Riders per occupied vehicle-km", _ratio),
    ("vehicle_km_occupied", "Vehicle-km with riders", _km),
    ("vehicle_km_empty", "Vehicle-km empty, to pickups", _km),
    ("vehicle_km_rebalancing", "Vehicle-km empty, rebalancing", _km),
    ("vehicle_km_total", "Vehicle-km in all", _km),
    ("fleet_utilisation_pct", "Fleet utilisation (busy share of time in service)", _pct),
)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One run to compare: its label, folder, ``kpis.json`` and a line of its inputs."""

    label: str
    folder: Path
    kpis: dict[str, Any]
    inputs: str


def load_run(folder: str | Path, label: str | None = None) -> RunSummary:
    """Read a run folder written by ``robotaxi simulate`` (its ``kpis.json``, and ``scenario.toml`` if present).

    Raises :class:`~robotaxi.errors.SimulationError` naming the folder and what is missing or unreadable.
    """
    path = Path(folder)
    if not path.is_dir():
        raise SimulationError(f"{path}: no such run folder")
    kpi_file = path / "kpis.json"
    if not kpi_file.is_file():
        raise SimulationError(f"{path}: no kpis.json (not a folder written by `robotaxi simulate`)")
    try:
        kpis = json.loads(kpi_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SimulationError(f"{kpi_file}: cannot read it: {e}") from e
    if not isinstance(kpis, dict):
        raise SimulationError(f"{kpi_file}: expected a JSON object of KPIs")
    missing = [k for k in _REQUIRED if k not in kpis]
    if missing:
        raise SimulationError(f"{kpi_file}: lacks {', '.join(missing)}")
    for key in ("served_pct_by_hour", "wait_mean_s_by_hour", "utilisation_pct_by_hour"):
        value = kpis.get(key, [])
        if not isinstance(value, list) or not all(x is None or isinstance(x, int | float) for x in value):
            raise SimulationError(f"{kpi_file}: {key} is not a list of numbers")
    return RunSummary(label or path.name, path, kpis, _inputs_line(path / "scenario.toml", kpis))


def _inputs_line(scenario_file: Path, kpis: dict[str, Any]) -> str:
    parts = [f"policy {kpis.get('policy', '?')}"]
    try:
        doc = tomllib.loads(scenario_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return ", ".join(parts)

    def section(name: str) -> dict[str, Any]:
        value = doc.get(name)
        return value if isinstance(value, dict) else {}

    fleet, dispatch, network = section("fleet"), section("dispatch"), section("network")
    if "capacity" in fleet:
        parts.append(f"capacity {fleet['capacity']}")
    if "max_wait_s" in dispatch:
        parts.append(f"max wait {dispatch['max_wait_s']} s")
    parts.append("rebalancing " + ("on" if section("rebalancing").get("enabled") else "off"))
    if network.get("speed_profile"):
        parts.append(f"speed profile {Path(str(network['speed_profile'])).name}")
    return ", ".join(parts)


def _series(run: RunSummary, key: str, scale: float = 1.0) -> list[float]:
    return [float("nan") if x is None else float(x) * scale for x in run.kpis.get(key, [])]


def _plot(runs: Sequence[RunSummary], key: str, ylabel: str, title: str, scale: float = 1.0) -> str | None:
    if not any(run.kpis.get(key) for run in runs):
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.5), layout="constrained")
    for run in runs:
        y = _series(run, key, scale)
        ax.plot([h + 0.5 for h in range(len(y))], y, marker="o", ms=3, label=run.label)
    ax.set_xlabel("hour of day")
    ax.set_ylabel(ylabel)
    ax.set_xlim(0, max(24, *(len(run.kpis.get(key, [])) for run in runs)))
    ax.set_xticks(range(0, 25, 3))
    ax.set_ylim(bottom=0)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title)
    return _png(fig)


def _hour_table(runs: Sequence[RunSummary]) -> str:
    hours = max(len(run.kpis["served_pct_by_hour"]) for run in runs)
    head = "".join(f"<th>{h}</th>" for h in range(hours))
    rows = []
    for run in runs:
        for key, what, scale in (
            ("served_pct_by_hour", "served %", 1.0),
            ("wait_mean_s_by_hour", "mean wait, min", 1 / 60),
            ("utilisation_pct_by_hour", "fleet busy %", 1.0),
        ):
            values = run.kpis.get(key) or []
            if not values:
                continue
            cells = "".join(
                f"<td>{'-' if x is None else f'{x * scale:.1f}'}</td>"
                for x in [*values, *[None] * (hours - len(values))]
            )
            rows.append(f"<tr><th>{html.escape(run.label)}: {what}</th>{cells}</tr>")
    table = f'<table class="hours"><tr><th>hour</th>{head}</tr>{"".join(rows)}</table>'
    return f'<div style="overflow-x: auto">{table}</div>'


def render_compare(runs: Sequence[RunSummary], title: str = "Runs compared") -> str:
    """The comparison page as one HTML string (plots embedded)."""
    if len(runs) < 2:
        raise SimulationError("compare needs at least two runs")
    head = "".join(f"<th>{html.escape(run.label)}</th>" for run in runs)
    body = []
    for key, label, fmt in _ROWS:
        if all(run.kpis.get(key) is None for run in runs):
            continue
        body.append(
            f"<tr><th>{html.escape(label)}</th>" + "".join(f"<td>{fmt(run.kpis.get(key))}</td>" for run in runs)
        )
    inputs = "".join(
        f"<li><b>{html.escape(r.label)}</b> ({html.escape(str(r.folder))}): {html.escape(r.inputs)}</li>" for r in runs
    )
    plots = [
        _plot(runs, "served_pct_by_hour", "served (%)", "Share of requests served, by hour of request"),
        _plot(runs, "wait_mean_s_by_hour", "mean wait (min)", "Mean wait for pickup, by hour of request", 1 / 60),
        _plot(runs, "utilisation_pct_by_hour", "busy (%)", "Fleet utilisation: busy share of the time in service"),
    ]
    figs = "\n".join(f'<figure><img alt="plot" src="{src}"></figure>' for src in plots if src)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: right; }}
th:first-child {{ text-align: left; font-weight: 600; color: #444; }}
table.hours {{ font-size: 0.8em; }} table.hours th:first-child {{ white-space: nowrap; }}
table.hours td, table.hours th {{ padding: 2px 4px; }}
img {{ max-width: 100%; }} figure {{ margin: 1.5em 0; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<ul>{inputs}</ul>
<h2>Key performance indicators</h2>
<table><tr><th></th>{head}</tr>{"".join(body)}</table>
<h2>By hour</h2>
{figs}
{_hour_table(runs)}
</body></html>
"""


def write_compare(runs: Sequence[RunSummary], out: str | Path, title: str = "Runs compared") -> Path:
    """Write :func:`render_compare` to ``out``."""
    page = render_compare(runs, title)
    path = Path(out)
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as e:
        raise SimulationError(f"cannot write {path}: {e.strerror}") from e
    return path

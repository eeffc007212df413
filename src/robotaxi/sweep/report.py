"""``sweep.html``: the curves fleets are sized with, in one self-contained page (plots embedded as PNG data URIs).

Served % and mean wait against fleet size (the ``vehicles`` KPI), one curve per combination of the other varied
keys (typically the policy); where several seeds share a point, the line is their mean and the band spans the
lowest to the highest seed. Below the plots, every run with its overrides and headline KPIs, and failed runs with
their errors.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .runner import RunRecord
from .spec import SweepSpec, short_name

_COLOURS = ("#1e88e5", "#d32f2f", "#43a047", "#fb8c00", "#8e24aa", "#00897b", "#6d4c41", "#546e7a")


def _pyplot() -> Any:
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


def _fmt(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def series_of(spec: SweepSpec, record: RunRecord) -> str:
    """The curve a run belongs to: its varied values other than the seed and the fleet size."""
    own = dict((p, v) for p, v in record.overrides)
    parts = [
        f"{short_name(p)}={_fmt(own[p])}"
        for p in spec.varied
        if p in own and p != "seed" and p.rsplit(".", 1)[-1] != "vehicles"
    ]
    return ", ".join(parts) or spec.name


def curves(
    spec: SweepSpec, records: Sequence[RunRecord], kpi: str
) -> dict[str, list[tuple[int, float, float, float, int]]]:
    """Per series, sorted by fleet size: ``(vehicles, mean, low, high, seeds)`` of ``kpi`` over the ok runs."""
    points: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if not r.ok or r.kpis is None or r.kpis.get(kpi) is None:
            continue
        points[series_of(spec, r)][int(r.kpis["vehicles"])].append(float(r.kpis[kpi]))
    return {
        label: [(x, sum(ys) / len(ys), min(ys), max(ys), len(ys)) for x, ys in sorted(by_x.items())]
        for label, by_x in points.items()
    }


def _plot(spec: SweepSpec, records: Sequence[RunRecord], kpi: str, ylabel: str) -> str | None:
    data = curves(spec, records, kpi)
    if not data:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for i, (label, pts) in enumerate(sorted(data.items())):
        colour = _COLOURS[i % len(_COLOURS)]
        xs = [p[0] for p in pts]
        seeds = max(p[4] for p in pts)
        ax.plot(xs, [p[1] for p in pts], marker="o", ms=4, color=colour, label=label)
        if seeds > 1:
            ax.fill_between(xs, [p[2] for p in pts], [p[3] for p in pts], color=colour, alpha=0.2, lw=0)
    ax.set_xlabel("fleet size (vehicles)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return html.escape(_fmt(value))


def render_report(spec: SweepSpec, records: Sequence[RunRecord], *, wall_s: float, backend: str) -> str:
    """The page's HTML."""
    ok = [r for r in records if r.ok]
    failed = [r for r in records if not r.ok]
    km = sum(float((r.kpis or {}).get("vehicle_km_total", 0.0)) for r in ok)
    run_wall = sum(r.wall_s or 0.0 for r in records)
    seeds = sorted({r.seed for r in records if r.seed is not None})
    plots = [
        ("Served requests against fleet size", _plot(spec, records, "served_pct", "served %")),
        ("Mean wait against fleet size", _plot(spec, records, "wait_mean_s", "mean wait (s)")),
    ]
    band = "the line is the mean over seeds, the band spans the lowest to the highest seed" if len(seeds) > 1 else ""
    head = ["run", "status", *spec.varied, "vehicles", "served %", "wait mean s", "vehicle-km", "wall s"]
    body = []
    for r in records:
        own = dict((p, v) for p, v in r.overrides)
        k = r.kpis or {}
        cells = [
            html.escape(r.name),
            r.status,
            *[_cell(own.get(p)) for p in spec.varied],
            _cell(k.get("vehicles")),
            _cell(k.get("served_pct")),
            _cell(k.get("wait_mean_s")),
            _cell(k.get("vehicle_km_total")),
            _cell(r.wall_s),
        ]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    errors = "".join(f"<li><b>{html.escape(r.name)}</b>: {html.escape(r.error or '')}</li>" for r in failed)
    figures = "".join(
        f"<h2>{title}</h2><img alt='{title}' src='{png}'>" if png else f"<h2>{title}</h2><p>no finished run</p>"
        for title, png in plots
    )
    base = html.escape(str(spec.base_source) if spec.base_source else "inline scenario")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>robotaxi sweep: {html.escape(spec.name)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}img{{max-width:100%}}</style></head><body>
<h1>robotaxi sweep: {html.escape(spec.name)}</h1>
<p>Base scenario {base}; {len(records)} runs, {len(ok)} finished, {len(failed)} failed; seeds
{", ".join(map(str, seeds)) or "-"}. This call: {wall_s:,.0f} s wall on the {backend} backend. Sum of the runs' own
wall times {run_wall:,.0f} s; {km:,.0f} simulated vehicle-km in all.</p>
{figures}
<p>{band}</p>
<h2>Runs</h2>
<table><tr>{"".join(f"<th>{html.escape(h)}</th>" for h in head)}</tr>
{"".join(body)}</table>
{f"<h2>Failed runs</h2><ul>{errors}</ul>" if failed else ""}
</body></html>
"""


def write_report(spec: SweepSpec, records: Sequence[RunRecord], path: Path, *, wall_s: float, backend: str) -> Path:
    """Write ``sweep.html`` (atomically) and return its path."""
    text = render_report(spec, records, wall_s=wall_s, backend=backend)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path

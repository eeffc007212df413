"""``robotaxi compare RUN RUN [...]``: simulator runs side by side in one ``compare.html``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import SimulationError
from .app import app, console


@app.command("compare")
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Two or more run folders written by `robotaxi simulate`.")],
    label: Annotated[
        list[str] | None, typer.Option("--label", help="A name per run, in the same order (default: folder names).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="The page to write.")] = Path("compare.html"),
    title: Annotated[str, typer.Option(help="The page's title.")] = "Runs compared",
) -> None:
    """Compare runs: headline KPIs side by side, and served %, mean wait and fleet utilisation by hour, one line
    per run (for instance the same scenario with and without rebalancing: `robotaxi simulate S.toml --set
    rebalancing.enabled=false -o out/without`)."""
    from ..sim.compare import load_run, write_compare

    if len(runs) < 2:
        raise typer.BadParameter("give at least two run folders", param_hint="RUNS")
    labels = list(label or [])
    if labels and len(labels) != len(runs):
        raise typer.BadParameter(f"{len(labels)} labels for {len(runs)} runs", param_hint="--label")
    resolved = [p.resolve() for p in runs]
    if len(set(resolved)) != len(resolved):
        raise typer.BadParameter("a run folder is given twice", param_hint="RUNS")
    loaded = [load_run(folder, labels[i] if labels else None) for i, folder in enumerate(runs)]
    names = [r.label for r in loaded]
    if len(set(names)) != len(names):
        if labels:
            raise SimulationError(f"--label: the names must differ ({', '.join(names)})")
        loaded = [load_run(r.folder, str(r.folder)) for r in loaded]  # same folder names: tell them apart by path
    path = write_compare(loaded, out, title)
    for r in loaded:
        by_hour = [x for x in r.kpis["served_pct_by_hour"] if x is not None]
        worst = f", lowest hour {min(by_hour):.1f} %" if by_hour else ""
        console.print(f"{r.label}: served {r.kpis['served_pct']:.2f} %{worst}")
    console.print(f"wrote {path}")

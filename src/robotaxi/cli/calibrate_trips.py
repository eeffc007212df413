"""``robotaxi network calibrate --trips``: fit road-class factors and a per-leg overhead to trip records."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import RobotaxiError
from .app import console

if TYPE_CHECKING:
    from ..network.tripfit import Evaluation, TripFit

_TRIP_SUFFIXES = (".csv", ".csv.gz", ".parquet")


def trip_files(paths: Sequence[Path]) -> list[Path]:
    """The files named, with folders replaced by their trip-record files (sorted)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.name.lower().endswith(_TRIP_SUFFIXES))
            if not found:
                raise RobotaxiError(f"--trips {p}: the folder holds no .csv, .csv.gz or .parquet file")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise RobotaxiError(f"--trips {p}: no such file or folder")
    return out


def calibrate_trips(
    network_path: str,
    trips: Sequence[Path],
    zones: Path,
    out: Path,
    *,
    holdout: Sequence[int],
    report: Path | None = None,
    plot: Path | None = None,
    compare: Path | None = None,
    draws: int = 8,
    seed: int = 0,
    weekdays_only: bool = True,
    major_min_speed_kmh: float = 45.0,
    zone_prior: float | None = 10.0,
) -> None:
    """Load, fit on the months not in ``holdout``, report both sides, write the profile (see docs/network.md)."""
    from ..demand.observed import load_observed_trips, trip_table
    from ..demand.zones import Zones
    from ..network import Router, SpeedProfile, load_network
    from ..network.tripfit import evaluate, fit_profile, month_split, report_text

    t0 = time.perf_counter()
    if zone_prior is not None and not (0 <= zone_prior < float("inf")):
        raise RobotaxiError(f"--zone-prior must be a number of trips >= 0 (0: no zone factors), got {zone_prior}")
    zone_prior = zone_prior or None
    files = trip_files(trips)
    zoning = Zones.from_file(zones)  # read first: a bad zones file fails before the routing table is built
    baseline = SpeedProfile.from_file(compare) if compare is not None else None
    net = load_network(network_path)
    # A neutral profile with road classes: the router then keeps the major-road seconds of every route.
    router = Router(net, profile=SpeedProfile((1.0,), major_factors=(1.0,), major_min_speed_kmh=major_min_speed_kmh))
    observed = load_observed_trips(router, files, zones, weekdays_only=weekdays_only, seed=seed)
    table = trip_table(router, observed, zoning, draws=draws, seed=seed)
    fit_mask, test_mask = month_split(table.month, holdout)
    fit = fit_profile(
        table,
        fit_mask,
        major_min_speed_kmh=major_min_speed_kmh,
        zone_prior=zone_prior,
        zones_file=str(zones.resolve()),
    )
    held = ",".join(str(m) for m in sorted(set(holdout)))
    evaluations = [
        evaluate(fit.profile, table, fit_mask, name=f"fitted months (all but {held})"),
        evaluate(fit.profile, table, test_mask, name=f"held-out months {held} (out of sample)"),
    ]
    if baseline is not None and compare is not None:
        evaluations.append(evaluate(baseline, table, test_mask, name=f"{compare.name} on the held-out months"))
    counts = ", ".join(f"{k} {v:,}" for k, v in observed.counts.items())
    text = (
        f"{net.name}: {len(files)} trip file(s): {counts}\n"
        f"fit on {fit.trips_used:,} trips: overhead {fit.profile.overhead_s:.1f} s per leg; hours filled from a "
        f"neighbour: {list(fit.filled_hours) or 'none'}\n" + _zones_text(fit) + "\n" + report_text(evaluations)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(
        [
            "robotaxi network calibrate",
            network_path,
            *(f"--trips {p}" for p in trips),
            f"--zones {zones}",
            f"--holdout-months {held}",
            *([] if draws == 8 else [f"--draws {draws}"]),
            *([] if seed == 0 else [f"--seed {seed}"]),
            *([] if weekdays_only else ["--all-days"]),
            *([] if major_min_speed_kmh == 45.0 else [f"--major-min-speed {major_min_speed_kmh:g}"]),
            *([] if zone_prior == 10.0 else [f"--zone-prior {zone_prior or 0:g}"]),
            f"--out {out}",
        ]
    )
    out.write_text(
        fit.profile.to_toml(_comment(net.name, command, fit, held, evaluations[1]), base_dir=out.resolve().parent),
        encoding="utf-8",
    )
    console.print(text, markup=False)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(text, encoding="utf-8")
        console.print(f"report written to {report}", markup=False)
    if plot is not None:
        plot_fit(evaluations, plot, f"{net.name}: observed vs simulated trip durations")
        console.print(f"plot written to {plot}", markup=False)
    console.print(f"profile written to {out} ({time.perf_counter() - t0:.0f} s)", markup=False)


def _zones_text(fit: TripFit) -> str:
    """The zone factors, lowest to highest, with the trip ends that support each."""
    if not fit.profile.zone_factors:
        return ""
    ends = dict(fit.zone_trips)
    items = sorted(fit.profile.zone_factors, key=lambda zg: zg[1])
    body = ", ".join(f"{z}: {g:.3f} ({ends.get(z, 0):,})" for z, g in items)
    return f"zone factors g (zone: g (trip ends in the fit)), a leg drives sqrt(g_a * g_b) times: {body}\n"


def _comment(name: str, command: str, fit: TripFit, held: str, test: Evaluation) -> str:
    return (
        f"Travel-time profile for {name}, fitted by `robotaxi network calibrate --trips` on {fit.trips_used:,} trips\n"
        f"(months {held} held out): hourly factors for local streets and for major roads (free flow >=\n"
        f"{fit.profile.major_min_speed_kmh:g} km/h), one overhead per leg"
        f"{' and a factor per zone' if fit.profile.zone_factors else ''}; see docs/network.md. Held out: "
        f"worst hour {100 * test.worst_hour:.1f} %,\nzone-pair x 3 h cells {100 * test.cell_error:.1f} %, "
        f"route length / meter distance {test.route_ratio:.3f}. Regenerate with:\n  {command}"
    )


def plot_fit(evaluations: Sequence[Evaluation], out: Path, title: str) -> Path:
    """Observed and simulated median durations per hour and per distance band, one line per evaluation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), dpi=110)
    try:
        ax_h, ax_d = axes
        for k, ev in enumerate(evaluations):
            style = ("-", "--", ":")[k % 3]
            hours = [int(r.label) for r in ev.by_hour]
            if k == 0:
                ax_h.plot(hours, [r.observed_median_s / 60 for r in ev.by_hour], "k-", lw=2, label="observed (fitted)")
            if k == 1:
                ax_h.plot(
                    hours, [r.observed_median_s / 60 for r in ev.by_hour], "k--", lw=2, label="observed (held out)"
                )
            ax_h.plot(hours, [r.simulated_median_s / 60 for r in ev.by_hour], style, marker="o", ms=3,
                      label=f"simulated: {ev.name}")  # fmt: skip
            x = range(len(ev.by_distance))
            ax_d.plot(x, [100 * r.signed_error for r in ev.by_distance], style, marker="o", label=ev.name)
            ax_d.set_xticks(list(x), [r.label for r in ev.by_distance], rotation=20)
        ax_h.set_xlabel("pickup hour")
        ax_h.set_ylabel("median trip duration (min)")
        ax_h.set_xticks(range(0, 24, 2))
        ax_h.legend(fontsize=7)
        ax_d.axhline(0, color="k", lw=0.8)
        ax_d.axhspan(-10, 10, color="0.9")
        ax_d.set_ylabel("simulated vs observed median (%)")
        ax_d.set_xlabel("meter distance")
        ax_d.legend(fontsize=7)
        fig.suptitle(title)
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out)
    finally:
        plt.close(fig)
    return out

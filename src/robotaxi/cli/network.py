"""``robotaxi network info`` and ``robotaxi route``."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import OffNetworkError, RobotaxiError
from .app import app, console, print_table, sub_app

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from ..network import RoadNetwork

# The network package (NumPy, SciPy, pyproj) is imported inside the commands: `robotaxi --help` and the ledger
# commands must start in a fraction of a second (issue 11, item 8).

network_app = sub_app("Road networks: load, inspect, cache.")
app.add_typer(network_app, name="network")

PathArg = Annotated[
    str,
    typer.Argument(help="OSM extract (.osm.pbf), OSMnx JSON/GraphML, a .npz cache, or 'helsinki' (embedded)."),
]


def parse_lonlat(text: str, what: str) -> tuple[float, float]:
    """Parse ``LON,LAT`` in degrees: finite, longitude in -180..180, latitude in -90..90.

    Raises
    ------
    RobotaxiError
        Naming the option, with a hint when the two numbers look swapped (LAT,LON).
    """
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        lon, lat = float(parts[0]), float(parts[1])
    except ValueError as e:
        raise RobotaxiError(f"{what}: expected LON,LAT in degrees, got {text!r}") from e
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise RobotaxiError(f"{what}: longitude and latitude must be finite numbers, got {text!r}")
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        problem = "longitude must be in -180..180" if abs(lon) > 180.0 else "latitude must be in -90..90"
        swapped = abs(lat) <= 180.0 and abs(lon) <= 90.0
        raise RobotaxiError(
            f"{what}: {problem}, got {text!r}",
            hint=f"longitude comes first: did you mean {lat:g},{lon:g}?" if swapped else "give LON,LAT in degrees",
        )
    return lon, lat


def _snap_route_ends(net: RoadNetwork, ends: list[tuple[float, float]], max_snap_m: float) -> NDArray[np.int64]:
    """Snap the route's ends; if one is off the network but its swapped LAT,LON is on it, say so."""
    import numpy as np

    lon, lat = np.array([e[0] for e in ends]), np.array([e[1] for e in ends])
    try:
        return net.snap(lon, lat, max_snap_m)
    except OffNetworkError as e:
        lo_lon, lo_lat, hi_lon, hi_lat = net.bbox
        swapped_inside = (lo_lon <= lat) & (lat <= hi_lon) & (lo_lat <= lon) & (lon <= hi_lat)
        if bool(swapped_inside.any()):
            raise OffNetworkError(
                str(e.args[0]), hint="the coordinates look swapped: give LON,LAT (longitude first)"
            ) from e
        raise


@network_app.command("info")
def info(
    path: PathArg = "helsinki",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    save: Annotated[Path | None, typer.Option(help="Also write the network to this .npz cache file.")] = None,
) -> None:
    """Nodes, edges, components dropped, bounding box and total length of a road network."""
    from rich.table import Table

    from ..network import load_network

    t0 = time.perf_counter()
    net = load_network(path)
    facts = net.summary()
    facts["load_seconds"] = round(time.perf_counter() - t0, 3)
    if save is not None:
        from ..network import save_network

        save_network(net, save)
        facts["saved_to"] = str(save)
    if as_json:
        console.print_json(json.dumps(facts))
        return
    table = Table(title=f"road network: {net.name}", show_header=False)
    pr = net.prune
    rows = [
        ("source", net.source),
        ("nodes", f"{net.n_nodes:,}"),
        ("edges", f"{net.n_edges:,}"),
        (
            "dropped (not in largest SCC)",
            f"{pr.nodes_dropped:,} nodes, {pr.edges_dropped:,} edges in {pr.components_dropped:,} components",
        ),
        ("self-loops dropped / parallel merged", f"{pr.self_loops_dropped:,} / {pr.parallel_edges_merged:,}"),
        ("bbox (lon/lat)", ", ".join(f"{v:.5f}" for v in net.bbox)),
        ("total length", f"{net.total_km:,.1f} km (directed)"),
        ("mean free-flow speed", f"{facts['mean_speed_kmh']} km/h"),
        ("projected CRS", net.crs),
        ("loaded in", f"{facts['load_seconds']} s"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    print_table(table)


@app.command("route")
def route(
    path: PathArg = "helsinki",
    from_: Annotated[str, typer.Option("--from", help="Origin as LON,LAT.")] = "",
    to: Annotated[str, typer.Option("--to", help="Destination as LON,LAT.")] = "",
    max_snap_m: Annotated[
        float | None, typer.Option(help="Snapping limit in metres (default: the network's, 500 m).")
    ] = None,
    depart: Annotated[float | None, typer.Option(help="Departure, seconds after midnight.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Fastest route between two coordinates: time, distance and number of nodes."""
    from ..network import DEFAULT_SNAP_LIMIT_M, Router, load_network

    if not from_ or not to:
        raise RobotaxiError("route: give both --from LON,LAT and --to LON,LAT")
    if depart is not None and not math.isfinite(depart):
        raise RobotaxiError(f"--depart: expected seconds after midnight, got {depart}")
    o_lon, o_lat = parse_lonlat(from_, "--from")
    d_lon, d_lat = parse_lonlat(to, "--to")
    net = load_network(path)
    limit = DEFAULT_SNAP_LIMIT_M if max_snap_m is None else max_snap_m
    nodes = _snap_route_ends(net, [(o_lon, o_lat), (d_lon, d_lat)], limit)
    # One route needs two Dijkstra rows, not the whole table.
    router = Router(net, table_max_nodes=0)
    o, d = int(nodes[0]), int(nodes[1])
    time_s = int(router.times(o, d, depart))
    dist_m = int(router.distances(o, d))
    result: dict[str, str | int] = {
        "network": net.name,
        "from_node": int(net.node_id[o]),
        "to_node": int(net.node_id[d]),
        "time_s": time_s,
        "distance_m": dist_m,
        "nodes": int(router.path(o, d).size),
    }
    if as_json:
        console.print_json(json.dumps(result))
        return
    console.print(
        f"{net.name}: {time_s // 60} min {time_s % 60} s, {dist_m / 1000:.2f} km, {result['nodes']} nodes "
        f"(OSM node {result['from_node']} -> {result['to_node']})"
    )


@network_app.command("calibrate")
def calibrate(
    path: PathArg,
    zones: Annotated[
        Path, typer.Option(help="Zone polygons: GeoJSON with an integer zone-id property (WGS84, or see --zones-crs).")
    ],
    out: Annotated[Path, typer.Option(help="Write the speed profile (TOML) here.")],
    trips: Annotated[
        list[Path] | None,
        typer.Option(
            help="TLC trip records with drop-off times and distances (CSV/Parquet files, or folders of them); "
            "repeat for several. Fits road-class factors and a per-leg overhead."
        ),
    ] = None,
    speeds: Annotated[
        Path | None,
        typer.Option(help="Observed speeds CSV (puzone, dozone, min, speed_mean): the older one-factor-per-slot fit."),
    ] = None,
    holdout_months: Annotated[
        str, typer.Option(help="With --trips: months left out of the fit and reported out of sample.")
    ] = "3,6,9,12",
    report: Annotated[Path | None, typer.Option(help="With --trips: write the fit report (text) here.")] = None,
    plot: Annotated[Path | None, typer.Option(help="With --trips: write the fit plot (PNG) here.")] = None,
    compare: Annotated[
        Path | None, typer.Option(help="With --trips: also report this existing profile on the held-out months.")
    ] = None,
    draws: Annotated[int, typer.Option(help="With --trips: placements drawn per trip for the simulated medians.")] = 8,
    seed: Annotated[int, typer.Option(help="With --trips: seed of the trip-end placements.")] = 0,
    all_days: Annotated[
        bool, typer.Option("--all-days", help="With --trips: keep weekends and holidays (default: business days).")
    ] = False,
    major_min_speed: Annotated[
        float, typer.Option(help="With --trips: free-flow km/h from which an edge is a major road.")
    ] = 45.0,
    zone_prior: Annotated[
        float,
        typer.Option(
            help="With --trips: also fit one travel-time factor per zone, shrunk towards 1 by a prior worth this "
            "many trips per zone; 0 = no zone factors."
        ),
    ] = 10.0,
    slots: Annotated[int, typer.Option(help="With --speeds: 24 (hourly) or 96 (15-minute) factors.")] = 96,
    speed_unit_m: Annotated[
        float, typer.Option(help="With --speeds: metres per distance unit of speed_mean.")
    ] = 1000.0,
    id_field: Annotated[
        str, typer.Option("--zone-id-property", "--id-field", help="Zone-id property of the zone polygons.")
    ] = "LocationID",
    zones_crs: Annotated[
        str | None,
        typer.Option(
            help="CRS of projected zone polygons, when the file names none: EPSG:32618, or a PROJ string with "
            "units, e.g. '+proj=utm +zone=18 +datum=WGS84 +units=km' for UTM kilometres."
        ),
    ] = None,
) -> None:
    """Fit travel-time factors: to trip records (--trips) or to observed zone-to-zone speeds (--speeds)."""
    if (trips is None) == (speeds is None):
        raise RobotaxiError("give either --trips (trip records) or --speeds (zone-to-zone speeds), not both or neither")
    if speeds is not None:
        _calibrate_speeds(path, speeds, zones, out, slots, speed_unit_m, id_field, zones_crs)
        return
    if trips is not None:
        from .calibrate_trips import calibrate_trips

        calibrate_trips(
            path,
            trips,
            zones,
            out,
            holdout=_months(holdout_months),
            report=report,
            plot=plot,
            compare=compare,
            draws=draws,
            seed=seed,
            weekdays_only=not all_days,
            major_min_speed_kmh=major_min_speed,
            zone_prior=zone_prior,
        )


def _months(text: str) -> list[int]:
    try:
        months = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as e:
        raise RobotaxiError(f"--holdout-months: expected month numbers like 3,6,9,12, got {text!r}") from e
    if not months:
        raise RobotaxiError("--holdout-months: give at least one month (1..12) to validate on")
    return months


def _calibrate_speeds(
    path: str,
    speeds: Path,
    zones: Path,
    out: Path,
    slots: int,
    speed_unit_m: float,
    id_field: str,
    zones_crs: str | None,
) -> None:
    from ..network import Router, load_network
    from ..network.calibrate import calibrate_profile, write_profile, zone_nodes

    net = load_network(path)
    zone_nodes(net, zones, id_field=id_field, crs=zones_crs)  # a bad zones file fails before the routing table
    profile, diag = calibrate_profile(
        Router(net), speeds, zones, slots=slots, speed_unit_m=speed_unit_m, id_field=id_field, zones_crs=zones_crs
    )
    comment = (
        f"Travel-time factors for {net.name}, {slots} slots, fitted by `robotaxi network calibrate`\n"
        f"from {speeds.name} and {zones.name}: median of (observed / free-flow time) over "
        f"{int(diag['pairs_used']):,} zone-pair observations."
    )
    write_profile(profile, out, comment=comment)
    console.print(
        f"{net.name}: {slots} factors from {int(diag['pairs_used']):,} zone-pair observations, "
        f"median {diag['median_factor']:.2f} (range {diag['min_factor']:.2f}-{diag['max_factor']:.2f}); "
        f"free-flow {diag['free_flow_mean_kmh']:.1f} km/h -> about "
        f"{diag['free_flow_mean_kmh'] / diag['median_factor']:.1f} km/h. Wrote {out}"
    )

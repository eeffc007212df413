"""Calibrate time-of-day travel-time factors against observed zone-to-zone speeds.

Input: a table of observed mean speeds per (pickup zone, dropoff zone, minute of day), such as the NYC TLC 2018
derived ``speeds.csv`` (``puzone, dozone, min, speed_mean`` with speeds in km/s), and the zone polygons (WGS84
GeoJSON with a zone-id property). Method, per time slot:

1. each zone is represented by the network node nearest to a point inside its polygon (zones farther than
   ``max_snap_m`` from the network are left out);
2. for every zone pair (different zones, fastest route at least ``min_distance_m`` long) the observed travel time is
   the route length divided by the observed speed, and the pair's ratio is observed time / free-flow time;
3. the slot's factor is the median of the ratios (robust to the odd pair with few trips).

Slots without observations take the factor of the nearest slot that has one (circularly). This is the "static
scaling at departure" model of :mod:`robotaxi.network.speeds`; it fits one congestion ratio per slot, not per zone.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely
from numpy.typing import NDArray

from ..errors import NetworkError
from .graph import RoadNetwork
from .router import Router
from .speeds import DAY_S, SpeedProfile

logger = logging.getLogger(__name__)

_SPEED_COLUMNS = ("puzone", "dozone", "min", "speed_mean")


def _geojson_crs(data: Any) -> str | None:
    """The CRS a GeoJSON file names in its (pre-RFC 7946) ``crs`` member, e.g. ``urn:ogc:def:crs:EPSG::32618``."""
    crs = data.get("crs") if isinstance(data, dict) else None
    if isinstance(crs, dict) and isinstance(crs.get("properties"), dict):
        name = crs["properties"].get("name")
        return name if isinstance(name, str) and name else None
    return None


def _zone_ids(p: Path, feats: list[Any], id_field: str) -> list[int]:
    ids = []
    for i, f in enumerate(feats):
        props = f.get("properties") if isinstance(f, dict) else None
        if not isinstance(props, dict) or id_field not in props:
            have = ", ".join(sorted(props)) if isinstance(props, dict) else "none"
            raise NetworkError(
                f"{p}: feature {i} has no {id_field!r} property (its properties: {have})",
                hint="name the zone-id property with --zone-id-property",
            )
        try:
            ids.append(int(props[id_field]))
        except (TypeError, ValueError) as e:
            raise NetworkError(f"{p}: feature {i}: zone id {props[id_field]!r} is not an integer") from e
    return ids


def _to_lonlat(p: Path, x: NDArray[np.float64], y: NDArray[np.float64], crs: str | None) -> tuple[Any, Any]:
    """Zone points in WGS84 degrees: transformed from ``crs`` when given, else checked to be degrees."""
    if crs is None:
        if np.nanmax(np.abs(y)) > 90 or np.nanmax(np.abs(x)) > 180:
            raise NetworkError(
                f"{p}: coordinates are projected (x up to {np.nanmax(np.abs(x)):,.1f}, y up to "
                f"{np.nanmax(np.abs(y)):,.1f}), not WGS84 degrees, and the file names no CRS",
                hint="give --zones-crs, e.g. EPSG:32618, or '+proj=utm +zone=18 +datum=WGS84 +units=km' for kilometres",
            )
        return x, y
    from pyproj import CRS, Transformer
    from pyproj.exceptions import CRSError

    try:
        source = CRS.from_user_input(crs)
    except CRSError as e:
        raise NetworkError(f"{p}: unknown zones CRS {crs!r}: {e}") from e
    lon, lat = Transformer.from_crs(source, "EPSG:4326", always_xy=True).transform(x, y)
    if not (np.all(np.isfinite(lon)) and np.all(np.isfinite(lat))):
        raise NetworkError(f"{p}: the zones do not transform from {crs} to longitude/latitude")
    return lon, lat


def zone_nodes(
    network: RoadNetwork,
    zones_geojson: str | Path,
    *,
    id_field: str = "LocationID",
    max_snap_m: float = 500.0,
    crs: str | None = None,
) -> dict[int, int]:
    """Zone id -> representative network node, for the zones within ``max_snap_m`` of the network.

    Parameters
    ----------
    network
        The road network.
    zones_geojson
        GeoJSON FeatureCollection of zone polygons with an integer zone-id property.
    id_field
        Name of the zone-id property.
    max_snap_m
        Zones farther than this from every node are left out.
    crs
        CRS of the coordinates (anything pyproj reads: ``EPSG:32618``, a PROJ string with ``+units=km``...);
        default: the file's own ``crs`` member, else WGS84 degrees (RFC 7946).
    """
    p = Path(zones_geojson)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        feats = data["features"]
        if not isinstance(feats, list):
            raise TypeError("features is not a list")
        ids = _zone_ids(p, feats, id_field)
        geoms = [shapely.geometry.shape(f["geometry"]) for f in feats]
    except FileNotFoundError as e:
        raise NetworkError(f"zones file not found: {p}") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise NetworkError(f"{p}: not a JSON file: {e}") from e
    except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException) as e:
        raise NetworkError(f"{p}: not a GeoJSON FeatureCollection of polygons: {e}") from e
    pts = shapely.point_on_surface(np.asarray(geoms, dtype=object))
    lon, lat = _to_lonlat(p, shapely.get_x(pts), shapely.get_y(pts), crs or _geojson_crs(data))
    node, dist = network.nearest(lon, lat)
    out: dict[int, int] = {}
    for zid, n, d in zip(ids, node.tolist(), dist.tolist(), strict=True):
        if d <= max_snap_m and zid not in out:
            out[zid] = n
    if not out:
        raise NetworkError(f"{p}: no zone lies within {max_snap_m:.0f} m of the {network.name} network")
    return out


def _read_speeds(path: Path) -> dict[str, NDArray[np.float64]]:
    try:
        table = pacsv.read_csv(path)
    except FileNotFoundError as e:
        raise NetworkError(f"speeds file not found: {path}") from e
    except pa.ArrowInvalid as e:
        raise NetworkError(f"{path}: not a readable CSV: {e}") from e
    missing = [c for c in _SPEED_COLUMNS if c not in table.column_names]
    if missing:
        raise NetworkError(f"{path}: missing columns {', '.join(missing)} (need {', '.join(_SPEED_COLUMNS)})")
    return {c: table.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in _SPEED_COLUMNS}


def calibrate_profile(
    router: Router,
    speeds_csv: str | Path,
    zones_geojson: str | Path,
    *,
    speed_unit_m: float = 1000.0,
    slots: int = 96,
    min_distance_m: float = 1000.0,
    id_field: str = "LocationID",
    zones_crs: str | None = None,
) -> tuple[SpeedProfile, dict[str, float]]:
    """Fit a :class:`SpeedProfile` to observed speeds; returns it with a few diagnostics.

    Parameters
    ----------
    speed_unit_m : float
        Metres per unit of distance in ``speed_mean`` (1000 for km/s as in the TLC-derived file).
    slots : int
        24 (hourly) or 96 (15-minute) factors.
    id_field : str
        Zone-id property of the zones file.
    zones_crs : str or None
        CRS of the zones file when it is not WGS84 and does not name its own (see :func:`zone_nodes`).
    """
    if slots not in (24, 96):
        raise NetworkError(f"calibration needs 24 or 96 slots, got {slots}")
    net = router.network
    zn = zone_nodes(net, zones_geojson, id_field=id_field, crs=zones_crs)
    s = _read_speeds(Path(speeds_csv))
    pu, do = s["puzone"].astype(np.int64), s["dozone"].astype(np.int64)
    lookup = np.full(int(max(pu.max(), do.max(), *zn)) + 1, -1, dtype=np.int64)
    lookup[list(zn)] = list(zn.values())
    o = lookup[np.clip(pu, 0, lookup.size - 1)]
    d = lookup[np.clip(do, 0, lookup.size - 1)]
    speed = s["speed_mean"] * speed_unit_m  # m/s
    ok = (o >= 0) & (d >= 0) & (pu != do) & (speed > 0) & np.isfinite(speed)
    o, d, speed, minute = o[ok], d[ok], speed[ok], s["min"][ok]
    dist = router.distances(o, d).astype(np.float64)
    free = router.times(o, d).astype(np.float64)
    far = dist >= min_distance_m
    ratio = (dist[far] / speed[far]) / free[far]
    slot = (minute[far] * 60 // (DAY_S // slots)).astype(np.int64) % slots
    factors = np.full(slots, np.nan)
    for k in range(slots):
        vals = ratio[slot == k]
        if vals.size:
            factors[k] = float(np.median(vals))
    have = np.flatnonzero(np.isfinite(factors))
    if have.size == 0:
        raise NetworkError(f"{speeds_csv}: no zone pair of at least {min_distance_m:.0f} m on the network to calibrate")
    for k in np.flatnonzero(~np.isfinite(factors)).tolist():
        gap = np.minimum(np.abs(have - k), slots - np.abs(have - k))
        factors[k] = factors[have[np.argmin(gap)]]
    factors = np.clip(np.round(factors, 3), 0.1, 20.0)
    diagnostics = {
        "zones_on_network": float(len(zn)),
        "pairs_used": float(ratio.size),
        "median_factor": float(np.median(factors)),
        "min_factor": float(factors.min()),
        "max_factor": float(factors.max()),
        "free_flow_mean_kmh": float(np.average(net.speed_kmh, weights=net.length_m)),
    }
    logger.info("calibrated %d slots from %d zone pairs", slots, ratio.size)
    return SpeedProfile(tuple(float(f) for f in factors)), diagnostics


def write_profile(profile: SpeedProfile, path: str | Path, *, comment: str = "") -> Path:
    """Write a profile as TOML readable by :meth:`SpeedProfile.from_file`."""
    p = Path(path)
    p.write_text(profile.to_toml(comment), encoding="utf-8")
    return p

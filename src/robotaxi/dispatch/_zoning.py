"""Rebalancing zones: which zone each road-network node lies in, and where in each zone vehicles are sent.

A :class:`Zoning` is built once per scenario, either from square grid cells over the network's metric coordinates
or from zone polygons (the NYC TLC taxi zones, any GeoJSON or shapefile zoning). Zones that contain no network node
are dropped; nodes outside every zone get zone -1 and take no part in rebalancing.

The *centre* of a zone is the node vehicles are sent to. It is chosen among the zone's nodes nearest its centroid
(``_CENTRE_CANDIDATES`` of them, Euclidean) as the one minimising the sum of free-flow travel times *from* it to the
zone's nodes (all of them, or an evenly spaced sample of ``_CENTRE_TARGETS`` in large zones): a well-connected node
near the middle, from which a vehicle reaches any pickup in the zone quickly. Only the outbound direction is used
because a :class:`~robotaxi.network.Router` without a full table computes one Dijkstra per *origin*, so the cost of
building a zoning stays at ``_CENTRE_CANDIDATES`` searches per zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely import STRtree

from ..demand.zones import Zones
from ..errors import DemandError, DispatchError
from ..network import RoadNetwork, TravelTimes

I32 = NDArray[np.int32]
I64 = NDArray[np.int64]

_CENTRE_CANDIDATES = 16
_CENTRE_TARGETS = 128


@dataclass(frozen=True, slots=True, eq=False)
class Zoning:
    """Rebalancing zones over one road network.

    Attributes
    ----------
    zone_of_node : ndarray of int32, shape (n_nodes,)
        Zone index of every network node, -1 for nodes in no zone.
    center_node : ndarray of int32, shape (n_zones,)
        Per zone, the node vehicles are sent to: among the 16 zone nodes nearest the zone's centroid, the one
        minimising the sum of free-flow travel times to the zone's nodes (see the module notes).
    names : tuple of str
        Per zone, a name: the zone's name property (or its id) for polygon zonings, ``"r<row>c<col>"`` for grids.

    Notes
    -----
    Arrays are stored as read-only copies. Every zone has at least one node and its centre is one of them.
    """

    zone_of_node: I32
    center_node: I32
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        zon = _int_vector(self.zone_of_node, "zone_of_node")
        cen = _int_vector(self.center_node, "center_node")
        n_zones = cen.shape[0]
        if zon.shape[0] == 0:
            raise ValueError("Zoning.zone_of_node must have one entry per network node (got none)")
        if n_zones == 0:
            raise ValueError("Zoning.center_node must name at least one zone")
        if len(self.names) != n_zones:
            raise ValueError(f"Zoning.names must have one entry per zone ({n_zones}), got {len(self.names)}")
        if int(zon.min()) < -1 or int(zon.max()) >= n_zones:
            raise ValueError(f"Zoning.zone_of_node values must be -1 or a zone index in 0..{n_zones - 1}")
        if int(cen.min()) < 0 or int(cen.max()) >= zon.shape[0]:
            raise ValueError(f"Zoning.center_node values must be node indices in 0..{zon.shape[0] - 1}")
        if np.any(zon[cen] != np.arange(n_zones)):
            k = int(np.argmax(zon[cen] != np.arange(n_zones)))
            raise ValueError(f"Zoning.center_node: the centre of zone {k} (node {int(cen[k])}) is not in zone {k}")
        object.__setattr__(self, "zone_of_node", _read_only(zon))
        object.__setattr__(self, "center_node", _read_only(cen))
        object.__setattr__(self, "names", tuple(str(s) for s in self.names))

    @property
    def n_zones(self) -> int:
        """Number of zones."""
        return int(self.center_node.shape[0])

    @classmethod
    def grid(cls, network: RoadNetwork, travel: TravelTimes, cell_m: float = 1000.0) -> Zoning:
        """Square cells of ``cell_m`` metres over the network's projected coordinates; empty cells are dropped.

        The network's ``x``/``y`` are already in its local metric projection (the UTM zone of the city, see
        :mod:`robotaxi.network.projection`). Cells are aligned on the south-west corner of the network's bounding
        box; zones are numbered row by row from the south-west, and named ``"r<row>c<col>"``.

        Raises
        ------
        ValueError
            If ``cell_m`` is not a positive finite number.
        """
        if not (np.isfinite(cell_m) and cell_m > 0):
            raise ValueError(f"cell_m must be a positive number of metres, got {cell_m}")
        col = np.floor((network.x - network.x.min()) / cell_m).astype(np.int64)
        row = np.floor((network.y - network.y.min()) / cell_m).astype(np.int64)
        n_cols = int(col.max()) + 1
        cell = row * n_cols + col
        used = np.unique(cell)
        label = np.searchsorted(used, cell)
        names = tuple(f"r{c // n_cols}c{c % n_cols}" for c in used.tolist())
        return cls(label.astype(np.int32), _centres(network, travel, label, used.shape[0]), names)

    @classmethod
    def from_geojson(
        cls, network: RoadNetwork, travel: TravelTimes, path: Path | str, id_property: str = "LocationID"
    ) -> Zoning:
        """Zones from polygons (GeoJSON in WGS84, or a shapefile with its ``.prj``).

        Each node goes to the polygon that covers it, boundary included (one STRtree query over all nodes; a node
        on a border between zones, or where polygons overlap, goes to the lowest zone id); nodes outside every
        polygon get -1. Features sharing an id are merged (TLC ids 56 and 103 span several features). Zones with
        no node are dropped; the others keep the order of their ids and are named by the file's zone-name property
        (``zone`` for TLC), or by their id.

        Raises
        ------
        DispatchError
            If the file is missing or malformed (not GeoJSON, no ``id_property``, a geometry that is not a polygon,
            coordinates that are not lon/lat), or no zone contains a node of ``network``; the message names the
            file and the problem.
        """
        try:
            zones = Zones.from_file(path, id_field=id_property)
        except DemandError as e:
            raise DispatchError(f"rebalancing zones: {e}") from e
        pos = _locate(zones, network)
        used = np.unique(pos[pos >= 0])
        if used.shape[0] == 0:
            raise DispatchError(f"rebalancing zones: {path}: no zone contains a node of the {network.name} network")
        label = np.where(pos >= 0, np.searchsorted(used, np.maximum(pos, 0)), -1)
        names = tuple(zones.names[k] or str(int(zones.ids[k])) for k in used.tolist())
        return cls(label.astype(np.int32), _centres(network, travel, label, used.shape[0]), names)


def _locate(zones: Zones, network: RoadNetwork) -> I64:
    """Index in ``zones`` of the first zone that covers each node, -1 for none.

    "Covers" includes the boundary: TLC zone borders run along street centre lines, so many intersections lie
    exactly on one, and a ``within`` test would leave them in no zone.
    """
    points = shapely.points(network.lon, network.lat)
    point_i, zone_i = STRtree(list(zones.geometries)).query(points, predicate="intersects")
    first = np.full(network.n_nodes, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, point_i, zone_i.astype(np.int64))
    return np.where(first == np.iinfo(np.int64).max, -1, first)


def _centres(network: RoadNetwork, travel: TravelTimes, label: I64, n_zones: int) -> I32:
    """The centre node of each zone (see the module notes), with one travel-time query for all zones."""
    nodes = np.flatnonzero(label >= 0)
    by_zone = nodes[np.argsort(label[nodes], kind="stable")]  # node indices ascending within each zone
    bounds = np.searchsorted(label[by_zone], np.arange(n_zones + 1))
    cx = np.bincount(label[nodes], weights=network.x[nodes], minlength=n_zones) / np.diff(bounds)
    cy = np.bincount(label[nodes], weights=network.y[nodes], minlength=n_zones) / np.diff(bounds)
    cand_parts: list[I64] = []
    orig_parts: list[I64] = []
    dest_parts: list[I64] = []
    for k in range(n_zones):
        members = by_zone[bounds[k] : bounds[k + 1]]
        d2 = (network.x[members] - cx[k]) ** 2 + (network.y[members] - cy[k]) ** 2
        cands = members[np.lexsort((members, d2))[:_CENTRE_CANDIDATES]]
        if members.shape[0] > _CENTRE_TARGETS:
            members = members[np.unique(np.linspace(0, members.shape[0] - 1, _CENTRE_TARGETS).astype(np.int64))]
        cand_parts.append(cands)
        orig_parts.append(np.repeat(cands, members.shape[0]))
        dest_parts.append(np.tile(members, cands.shape[0]))
    cand = np.concatenate(cand_parts)
    origin = np.concatenate(orig_parts)
    seconds = travel.times(origin, np.concatenate(dest_parts)).astype(np.int64)
    # Sum the times per candidate: candidates are unique nodes, so the origin node identifies its row.
    sums = np.bincount(np.searchsorted(np.sort(cand), origin), weights=seconds, minlength=cand.shape[0])
    total = sums[np.searchsorted(np.sort(cand), cand)]
    zone = label[cand]
    # Lowest total per zone; ties go to the candidate nearest the centroid (the earlier one in ``cand``).
    order = np.lexsort((np.arange(cand.shape[0]), total, zone))
    first = np.searchsorted(zone[order], np.arange(n_zones))
    return cand[order[first]].astype(np.int32)


def _int_vector(a: object, name: str) -> I32:
    arr = np.asarray(a)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ValueError(f"Zoning.{name} must be a 1-D integer array, got shape {arr.shape} and dtype {arr.dtype}")
    return arr.astype(np.int32)


def _read_only(a: I32) -> I32:
    out = a.copy()
    out.setflags(write=False)
    return out

"""Zone polygons (NYC TLC taxi zones or any GeoJSON/shapefile zoning) and the network nodes inside each zone.

A zone-based trip record or an origin-destination count names zones, not points. We place each trip end on a
random network node inside its zone, drawn uniformly with an injected generator: the point is then on the road
network by construction, and the same seed gives the same nodes.

Each node belongs to at most one zone (the first polygon that contains it), so two different zones never share a
node and a trip between different zones never has zero length. A zone that contains no node (a park at the edge of
the network, say) takes the unassigned nodes within ``buffer_m`` of its boundary; a zone left without any node is
outside the network's area.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import CRS, Transformer
from shapely import STRtree
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from ..errors import DemandError
from ..network import RoadNetwork
from .validation import RejectReason, check_file

logger = logging.getLogger(__name__)

#: Property names tried, in order, for a zone's id when none is given.
ID_FIELDS = ("LocationID", "locationid", "location_id", "zone_id", "zoneid", "id")
NAME_FIELDS = ("zone", "zone_name", "name", "Zone")

I64 = NDArray[np.int64]


#: Zone files already read, by (resolved path, modification time, size, id field): files are read once per
#: process while unchanged (the Zones are immutable: tuples of shapely geometries and a read-only id array).
_READ: dict[tuple[str, int, int, str | None], Zones] = {}
_READ_MAX = 8


@dataclass(frozen=True, slots=True, eq=False)
class Zones:
    """Zone polygons in WGS84, one (multi)polygon per zone id.

    Attributes
    ----------
    ids : ndarray of int64
        Zone ids, unique and increasing.
    geometries : tuple of shapely geometries
        One geometry per id (ids that appear on several features are merged, as TLC ids 56 and 103 are).
    names : tuple of str
        Zone names ("" when the file has none).
    source : str
        The file the zones came from.
    """

    ids: I64
    geometries: tuple[BaseGeometry, ...]
    names: tuple[str, ...]
    source: str = ""

    def __post_init__(self) -> None:
        n = self.ids.shape[0]
        if self.ids.ndim != 1 or n == 0:
            raise ValueError("Zones.ids must be a non-empty 1-D array")
        if len(self.geometries) != n or len(self.names) != n:
            raise ValueError("Zones.geometries and Zones.names must have one entry per id")
        if np.any(np.diff(self.ids) <= 0):
            raise ValueError("Zones.ids must be unique and increasing")

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @classmethod
    def from_file(cls, path: str | Path, *, id_field: str | None = None) -> Zones:
        """Read zones from GeoJSON (WGS84) or a shapefile (any CRS named by its ``.prj``).

        Raises
        ------
        DemandError
            If the file is missing, not a zone file, or has no usable id property.
        """
        p = check_file(path, "zones file")
        st = p.stat()
        key = (str(p.resolve()), st.st_mtime_ns, st.st_size, id_field)
        cached = _READ.get(key)
        if cached is not None:  # a scenario reads its zones for the demand, its forecast draw and rebalancing
            return cached
        if p.suffix.lower() == ".shp":
            ids, geoms, names = _read_shapefile(p, id_field)
        else:
            ids, geoms, names = _read_geojson(p, id_field)
        zones = cls.from_features(ids, geoms, names, source=str(p))
        zones.ids.setflags(write=False)  # shared by every reader of the same file: read-only
        if len(_READ) >= _READ_MAX:
            _READ.pop(next(iter(_READ)))
        _READ[key] = zones
        return zones

    @classmethod
    def from_features(cls, ids: list[int], geoms: list[BaseGeometry], names: list[str], *, source: str = "") -> Zones:
        """Zones from parallel lists; features sharing an id are merged into one geometry."""
        if not ids:
            raise DemandError(f"{source or 'zones'}: no zone features")
        by_id: dict[int, list[BaseGeometry]] = {}
        name_of: dict[int, str] = {}
        for zid, g, name in zip(ids, geoms, names, strict=True):
            by_id.setdefault(zid, []).append(g)
            name_of.setdefault(zid, name)
        order = sorted(by_id)
        merged = tuple(g[0] if len(g) == 1 else shapely.union_all(g) for g in (by_id[z] for z in order))
        return cls(np.asarray(order, dtype=np.int64), merged, tuple(name_of[z] for z in order), source)

    def index_of(self, zone_ids: NDArray[Any]) -> I64:
        """Position of each zone id in ``ids``, -1 for ids that are not zones."""
        z = np.asarray(zone_ids, dtype=np.int64)
        pos = np.searchsorted(self.ids, z)
        pos_c = np.minimum(pos, self.ids.shape[0] - 1)
        return np.where(self.ids[pos_c] == z, pos_c, -1).astype(np.int64)

    def locate(self, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> I64:
        """Zone id containing each point (vectorised), -1 outside every zone."""
        pts = shapely.points(lon, lat)
        point_i, geom_i = STRtree(list(self.geometries)).query(pts, predicate="within")
        out = np.full(np.asarray(lon).shape[0], -1, dtype=np.int64)
        # Reverse so the first polygon wins where polygons overlap.
        out[point_i[::-1]] = self.ids[geom_i[::-1]]
        return out


def _pick_field(available: list[str], wanted: str | None, candidates: tuple[str, ...], path: Path) -> str | None:
    if wanted is not None:
        if wanted not in available:
            raise DemandError(f"{path}: zone property {wanted!r} not found (properties: {', '.join(available)})")
        return wanted
    return next((c for c in candidates if c in available), None)


def _read_geojson(p: Path, id_field: str | None) -> tuple[list[int], list[BaseGeometry], list[str]]:
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DemandError(f"{p}: not a GeoJSON file: {e}") from e
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list) or not features:
        raise DemandError(f"{p}: not a GeoJSON FeatureCollection with features")
    props0 = list((features[0].get("properties") or {}).keys())
    key = _pick_field(props0, id_field, ID_FIELDS, p)
    name_key = _pick_field(props0, None, NAME_FIELDS, p)
    ids: list[int] = []
    geoms: list[BaseGeometry] = []
    names: list[str] = []
    for i, f in enumerate(features):
        props = f.get("properties") or {}
        raw: Any = props.get(key) if key is not None else f.get("id")
        try:
            ids.append(int(raw))
            geoms.append(shape(f["geometry"]))
        except (TypeError, ValueError, KeyError, AttributeError, shapely.errors.GEOSException) as e:
            raise DemandError(f"{p}: feature {i} has no usable zone id or geometry ({e})") from e
        names.append(str(props.get(name_key, "")) if name_key else "")
    bad = [g for g in geoms if g.geom_type not in ("Polygon", "MultiPolygon")]
    if bad:
        raise DemandError(f"{p}: zones must be polygons, found {bad[0].geom_type}")
    _check_wgs84(geoms, p)
    return ids, geoms, names


def _check_wgs84(geoms: list[BaseGeometry], p: Path) -> None:
    x0, y0, x1, y1 = shapely.total_bounds(np.asarray(geoms, dtype=object))
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise DemandError(
            f"{p}: zone coordinates are not WGS84 lon/lat (bounds {x0:.1f}, {y0:.1f}, {x1:.1f}, {y1:.1f})",
            hint="reproject the zones to EPSG:4326, or give a shapefile with its .prj",
        )


def _read_shapefile(p: Path, id_field: str | None) -> tuple[list[int], list[BaseGeometry], list[str]]:
    # pyogrio comes with geopandas (a dependency of pyrosm); imported here because only shapefiles need it.
    import pyogrio.raw  # type: ignore[import-untyped]

    try:
        meta, _fids, wkb, fields = pyogrio.raw.read(p)
    except Exception as e:  # pyogrio raises several GDAL-specific types; all mean "not a readable shapefile"
        raise DemandError(f"{p}: not a readable shapefile: {e}") from e
    names_avail = [str(n) for n in meta["fields"]]
    key = _pick_field(names_avail, id_field, ID_FIELDS, p)
    if key is None:
        raise DemandError(f"{p}: no zone id field (tried {', '.join(ID_FIELDS)})", hint="give id_field")
    name_key = _pick_field(names_avail, None, NAME_FIELDS, p)
    geoms = list(shapely.from_wkb(wkb))
    crs = meta.get("crs")
    if crs:
        tr = Transformer.from_crs(CRS.from_user_input(crs), "EPSG:4326", always_xy=True)

        def to_wgs84(xy: NDArray[np.float64]) -> NDArray[np.float64]:
            x, y = tr.transform(xy[:, 0], xy[:, 1])
            return np.column_stack((x, y))

        geoms = list(shapely.transform(np.asarray(geoms, dtype=object), to_wgs84))
    ids = [int(v) for v in fields[names_avail.index(key)]]
    names = [str(v) for v in fields[names_avail.index(name_key)]] if name_key else [""] * len(ids)
    _check_wgs84(geoms, p)
    return ids, geoms, names


@dataclass(frozen=True, slots=True, eq=False)
class ZoneNodes:
    """The network nodes of each zone, as CSR arrays over ``zones.ids``.

    Attributes
    ----------
    zones : Zones
        The zoning.
    indptr : ndarray of int64, shape (n_zones + 1,)
        Nodes of zone ``k`` are ``nodes[indptr[k]:indptr[k + 1]]``.
    nodes : ndarray of int64
        Node indices, grouped by zone.
    network : str
        Name of the network the nodes refer to.
    """

    zones: Zones
    indptr: I64
    nodes: I64
    network: str = ""

    def __post_init__(self) -> None:
        if self.indptr.shape != (len(self.zones) + 1,) or self.indptr[0] != 0 or self.indptr[-1] != self.nodes.size:
            raise ValueError("ZoneNodes.indptr must have one entry per zone plus one and end at len(nodes)")
        if np.any(np.diff(self.indptr) < 0):
            raise ValueError("ZoneNodes.indptr must be non-decreasing")

    @property
    def counts(self) -> I64:
        """Number of nodes per zone."""
        return np.diff(self.indptr)

    @classmethod
    def build(cls, zones: Zones, network: RoadNetwork, *, buffer_m: float = 200.0) -> ZoneNodes:
        """Assign network nodes to zones (see the module notes for the rules)."""
        if buffer_m < 0:
            raise ValueError("buffer_m must be >= 0")
        zone_of = zones.locate(network.lon, network.lat)
        pos = np.where(zone_of >= 0, zones.index_of(zone_of), -1)
        empty = np.setdiff1d(np.arange(len(zones)), pos[pos >= 0])
        free = np.flatnonzero(pos < 0)
        if empty.size and free.size and buffer_m > 0:
            pos = _fill_empty_zones(zones, network, pos, empty, free, buffer_m)
        assigned = np.flatnonzero(pos >= 0)
        order = assigned[np.argsort(pos[assigned], kind="stable")]
        indptr = np.zeros(len(zones) + 1, dtype=np.int64)
        np.cumsum(np.bincount(pos[assigned], minlength=len(zones)), out=indptr[1:])
        out = cls(zones, indptr, order.astype(np.int64), network.name)
        n_empty = int(np.sum(out.counts == 0))
        if n_empty:
            logger.info("%d of %d zones have no node of the %s network", n_empty, len(zones), network.name)
        return out

    def pair_codes(self, o_zone: NDArray[Any], d_zone: NDArray[Any]) -> NDArray[np.uint8]:
        """Reject code per (origin zone, destination zone) pair, 0 when nodes can be drawn for it.

        ``UNKNOWN_ZONE``: an id that is not a zone; ``OUTSIDE_AREA``: a zone with no network node;
        ``ZERO_DISTANCE``: the same single-node zone at both ends.
        """
        return self._codes(self.zones.index_of(o_zone), self.zones.index_of(d_zone))

    def _codes(self, oi: I64, di: I64) -> NDArray[np.uint8]:
        counts = self.counts
        code = np.zeros(oi.shape[0], dtype=np.uint8)
        code[(oi < 0) | (di < 0)] = RejectReason.UNKNOWN_ZONE
        oc = np.where(oi >= 0, counts[np.maximum(oi, 0)], 0)
        dc = np.where(di >= 0, counts[np.maximum(di, 0)], 0)
        code[(code == 0) & ((oc == 0) | (dc == 0))] = RejectReason.OUTSIDE_AREA
        code[(code == 0) & (oi == di) & (oc < 2)] = RejectReason.ZERO_DISTANCE
        return code

    def sample_pairs(
        self, o_zone: NDArray[Any], d_zone: NDArray[Any], rng: np.random.Generator
    ) -> tuple[I64, I64, NDArray[np.uint8]]:
        """A random origin node in each ``o_zone`` and destination node in each ``d_zone``.

        Within one zone the two nodes are distinct. Returns the nodes (-1 where none) and the :meth:`pair_codes`
        verdict per pair (0 = good).
        """
        oi = self.zones.index_of(o_zone)
        di = self.zones.index_of(d_zone)
        n = oi.shape[0]
        code = self._codes(oi, di)
        counts = self.counts
        oc = np.where(oi >= 0, counts[np.maximum(oi, 0)], 0)
        dc = np.where(di >= 0, counts[np.maximum(di, 0)], 0)
        same = oi == di
        ok = code == 0
        # One draw per end for every pair (bad ones too) keeps the stream of draws independent of which rows fail.
        u = rng.random((2, n))
        a = np.minimum((u[0] * oc).astype(np.int64), np.maximum(oc - 1, 0))
        # Same zone: draw the destination among the other count - 1 nodes and skip over the origin.
        dcount = np.where(same, dc - 1, dc)
        b = np.minimum((u[1] * dcount).astype(np.int64), np.maximum(dcount - 1, 0))
        b = np.where(same & (b >= a), b + 1, b)
        o_node = np.full(n, -1, dtype=np.int64)
        d_node = np.full(n, -1, dtype=np.int64)
        o_node[ok] = self.nodes[self.indptr[oi[ok]] + a[ok]]
        d_node[ok] = self.nodes[self.indptr[di[ok]] + b[ok]]
        return o_node, d_node, code


def _fill_empty_zones(zones: Zones, network: RoadNetwork, pos: I64, empty: I64, free: I64, buffer_m: float) -> I64:
    """Give zones without nodes the still-unassigned nodes within ``buffer_m`` of their boundary."""
    pos = pos.copy()
    tr = Transformer.from_crs("EPSG:4326", network.crs, always_xy=True)

    def to_metric(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack((x, y))

    pts = shapely.points(network.x[free], network.y[free])
    for k in empty.tolist():
        poly = shapely.transform(zones.geometries[k], to_metric)
        near = shapely.dwithin(pts, poly, buffer_m) & (pos[free] < 0)
        pos[free[near]] = k
    return pos

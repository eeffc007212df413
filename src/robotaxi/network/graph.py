"""The road network: a directed graph held as NumPy CSR arrays.

Nodes are indexed ``0..n-1``; ``node_id`` keeps the source's own ids (OSM node ids). Edges are stored sorted by
their tail node, so the out-edges of node ``u`` are ``indptr[u]:indptr[u+1]`` and their heads are ``head[...]``.
Lengths are integer metres and travel times integer seconds (rounded, at least 1 s), as the conventions ask.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from ..errors import NetworkError, OffNetworkError
from .projection import LocalProjection

logger = logging.getLogger(__name__)

#: Default limit for snapping a coordinate to the network: farther than this is an error, not a snap.
DEFAULT_SNAP_LIMIT_M = 500.0

I64 = NDArray[np.int64]
I32 = NDArray[np.int32]
F64 = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What loading dropped to keep only the largest strongly connected component."""

    nodes_before: int
    edges_before: int
    nodes_dropped: int
    edges_dropped: int
    components_dropped: int
    self_loops_dropped: int = 0
    parallel_edges_merged: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "nodes_before": self.nodes_before,
            "edges_before": self.edges_before,
            "nodes_dropped": self.nodes_dropped,
            "edges_dropped": self.edges_dropped,
            "components_dropped": self.components_dropped,
            "self_loops_dropped": self.self_loops_dropped,
            "parallel_edges_merged": self.parallel_edges_merged,
        }


@dataclass(frozen=True, slots=True, eq=False)
class RoadNetwork:
    """A directed, strongly connected road graph in CSR form.

    Build one with :meth:`from_edges` (or a loader in :mod:`robotaxi.network`), never by hand: the constructor
    trusts its arrays. Arrays are read-only views; a network is immutable.

    Attributes
    ----------
    name : str
        Human-readable name ("Helsinki", "manhattan_network.json").
    node_id : ndarray of int64, shape (n,)
        The source's node ids (OSM ids where the source is OSM).
    lon, lat : ndarray of float64, shape (n,)
        WGS84 coordinates in degrees.
    x, y : ndarray of float64, shape (n,)
        Projected coordinates in metres (see ``crs``).
    crs : str
        The projected CRS of ``x``/``y`` as a PROJ string.
    indptr : ndarray of int64, shape (n + 1,)
        CSR row pointer by tail node.
    head : ndarray of int32, shape (m,)
        Head node index of each edge.
    length_m : ndarray of int32, shape (m,)
        Edge length in metres (>= 1).
    speed_kmh : ndarray of float32, shape (m,)
        Free-flow speed in km/h.
    travel_time_s : ndarray of int32, shape (m,)
        Free-flow travel time in seconds (>= 1).
    prune : PruneReport
        What loading dropped.
    source : str
        Where the network came from (a path or a description).
    """

    name: str
    node_id: I64
    lon: F64
    lat: F64
    x: F64
    y: F64
    crs: str
    indptr: I64
    head: I32
    length_m: I32
    speed_kmh: NDArray[np.float32]
    travel_time_s: I32
    prune: PruneReport
    source: str = ""
    _kdtree: list[cKDTree] = field(default_factory=list, repr=False, compare=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_edges(
        cls,
        *,
        name: str,
        node_id: ArrayLike,
        lon: ArrayLike,
        lat: ArrayLike,
        tail: ArrayLike,
        head: ArrayLike,
        length_m: ArrayLike,
        speed_kmh: ArrayLike,
        source: str = "",
        travel_time_s: ArrayLike | None = None,
        keep_largest_scc: bool = True,
    ) -> RoadNetwork:
        """Build a network from an edge list over node indices ``0..n-1``.

        Self-loops are dropped, parallel edges merged (the fastest is kept), travel times derived from length and
        speed unless given, and only the largest strongly connected component kept.

        Raises
        ------
        NetworkError
            If there are no nodes or no edges, arrays disagree in length, or values are invalid.
        """
        ids = np.asarray(node_id, dtype=np.int64)
        lon_a = np.asarray(lon, dtype=np.float64)
        lat_a = np.asarray(lat, dtype=np.float64)
        t = np.asarray(tail, dtype=np.int64)
        h = np.asarray(head, dtype=np.int64)
        length = np.asarray(length_m, dtype=np.float64)
        speed = np.asarray(speed_kmh, dtype=np.float64)
        n = ids.size
        _check_inputs(name, n, lon_a, lat_a, t, h, length, speed)
        if travel_time_s is None:
            tt = length / (speed / 3.6)
        else:
            tt = np.asarray(travel_time_s, dtype=np.float64)
            if tt.shape != t.shape or not np.all(np.isfinite(tt)) or np.any(tt < 0):
                raise NetworkError(f"{name}: travel times must be finite, non-negative, one per edge")
        # Integer metres and seconds, at least 1: a zero-cost edge would make ties arbitrary and paths loop-prone.
        length_i = np.maximum(np.rint(length), 1).astype(np.int64)
        tt_i = np.maximum(np.rint(tt), 1).astype(np.int64)

        m0 = t.size
        t, h, length_i, tt_i, speed, loops, merged = _drop_loops_merge_parallel(t, h, length_i, tt_i, speed)
        if t.size == 0:
            raise NetworkError(f"{name}: the graph has no edges left after dropping self-loops")
        keep_nodes, components_dropped = _largest_scc(n, t, h) if keep_largest_scc else (np.ones(n, dtype=bool), 0)
        new_index = np.full(n, -1, dtype=np.int64)
        new_index[keep_nodes] = np.arange(int(keep_nodes.sum()))
        edge_keep = keep_nodes[t] & keep_nodes[h]
        t, h = new_index[t[edge_keep]], new_index[h[edge_keep]]
        length_i, tt_i, speed = length_i[edge_keep], tt_i[edge_keep], speed[edge_keep]
        n_kept = int(keep_nodes.sum())
        if n_kept < 2 or t.size == 0:
            raise NetworkError(f"{name}: no strongly connected part with at least two nodes and an edge")

        prune = PruneReport(
            nodes_before=n,
            edges_before=m0,
            nodes_dropped=n - n_kept,
            edges_dropped=int(m0 - loops - merged - t.size),
            components_dropped=components_dropped,
            self_loops_dropped=loops,
            parallel_edges_merged=merged,
        )
        if prune.nodes_dropped:
            logger.info(
                "%s: kept the largest strongly connected component, dropped %d nodes and %d edges in %d components",
                name,
                prune.nodes_dropped,
                prune.edges_dropped,
                components_dropped,
            )
        lon_k, lat_k = lon_a[keep_nodes], lat_a[keep_nodes]
        proj = LocalProjection.for_points(lon_k, lat_k)
        x, y = proj.forward(lon_k, lat_k)
        # Edges are already sorted by tail (lexsort above, and filtering keeps order).
        indptr = np.zeros(n_kept + 1, dtype=np.int64)
        np.cumsum(np.bincount(t, minlength=n_kept), out=indptr[1:])
        return cls(
            name=name,
            node_id=_ro(ids[keep_nodes]),
            lon=_ro(lon_k),
            lat=_ro(lat_k),
            x=_ro(x),
            y=_ro(y),
            crs=proj.crs,
            indptr=_ro(indptr),
            head=_ro(h.astype(np.int32)),
            length_m=_ro(length_i.astype(np.int32)),
            speed_kmh=_ro(speed.astype(np.float32)),
            travel_time_s=_ro(tt_i.astype(np.int32)),
            prune=prune,
            source=source,
        )

    # ------------------------------------------------------------------ basic facts
    @property
    def n_nodes(self) -> int:
        return int(self.node_id.size)

    @property
    def n_edges(self) -> int:
        return int(self.head.size)

    @property
    def tail(self) -> NDArray[np.int32]:
        """Tail node index of each edge (derived from ``indptr``)."""
        return np.repeat(np.arange(self.n_nodes, dtype=np.int32), np.diff(self.indptr))

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(min lon, min lat, max lon, max lat)."""
        return (float(self.lon.min()), float(self.lat.min()), float(self.lon.max()), float(self.lat.max()))

    @property
    def total_km(self) -> float:
        """Sum of directed edge lengths in km (a two-way street counts twice)."""
        return float(self.length_m.sum(dtype=np.int64)) / 1000.0

    def summary(self) -> dict[str, Any]:
        """Facts for ``robotaxi network info`` and logs."""
        lo_lon, lo_lat, hi_lon, hi_lat = self.bbox
        return {
            "name": self.name,
            "source": self.source,
            "nodes": self.n_nodes,
            "edges": self.n_edges,
            "total_km": round(self.total_km, 1),
            "bbox": [round(lo_lon, 6), round(lo_lat, 6), round(hi_lon, 6), round(hi_lat, 6)],
            "crs": self.crs,
            "mean_speed_kmh": round(float(np.average(self.speed_kmh, weights=self.length_m)), 1),
            "pruned": self.prune.as_dict(),
        }

    def major_edges(self, min_speed_kmh: float) -> NDArray[np.bool_]:
        """The road class of each edge: True for a major road (free-flow speed at least ``min_speed_kmh``).

        The class is read from the free-flow speed because every source has one (OSMnx JSON such as the Manhattan
        network carries no ``highway`` tag), and with the OSM class defaults 45 km/h separates motorways, trunks,
        primary and secondary roads (50 km/h and up) from tertiary, residential and service streets (40 and below).
        """
        return np.asarray(self.speed_kmh >= min_speed_kmh, dtype=bool)

    def matrix(self, weight: NDArray[Any]) -> csr_matrix:
        """The graph as a SciPy CSR matrix with the given per-edge weight."""
        n = self.n_nodes
        return csr_matrix((weight, self.head, self.indptr), shape=(n, n))

    def edge_index(self, u: int, v: int) -> int:
        """Index of the edge u -> v; raises NetworkError if there is none."""
        lo, hi = int(self.indptr[u]), int(self.indptr[u + 1])
        hits = np.nonzero(self.head[lo:hi] == v)[0]
        if hits.size == 0:
            raise NetworkError(f"{self.name}: no edge from node {u} to node {v}")
        return lo + int(hits[0])

    # ------------------------------------------------------------------ snapping
    def _tree(self) -> cKDTree:
        if not self._kdtree:
            self._kdtree.append(cKDTree(np.column_stack((self.x, self.y))))
        return self._kdtree[0]

    def project(self, lon: ArrayLike, lat: ArrayLike) -> tuple[F64, F64]:
        """Project WGS84 lon/lat to this network's metric x/y."""
        proj = LocalProjection.from_crs(self.crs)
        return proj.forward(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))

    def nearest(self, lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.int64], F64]:
        """Nearest node index and distance in metres for each point (vectorised, never raises on distance)."""
        lon_a = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        lat_a = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        if lon_a.shape != lat_a.shape:
            raise NetworkError("snap: lon and lat must have the same shape")
        # Out-of-range degrees project to infinity (a KD-tree query error), so they are treated like NaN: no node.
        with np.errstate(invalid="ignore"):
            bad = ~((np.abs(lon_a) <= 180.0) & (np.abs(lat_a) <= 90.0))
        x, y = self.project(np.where(bad, self.lon[0], lon_a), np.where(bad, self.lat[0], lat_a))
        # Valid degrees can project to infinity too: a transverse Mercator is singular 90 degrees of longitude from
        # its centre on the equator (lon -80, lat 0 for a network near lon 10). They are off the network as well.
        far = ~(np.isfinite(x) & np.isfinite(y))
        if far.any():
            bad = bad | far
            x, y = np.where(far, self.x[0], x), np.where(far, self.y[0], y)
        dist, idx = self._tree().query(np.column_stack((x, y)))
        dist = np.where(bad, np.inf, dist)
        return idx.astype(np.int64), dist.astype(np.float64)

    def snap(self, lon: ArrayLike, lat: ArrayLike, max_distance_m: float = DEFAULT_SNAP_LIMIT_M) -> NDArray[np.int64]:
        """Snap coordinates to their nearest node.

        Raises
        ------
        OffNetworkError
            If any point is farther than ``max_distance_m`` from every node (or is not a longitude in
            -180..180 and a latitude in -90..90); the message names the first such point.
        """
        idx, dist = self.nearest(lon, lat)
        far = dist > max_distance_m
        if np.any(far):
            i = int(np.argmax(far))
            lon_a = np.atleast_1d(np.asarray(lon, dtype=np.float64))
            lat_a = np.atleast_1d(np.asarray(lat, dtype=np.float64))
            raise OffNetworkError(
                f"{int(far.sum())} of {far.size} points are off the {self.name} network; the first is point {i} "
                f"at lon={lon_a[i]:.6f}, lat={lat_a[i]:.6f}, {dist[i]:.0f} m from the nearest node "
                f"(limit {max_distance_m:.0f} m)",
                hint=f"the network covers lon/lat {self.bbox}",
            )
        return idx


def _drop_loops_merge_parallel(
    t: I64, h: I64, length: I64, tt: I64, speed: F64
) -> tuple[I64, I64, I64, I64, F64, int, int]:
    """Drop self-loops; of parallel edges keep the fastest (then shortest). Returns arrays sorted by (tail, head)."""
    keep = t != h
    loops = int(t.size - keep.sum())
    t, h, length, tt, speed = t[keep], h[keep], length[keep], tt[keep], speed[keep]
    order = np.lexsort((length, tt, h, t))
    t, h, length, tt, speed = t[order], h[order], length[order], tt[order], speed[order]
    first = np.ones(t.size, dtype=bool)
    first[1:] = (t[1:] != t[:-1]) | (h[1:] != h[:-1])
    merged = int(t.size - first.sum())
    return t[first], h[first], length[first], tt[first], speed[first], loops, merged


def _largest_scc(n: int, t: I64, h: I64) -> tuple[NDArray[np.bool_], int]:
    """Mask of the nodes in the largest strongly connected component, and how many components were dropped."""
    adj = csr_matrix((np.ones(t.size), (t, h)), shape=(n, n))
    n_comp, labels = connected_components(adj, directed=True, connection="strong")
    if n_comp == 1:
        return np.ones(n, dtype=bool), 0
    return labels == np.bincount(labels).argmax(), int(n_comp - 1)


def _ro(a: NDArray[Any]) -> NDArray[Any]:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def _check_inputs(
    name: str,
    n: int,
    lon: F64,
    lat: F64,
    tail: I64,
    head: I64,
    length: F64,
    speed: F64,
) -> None:
    if n == 0:
        raise NetworkError(f"{name}: the graph has no nodes")
    if tail.size == 0:
        raise NetworkError(f"{name}: the graph has no edges")
    if lon.shape != (n,) or lat.shape != (n,):
        raise NetworkError(f"{name}: lon/lat must have one value per node")
    if not (np.all(np.isfinite(lon)) and np.all(np.isfinite(lat))):
        raise NetworkError(f"{name}: node coordinates must be finite")
    if np.any(np.abs(lat) > 90) or np.any(np.abs(lon) > 180):
        raise NetworkError(f"{name}: node coordinates are not WGS84 degrees (|lat| > 90 or |lon| > 180)")
    if not (tail.shape == head.shape == length.shape == speed.shape):
        raise NetworkError(f"{name}: tail, head, length and speed must have one value per edge")
    if tail.min() < 0 or head.min() < 0 or tail.max() >= n or head.max() >= n:
        raise NetworkError(f"{name}: an edge refers to a node index outside 0..{n - 1}")
    if not np.all(np.isfinite(length)) or np.any(length < 0):
        raise NetworkError(f"{name}: edge lengths must be finite and non-negative")
    if not np.all(np.isfinite(speed)) or np.any(speed <= 0):
        raise NetworkError(f"{name}: edge speeds must be finite and positive")

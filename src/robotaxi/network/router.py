"""Shortest travel times, distances and paths on a :class:`RoadNetwork`.

Routes minimise travel time; among equally fast routes the shortest in metres wins. Both are found in one Dijkstra
run by searching on a composite integer weight ``time * 2**shift + length`` (exact in float64 while the sums stay
below 2**53, which :class:`Router` checks), so the distance table is the length of the *fastest* route, not the
shortest-distance route.

Up to ``table_max_nodes`` nodes the whole table is precomputed (``times`` as uint16 when every time fits, else
uint32; ``distances`` as uint32; and, up to ``pred_table_max_nodes``, the predecessor matrix as int16/int32 for
instant paths). Larger networks compute rows on demand, one single-source Dijkstra per origin, kept in an LRU cache.

With a speed profile that has road classes (:attr:`SpeedProfile.has_classes`) the router also keeps, per node pair,
the free-flow seconds the fastest route spends on major roads (a third table of the times' dtype), found from the
shortest-path trees by pointer doubling: each node's major seconds are its parent edge's plus its parent's, and
``log2(depth)`` rounds of ``m += m[parent]; parent = parent[parent]`` add up whole paths, vectorised over a block of
sources (the list-ranking technique of Wyllie, 1979).
"""

from __future__ import annotations

import itertools
import logging
import math
import mmap
import multiprocessing as mp
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.sparse.csgraph import dijkstra

from ..errors import NetworkError
from .graph import RoadNetwork
from .speeds import SpeedProfile

logger = logging.getLogger(__name__)

I32 = NDArray[np.int32]
I64 = NDArray[np.int64]


class LegTerms(NamedTuple):
    """The terms of :meth:`Router.times_at` at one departure time, for compiled code that times legs itself.

    ``mode`` 0: free flow, a leg takes ``times[o, d]``; 1: ``rint(times[o, d] * fl)``; 2: ``drive = times[o, d] * fl``
    without road classes (``major`` empty), ``fl * times[o, d] + (fm - fl) * major[o, d]`` with them, then
    ``drive * (w[o] * w[d])`` with zone multipliers (``w`` not empty), and ``rint(drive) + overhead`` for a leg
    of nonzero free-flow time. The same float64 operations in the same order as :meth:`Router.times_at`.
    """

    times: NDArray[Any]
    major: NDArray[Any]
    w: NDArray[np.float64]
    fl: float
    fm: float
    overhead: int
    mode: int


class Router:
    """Travel-time and distance queries on one network.

    Parameters
    ----------
    network : RoadNetwork
    profile : SpeedProfile, optional
        Time-of-day multipliers applied when a departure time is given (see :mod:`robotaxi.network.speeds`).
    table_max_nodes : int
        Precompute the full table up to this many nodes (memory: about 6 bytes per node pair, 8 with paths).
    pred_table_max_nodes : int
        Also keep the full predecessor matrix (instant paths) up to this many nodes.
    cache_rows : int
        LRU capacity, in origins, for on-demand rows (large networks, and paths above ``pred_table_max_nodes``).
    workers : int, optional
        Processes used to build the full table (default: one per CPU; 1 = in this process). Worker processes are
        forked, which is unsafe once a process runs threads: when other threads exist, the table is built in this
        process whatever ``workers`` says.

    Notes
    -----
    Implements :class:`~robotaxi.network.travel.TravelTimes`. Queries are safe from several threads: the tables
    are read-only and the on-demand row cache is guarded by a lock.
    """

    def __init__(
        self,
        network: RoadNetwork,
        *,
        profile: SpeedProfile | None = None,
        table_max_nodes: int = 20_000,
        pred_table_max_nodes: int = 8_192,
        cache_rows: int = 4_096,
        workers: int | None = None,
    ) -> None:
        self.network = network
        self.profile = profile or SpeedProfile()
        n = network.n_nodes
        total_len = int(network.length_m.sum(dtype=np.int64))
        total_time = int(network.travel_time_s.sum(dtype=np.int64))
        # Any simple path is no longer than the sum of all edges: pick the shift so lengths never carry into time.
        self._shift = max(1, math.ceil(math.log2(total_len + 1)))
        if total_time * 2.0**self._shift + total_len >= 2.0**53:
            raise NetworkError(f"{network.name}: network too large for exact composite routing weights")
        weight = network.travel_time_s.astype(np.float64) * 2.0**self._shift + network.length_m
        self._graph = network.matrix(weight)
        self._cache_rows = max(1, cache_rows)
        self._rows: OrderedDict[int, tuple[I32, I32, I32, I32]] = OrderedDict()
        self._lock = threading.Lock()
        self._times: NDArray[Any] | None = None
        self._dists: NDArray[np.uint32] | None = None
        self._pred: NDArray[Any] | None = None
        self._major: NDArray[Any] | None = None
        # Transposed copies of the time tables (row = destination), made on first use by :meth:`times_to`.
        self._to: dict[int, NDArray[Any]] = {}
        self._major_edges: _MajorEdges | None = None
        if self.profile.has_classes:
            self._major_edges = _MajorEdges.of(network, self.profile.major_min_speed_kmh)
        # Zone factors: sqrt(g) of each node's zone; a leg's driving time is scaled by its two ends' product.
        self._node_w: NDArray[np.float64] | None = (
            self.profile.node_multipliers(network) if self.profile.has_zones else None
        )
        if n <= table_max_nodes:
            n_workers = workers or os.cpu_count() or 1
            if threading.active_count() > 1:
                n_workers = 1  # never fork a process that runs threads
            self._build_table(keep_pred=n <= pred_table_max_nodes, workers=n_workers)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without its lock and its row cache: a sweep ships one router to many worker processes."""
        state = self.__dict__.copy()
        del state["_lock"]
        state["_rows"] = OrderedDict()
        state["_to"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ table building
    def _decode(self, w: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        if not np.all(np.isfinite(w)):
            # Networks are strongly connected by construction; an inf means a corrupted network.
            raise NetworkError(f"{self.network.name}: some node pairs are unreachable")
        wi = w.astype(np.int64)
        return wi >> self._shift, wi & ((1 << self._shift) - 1)

    def _build_table(self, *, keep_pred: bool, workers: int) -> None:
        n = self.network.n_nodes
        p_dtype = np.int16 if n < 2**15 else np.int32
        workers = max(1, min(workers, os.cpu_count() or 1))
        # Try uint16 times first (city trips are far below 18 h); fall back to uint32 if any time overflows.
        for t_dtype in (np.uint16, np.uint32):
            shapes: dict[str, tuple[tuple[int, int], Any]] = {"t": ((n, n), t_dtype), "d": ((n, n), np.uint32)}
            if keep_pred:
                shapes["p"] = ((n, n), p_dtype)
            if self._major_edges is not None:
                shapes["m"] = ((n, n), t_dtype)
            try:
                if workers == 1 or n < 1_000:
                    out = {k: np.empty(shape, dtype) for k, (shape, dtype) in shapes.items()}
                    _fill_rows(self._graph, self._shift, 0, n, out, self._major_edges)
                else:
                    out = _build_parallel(self._graph, self._shift, n, shapes, workers, self._major_edges)
                break
            except _TimeOverflowError:
                continue
        self._times, self._dists = out["t"], out["d"]
        self._pred = out.get("p")
        self._major = out.get("m")
        logger.info("%s: full travel-time table built, %.1f MB", self.network.name, self.memory_bytes / 1e6)

    @property
    def has_table(self) -> bool:
        return self._times is not None

    @property
    def memory_bytes(self) -> int:
        """Bytes held by precomputed tables and cached rows."""
        total = sum(a.nbytes for a in (self._times, self._dists, self._pred) if a is not None)
        total += 0 if self._major is None else self._major.nbytes
        total += sum(a.nbytes for a in self._to.values())
        return total + sum(sum(a.nbytes for a in r) for r in self._rows.values())

    # ------------------------------------------------------------------ rows on demand
    def _row(self, origin: int) -> tuple[I32, I32, I32, I32]:
        """(times, distances, predecessors, major-road seconds or empty) from one origin."""
        with self._lock:
            row = self._rows.get(origin)
            if row is not None:
                self._rows.move_to_end(origin)
                return row
        w, pred = dijkstra(self._graph, directed=True, indices=origin, return_predecessors=True)
        t, d = self._decode(w)
        major = np.empty(0, dtype=np.int32)
        if self._major_edges is not None:
            major = self._major_edges.along_trees(pred.reshape(1, -1), np.array([origin]))[0].astype(np.int32)
        row = (t.astype(np.int32), d.astype(np.int32), pred.astype(np.int32), major)
        with self._lock:
            self._rows[origin] = row
            if len(self._rows) > self._cache_rows:
                self._rows.popitem(last=False)
        return row

    @property
    def n_nodes(self) -> int:
        """Number of nodes of the network."""
        return self.network.n_nodes

    def _check(self, nodes: ArrayLike, what: str) -> I64:
        a = np.asarray(nodes)
        if a.dtype.kind not in "iu":
            raise NetworkError(f"{what} must be integer node indices, got dtype {a.dtype}")
        a = a.astype(np.int64, copy=False)
        n = self.network.n_nodes
        if a.size and (int(a.min()) < 0 or int(a.max()) >= n):
            bad = a[(a < 0) | (a >= n)].ravel()[0]
            raise NetworkError(f"{what}: node index {int(bad)} is not in the {self.network.name} network (0..{n - 1})")
        return a

    def _lookup(self, table: int, o: I64, d: I64) -> I32:
        """Table 0: times, 1: distances, 3: major-road seconds."""
        src = {0: self._times, 1: self._dists, 3: self._major}[table]
        if src is not None:
            return src[o, d].astype(np.int32)
        out = np.empty(o.shape, dtype=np.int32)
        flat_o, flat_d, flat_out = o.ravel(), d.ravel(), out.reshape(-1)
        order = np.argsort(flat_o, kind="stable")
        uniq, starts = np.unique(flat_o[order], return_index=True)
        bounds = [*starts.tolist(), order.size]
        for k, origin in enumerate(uniq.tolist()):
            sel = order[bounds[k] : bounds[k + 1]]
            flat_out[sel] = self._row(origin)[table][flat_d[sel]]
        return out

    # ------------------------------------------------------------------ public queries
    def times(self, origins: ArrayLike, destinations: ArrayLike, depart_s: ArrayLike | None = None) -> I32:
        """Travel time in seconds for each (origin, destination) pair (arrays broadcast together).

        With ``depart_s`` the time-of-day factor at departure is applied (see :mod:`robotaxi.network.speeds`).
        """
        o, d = np.broadcast_arrays(self._check(origins, "origins"), self._check(destinations, "destinations"))
        base = self._lookup(0, o, d)
        if depart_s is None or self.profile.is_free_flow:
            return base
        major = self._lookup(3, o, d) if self.profile.has_classes else None
        scale = self._node_w[o] * self._node_w[d] if self._node_w is not None else None
        return self.profile.apply(base, depart_s, major, scale)

    def times_to(self, destinations: ArrayLike, origins: ArrayLike, depart_s: ArrayLike | None = None) -> I32:
        """Seconds from every origin to each destination: an array of shape ``(len(destinations), len(origins))``.

        The same values as ``times(origins[None, :], destinations[:, None], depart_s)``, where ``depart_s`` is
        None, one epoch second, or one per origin. This is the layout that ranks many vehicles for each pickup: with
        a full table it reads a transposed copy of the table (made on first use, the table's size again, the
        major-road seconds too when the profile has road classes) one contiguous row per destination, instead of one
        scattered element per pair (about ten times faster on Manhattan's 4,197 nodes).
        """
        d = self._check(destinations, "destinations")
        o = self._check(origins, "origins")
        if d.ndim != 1 or o.ndim != 1:
            raise NetworkError("times_to: destinations and origins must be flat arrays of node indices")
        dep: Any = None
        if depart_s is not None:
            dep = np.asarray(depart_s)
            if dep.ndim == 1:
                if dep.size != o.size:
                    raise NetworkError(f"times_to: {dep.size} departure times for {o.size} origins")
                dep = dep[None, :]
            elif dep.ndim != 0:
                raise NetworkError("times_to: depart_s must be one time or one per origin")
        if self._times is None:
            return self.times(o[None, :], d[:, None], dep)
        base = self._transposed(0)[d][:, o]
        if dep is None or self.profile.is_free_flow:
            return base.astype(np.int32)
        major = self._transposed(3)[d][:, o] if self.profile.has_classes else None
        scale = self._node_w[o][None, :] * self._node_w[d][:, None] if self._node_w is not None else None
        return self.profile.apply(base, dep, major, scale)

    def table_to(self) -> NDArray[Any] | None:
        """The full free-flow time table transposed, ``table_to()[d, o]`` = seconds from ``o`` to ``d`` (read-only,
        the table's dtype; made once and shared with :meth:`times_to`), or None without a full table: for callers
        that rank many origins against each destination many times over."""
        if self._times is None:
            return None
        out = self._transposed(0)
        out.setflags(write=False)
        return out

    def leg_terms(self, depart_s: int) -> LegTerms | None:
        """What :meth:`times_at` computes its times from at ``depart_s``, for a compiled caller that times legs
        itself with the same arithmetic (see :class:`LegTerms`); None without a full table."""
        if self._times is None:
            return None
        prof = self.profile
        empty = np.zeros((0, 0), self._times.dtype)
        if prof.is_free_flow:
            return LegTerms(self._times, empty, np.ones(0), 1.0, 1.0, 0, 0)
        if not prof.has_classes and prof.overhead_s == 0.0 and self._node_w is None:
            return LegTerms(self._times, empty, np.ones(0), prof.factor_at1(depart_s), 0.0, 0, 1)
        fl, fm = prof.factors_at1(depart_s)
        major = self._major if prof.has_classes else None
        if prof.has_classes and major is None:  # pragma: no cover - a full table comes with its major seconds
            return None
        w = self._node_w if self._node_w is not None else np.ones(0)
        return LegTerms(self._times, empty if major is None else major, w, fl, fm, prof.overhead_whole_s, 2)

    def _transposed(self, table: int) -> NDArray[Any]:
        """The full table 0 (times) or 3 (major-road seconds) with rows and columns swapped (made once)."""
        out = self._to.get(table)
        if out is None:
            with self._lock:
                out = self._to.get(table)
                if out is None:
                    src = self._times if table == 0 else self._major
                    if src is None:  # pragma: no cover - callers check the table exists
                        raise NetworkError("no full table to transpose")
                    out = np.ascontiguousarray(src.T)
                    self._to[table] = out
        return out

    def major_times(self, origins: ArrayLike, destinations: ArrayLike) -> I32:
        """Free-flow seconds of each fastest route spent on major roads (needs a profile with road classes)."""
        if self._major_edges is None:
            raise NetworkError("major-road times need a router built with a speed profile that has road classes")
        o, d = np.broadcast_arrays(self._check(origins, "origins"), self._check(destinations, "destinations"))
        return self._lookup(3, o, d)

    def time1(self, origin: int, destination: int, depart_s: int | None = None) -> int:
        """:meth:`times` for one pair of node indices (plain ints), without array overhead."""
        n = self.network.n_nodes
        if not (0 <= origin < n and 0 <= destination < n):
            raise NetworkError(f"node pair ({origin}, {destination}) is not in the {self.network.name} network")
        if self._times is not None:
            base = int(self._times[origin, destination])
        else:
            base = int(self._row(origin)[0][destination])
        if depart_s is None or self.profile.is_free_flow:
            return base
        scale = 1.0 if self._node_w is None else float(self._node_w[origin] * self._node_w[destination])
        if not self.profile.has_classes:
            if self.profile.overhead_s == 0.0 and self._node_w is None:
                return round(base * self.profile.factor_at1(depart_s))
            return self.profile.apply1(base, depart_s, 0, scale)
        if self._major is not None:
            major = int(self._major[origin, destination])
        else:
            major = int(self._row(origin)[3][destination])
        return self.profile.apply1(base, depart_s, major, scale)

    def times_at(self, origins: ArrayLike, destinations: ArrayLike, depart_s: int) -> NDArray[np.int64]:
        """:meth:`times` for node indices already known to be valid and one departure time: the hot path of the
        pooling policies (no validation, no array-shaped departure; int64 seconds)."""
        o, d = np.asarray(origins), np.asarray(destinations)
        if self._times is not None:
            base = self._times[o, d]
        else:
            o, d = np.broadcast_arrays(o.astype(np.int64), d.astype(np.int64))
            base = self._lookup(0, o, d)
        out: NDArray[np.int64]
        prof = self.profile
        if prof.is_free_flow:
            out = base.astype(np.int64)
        elif not prof.has_classes and prof.overhead_s == 0.0 and self._node_w is None:
            out = np.rint(base * prof.factor_at1(depart_s)).astype(np.int64)
        else:
            fl, fm = prof.factors_at1(depart_s)
            if not prof.has_classes:
                drive = base * fl
            else:
                major = self._major[o, d] if self._major is not None else self._lookup(3, o, d)
                drive = fl * base + (fm - fl) * major
            if self._node_w is not None:
                drive = drive * (self._node_w[o] * self._node_w[d])
            out = (np.rint(drive) + np.where(base > 0, prof.overhead_whole_s, 0)).astype(np.int64)
        return out

    def distance1(self, origin: int, destination: int) -> int:
        """:meth:`distances` for one pair of node indices (plain ints), without array overhead."""
        n = self.network.n_nodes
        if not (0 <= origin < n and 0 <= destination < n):
            raise NetworkError(f"node pair ({origin}, {destination}) is not in the {self.network.name} network")
        if self._dists is not None:
            return int(self._dists[origin, destination])
        return int(self._row(origin)[1][destination])

    def distances(self, origins: ArrayLike, destinations: ArrayLike) -> I32:
        """Length in metres of the fastest route for each (origin, destination) pair."""
        o, d = np.broadcast_arrays(self._check(origins, "origins"), self._check(destinations, "destinations"))
        return self._lookup(1, o, d)

    def one_to_many(self, origin: int, destinations: ArrayLike, depart_s: float | None = None) -> I32:
        """Travel times from one origin to many destinations."""
        return self.times(np.int64(origin), destinations, depart_s)

    def many_to_many(
        self, origins: ArrayLike, destinations: ArrayLike, depart_s: float | None = None
    ) -> NDArray[np.int32]:
        """Matrix of travel times, shape (len(origins), len(destinations))."""
        o = np.asarray(origins).reshape(-1, 1)
        d = np.asarray(destinations).reshape(1, -1)
        return self.times(o, d, depart_s)

    def path(self, origin: int, destination: int) -> I32:
        """Node indices of the fastest route, both ends included (``[origin]`` when they are equal)."""
        o = int(self._check(np.int64(origin), "origin"))
        d = int(self._check(np.int64(destination), "destination"))
        pred_row: NDArray[Any] = self._pred[o] if self._pred is not None else self._row(o)[2]
        nodes = [d]
        v = d
        n = self.network.n_nodes
        while v != o:
            v = int(pred_row[v])
            if v < 0 or len(nodes) > n:
                raise NetworkError(f"{self.network.name}: no route from node {o} to node {d}")
            nodes.append(v)
        return np.asarray(nodes[::-1], dtype=np.int32)

    def divert(self, origin: int, destination: int, depart_s: int, at_s: int) -> tuple[int, int]:
        """The first node on the route ``origin -> destination`` (left at ``depart_s``) reached at or after ``at_s``.

        Driving time along the route is shared between its edges in proportion to their travel times at departure
        (free-flow times scaled by their road class's factor), exactly as the leg's total :meth:`times` gives it;
        the profile's per-leg overhead is paid on arrival at the destination, so a vehicle that changes course at
        an intermediate node does not pay it for the abandoned rest of the leg.
        """
        total = self.time1(int(origin), int(destination), depart_s)
        if at_s <= depart_s:
            return int(origin), int(depart_s)
        if origin == destination or at_s >= depart_s + total:
            return int(destination), int(depart_s + total)
        path = self.path(origin, destination)
        cum = np.cumsum(self.edge_times(self.path_edges(path), depart_s))
        drive = total - (self.profile.overhead_whole_s if not self.profile.is_free_flow else 0)
        # Arrival at each node after the origin, on the leg's own clock (the last one is the leg's total).
        arrive = depart_s + np.floor(cum / cum[-1] * drive).astype(np.int64)
        arrive[-1] = depart_s + total
        k = int(np.searchsorted(arrive, at_s, side="left"))
        return int(path[k + 1]), int(arrive[k])

    def edge_times(self, edges: ArrayLike, depart_s: int | None) -> NDArray[np.float64]:
        """Relative travel times of edges for a leg leaving at ``depart_s``: free-flow seconds, major roads scaled by
        their factor relative to the local streets' (used to share a leg's time between its edges)."""
        e = np.asarray(edges, dtype=np.int64)
        t = self.network.travel_time_s[e].astype(np.float64)
        if depart_s is None or self._major_edges is None:
            return t
        fl, fm = self.profile.factors_at1(depart_s)
        return np.where(self._major_edges.mask[e], t * (fm / fl), t)

    def path_edges(self, path: ArrayLike) -> I64:
        """Edge indices along a node path (the fastest edge between consecutive nodes)."""
        p = np.asarray(path, dtype=np.int64)
        if p.size < 2:
            return np.empty(0, dtype=np.int64)
        keys, first = self._edge_keys()
        want = p[:-1] * self.network.n_nodes + p[1:]
        pos = np.minimum(np.searchsorted(keys, want), keys.size - 1)
        missing = keys[pos] != want
        if missing.any():
            i = int(np.argmax(missing))
            raise NetworkError(f"{self.network.name}: no edge from node {int(p[i])} to node {int(p[i + 1])}")
        return first[pos]

    def _edge_keys(self) -> tuple[I64, I64]:
        """Sorted ``tail * n + head`` of every node pair joined by an edge, and the first such edge's index (the
        one :meth:`RoadNetwork.edge_index` returns): made once, for vectorised :meth:`path_edges`."""
        got = self.__dict__.get("_ekeys")
        if got is None:
            net = self.network
            tail = np.repeat(np.arange(net.n_nodes, dtype=np.int64), np.diff(net.indptr))
            keys, first = np.unique(tail * net.n_nodes + net.head.astype(np.int64), return_index=True)
            got = (keys, first.astype(np.int64))
            self.__dict__["_ekeys"] = got
        return got


_ROW_BLOCK = 256
_OVERFLOW_EXIT = 3


class _TimeOverflowError(Exception):
    """A travel time does not fit the table's dtype (internal: retry with a wider one)."""


@dataclass(frozen=True, slots=True)
class _MajorEdges:
    """Which edges are major roads, and each node's in-edges padded to the largest in-degree, for tree look-ups."""

    in_tail: NDArray[np.int32]  # (n, max in-degree): tail of each in-edge of the node, -1 for padding
    in_major_s: NDArray[np.int32]  # (n, max in-degree): its free-flow seconds if it is a major road, else 0
    mask: NDArray[np.bool_]  # per edge: a major road

    @classmethod
    def of(cls, network: RoadNetwork, min_speed_kmh: float) -> _MajorEdges:
        n = network.n_nodes
        mask = network.major_edges(min_speed_kmh)
        head = network.head.astype(np.int64)
        by_head = np.argsort(head, kind="stable")
        deg = np.bincount(head, minlength=n)
        start = np.concatenate(([0], np.cumsum(deg)[:-1]))
        slot = np.arange(head.size) - np.repeat(start, deg)
        width = max(1, int(deg.max(initial=1)))
        in_tail = np.full((n, width), -1, dtype=np.int32)
        in_major = np.zeros((n, width), dtype=np.int32)
        in_tail[head[by_head], slot] = network.tail[by_head]
        in_major[head[by_head], slot] = np.where(mask, network.travel_time_s, 0)[by_head]
        return cls(in_tail, in_major, mask)

    def along_trees(self, pred: NDArray[Any], sources: I64) -> I64:
        """Major-road seconds from each source to every node along its shortest-path tree (rows of ``pred``)."""
        b, n = pred.shape
        parent = pred.astype(np.int64)
        root = parent < 0
        parent[root] = np.broadcast_to(sources[:, None], parent.shape)[root]
        # The tree edge into v is the in-edge of v whose tail is v's parent (parallel edges were merged: one).
        hit = self.in_tail[None, :, :] == parent[:, :, None]
        m = np.where(root, 0, (hit * self.in_major_s[None, :, :]).sum(axis=2)).astype(np.int32).ravel()
        # Flat indices into the block (row offset + parent): 1-D gathers are several times faster than 2-D ones.
        up = (parent + (np.arange(b, dtype=np.int64) * n)[:, None]).ravel()
        up = up.astype(np.int32) if b * n < 2**31 else up
        # Pointer doubling: after round r, m[v] sums the 2**r edges above v (roots point to themselves with 0).
        for _ in range(max(1, n).bit_length() + 1):
            m += m[up]
            nxt = up[up]
            if np.array_equal(nxt, up):
                break
            up = nxt
        return m.reshape(b, n).astype(np.int64)


def _fill_rows(
    graph: Any, shift: int, lo: int, hi: int, out: dict[str, NDArray[Any]], major: _MajorEdges | None = None
) -> None:
    """Run Dijkstra from sources ``lo..hi-1`` in blocks and write decoded rows into ``out`` (t, d, maybe p, m)."""
    mask = (1 << shift) - 1
    for start in range(lo, hi, _ROW_BLOCK):
        stop = min(start + _ROW_BLOCK, hi)
        idx = np.arange(start, stop)
        if "p" in out or "m" in out:
            w, pred = dijkstra(graph, directed=True, indices=idx, return_predecessors=True)
            if "p" in out:
                out["p"][start:stop] = pred
            if major is not None and "m" in out:
                out["m"][start:stop] = major.along_trees(pred, idx.astype(np.int64))
        else:
            w = dijkstra(graph, directed=True, indices=idx)
        if not np.all(np.isfinite(w)):
            raise NetworkError("some node pairs are unreachable: the network is not strongly connected")
        wi = w.astype(np.int64)
        t = wi >> shift
        if int(t.max()) > np.iinfo(out["t"].dtype).max:
            raise _TimeOverflowError
        out["t"][start:stop] = t
        out["d"][start:stop] = wi & mask


def _build_parallel(
    graph: Any,
    shift: int,
    n: int,
    shapes: dict[str, tuple[tuple[int, int], Any]],
    workers: int,
    major: _MajorEdges | None = None,
) -> dict[str, NDArray[Any]]:
    """Split the sources over forked worker processes that write straight into shared memory.

    SciPy's Dijkstra holds the GIL, so threads do not help; processes do. The result arrays live in anonymous
    shared mappings made before the fork, so workers write rows in place and nothing is pickled or copied back;
    the mappings are freed with the arrays, and nothing outlives the process.
    """
    ctx = mp.get_context("fork")
    out = {
        k: np.frombuffer(mmap.mmap(-1, max(1, int(np.prod(s)) * np.dtype(d).itemsize)), dtype=d)[
            : int(np.prod(s))
        ].reshape(s)
        for k, (s, d) in shapes.items()
    }
    bounds = np.linspace(0, n, workers + 1).astype(int)
    procs = [
        ctx.Process(target=_worker, args=(graph, shift, int(lo), int(hi), out, major))
        for lo, hi in itertools.pairwise(bounds)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    if any(proc.exitcode == _OVERFLOW_EXIT for proc in procs):
        raise _TimeOverflowError
    if any(proc.exitcode != 0 for proc in procs):
        raise NetworkError("building the travel-time table failed in a worker process")
    return out


def _worker(graph: Any, shift: int, lo: int, hi: int, out: dict[str, NDArray[Any]], major: _MajorEdges | None) -> None:
    try:
        _fill_rows(graph, shift, lo, hi, out, major)
    except _TimeOverflowError:
        os._exit(_OVERFLOW_EXIT)

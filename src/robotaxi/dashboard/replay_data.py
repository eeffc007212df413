"""The one adapter between a simulator run folder and the replay page.

Everything the dashboard knows about the simulator's output schema lives here. :func:`load_replay` reads
``vehicle_events.parquet``, ``requests.parquet``, ``kpis.json`` and ``scenario.toml`` and turns them into
:class:`ReplayData`: flat NumPy arrays (the compact form the page decodes) and a small JSON-able header.

How the outputs become a replay
-------------------------------
* **Vehicle timelines.** Events are sorted by vehicle, then time (ties keep file order). The state *after* each
  event holds until the vehicle's next event. Two consecutive events of one vehicle at different nodes form a *leg*:
  the vehicle drives the router's fastest path from the first node (leaving at the first event's time) to the second
  (arriving at the second event's time). This holds for any future event kinds (pooled stops, rebalancing moves) as
  long as each event names the node where it happens.
* **Paths** are stored as out-edge *slots*: for each step, the position of the next node in the CSR adjacency list of
  the current node (one byte; road intersections have a handful of exits). The page walks the CSR arrays to turn
  slots back into nodes and splits each leg's duration over its edges in proportion to their free-flow times, as the
  simulator's motion model does.
* **Display categories** (``CATEGORIES``) come from the MDS state after the event; an *available* vehicle that drives
  to another node before its next event is *repositioning* (a rebalancing move), whatever the event is called.
* **Requests.** A request is *open* from its time until the vehicle reaches the pickup (``pickup_s``), or until it is
  closed otherwise: a ``closed_s``/``cancelled_s`` column if the run has one; else cancellations at request time +
  ``dispatch.max_wait_s`` (the simulator's rule) and rejections at request time (the run does not record the
  decision instant, at most one batch later).

Extra columns are ignored; extra rows (events without a request, ``trip_id`` null or -1) are timeline rows like any
other.
"""

from __future__ import annotations

import json
import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import NDArray

from ..errors import RobotaxiError
from ..network import RoadNetwork, Router, load_network

logger = logging.getLogger(__name__)

#: What the page colours vehicles by, in this order (the page's legend and the per-state panel follow it).
CATEGORIES: tuple[str, ...] = ("idle", "to_pickup", "at_stop", "with_riders", "repositioning", "off_service")
#: Category code of vehicles that are not drawn (retired: MDS ``removed``).
HIDDEN = 255

_STATE_CATEGORY = {
    "available": "idle",
    "reserved": "to_pickup",
    "stopped": "at_stop",
    "on_trip": "with_riders",
    "elsewhere": "with_riders",
    "repositioning": "repositioning",
    "rebalancing": "repositioning",
    "non_operational": "off_service",
    "non_contactable": "off_service",
}

#: The files without which a folder is not a run.
REQUIRED_FILES = ("vehicle_events.parquet", "requests.parquet")

I32 = NDArray[np.int32]


class DashboardError(RobotaxiError):
    """A run folder cannot be replayed, or the dashboard cannot be served or written."""


@dataclass(frozen=True, slots=True)
class ReplayData:
    """A run in the compact form the replay page reads.

    Attributes
    ----------
    meta : dict
        JSON-able header: run name, time bounds, label tables, KPIs from ``kpis.json``, ledger checkpoint.
    arrays : dict of str to ndarray
        Flat arrays by name (see ``docs/dashboard.md`` for the list); all little-endian.
    """

    meta: dict[str, Any]
    arrays: dict[str, NDArray[Any]] = field(default_factory=dict)

    @property
    def n_vehicles(self) -> int:
        """Number of vehicles in the run."""
        return int(self.arrays["veh_id"].size)

    @property
    def n_requests(self) -> int:
        """Number of requests in the run."""
        return int(self.arrays["req_time"].size)


# ---------------------------------------------------------------------------------------------------------- reading
def _read_table(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as e:
        raise DashboardError(f"cannot read {path}: {e}") from e


def _column(table: pa.Table, names: tuple[str, ...], path: Path, *, required: bool = True) -> pa.ChunkedArray | None:
    for name in names:
        if name in table.column_names:
            return table.column(name)
    if required:
        raise DashboardError(f"{path}: no column {' or '.join(names)}; is this a robotaxi run?")
    return None


def _ints(col: pa.ChunkedArray | None, n: int, null: int = -1) -> NDArray[np.int64]:
    """A numeric column as int64 with nulls (and a missing column) as ``null``."""
    if col is None:
        return np.full(n, null, dtype=np.int64)
    if not pa.types.is_integer(col.type) and not pa.types.is_floating(col.type):
        raise DashboardError(f"a column of type {col.type} where numbers were expected")
    return np.asarray(pc.fill_null(col, null).to_numpy(zero_copy_only=False)).astype(np.int64)


def _labels(col: pa.ChunkedArray | None, n: int) -> tuple[NDArray[np.int64], list[str]]:
    """A string or dictionary column as (codes, labels); nulls become the label ``""``."""
    if col is None:
        return np.zeros(n, dtype=np.int64), [""]
    arr = pc.fill_null(col.cast(pa.string()), "").combine_chunks()
    enc = pc.dictionary_encode(arr)
    return np.asarray(enc.indices.to_numpy(zero_copy_only=False)).astype(np.int64), enc.dictionary.to_pylist()


def _check_run_folder(run_dir: Path) -> None:
    if not run_dir.exists():
        raise DashboardError(f"run folder not found: {run_dir}")
    if not run_dir.is_dir():
        raise DashboardError(f"{run_dir} is not a folder (expected a simulator run folder)")
    missing = [f for f in REQUIRED_FILES if not (run_dir / f).is_file()]
    if missing:
        raise DashboardError(
            f"{run_dir} is not a simulator run folder: missing {', '.join(missing)}",
            hint="give the folder `robotaxi simulate` wrote, e.g. out/helsinki",
        )


def _scenario(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "scenario.toml"
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise DashboardError(f"cannot read {path}: {e}") from e


def find_network(run_dir: Path, network: str | Path | None = None) -> str | Path:
    """The road network of a run: ``network`` if given, else ``[network] path`` of the run's ``scenario.toml``.

    A relative path is looked up against the run folder and then each of its parents, as the simulator does
    against the scenario's folder. ``"helsinki"`` names the embedded extract.

    Raises
    ------
    DashboardError
        If the run has no scenario naming a network, or the file cannot be found.
    """
    if network is not None:
        return network
    sc = _scenario(run_dir)
    value = sc.get("network", {}).get("path") if isinstance(sc.get("network"), dict) else None
    if not isinstance(value, str):
        raise DashboardError(
            f"{run_dir}: no scenario.toml with a [network] path", hint="name the network with --network PATH"
        )
    if value == "helsinki":
        return value
    p = Path(value).expanduser()
    if p.is_absolute():
        candidates = [p]
    else:
        base = run_dir.resolve()
        candidates = [folder / p for folder in (base, *base.parents)]
    for c in candidates:
        if c.exists():
            return c
    raise DashboardError(
        f"{run_dir}: network file {value} of scenario.toml not found (looked in the run folder and its parents)",
        hint="name the network with --network PATH",
    )


# ---------------------------------------------------------------------------------------------------------- network
def network_arrays(net: RoadNetwork) -> dict[str, NDArray[Any]]:
    """The page's map of ``net``: node positions, CSR adjacency, free-flow times and every street once."""
    tail = np.repeat(np.arange(net.n_nodes, dtype=np.int64), np.diff(net.indptr))
    head = net.head.astype(np.int64)
    # Each street once: a two-way street is two directed edges but one line on the map.
    a, b = np.minimum(tail, head), np.maximum(tail, head)
    seg = np.unique(a * net.n_nodes + b)
    return {
        "node_lon": net.lon.astype(np.float32),
        "node_lat": net.lat.astype(np.float32),
        "csr_indptr": net.indptr.astype(np.int32),
        "csr_head": net.head.astype(np.int32),
        "edge_time": np.clip(net.travel_time_s, 1, 65_535).astype(np.uint16),
        "map_a": (seg // net.n_nodes).astype(np.int32),
        "map_b": (seg % net.n_nodes).astype(np.int32),
    }


def path_slots(
    net: RoadNetwork, router: Router, origins: I32, destinations: I32
) -> tuple[NDArray[np.uint16], NDArray[np.uint8]]:
    """Fastest paths of many legs, as out-edge slots.

    The paths are walked backwards from each destination, vectorised over all legs: the node before ``v`` on a
    fastest route from ``o`` is the in-neighbour ``x`` with ``T(o, x) + t(x, v) = T(o, v)`` and
    ``D(o, x) + l(x, v) = D(o, v)``, where ``T`` and ``D`` are the router's time and distance tables (the
    router's routes minimise time, then length). Where two routes tie in both, either may be taken; the lowest edge
    index is. This needs only the router's public table look-ups, one NumPy pass per step instead of one Python call
    per leg.

    Returns
    -------
    lengths : ndarray of uint16
        Number of edges of each leg.
    slots : ndarray of uint8
        All legs' edges, concatenated: each edge's position among its tail node's out-edges.

    Raises
    ------
    DashboardError
        If a node has more than 255 out-edges, a path is longer than 65,535 edges, or no route is consistent with
        the router's tables.
    """
    o = np.asarray(origins, dtype=np.int64)
    d = np.asarray(destinations, dtype=np.int64)
    if int(np.diff(net.indptr).max(initial=0)) > 255:
        raise DashboardError(f"{net.name}: a node has more than 255 out-edges; the replay format cannot hold it")
    lengths = np.zeros(o.size, dtype=np.int64)
    steps: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]] = []  # (leg, step, slot)
    # Without a full table each origin's row is computed on demand and cached: walk a few origins at a time.
    chunk = o.size if router.has_table else 1_024
    by_origin = np.argsort(o, kind="stable")
    for lo in range(0, o.size, max(chunk, 1)):
        legs = by_origin[lo : lo + chunk]
        _walk_back(net, router, legs, o[legs], d[legs], lengths, steps)
    if lengths.size and int(lengths.max()) > 65_535:
        raise DashboardError("a path has more than 65,535 edges; the replay format cannot hold it")
    slots = np.zeros(int(lengths.sum()), dtype=np.uint8)
    offset = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if lengths.size else lengths
    for leg, step, slot in steps:
        # Step s (1-based) found the edge that ends the path's last-but-(s-1) edge: position length - s.
        slots[offset[leg] + lengths[leg] - step] = slot
    return lengths.astype(np.uint16), slots


def _walk_back(
    net: RoadNetwork,
    router: Router,
    legs: NDArray[np.int64],
    o: NDArray[np.int64],
    d: NDArray[np.int64],
    lengths: NDArray[np.int64],
    steps: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]],
) -> None:
    n = net.n_nodes
    tail = np.repeat(np.arange(n, dtype=np.int64), np.diff(net.indptr))
    by_head = np.argsort(net.head, kind="stable")  # in-edges of each node, by edge index
    in_ptr = np.searchsorted(net.head[by_head], np.arange(n + 1))
    t_edge, l_edge = net.travel_time_s.astype(np.int64), net.length_m.astype(np.int64)
    rem_t = router.times(o, d).astype(np.int64)
    rem_l = router.distances(o, d).astype(np.int64)
    cur = d.copy()
    active = np.flatnonzero(cur != o)
    step = 0
    while active.size:
        step += 1
        if step > n:
            raise DashboardError(f"{net.name}: no route consistent with the router's tables")
        v = cur[active]
        deg = in_ptr[v + 1] - in_ptr[v]
        which = np.repeat(np.arange(active.size), deg)
        first = np.repeat(in_ptr[v] - np.concatenate([[0], np.cumsum(deg)[:-1]]), deg)
        edge = by_head[first + np.arange(which.size)]
        x = tail[edge]
        a = active[which]
        ok = (router.times(o[a], x).astype(np.int64) + t_edge[edge] == rem_t[a]) & (
            router.distances(o[a], x).astype(np.int64) + l_edge[edge] == rem_l[a]
        )
        # The first matching in-edge of each leg (in-edges are listed by edge index).
        hit_which, pick = np.unique(which[ok], return_index=True)
        if hit_which.size != active.size:
            raise DashboardError(f"{net.name}: no route consistent with the router's tables")
        e = edge[ok][pick]
        steps.append((legs[active], np.full(active.size, step, dtype=np.int64), e - net.indptr[tail[e]]))
        cur[active] = tail[e]
        rem_t[active] -= t_edge[e]
        rem_l[active] -= l_edge[e]
        lengths[legs[active]] += 1
        active = active[cur[active] != o[active]]


# ---------------------------------------------------------------------------------------------------------- vehicles
def _vehicle_arrays(
    table: pa.Table,
    path: Path,
    net: RoadNetwork,
    router: Router,
    req_ids: NDArray[np.int64],
    id_order: NDArray[np.int64],
) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
    """Per-vehicle event timelines (vehicle, then time order) and the paths of their legs."""
    n = table.num_rows
    vehicle = _ints(_column(table, ("vehicle_id", "vehicle"), path), n)
    time_s = _ints(_column(table, ("time_s",), path), n)
    node = _ints(_column(table, ("node",), path), n)
    state, state_labels = _labels(_column(table, ("vehicle_state", "state"), path), n)
    event, event_labels = _labels(_column(table, ("event_type", "event"), path, required=False), n)
    trip = _ints(_column(table, ("trip_id", "request_id", "request"), path, required=False), n)
    if n and (int(node.min()) < 0 or int(node.max()) >= net.n_nodes):
        raise DashboardError(f"{path}: node indices outside the network {net.name} (0..{net.n_nodes - 1})",
                             hint="the run used another network: name it with --network PATH")  # fmt: skip
    if n and int(vehicle.min()) < 0:
        raise DashboardError(f"{path}: negative vehicle ids")
    order = np.lexsort((np.arange(n), time_s, vehicle))
    vehicle, time_s, node, state, event, trip = (a[order] for a in (vehicle, time_s, node, state, event, trip))
    veh_ids, veh_index = np.unique(vehicle, return_inverse=True)
    veh_index = veh_index.ravel()
    ev_start = np.searchsorted(veh_index, np.arange(veh_ids.size + 1)).astype(np.int32)

    # A leg leaves event i when the same vehicle's next event is at another node.
    same_next = np.zeros(n, dtype=bool)
    same_next[:-1] = veh_index[1:] == veh_index[:-1]
    nxt = np.minimum(np.arange(n) + 1, max(n - 1, 0))
    moving = same_next & (node[nxt] != node)
    lengths = np.zeros(n, dtype=np.uint16)
    leg_len, slots = path_slots(net, router, node[moving].astype(np.int32), node[nxt][moving].astype(np.int32))
    lengths[moving] = leg_len

    cat_code = {c: i for i, c in enumerate(CATEGORIES)}
    state_cat = np.array(
        [HIDDEN if s == "removed" else cat_code[_STATE_CATEGORY.get(s, "off_service")] for s in state_labels],
        dtype=np.uint8,
    )
    cat = state_cat[state]
    cat[moving & (cat == cat_code["idle"])] = cat_code["repositioning"]
    onboard = riders_on_board(event, event_labels, veh_index)
    # Events name requests by id; the page wants the request's row (requests are in time order).
    pos = _index_of(req_ids[id_order], trip)
    req = np.where(pos >= 0, id_order[np.maximum(pos, 0)], -1).astype(np.int32)
    arrays: dict[str, NDArray[Any]] = {
        "veh_id": veh_ids.astype(np.int32),
        "veh_ev_start": ev_start,
        "ev_time": time_s.astype(np.int32),
        "ev_cat": cat,
        "ev_state": state.astype(np.uint8),
        "ev_event": event.astype(np.uint8),
        "ev_node": node.astype(np.int32),
        "ev_req": req,
        "ev_onboard": onboard,
        "ev_path_len": lengths,
        "path_slots": slots,
    }
    meta: dict[str, Any] = {"state_labels": state_labels, "event_labels": event_labels, "legs": int(moving.sum())}
    return arrays, meta


def riders_on_board(event: NDArray[np.int64], labels: list[str], veh_index: NDArray[np.int64]) -> NDArray[np.uint8]:
    """Riders on board of each vehicle after each of its events (events in vehicle, then time, order).

    MDS counts a trip per rider: ``trip_start`` is a rider boarding, ``trip_stop`` the vehicle stopping at a rider's
    drop-off (the rider's ``dropoff_s`` in ``requests.parquet``), followed by ``trip_resume`` when others stay on
    board or ``trip_end`` when the last one has left; pickups along the way are ``reservation_stop``. So a boarding
    adds one and a drop-off stop takes one away; the running sum restarts at each vehicle (a log starts with an
    empty vehicle). Clipped to 0..255 for the page's bytes.
    """
    delta = np.zeros(len(labels) + 1, dtype=np.int64)  # index -1: a null event changes nothing
    for i, lab in enumerate(labels):
        delta[i] = 1 if lab == "trip_start" else -1 if lab == "trip_stop" else 0
    step = delta[event]
    total = np.cumsum(step)
    if total.size:
        first = np.flatnonzero(np.r_[True, veh_index[1:] != veh_index[:-1]])
        before = total[first] - step[first]  # the running sum before each vehicle's first event
        total -= np.repeat(before, np.diff(np.r_[first, total.size]))
    return np.clip(total, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------------- requests
def _request_arrays(
    table: pa.Table, path: Path, net: RoadNetwork, veh_ids: NDArray[np.int64], max_wait_s: int
) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
    """Request arrays in request-time order (the page finds the open ones by a window scan)."""
    n = table.num_rows
    time_s = _ints(_column(table, ("time_s",), path), n)
    order = np.argsort(time_s, kind="stable")
    time_s = time_s[order]

    def col(names: tuple[str, ...], *, required: bool = False) -> NDArray[np.int64]:
        return _ints(_column(table, names, path, required=required), n)[order]

    req_id = col(("request_id",), required=True)
    o_node, d_node = col(("o_node",), required=True), col(("d_node",))
    if n and (int(o_node.min()) < 0 or int(max(o_node.max(), d_node.max())) >= net.n_nodes):
        raise DashboardError(f"{path}: request nodes outside the network {net.name} (0..{net.n_nodes - 1})")
    outcome, outcome_labels = _labels(_column(table, ("outcome",), path), n)
    reason, reason_labels = _labels(_column(table, ("reason",), path, required=False), n)
    outcome, reason = outcome[order], reason[order]
    vehicle = col(("vehicle", "vehicle_id"))
    times = {k: col((f"{k}_s",)) for k in ("assigned", "pickup", "board", "dropoff")}
    closed = col(("closed_s", "cancelled_s", "closed_at_s"))
    served = np.array([lab == "served" for lab in outcome_labels], dtype=bool)[outcome]
    cancelled = np.array([lab == "cancelled" for lab in outcome_labels], dtype=bool)[outcome]
    close = np.where(closed >= 0, closed, np.where(cancelled, time_s + max_wait_s, time_s))
    close = np.where(served & (times["pickup"] >= 0), times["pickup"], close)
    arrays: dict[str, NDArray[Any]] = {
        "req_id": req_id,
        "req_time": time_s.astype(np.int32),
        "req_close": close.astype(np.int32),
        "req_o_node": o_node.astype(np.int32),
        "req_d_node": d_node.astype(np.int32),
        "req_outcome": outcome.astype(np.uint8),
        "req_reason": reason.astype(np.uint8),
        "req_vehicle": _index_of(veh_ids, vehicle),
        **{f"req_{k}": v.astype(np.int32) for k, v in times.items()},
    }
    return arrays, {"outcome_labels": outcome_labels, "reason_labels": reason_labels}


def _index_of(sorted_ids: NDArray[np.int64], ids: NDArray[np.int64]) -> I32:
    """Position of each id in ``sorted_ids``, -1 where absent (nulls are -1 already)."""
    if sorted_ids.size == 0:
        return np.full(ids.size, -1, dtype=np.int32)
    pos = np.minimum(np.searchsorted(sorted_ids, ids), sorted_ids.size - 1)
    return np.where((ids >= 0) & (sorted_ids[pos] == ids), pos, -1).astype(np.int32)


# ---------------------------------------------------------------------------------------------------------- operators
def _operator_arrays(
    run: Path,
    events: pa.Table,
    requests: pa.Table,
    veh_ids: NDArray[np.int64],
    req_ids: NDArray[np.int64],
    names: list[str],
) -> dict[str, NDArray[Any]]:
    """Each vehicle's operator (``provider`` of its events), each request's operator and fare (``fares.parquet``),
    as indices into ``names`` (-1: none)."""
    ev_path, req_path = run / "vehicle_events.parquet", run / "requests.parquet"
    code = {n: i for i, n in enumerate(names)}

    def indices(col: pa.ChunkedArray | None, n: int) -> NDArray[np.int64]:
        codes, labels = _labels(col, n)
        lut = np.array([code.get(lab, -1) for lab in labels], dtype=np.int64)
        return lut[codes]

    n_ev = events.num_rows
    vehicle = _ints(_column(events, ("vehicle_id", "vehicle"), ev_path), n_ev)
    ev_op = indices(_column(events, ("provider", "operator"), ev_path, required=False), n_ev)
    veh_op = np.full(veh_ids.size, -1, dtype=np.int64)
    veh_op[np.searchsorted(veh_ids, vehicle)] = ev_op
    n_rq = requests.num_rows
    order = np.argsort(_ints(_column(requests, ("time_s",), req_path), n_rq), kind="stable")
    req_op = indices(_column(requests, ("operator",), req_path, required=False), n_rq)[order]
    fare = np.full(n_rq, -1, dtype=np.int64)
    fares_path = run / "fares.parquet"
    if fares_path.is_file():
        fares = _read_table(fares_path)
        ids = _ints(_column(fares, ("request_id",), fares_path), fares.num_rows)
        cents = _ints(_column(fares, ("fare_cents",), fares_path), fares.num_rows)
        id_order = np.argsort(req_ids, kind="stable")
        pos = _index_of(req_ids[id_order], ids)
        if (pos < 0).any():
            raise DashboardError(f"{fares_path}: request {int(ids[np.argmax(pos < 0)])} is not in {req_path}")
        fare[id_order[pos]] = cents
    return {
        "veh_operator": veh_op.astype(np.int8),
        "req_operator": req_op.astype(np.int8),
        "req_fare": np.clip(fare, -1, 2**31 - 1).astype(np.int32),
    }


def _operator_names(events: pa.Table, sc: dict[str, Any]) -> list[str]:
    """The run's operators in the scenario's order (``[[operators]]``), else as the events name them when they name
    more than one (a single ``[fleet]`` has no operators to tell apart)."""
    tables = sc.get("operators")
    if isinstance(tables, list) and all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tables):
        return [str(t["name"]) for t in tables]
    col = _column(events, ("provider", "operator"), Path("vehicle_events.parquet"), required=False)
    if col is None:
        return []
    names = sorted(x for x in pc.unique(col.cast(pa.string())).to_pylist() if x)
    return names if len(names) > 1 else []  # one fleet: nothing to tell apart


def _service_areas(run: Path, names: list[str]) -> tuple[list[dict[str, Any]], str | None]:
    """Outlines of the operators' service areas from the run's ``scenario.toml`` (the same GeoJSON or TLC zones the
    run used, looked up against the run folder and its parents as the simulator looks them up): per operator with
    an area, its boundary rings as lon/lat paths. A problem is returned as a note, not raised: the replay is still
    worth seeing without the outlines."""
    from ..sim import Scenario

    path = run / "scenario.toml"
    if not path.is_file():
        return [], None
    try:
        sc = Scenario.from_file(path)
    except (RobotaxiError, ValueError, OSError) as e:
        logger.warning("service areas of %s not drawn: %s", run, e)
        return [], f"service areas not drawn: {e}"
    out: list[dict[str, Any]] = []
    for spec in sc.operators:
        if not spec.area or spec.name not in names:
            continue
        out.append({"operator": spec.name, "index": names.index(spec.name), "paths": outline_paths(list(spec.area))})
    return out, None


def outline_paths(geometries: list[Any]) -> list[list[list[float]]]:
    """The border of the union of ``geometries`` (polygons) as lon/lat paths for the page's path layer.

    Simplified to about 1 m at these latitudes: outlines of zone unions lose nothing visible and most of their
    vertices. Used by the replay (the run's areas) and the live feed (the platform's areas).
    """
    from shapely import simplify, union_all
    from shapely.geometry import LineString, MultiLineString

    boundary = simplify(union_all(geometries).boundary, 1e-5)
    lines = boundary.geoms if isinstance(boundary, MultiLineString) else [boundary]
    return [[[round(x, 6), round(y, 6)] for x, y in line.coords] for line in lines if isinstance(line, LineString)]


# ---------------------------------------------------------------------------------------------------------- whole run
def _kpis(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "kpis.json"
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DashboardError(f"cannot read {path}: {e}") from e
    return value if isinstance(value, dict) else {}


def _ledger_checkpoint(path: Path) -> dict[str, Any]:
    from ..ledger import Ledger  # only when asked: the ledger pulls in cryptography

    if not path.is_file():
        raise DashboardError(f"ledger file not found: {path}")
    try:
        with Ledger.open(path) as ledger:
            cp = ledger.latest_checkpoint()
            if cp is None:
                return {"path": str(path), "size": ledger.size, "note": None, "verified": False}
            ledger.open_checkpoint(cp.note)
            return {"path": str(path), "size": cp.size, "note": cp.note, "verified": True}
    except RobotaxiError as e:
        raise DashboardError(f"ledger {path}: {e}") from e


def load_replay(
    run_dir: str | Path,
    *,
    network: str | Path | RoadNetwork | None = None,
    ledger: str | Path | None = None,
    tiles: str | None = None,
) -> ReplayData:
    """Read a simulator run folder into :class:`ReplayData`.

    Parameters
    ----------
    run_dir : path
        A folder written by ``robotaxi simulate``.
    network : path, "helsinki" or RoadNetwork, optional
        The run's road network (default: ``[network] path`` of the run's ``scenario.toml``).
    ledger : path, optional
        A ledger the run was recorded in (``robotaxi simulate --ledger``); its latest checkpoint is shown.
    tiles : str, optional
        An XYZ raster tile URL template (``https://tiles.example.org/{z}/{x}/{y}.png``) drawn behind the streets.
        The page then loads tiles from that server; without it the page loads nothing from the network.

    Raises
    ------
    DashboardError
        If the folder is not a run, a file cannot be read, or the outputs do not fit the network.
    """
    run = Path(run_dir)
    if tiles is not None and not all(k in tiles for k in ("{z}", "{x}", "{y}")):
        raise DashboardError(f"--tiles: {tiles!r} is not a tile URL template with {{z}}, {{x}} and {{y}}")
    _check_run_folder(run)
    net = network if isinstance(network, RoadNetwork) else _load(run, network)
    sc = _scenario(run)
    dispatch = sc.get("dispatch", {})
    max_wait_s = int(dispatch.get("max_wait_s", 600)) if isinstance(dispatch, dict) else 600
    ev_path, req_path = run / "vehicle_events.parquet", run / "requests.parquet"
    events, requests = _read_table(ev_path), _read_table(req_path)

    veh_ids = np.unique(_ints(_column(events, ("vehicle_id", "vehicle"), ev_path), events.num_rows))
    req_arrays, req_meta = _request_arrays(requests, req_path, net, veh_ids, max_wait_s)
    id_order = np.argsort(req_arrays["req_id"], kind="stable")
    router = Router(net, workers=1) if net.n_nodes < 1_000 else Router(net)
    ev_arrays, ev_meta = _vehicle_arrays(events, ev_path, net, router, req_arrays["req_id"], id_order)
    arrays = {**network_arrays(net), **ev_arrays, **req_arrays}
    names = _operator_names(events, sc)
    areas: list[dict[str, Any]] = []
    areas_note = None
    if names:
        arrays.update(_operator_arrays(run, events, requests, veh_ids, req_arrays["req_id"], names))
        areas, areas_note = _service_areas(run, names)
        vehicles_of = np.bincount(arrays["veh_operator"][arrays["veh_operator"] >= 0], minlength=len(names))
    pricing = sc.get("pricing")
    t_all = np.concatenate([arrays["ev_time"], arrays["req_time"], arrays["req_close"]])
    kpis = _kpis(run)
    meta: dict[str, Any] = {
        "name": str(sc.get("name") or kpis.get("scenario") or run.name),
        "network": net.name,
        "start_s": int(t_all.min()) if t_all.size else 0,
        "end_s": int(t_all.max()) if t_all.size else 0,
        "categories": list(CATEGORIES),
        "max_wait_s": max_wait_s,
        "kpis": kpis,
        "ledger": _ledger_checkpoint(Path(ledger)) if ledger is not None else None,
        "tiles": tiles,
        "operators": [{"name": n, "vehicles": int(vehicles_of[i])} for i, n in enumerate(names)] if names else [],
        "areas": areas,
        "areas_note": areas_note,
        "priced": (run / "fares.parquet").is_file(),
        "currency": str(pricing.get("currency", "")) if isinstance(pricing, dict) else "",
        **ev_meta,
        **req_meta,
    }
    logger.info("replay of %s: %d vehicles, %d events, %d legs, %d requests", run, veh_ids.size,
                events.num_rows, ev_meta["legs"], requests.num_rows)  # fmt: skip
    return ReplayData(meta=meta, arrays=arrays)


def _load(run: Path, network: str | Path | None) -> RoadNetwork:
    where = find_network(run, network)
    try:
        return load_network(None if str(where) == "helsinki" else where)
    except RobotaxiError as e:
        raise DashboardError(f"cannot load the network of {run}: {e}") from e

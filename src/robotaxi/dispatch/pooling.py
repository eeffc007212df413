"""Ride pooling: requests inserted into vehicles' stop plans, on arrival or in batches.

Two policies:

* :class:`InsertionPolicy` (``insertion``): each request, on arrival and in arrival order, goes to the cheapest
  feasible insertion of its pickup and dropoff into the plan of one of the ``k`` vehicles nearest its pickup.
* :class:`BatchPooling` (``pool``): every batch, a simplified request-trip-vehicle graph after Alonso-Mora et al.,
  "On-demand high-capacity ride-sharing via dynamic trip-vehicle assignment", PNAS 114(3), 2017: for each vehicle,
  the feasible trips of new requests up to its seats (inserted into what the vehicle already has), each with its
  cost, grown size by size from trips whose every sub-trip is feasible; then an exact assignment (each vehicle one
  trip, each request at most one) with SciPy's HiGHS ``milp`` within a time budget, the greedy assignment as the
  fallback and as a bound the exact one must not be worse than. Simplifications (documented): trips of three or
  more grow only from each vehicle's cheapest trips one size smaller (:data:`_EXTEND`), and a new request is
  inserted into the plan of the trip without it (not every ordering of the trip's stops is searched).

The cost of an insertion is the extra time it adds to the vehicle's plan (how much later the plan ends) plus the new
rider's wait for pickup, both in seconds. Feasibility: every pickup before its deadline, every dropoff before its
latest dropoff (:mod:`.plans`), seats never exceeded, a rider who refused to share never with another, the stop a
vehicle stands at or drives to kept first (only an idle or repositioning vehicle starts a new plan with the new
pickup). Candidate insertions are timed with the speed factor at decision time; the chosen plan is then timed
exactly (each leg at its own departure) by :func:`~.plans.schedule` and dropped if a window would be missed.

Cost of one insertion: the plan's existing times and slacks are computed once per vehicle (O(L) travel-time look-ups
for L stops), then every (pickup, dropoff) position pair is checked in O(1) each: O(L^2) per vehicle. Both are done
for every (request, vehicle) pair of a decision at once (:class:`Pack`, :func:`grid`): in one compiled call each
(:mod:`._kernels`, numba) where the router has a full table, else in NumPy; the scalar :func:`best_insertion` and
the NumPy path are the references they are tested against.

Candidates (:func:`_call_candidates`): the k nearest vehicles with seats by free-flow time (ties to the lower vehicle
index), found for large decisions through each pickup's list of nodes by travel time (:func:`_node_order`) and
otherwise against every vehicle, with the same answer; then those that cannot reach the pickup in time are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

from ..network.router import LegTerms
from .plans import DROPOFF, PICKUP, REPOSITION, Dwell, Stop, schedule
from .policies import PolicyParams
from .problem import Assignment, MatchProblem

I64 = NDArray[np.int64]
I32 = NDArray[np.int32]
_INF = np.iinfo(np.int64).max // 4
#: Whether candidates, packs and grids go through the compiled kernels (:mod:`._kernels`) where the router allows
#: (a full table); False runs the NumPy reference path (the tests compare both).
_COMPILED = True
#: Ranking key of a vehicle that cannot take a request (more than any travel time in seconds).
_NO_FIT = 1 << 32


@dataclass(frozen=True, slots=True)
class Insertion:
    """One feasible plan for a vehicle after inserting new requests: its stops, cost and new pickup times."""

    vehicle: int
    rows: tuple[int, ...]
    stops: tuple[Stop, ...]
    cost: int
    pickup_s: tuple[int, ...]


class _Base:
    """What a vehicle's plan looks like to an insertion: origin, stops, times, slacks and loads."""

    def __init__(self, p: MatchProblem, v: int, stops: list[Stop], origin: int, t0: int, fixed: int) -> None:
        self.v = v
        self.stops = stops
        self.origin = origin
        self.t0 = t0
        self.fixed = fixed  # stops that must stay first (0, or 1 when the vehicle stands at or drives to stop 0)
        dw = p.dwell
        n = len(stops)
        nodes = np.asarray([origin, *[s[2] for s in stops]], dtype=np.int64)
        self.nodes = nodes
        leg = p.travel.times_at(nodes[:-1], nodes[1:], p.now) if n else np.empty(0, np.int64)
        arrive = np.empty(n, np.int64)
        depart = np.empty(n, np.int64)
        t = t0
        for k in range(n):
            if k == 0 and p.fleet.at_stop[v]:
                arrive[k], depart[k] = t0 - dw.at(stops[0][0]), t0
            else:
                arrive[k] = t + leg[k]
                depart[k] = arrive[k] + dw.at(stops[k][0])
            t = int(depart[k])
        self.arrive, self.depart = arrive, depart
        self.end = int(depart[-1]) if n else t0
        req = p.fleet  # loads: riders on board now, then +pax at pickups, -pax at dropoffs
        load = int(req.load[v])
        latest = np.empty(n, np.int64)
        load_before = np.empty(n + 1, np.int64)  # load on the leg that arrives at stop k (k = n: after the last)
        self.shareable = True
        for k, (kind, r, _node) in enumerate(stops):
            load_before[k] = load
            if kind == PICKUP:
                load += int(p_pax(p, r))
                latest[k] = p_deadline(p, r)
            elif kind == DROPOFF:
                load -= int(p_pax(p, r))
                latest[k] = p_latest(p, r)
            else:
                latest[k] = _INF
            if r >= 0 and not p_share(p, r):
                self.shareable = False
        load_before[n] = load
        self.load_before = load_before
        slack = latest - arrive
        self.suffix_slack = np.minimum.accumulate(slack[::-1])[::-1] if n else slack
        self.slack = slack


# Attributes of any request the engine knows (by dense index), for the riders already in a vehicle's plan.
def p_pax(p: MatchProblem, r: int) -> int:
    return int(p.requests["pax"][r])


def p_deadline(p: MatchProblem, r: int) -> int:
    return int(p.requests["deadline"][r])


def p_latest(p: MatchProblem, r: int) -> int:
    return int(p.requests["latest_dropoff"][r])


def p_share(p: MatchProblem, r: int) -> bool:
    return bool(p.requests["shareable"][r])


def best_insertion(p: MatchProblem, base: _Base, row: int, capacity: int) -> tuple[int, int, int, int] | None:
    """Cheapest feasible ``(cost, i, j, pickup_time)`` for problem row ``row`` in ``base``'s plan, or None.

    The pickup goes before original stop ``i`` and the dropoff before original stop ``j`` (``i <= j``; ``j == n``
    means at the end).
    """
    o, d = int(p.o_node[row]), int(p.d_node[row])
    pax = int(p.passengers[row])
    deadline, latest = int(p.deadline_s[row]), int(p.latest_dropoff_s[row])
    share = bool(p.shareable[row])
    n = len(base.stops)
    if (not share or not base.shareable) and any(s[0] != REPOSITION for s in base.stops):
        return None
    dw = p.dwell
    tt = p.travel
    nodes = base.nodes
    to_o = tt.times_at(nodes, o, p.now)
    to_d = tt.times_at(nodes, d, p.now)
    from_o = tt.times_at(o, nodes[1:], p.now)
    from_d = tt.times_at(d, nodes[1:], p.now)
    od = tt.time1(o, d, p.now)
    best: tuple[int, int, int, int] | None = None
    dep_prev = np.concatenate(([base.t0], base.depart))  # departure from nodes[k] (origin or stop k-1)
    for i in range(base.fixed, n + 1):
        if base.load_before[i] + pax > capacity:
            continue
        a_p = int(dep_prev[i] + to_o[i])
        if a_p > deadline:
            continue
        d_p = a_p + dw.pickup_s
        # Dropoff right after the pickup (j == i).
        a_d = d_p + od
        if a_d <= latest:
            d_d = a_d + dw.dropoff_s
            if i < n:
                shift = int(d_d + from_d[i] - base.arrive[i])
                ok = shift <= base.suffix_slack[i]
            else:
                shift = d_d - base.end
                ok = True
            if ok:
                cost = max(shift, 0) + (a_p - p.now)
                if best is None or cost < best[0]:
                    best = (cost, i, i, a_p)
        if i == n:
            continue
        shift1 = int(d_p + from_o[i] - base.arrive[i])
        later = _later_dropoff(base, i, shift1, pax, capacity, to_d, from_d, latest, dw.dropoff_s)
        if later is not None:
            cost = later[0] + (a_p - p.now)
            if best is None or cost < best[0]:
                best = (cost, i, later[1], a_p)
    return best


def _later_dropoff(
    base: _Base, i: int, shift1: int, pax: int, capacity: int, to_d: I64, from_d: I64, latest: int, dwell: int
) -> tuple[int, int] | None:
    """Cheapest ``(plan extension, j)`` for a dropoff before original stop ``j > i``, the pickup before stop ``i``
    having pushed stops ``i..`` back by ``shift1`` seconds."""
    n = len(base.stops)
    best: tuple[int, int] | None = None
    max_load = int(base.load_before[i])
    for j in range(i + 1, n + 1):
        # Stops i..j-1 are shifted by shift1 and carry the new rider too.
        if shift1 > base.slack[j - 1]:
            break
        max_load = max(max_load, int(base.load_before[j]))
        if max_load + pax > capacity:
            break
        a_d = int(base.depart[j - 1] + shift1 + to_d[j])
        if a_d > latest:
            continue
        d_d = a_d + dwell
        if j < n:
            shift2 = int(d_d + from_d[j] - base.arrive[j])
            if shift2 > base.suffix_slack[j]:
                continue
        else:
            shift2 = d_d - base.end
        if best is None or max(shift2, 0) < best[0]:
            best = (max(shift2, 0), j)
    return best


def _insert(stops: list[Stop], i: int, j: int, r: int, o: int, d: int) -> list[Stop]:
    out = list(stops)
    out.insert(j, (DROPOFF, r, d))
    out.insert(i, (PICKUP, r, o))
    return out


def _base_args(
    p: MatchProblem,
    v: int,
    plans: dict[int, list[Stop]],
    cols: tuple[list[int], list[int], list[bool]] | None = None,
    q: int = 0,
) -> tuple[list[Stop], int, int, int]:
    """``(stops, origin, t0, fixed)`` of ``v``'s insertion base: its plan (or the one given to it earlier in this
    call, from ``plans``), where and when it starts, and how many stops must stay first.

    Without a plan from this call, repositioning targets are dropped (the vehicle is counted at its target; the
    engine may divert it sooner on the way) and idle vehicles start now where they are. ``cols``: the fleet's
    ``(leg_node, leg_s, at_stop)`` of the caller's vehicles as lists, ``v``'s at position ``q``.
    """
    f = p.fleet
    if cols is None:
        node, t0, at_stop = int(f.leg_node[v]), int(f.leg_s[v]), bool(f.at_stop[v])
    else:
        node, t0, at_stop = cols[0][q], cols[1][q], cols[2][q]
    given = plans.get(v)
    if given is not None:
        if not f.plan(v):
            return given, node, max(t0, p.now), 1
        return given, node, t0, 1 if (at_stop or given[0][0] != REPOSITION) else 0
    stops = f.plan(v)
    if stops and stops[0][0] == REPOSITION and not at_stop:
        target = stops[0][2]
        t0 = max(p.now, t0 + p.travel.time1(node, target, t0))
        node, stops = target, stops[1:]
    if not stops:
        return [], node, max(t0, p.now), 0
    return stops, node, t0, 1


def _bases_args(
    p: MatchProblem, vehicles: list[int], plans: dict[int, list[Stop]]
) -> list[tuple[list[Stop], int, int, int]]:
    """:func:`_base_args` of many vehicles, the fleet's columns read once for all of them (as plain ints)."""
    f = p.fleet
    vv = np.asarray(vehicles, np.int64)
    cols = (f.leg_node[vv].tolist(), f.leg_s[vv].tolist(), f.at_stop[vv].tolist())
    return [_base_args(p, v, plans, cols, q) for q, v in enumerate(vehicles)]


def _bases(p: MatchProblem, vehicles: I32) -> dict[int, _Base]:
    """Each candidate vehicle's plan as an insertion base (see :func:`_base_args`)."""
    out: dict[int, _Base] = {}
    for v in vehicles.tolist():
        stops, node, t0, fixed = _base_args(p, v, {})
        out[v] = _Base(p, v, stops, node, t0, fixed)
    return out


class Pack:
    """The insertion bases of many vehicles at once: one row per vehicle, padded to the longest plan.

    Same quantities as :class:`_Base` (departure from the origin and each stop, arrival times, slacks to each
    stop's window, load on each leg), computed with one travel-time look-up for all legs of all vehicles at the
    decision time's speed factor. ``bases`` (optional) gives explicit ``(stops, origin, t0, fixed)`` per row
    instead of the vehicles' plans (trips built on top of another insertion). ``compiled`` (default
    :data:`_COMPILED`): with a router that has a full table, the arrays come from one compiled call
    (:func:`._kernels.pack`) and :func:`grid` over this pack is one compiled call too; same values.
    """

    def __init__(
        self,
        p: MatchProblem,
        vehicles: list[int],
        plans: dict[int, list[Stop]],
        bases: list[tuple[list[Stop], int, int, int]] | None = None,
        *,
        compiled: bool | None = None,
    ) -> None:
        f = p.fleet
        nv = len(vehicles)
        args = _bases_args(p, vehicles, plans) if bases is None else bases
        self.vehicle = np.asarray(vehicles, np.int64)
        self.stops = [a[0] for a in args]
        lens = np.fromiter((len(a[0]) for a in args), np.int64, nv)
        width = int(lens.max()) if nv else 0
        self.n = lens
        self.origin = np.fromiter((a[1] for a in args), np.int64, nv)
        self.t0 = np.fromiter((a[2] for a in args), np.int64, nv)
        self.fixed = np.fromiter((a[3] for a in args), np.int64, nv)
        self.capacity = f.capacity[self.vehicle].astype(np.int64)
        flat = [st for a in args for st in a[0]]
        #: The router's leg terms at the decision time when the compiled kernels time this pack and its grid.
        self.terms = _leg_terms(p) if (_COMPILED if compiled is None else compiled) else None
        if self.terms is not None:
            self._compiled(p, lens, flat, self.terms)
            return
        owner = np.repeat(np.arange(nv), lens)
        slot = np.arange(owner.size) - np.repeat(np.cumsum(lens) - lens, lens)
        kind = np.full((nv, width), -1, np.int64)
        req = np.full((nv, width), -1, np.int64)
        nodes = np.repeat(self.origin[:, None], width + 1, axis=1)
        if flat:
            fk, fr, fn = (np.asarray(x, np.int64) for x in zip(*flat, strict=True))
            kind[owner, slot], req[owner, slot], nodes[owner, slot + 1] = fk, fr, fn
        self.nodes = nodes
        dw = p.dwell
        dwell = np.where(kind == PICKUP, dw.pickup_s, np.where(kind == DROPOFF, dw.dropoff_s, 0))
        leg = p.travel.times_at(nodes[:, :-1], nodes[:, 1:], p.now) if width else np.zeros((nv, 0), np.int64)
        at_stop = f.at_stop[self.vehicle].astype(bool) & (lens > 0)
        if width:
            leg[at_stop, 0] = -dwell[at_stop, 0]  # standing at stop 0: arrived a dwell before t0, leaves at t0
        self.depart = self.t0[:, None] + np.cumsum(leg + dwell, axis=1)
        self.arrive = self.depart - dwell
        self.end = np.where(lens > 0, self.depart[np.arange(nv), np.maximum(lens - 1, 0)] if width else 0, self.t0)
        rc = p.requests
        r0 = np.maximum(req, 0)
        pax = np.where(req >= 0, rc["pax"][r0], 0).astype(np.int64)
        delta = np.where(kind == PICKUP, pax, np.where(kind == DROPOFF, -pax, 0))
        load0 = f.load[self.vehicle].astype(np.int64)
        self.load_before = load0[:, None] + np.concatenate((np.zeros((nv, 1), np.int64), np.cumsum(delta, axis=1)), 1)
        latest = np.where(
            kind == PICKUP, rc["deadline"][r0], np.where(kind == DROPOFF, rc["latest_dropoff"][r0], _INF)
        ).astype(np.int64)
        self.slack = latest - self.arrive
        self.suffix_slack = np.minimum.accumulate(self.slack[:, ::-1], axis=1)[:, ::-1]
        riders = (kind == PICKUP) | (kind == DROPOFF)
        self.has_riders = riders.any(axis=1)
        self.shareable = ~(riders & ~rc["shareable"][r0].astype(bool)).any(axis=1)

    def _compiled(self, p: MatchProblem, lens: I64, flat: list[Stop], terms: LegTerms) -> None:
        """The arrays of the NumPy construction, element for element, from one compiled call (:mod:`._kernels`)."""
        _kernels = _kernels_module()
        if flat:
            fk, fr, fn = (np.asarray(x, np.int64) for x in zip(*flat, strict=True))
        else:
            fk = fr = fn = np.empty(0, np.int64)
        f, rc, dw = p.fleet, p.requests, p.dwell
        at_stop = np.ascontiguousarray(f.at_stop[self.vehicle], dtype=np.bool_)
        load0 = f.load[self.vehicle].astype(np.int64)
        (
            self.nodes,
            self.depart,
            self.arrive,
            self.end,
            self.load_before,
            self.slack,
            self.suffix_slack,
            self.has_riders,
            self.shareable,
        ) = _kernels.pack(
            lens, self.origin, self.t0, fk, fr, fn, at_stop, load0,
            *_request_cols(rc), dw.pickup_s, dw.dropoff_s, tuple(terms),
        )  # fmt: skip


def grid(p: MatchProblem, pk: Pack, idx: I64, rows: I64) -> tuple[I64, I64, I64, I64]:
    """Cheapest feasible insertion of each problem row ``rows[q]`` into packed base ``idx[q]``, all at once.

    Returns ``(cost, i, j, pickup_time)`` per pair, cost >= ``_INF`` where nothing fits: the same answer as
    :func:`best_insertion` (ties to the lowest pickup position, then dropoff position), every (pickup position,
    dropoff position) of every pair timed in one NumPy pass. Cost: O(P L^2) for P pairs and plans of L stops.
    """
    if pk.terms is not None:
        return _grid_compiled(p, pk, idx, rows, pk.terms)
    tt, now, dw = p.travel, p.now, p.dwell
    q = idx.size
    width = pk.nodes.shape[1] - 1
    nodes = pk.nodes[idx]
    o = p.o_node[rows].astype(np.int64)
    d = p.d_node[rows].astype(np.int64)
    pax = p.passengers[rows].astype(np.int64)[:, None]
    deadline = p.deadline_s[rows][:, None]
    latest = p.latest_dropoff_s[rows][:, None]
    share = p.shareable[rows].astype(bool)
    od = tt.times_at(o, d, now)[:, None]
    to = tt.times_at(nodes[:, :, None], np.stack((o, d), 1)[:, None, :], now)  # (q, L+1, 2)
    frm = tt.times_at(np.stack((o, d), 1)[:, None, :], nodes[:, 1:, None], now)  # (q, L, 2)
    to_o, to_d = to[:, :, 0], to[:, :, 1]
    zero = np.zeros((q, 1), np.int64)
    big = np.full((q, 1), _INF, np.int64)
    from_o = np.concatenate((frm[:, :, 0], zero), 1)
    from_d = np.concatenate((frm[:, :, 1], zero), 1)
    arrive = np.concatenate((pk.arrive[idx], zero), 1)
    suffix = np.concatenate((pk.suffix_slack[idx], big), 1)
    dep_prev = np.concatenate((pk.t0[idx][:, None], pk.depart[idx]), 1)
    load = pk.load_before[idx]
    n = pk.n[idx][:, None]
    end = pk.end[idx][:, None]
    cap = pk.capacity[idx][:, None]
    pos = np.arange(width + 1)[None, :]
    inner = pos < n
    share_ok = (share & pk.shareable[idx]) | ~pk.has_riders[idx]
    a_p = dep_prev + to_o
    ok_i = (pos >= pk.fixed[idx][:, None]) & (pos <= n) & (load + pax <= cap) & (a_p <= deadline)
    ok_i &= share_ok[:, None]
    d_p = a_p + dw.pickup_s
    wait = a_p - now
    # Dropoff right after the pickup (j == i).
    a_d = d_p + od
    d_d = a_d + dw.dropoff_s
    shift = np.where(inner, d_d + from_d - arrive, d_d - end)
    ok_ii = ok_i & (a_d <= latest) & (~inner | (shift <= suffix))
    cost_ii = np.where(ok_ii, np.maximum(shift, 0) + wait, _INF)
    # Dropoff before a later stop j > i: stops i..j-1 pushed back by shift1 and carrying the new rider.
    shift1 = d_p + from_o - arrive
    cost3 = _later(pk, idx, ok_i & inner, shift1, wait, to_d, from_d, arrive, suffix, dep_prev, pax, latest, dw)
    diag = np.arange(width + 1)
    cost3[:, diag, diag] = cost_ii
    flat = cost3.reshape(q, -1)
    best = np.argmin(flat, axis=1)
    cost = flat[np.arange(q), best]
    bi, bj = np.divmod(best, width + 1)
    return cost, bi, bj, a_p[np.arange(q), bi]


def _grid_compiled(p: MatchProblem, pk: Pack, idx: I64, rows: I64, terms: LegTerms) -> tuple[I64, I64, I64, I64]:
    """:func:`grid` in one compiled call (:func:`._kernels.grid`), with the same answer."""
    out: tuple[I64, I64, I64, I64] = _kernels_module().grid(
        np.ascontiguousarray(idx, np.int64),
        p.o_node[rows].astype(np.int64),
        p.d_node[rows].astype(np.int64),
        p.passengers[rows].astype(np.int64),
        p.deadline_s[rows].astype(np.int64),
        p.latest_dropoff_s[rows].astype(np.int64),
        p.shareable[rows].astype(np.bool_),
        pk.nodes, pk.n, pk.t0, pk.depart, pk.arrive, pk.end, pk.load_before, pk.slack, pk.suffix_slack,
        pk.fixed, pk.capacity, pk.has_riders, pk.shareable,
        p.now, p.dwell.pickup_s, p.dwell.dropoff_s, tuple(terms),
    )  # fmt: skip
    return out


@cache
def _kernels_module() -> ModuleType:
    """:mod:`._kernels`, imported on first use (numba's import costs about a second; runs without the insertion
    policies never pay it)."""
    from . import _kernels

    return _kernels


#: Up to this many vehicles, the compiled ranking reads free-flow times vehicle by vehicle from the table's rows
#: (they stay in the cache over many pickups: the requests that wait, against the few vehicles with new room);
#: above, through each pickup's nearest nodes (:func:`_node_order`). Same answer either way.
_BY_VEHICLE_MAX = 128
#: No node order (:func:`_node_order`) for the compiled ranking.
_NO_ORDER = np.zeros((0, 0), np.int16)
#: Leg terms where a kernel times no leg (free flow on an empty table).
_NO_TERMS = LegTerms(np.zeros((1, 1), np.uint16), np.zeros((0, 0), np.uint16), np.ones(0), 1.0, 1.0, 0, 0)


def _leg_terms(p: MatchProblem) -> LegTerms | None:
    """The router's :class:`~robotaxi.network.router.LegTerms` at the decision time when the compiled kernels can
    time this problem's legs (a router with a full table), else None (the NumPy path)."""
    get = getattr(p.travel, "leg_terms", None)
    if get is None:
        return None
    terms: LegTerms | None = get(p.now)
    return terms


def _request_cols(rc: Mapping[str, NDArray[Any]]) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]:
    """Pax, deadline, latest dropoff and shareable of every request the engine knows, as the kernels read them."""
    return rc["pax"], rc["deadline"], rc["latest_dropoff"], rc["shareable"]  # as stored: no copy per call


def _later(
    pk: Pack,
    idx: I64,
    ok_i: NDArray[np.bool_],
    shift1: I64,
    wait: I64,
    to_d: I64,
    from_d: I64,
    arrive: I64,
    suffix: I64,
    dep_prev: I64,
    pax: I64,
    latest: I64,
    dw: Dwell,
) -> I64:
    """Cost of each (pair, pickup position i, dropoff position j > i) for :func:`grid`, ``_INF`` where infeasible:
    stops i..j-1 are pushed back by ``shift1[i]`` and carry the new rider; ``ok_i`` marks usable pickups."""
    q, w1 = ok_i.shape
    pos = np.arange(w1)[None, :]
    n = pk.n[idx][:, None]
    end = pk.end[idx][:, None]
    cap = pk.capacity[idx][:, None]
    inner = pos < n
    slack = np.concatenate((pk.slack[idx], np.full((q, 1), _INF, np.int64)), 1)
    load = pk.load_before[idx]
    m = pos[:, None, :]  # (1, 1, L+1): the stop index along the last axis
    i3 = pos[:, :, None]  # (1, L+1, 1)
    after = m >= i3
    min_slack = np.minimum.accumulate(np.where(after, slack[:, None, :], _INF), axis=2)  # min slack[i..m]
    min_slack = np.concatenate((np.full((q, w1, 1), _INF, np.int64), min_slack[:, :, :-1]), 2)  # i..j-1
    max_load = np.maximum.accumulate(np.where(after, load[:, None, :], -_INF), axis=2)  # max load[i..j]
    a_d3 = dep_prev[:, None, :] + shift1[:, :, None] + to_d[:, None, :]
    d_d3 = a_d3 + dw.dropoff_s
    inner_j = inner[:, None, :]
    shift2 = np.where(inner_j, d_d3 + from_d[:, None, :] - arrive[:, None, :], d_d3 - end[:, :, None])
    ok3 = (
        ok_i[:, :, None]
        & (m > i3)
        & (m <= n[:, :, None])
        & (min_slack >= shift1[:, :, None])
        & (max_load + pax[:, :, None] <= cap[:, :, None])
        & (a_d3 <= latest[:, :, None])
        & (~inner_j | (shift2 <= suffix[:, None, :]))
    )
    out: I64 = np.where(ok3, np.maximum(shift2, 0) + wait[:, :, None], _INF)
    return out


def anchors(p: MatchProblem) -> I32:
    """Where each vehicle can take a new pickup from: its next stop when it drives to one (new stops go after it),
    else where it is."""
    f = p.fleet
    out = f.leg_node.copy()
    at_stop = f.at_stop
    for v in range(f.size):
        plan = f.plan(v) if not at_stop[v] else None
        if plan:
            out[v] = plan[0][2]
    return out


def candidates(
    p: MatchProblem,
    row: int,
    k: int,
    anchor: I32 | None = None,
    ok: NDArray[np.bool_] | None = None,
    *,
    reach: bool = False,
) -> I32:
    """The ``k`` dispatchable vehicles with seats nearest the pickup, from ``anchor`` (default: where each vehicle's
    current leg started); ``ok`` (default: the dispatchable ones) limits the vehicles considered, ``reach`` drops
    those that could not reach the pickup by its deadline even driving straight there from ``anchor`` now."""
    f = p.fleet
    ok = (f.dispatchable() if ok is None else ok) & (f.capacity - f.load >= p.passengers[row])
    op = int(p.operator[row])
    if op >= 0:
        ok &= f.operator == op
    if p.market is not None:
        ok = p.market.vehicle_ok(row, ok)
    vs = np.flatnonzero(ok).astype(np.int32)
    if vs.size <= k and not reach:
        return vs
    eta = p.travel.times_at((f.leg_node if anchor is None else anchor)[vs], p.o_node[row], p.now)
    if reach:  # a vehicle that cannot be at the pickup by its deadline driving straight there cannot serve it
        fits = eta <= int(p.deadline_s[row]) - p.now
        vs, eta = vs[fits], eta[fits]
        if vs.size <= k:
            return vs
    near = np.argpartition(eta, k - 1)[:k]
    return np.sort(vs[near])


def verify(p: MatchProblem, v: int, stops: list[Stop]) -> tuple[int, ...] | None:
    """Exact timing of a plan (each leg at its own departure): the pickup times of its stops if every window
    holds, else None."""
    f = p.fleet
    node, t0, at_stop = int(f.leg_node[v]), int(f.leg_s[v]), bool(f.at_stop[v])
    plan = f.plan(v)
    if plan and plan[0][0] == REPOSITION and not at_stop and (not stops or stops[0] != plan[0]):
        node, t0 = p.travel.divert(node, plan[0][2], t0, p.now)
    elif not plan:
        t0 = max(t0, p.now)
    times = schedule(p.travel, node, t0, stops, p.dwell, at_stop=at_stop)
    picks = []
    for (kind, r, _n), (arrive, _dep) in zip(stops, times, strict=True):
        if kind == PICKUP and arrive > p_deadline(p, r):
            return None
        if kind == DROPOFF and arrive > p_latest(p, r):
            return None
        if kind == PICKUP:
            picks.append(arrive)
    return tuple(picks)


@dataclass(frozen=True, slots=True)
class InsertionPolicy:
    """Cheapest insertion, request by request on arrival, among the ``params.candidates`` nearest vehicles.

    A request seen for the first time (or re-opened) is tried against its k nearest vehicles with free seats; one
    that already waited through a decision is tried again only against the vehicles whose plans gained room since
    the last decision (:attr:`~.problem.MatchProblem.retry_vehicles`: seats freed, plans cut, vehicles joining):
    an unchanged plan that could not take it then cannot now, its times having only moved closer to the deadline.
    Every (vehicle, pickup position, dropoff position) of a request is timed at once in NumPy (:func:`grid`).
    """

    params: PolicyParams = field(default_factory=PolicyParams)

    @property
    def name(self) -> str:
        return "insertion"

    @property
    def on_arrival(self) -> bool:
        return True

    @property
    def tick_seconds(self) -> int:
        return 0

    def match(self, problem: MatchProblem) -> Assignment:
        n = len(problem)
        p = problem
        # A request no vehicle can take now waits (the engine asks again whenever a vehicle frees up) until it is
        # served or its deadline passes: seats free up as riders get out.
        reachable = np.ones(n, dtype=bool)
        plans: dict[int, list[Stop]] = {}
        rows: list[int] = []
        vehicles: list[int] = []
        picks: list[int] = []
        cand_rows, cand_veh = _call_candidates(p, self.params.candidates)
        if cand_rows.size == 0:
            return Assignment.none(n, waiting=True)
        union = np.unique(cand_veh)
        pack = Pack(p, union.tolist(), plans)
        # Every (row, candidate) pair timed at once against the plans as they were at the call; when a row gets a
        # vehicle, that vehicle's pairs with the later rows are timed again against its new plan (one grid call).
        all_idx = np.searchsorted(union, cand_veh)
        g_cost, g_i, g_j, _ap = grid(p, pack, all_idx, cand_rows)
        base_stops = dict(zip(union.tolist(), pack.stops, strict=True))
        bounds = np.flatnonzero(np.diff(cand_rows)) + 1
        starts = np.concatenate(([0], bounds)).tolist()
        ends = np.concatenate((bounds, [cand_rows.size])).tolist()
        for lo, hi in zip(starts, ends, strict=True):
            cost = g_cost[lo:hi]
            best = int(np.argmin(cost))  # the first of equal costs: the lowest vehicle index, as scalar insertion
            if cost[best] >= _INF:
                continue
            row = int(cand_rows[lo])
            v = int(cand_veh[lo + best])
            r = int(p.request[row])
            o, d = int(p.o_node[row]), int(p.d_node[row])
            stops = _insert(base_stops[v], int(g_i[lo + best]), int(g_j[lo + best]), r, o, d)
            full = _with_fixed_prefix(p, v, stops, plans)
            exact = verify_plan(p, v, full)
            if exact is None:
                continue
            plans[v] = full
            rows.append(row)
            vehicles.append(v)
            picks.append(exact[r])
            later = hi + np.flatnonzero(cand_veh[hi:] == v)
            if 0 < later.size <= _SCALAR_RETIME and pack.terms is None:  # the scalar insertion, same answer
                base = _plan_base(p, v, plans)
                cap = int(p.fleet.capacity[v])
                for q in later.tolist():
                    b = best_insertion(p, base, int(cand_rows[q]), cap)
                    g_cost[q], g_i[q], g_j[q] = (_INF, 0, 0) if b is None else b[:3]
                base_stops[v] = base.stops
            elif later.size:
                sub = Pack(p, [v], plans)
                g_cost[later], g_i[later], g_j[later], _ap = grid(
                    p, sub, np.zeros(later.size, np.int64), cand_rows[later]
                )
                base_stops[v] = sub.stops[0]
        return Assignment(
            rows=np.asarray(rows, np.int64),
            vehicles=np.asarray(vehicles, np.int32),
            pickup_s=np.asarray(picks, np.int64),
            reachable=reachable,
            plans=plans,
        )


#: Up to this many pairs of a vehicle that just got a request are re-timed one by one (:func:`best_insertion`,
#: about a third of the time of a one-vehicle NumPy :class:`Pack` and :func:`grid` per pair at Manhattan's plan
#: lengths; the compiled pack and grid are quicker still, and used whenever they can be).
_SCALAR_RETIME = 2


def _call_candidates(
    p: MatchProblem, k: int, *, anchor: I32 | None = None, retry: bool = True
) -> tuple[I64, NDArray[np.int64]]:
    """The vehicles to try for each problem row, as flat ``(row, vehicle)`` pairs sorted by row, then vehicle.

    Of the k nearest vehicles with seats (free-flow time from where their current legs started; ties to the lower
    vehicle index), those that could reach the pickup by its deadline driving straight there at the decision
    time's speeds; among all vehicles for a new row, among those whose plans gained room for one that waited
    already. ``anchor``: where each vehicle takes a new pickup from (default: where its current leg started);
    ``retry=False``: every row is new (batch policies). Rows with nothing to try have no pair."""
    n = len(p)
    new = np.ones(n, dtype=bool) if p.new_rows is None or not retry else p.new_rows
    f = p.fleet
    disp = f.dispatchable()
    restrict = None
    if p.retry_vehicles is not None and retry:
        restrict = np.zeros(f.size, dtype=bool)
        restrict[p.retry_vehicles] = True
    groups = ((np.flatnonzero(new), disp), (np.flatnonzero(~new), disp if restrict is None else disp & restrict))
    out_r: list[I64] = []
    out_v: list[NDArray[np.int64]] = []
    if p.market is not None:  # per-pair rules: one row at a time
        for sel, ok in groups:
            for row in sel.tolist():
                c = candidates(p, row, k, anchor, ok=ok, reach=True).astype(np.int64)
                out_r.append(np.full(c.size, row, np.int64))
                out_v.append(c)
    else:
        leg_node = f.leg_node if anchor is None else anchor
        seats = (f.capacity - f.load).astype(np.int64)
        for sel, ok in groups:
            vs = np.flatnonzero(ok).astype(np.int64)
            if sel.size == 0 or vs.size == 0:
                continue
            terms = _leg_terms(p) if _COMPILED else None
            near = None if terms is None else _nearest_compiled(p, sel, vs, leg_node, seats, k, reach=terms)
            if near is not None:  # the same pairs in one compiled call
                out_r.append(sel[near[0]])
                out_v.append(vs[near[1]])
                continue
            q, pos = _nearest(p, sel, vs, leg_node, seats, k)
            rows, veh = sel[q], vs[pos]
            # The k kept are timed at the decision time: one that cannot reach the pickup in time is dropped.
            eta_now = p.travel.times_at(leg_node[veh], p.o_node[rows], p.now)
            keep = eta_now <= p.deadline_s[rows] - p.now
            out_r.append(rows[keep])
            out_v.append(veh[keep])
    if not out_r:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    rows_all, veh_all = np.concatenate(out_r), np.concatenate(out_v)
    order = np.lexsort((veh_all, rows_all))
    return rows_all[order], veh_all[order]


#: Rows x vehicles above which the k nearest are found through each pickup's nodes by travel time (below, one
#: look-up per pair).
_INDEX_MIN_PAIRS = 30_000
#: Nodes of each pickup's list (nearest first) looked at before a row falls back to every vehicle.
_NODE_PREFIX = 96


def _nearest(
    p: MatchProblem, sel: I64, vs: I64, leg_node: I32, seats: I64, k: int, *, compiled: bool | None = None
) -> tuple[I64, I64]:
    """For problem rows ``sel``, the up to ``k`` vehicles of ``vs`` with seats and operator for the request that
    have the least free-flow time from ``leg_node`` to the pickup (ties to the lower vehicle index), as flat
    ``(position in sel, position in vs)`` pairs.

    With a full travel-time table, large problems go through each pickup's nodes by travel time first
    (:func:`_nearest_indexed`); the rows it cannot settle, and small problems, are ranked against every vehicle
    (:func:`_nearest_full`). Both give the same answer. ``compiled``: with a full table, every row is ranked
    against every vehicle in one compiled call instead (:func:`._kernels.nearest`), with the same answer.
    """
    if _COMPILED if compiled is None else compiled:
        near = _nearest_compiled(p, sel, vs, leg_node, seats, k, reach=None)
        if near is not None:
            return near
    order = _node_order(p.travel) if sel.size * vs.size > _INDEX_MIN_PAIRS else None
    if order is None:
        return _nearest_full(p, sel, np.arange(sel.size, dtype=np.int64), vs, leg_node, seats, k)
    q1, p1, todo = _nearest_indexed(p, sel, vs, leg_node, seats, k, order)
    if todo.size == 0:
        return q1, p1
    q2, p2 = _nearest_full(p, sel, todo, vs, leg_node, seats, k)
    return np.concatenate((q1, q2)), np.concatenate((p1, p2))


def _nearest_compiled(
    p: MatchProblem, sel: I64, vs: I64, leg_node: I32, seats: I64, k: int, *, reach: LegTerms | None
) -> tuple[I64, I64] | None:
    """:func:`_nearest` in one compiled call (:func:`._kernels.nearest`), or None without a full table; with
    ``reach`` (the leg terms at the decision time), only the pairs :func:`_call_candidates` keeps (the vehicle can
    reach the pickup by its deadline)."""
    table_to = getattr(p.travel, "table_to", None)
    to = table_to() if table_to is not None else None
    if to is None:
        return None
    terms = reach if reach is not None else _NO_TERMS  # no table of its own: ranks from the transposed one
    order = _node_order(p.travel)
    out: tuple[I64, I64] = _kernels_module().nearest(
        to, _NO_ORDER if order is None else order,
        sel, p.o_node, p.passengers, p.operator, p.deadline_s,
        vs, leg_node, seats, p.fleet.operator,
        k, _BY_VEHICLE_MAX, reach is not None, p.now, tuple(terms),
    )  # fmt: skip
    return out


def _nearest_full(p: MatchProblem, sel: I64, todo: I64, vs: I64, leg_node: I32, seats: I64, k: int) -> tuple[I64, I64]:
    """:func:`_nearest` for rows ``sel[todo]``, each ranked against every vehicle of ``vs`` (one table look-up
    per pair, 1,024 rows at a time)."""
    nv = vs.size
    qs: list[I64] = []
    ps: list[I64] = []
    to = _to_table(p.travel)
    # With 16-bit times the ranking key fits 32 bits (a quicker partition): a vehicle without room ranks after
    # every travel time all the same.
    small = to is not None and to.dtype.itemsize == 2 and _small_times(p.travel) and nv < 2**15
    dtype, no_fit = (np.int32, 1 << 15) if small else (np.int64, _NO_FIT)
    ramp = np.arange(nv, dtype=np.int32 if small else np.int64)[None, :]
    anchors_v = leg_node[vs][None, :]
    for lo in range(0, todo.size, 1024):
        t = todo[lo : lo + 1024]
        r = sel[t]
        if to is not None:
            eta = to[p.o_node[r].astype(np.int64)[:, None], anchors_v].astype(dtype)
        else:
            eta = p.travel.times(anchors_v, p.o_node[r][:, None]).astype(np.int64)
        fits = _fits(p, r, vs[None, :], seats)
        if nv > k:
            key = np.where(fits, eta, no_fit) * nv + ramp  # no overflow: below 2**31 with 16-bit times
            near = np.argpartition(key, k - 1, axis=1)[:, :k]
        else:
            near = np.broadcast_to(np.arange(nv), (r.size, nv))
        qq, cc = np.nonzero(np.take_along_axis(fits, near, axis=1))
        qs.append(t[qq])
        ps.append(near[qq, cc].astype(np.int64))
    if not qs:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(qs), np.concatenate(ps)


def _nearest_indexed(
    p: MatchProblem, sel: I64, vs: I64, leg_node: I32, seats: I64, k: int, order: NDArray[np.integer]
) -> tuple[I64, I64, I64]:
    """:func:`_nearest` through each pickup's list of nodes by free-flow time to it (``order``, from
    :func:`_node_order`): walking the first :data:`_NODE_PREFIX` nodes, the vehicles standing (anchored) at the
    nodes up to the one where k of them are reached, and at every node as near as that one, hold the k nearest of
    all vehicles; they are ranked by (time, vehicle index). Rows of one-seat requests open to any operator only;
    returns their pairs and the positions in ``sel`` of the rows left to :func:`_nearest_full` (other requests,
    and pickups whose k nearest lie beyond the prefix)."""
    nv = vs.size
    n_nodes = order.shape[0]
    an = leg_node[vs].astype(np.int64)
    free = np.flatnonzero(seats[vs] >= 1)  # positions in vs of the vehicles with a seat
    by_node = free[np.lexsort((free, an[free]))]
    count = np.bincount(an[by_node], minlength=n_nodes)
    first = np.concatenate(([0], np.cumsum(count)))
    simple = (p.passengers[sel] <= 1) & (p.operator[sel] < 0)
    rows = np.flatnonzero(simple)
    if rows.size == 0 or by_node.size < k:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.arange(sel.size, dtype=np.int64)
    width = min(_NODE_PREFIX, n_nodes)
    o = p.o_node[sel[rows]].astype(np.int64)
    nodes = order[o, :width].astype(np.int64)  # (r, width): nodes by time to the pickup
    to = _to_table(p.travel)
    if to is not None:
        t_nodes = to[o[:, None], nodes].astype(np.int64)
    else:
        t_nodes = p.travel.times(nodes, o[:, None]).astype(np.int64)
    cum = np.cumsum(count[nodes], axis=1)
    reached = cum[:, -1] >= k
    at_k = np.argmax(cum >= k, axis=1)
    t_k = t_nodes[np.arange(rows.size), at_k]
    # Settled when a node beyond the one reaching k is strictly further: every node at t_k is in the prefix.
    done = reached & (t_nodes[:, -1] > t_k)
    take = (t_nodes <= t_k[:, None]) & done[:, None]
    qq, cc = np.nonzero(take)
    nd = nodes[qq, cc]
    n_at = count[nd]
    row_of = np.repeat(qq, n_at)
    offset = np.arange(int(n_at.sum())) - np.repeat(np.cumsum(n_at) - n_at, n_at)
    pos = by_node[np.repeat(first[nd], n_at) + offset]
    key = t_nodes[qq, cc].repeat(n_at) * nv + pos
    srt = np.lexsort((key, row_of))
    row_of, pos = row_of[srt], pos[srt]
    rank = np.arange(row_of.size) - np.searchsorted(row_of, row_of, side="left")
    keep = rank < k
    left = np.concatenate((np.flatnonzero(~simple), rows[~done]))
    return rows[row_of[keep]], pos[keep], np.sort(left)


def _fits(p: MatchProblem, rows: I64, veh: NDArray[np.int64], seats: I64) -> NDArray[np.bool_]:
    """Whether each vehicle ``veh[q, :]`` has the seats and the operator request row ``rows[q]`` needs (``veh`` may
    be one row for all requests, ``(1, n)``)."""
    op = p.operator[rows][:, None]
    out: NDArray[np.bool_] = (seats[veh] >= p.passengers[rows][:, None]) & ((op < 0) | (p.fleet.operator[veh] == op))
    return out


_ORDERS: WeakKeyDictionary[object, tuple[NDArray[np.integer] | None, NDArray[np.integer] | None]] = WeakKeyDictionary()
_SMALL: WeakKeyDictionary[object, bool] = WeakKeyDictionary()
#: Networks up to this many nodes get each node's list of nodes by travel time and the table of free-flow times to
#: each node (n^2 16-bit integers each: 35 MB at Manhattan's 4,197 nodes).
_ORDER_MAX_NODES = 8_192


def _node_order(travel: object) -> NDArray[np.integer] | None:
    """For a router with a full table, ``order[o]``: every node sorted by free-flow time to node ``o`` (then by
    index), computed once per router from its table. None without a table or on networks over
    :data:`_ORDER_MAX_NODES` nodes."""
    return _node_index(travel)[0]


def _to_table(travel: object) -> NDArray[np.integer] | None:
    """For a router with a full table, ``to[o, x]``: the free-flow time from node ``x`` to node ``o`` (the router's
    transposed table, :meth:`~robotaxi.network.router.Router.table_to`), so that the times from many vehicles to
    one pickup are read from one row (what ranking the vehicles nearest a pickup reads) instead of one scattered
    entry per row. None as for :func:`_node_order`."""
    return _node_index(travel)[1]


def _small_times(travel: object) -> bool:
    """Whether every time of :func:`_to_table` is below 2**15 (ranking keys then fit 32 bits)."""
    return _SMALL.get(travel, False)


def _node_index(travel: object) -> tuple[NDArray[np.integer] | None, NDArray[np.integer] | None]:
    """``(node order, transposed table)`` of :func:`_node_order` and :func:`_to_table`, built together once per
    router (one pass over its table)."""
    try:
        return _ORDERS[travel]
    except KeyError:
        pass
    except TypeError:  # not weakly referenceable: no cache, no index
        return None, None
    n = int(getattr(travel, "n_nodes", 0))
    out: tuple[NDArray[np.integer] | None, NDArray[np.integer] | None] = (None, None)
    to = travel.table_to() if hasattr(travel, "table_to") else None  # a Router with a full table
    if to is not None and 1 < n <= _ORDER_MAX_NODES:
        order = np.empty((n, n), np.int16 if n < 2**15 else np.int32)
        for lo in range(0, n, 256):
            order[lo : lo + 256] = np.argsort(to[lo : lo + 256], axis=1, kind="stable")
        out = (order, to)
        _SMALL[travel] = int(to.max()) < 2**15
    _ORDERS[travel] = out
    return out


def _plan_base(p: MatchProblem, v: int, plans: dict[int, list[Stop]]) -> _Base:
    """The insertion base of ``v``, with the plan given to it earlier in this call if any."""
    stops, node, t0, fixed = _base_args(p, v, plans)
    return _Base(p, v, stops, node, t0, fixed)


def _with_fixed_prefix(p: MatchProblem, v: int, stops: list[Stop], plans: dict[int, list[Stop]]) -> list[Stop]:
    """Put back a repositioning target the insertion base left out, when the new plan still needs it first."""
    if v in plans:
        return stops
    plan = p.fleet.plan(v)
    if plan and plan[0][0] == REPOSITION and bool(p.fleet.at_stop[v]):
        return [plan[0], *stops]
    return stops


def verify_plan(p: MatchProblem, v: int, stops: list[Stop]) -> dict[int, int] | None:
    """Pickup time of every request in an exactly timed plan, or None if a window is missed."""
    picks = verify(p, v, stops)
    if picks is None:
        return None
    rs = [r for kind, r, _ in stops if kind == PICKUP]
    return dict(zip(rs, picks, strict=True))


def verify_many(p: MatchProblem, items: list[tuple[int, list[Stop]]]) -> list[dict[int, int] | None]:
    """:func:`verify_plan` of many ``(vehicle, plan)`` pairs at once, with the same answers.

    Every plan starts as :func:`verify` starts it (a repositioning leg left for a new first stop is diverted at the
    next node, an idle vehicle leaves now); then stop position by stop position, the legs of all plans that have
    one are timed in one travel-time look-up, each at its own departure (as :func:`~.plans.schedule` times them
    one by one). Cost: one look-up per stop position instead of one per leg.
    """
    m = len(items)
    if m == 0:
        return []
    node0, t_0, at0, lens = _verify_starts(p, items)
    width = int(lens.max())
    flat = [st for _v, stops in items for st in stops]
    owner = np.repeat(np.arange(m), lens)
    slot = np.arange(owner.size) - np.repeat(np.cumsum(lens) - lens, lens)
    kind = np.full((m, width), -1, np.int64)
    req = np.full((m, width), -1, np.int64)
    nodes = np.zeros((m, width), np.int64)
    if flat:
        fk, fr, fn = (np.asarray(x, np.int64) for x in zip(*flat, strict=True))
        kind[owner, slot], req[owner, slot], nodes[owner, slot] = fk, fr, fn
    dw = p.dwell
    dwell = np.where(kind == PICKUP, dw.pickup_s, np.where(kind == DROPOFF, dw.dropoff_s, 0))
    arrive = np.zeros((m, width), np.int64)
    t = t_0.copy()
    here = node0.copy()
    for k in range(width):
        act = lens > k
        if k == 0:
            stand = act & at0  # standing at its first stop: arrived a dwell before t0, leaves at t0
            arrive[stand, 0] = t_0[stand] - dwell[stand, 0]
            here[stand] = nodes[stand, 0]
            act &= ~at0
        sel = np.flatnonzero(act)
        if sel.size == 0:
            continue
        nk = nodes[sel, k]
        a = t[sel] + p.travel.times(here[sel], nk, t[sel]).astype(np.int64)
        arrive[sel, k] = a
        t[sel] = a + dwell[sel, k]
        here[sel] = nk
    rc = p.requests
    r0 = np.maximum(req, 0)
    latest = np.where(
        kind == PICKUP, rc["deadline"][r0], np.where(kind == DROPOFF, rc["latest_dropoff"][r0], _INF)
    ).astype(np.int64)
    ok = ~((arrive > latest) & (kind >= 0)).any(axis=1)
    out: list[dict[int, int] | None] = [None] * m
    is_pick = kind == PICKUP
    for q in np.flatnonzero(ok).tolist():
        pk = is_pick[q]
        out[q] = dict(zip(req[q, pk].tolist(), arrive[q, pk].tolist(), strict=True))
    return out


def _verify_starts(p: MatchProblem, items: list[tuple[int, list[Stop]]]) -> tuple[I64, I64, NDArray[np.bool_], I64]:
    """For :func:`verify_many`: where and when each plan starts, whether its vehicle stands at its first stop, and
    its number of stops (each vehicle's start computed once per kind of start)."""
    m = len(items)
    f = p.fleet
    leg_node, leg_s, at = f.leg_node, f.leg_s, f.at_stop
    starts: dict[tuple[int, bool], tuple[int, int]] = {}
    plans: dict[int, list[Stop]] = {}
    node0 = np.empty(m, np.int64)
    t_0 = np.empty(m, np.int64)
    at0 = np.empty(m, bool)
    lens = np.empty(m, np.int64)
    for q, (v, stops) in enumerate(items):
        at_stop = bool(at[v])
        plan = plans.get(v)
        if plan is None:
            plan = plans[v] = f.plan(v)
        divert = bool(plan) and plan[0][0] == REPOSITION and not at_stop and (not stops or stops[0] != plan[0])
        key = (v, divert)
        start = starts.get(key)
        if start is None:
            node, t0 = int(leg_node[v]), int(leg_s[v])
            if divert:
                node, t0 = p.travel.divert(node, plan[0][2], t0, p.now)
            elif not plan:
                t0 = max(t0, p.now)
            start = starts[key] = (node, t0)
        node0[q], t_0[q] = start
        at0[q] = at_stop
        lens[q] = len(stops)
    return node0, t_0, at0, lens


@dataclass(frozen=True, slots=True)
class BatchPooling:
    """Batch pooling: trips of new requests up to each vehicle's seats, assigned exactly (HiGHS) every batch."""

    params: PolicyParams = field(default_factory=PolicyParams)

    @property
    def name(self) -> str:
        return "pool"

    @property
    def on_arrival(self) -> bool:
        return False

    @property
    def tick_seconds(self) -> int:
        return self.params.batch_seconds

    def match(self, problem: MatchProblem) -> Assignment:
        n = len(problem)
        p = problem
        trips = build_trips(p, self.params.candidates)
        # Requests no vehicle can take in this batch stay in the pool for the next ones (vehicles move and free
        # seats), as in Alonso-Mora et al.: they leave it served, or cancelled by the engine at their deadline.
        if not trips:
            return Assignment.none(n, waiting=True)
        reachable = np.ones(n, dtype=bool)
        chosen = solve_trips(trips, n, self.params.solver_time_s)
        plans: dict[int, list[Stop]] = {}
        rows: list[int] = []
        vehicles: list[int] = []
        picks: list[int] = []
        for t in chosen:
            plans[t.vehicle] = list(t.stops)
            for row, when in zip(t.rows, t.pickup_s, strict=True):
                rows.append(row)
                vehicles.append(t.vehicle)
                picks.append(when)
        return Assignment(
            rows=np.asarray(rows, np.int64),
            vehicles=np.asarray(vehicles, np.int32),
            pickup_s=np.asarray(picks, np.int64),
            reachable=reachable,
            plans=plans,
        )


def build_trips(p: MatchProblem, k: int) -> list[Insertion]:
    """Feasible trips: each request into each of its k nearest vehicles, then trips of several requests into one
    vehicle (:func:`_larger_trips`).

    Every (request, vehicle) insertion of the batch is timed in one :func:`grid` pass, then each size of larger
    trips in another; the candidate plans of each pass are then timed exactly, all at once (:func:`verify_many`).
    """
    rows, veh = _call_candidates(p, k, anchor=anchors(p), retry=False)
    if rows.size == 0:
        return []
    union_a = np.unique(veh)
    union = union_a.tolist()
    pack = Pack(p, union, {})
    where = {v: i for i, v in enumerate(union)}
    idx = np.searchsorted(union_a, veh)
    cost, gi, gj, _ap = grid(p, pack, idx, rows)
    trips: list[Insertion] = []
    # Per vehicle, its single trips in row order: (row, stops without the fixed prefix put back, cost).
    singles: dict[int, list[tuple[int, list[Stop], int]]] = {}
    found: list[tuple[int, int, int, list[Stop], list[Stop]]] = []  # (q, row, vehicle, stops, full plan)
    for q in np.flatnonzero(cost < _INF).tolist():
        row, b = int(rows[q]), int(idx[q])
        v = union[b]
        r = int(p.request[row])
        stops = _insert(pack.stops[b], int(gi[q]), int(gj[q]), r, int(p.o_node[row]), int(p.d_node[row]))
        found.append((q, row, v, stops, _with_fixed_prefix(p, v, stops, {})))
    exacts = verify_many(p, [(v, full) for _q, _row, v, _s, full in found])
    for (q, row, v, stops, full), exact in zip(found, exacts, strict=True):
        if exact is None:
            continue
        singles.setdefault(v, []).append((row, stops, int(cost[q])))
        trips.append(Insertion(v, (row,), tuple(full), int(cost[q]), (exact[int(p.request[row])],)))
    return trips + _larger_trips(p, pack, where, singles)


#: Trips of three or more new requests grow from the cheapest ``_EXTEND`` trips of each vehicle one size smaller.
_EXTEND = 12

_Level = dict[int, list[tuple[tuple[int, ...], list[Stop], int]]]  # vehicle -> [(rows, stops, cost)]


def _larger_trips(
    p: MatchProblem, pack: Pack, where: dict[int, int], singles: dict[int, list[tuple[int, list[Stop], int]]]
) -> list[Insertion]:
    """Trips of 2, 3, ... new requests per vehicle, up to its seats, after Alonso-Mora et al. (2017): a trip of m
    requests is tried only when every trip of m - 1 of them is feasible, by inserting its last request (the
    highest row) into the plan of the trip without it. Pairs are tried from every single trip; larger trips from
    the cheapest :data:`_EXTEND` trips of each vehicle one size smaller (a bound on the work at the peaks)."""
    trips: list[Insertion] = []
    level: _Level = {v: [((row,), stops, cost) for row, stops, cost in sv] for v, sv in singles.items()}
    size = int(p.fleet.capacity.max()) if p.fleet.size else 0
    for m in range(2, size + 1):
        bases: list[tuple[list[Stop], int, int, int]] = []  # one per trip extended
        owners: list[int] = []
        parents: list[tuple[tuple[int, ...], int]] = []  # (rows, cost) of the trip each base holds
        base_of: list[int] = []
        added: list[int] = []
        for v, tv in level.items():
            sv = singles[v]
            if int(p.fleet.capacity[v]) < m or len(sv) < m:
                continue
            feasible = {t[0] for t in tv}
            w = where[v]
            origin, t0, fixed = int(pack.origin[w]), int(pack.t0[w]), int(pack.fixed[w])
            grow = tv if m == 2 else sorted(tv, key=lambda t: (t[2], t[0]))[:_EXTEND]
            for rows_t, stops_t, cost_t in grow:
                adds = [
                    x[0]
                    for x in sv
                    if x[0] > rows_t[-1]
                    and all(rows_t[:e] + rows_t[e + 1 :] + (x[0],) in feasible for e in range(len(rows_t)))
                ]
                if not adds:
                    continue
                base_of.extend([len(bases)] * len(adds))
                added.extend(adds)
                bases.append((stops_t, origin, t0, fixed))
                owners.append(v)
                parents.append((rows_t, cost_t))
        if not bases:
            break
        b_idx, b_rows = np.asarray(base_of, np.int64), np.asarray(added, np.int64)
        cost2, i2, j2, _ap = grid(p, Pack(p, owners, {}, bases), b_idx, b_rows)
        nxt: _Level = {}
        found: list[tuple[int, int, list[Stop], list[Stop]]] = []  # (q, vehicle, stops, full plan)
        for q in np.flatnonzero(cost2 < _INF).tolist():
            ba, row_b = int(b_idx[q]), int(b_rows[q])
            v = owners[ba]
            rb = int(p.request[row_b])
            stops = _insert(bases[ba][0], int(i2[q]), int(j2[q]), rb, int(p.o_node[row_b]), int(p.d_node[row_b]))
            found.append((q, v, stops, _with_fixed_prefix(p, v, stops, {})))
        exacts = verify_many(p, [(v, full) for _q, v, _s, full in found])
        for (q, v, stops, full), exact in zip(found, exacts, strict=True):
            if exact is None:
                continue
            ba, row_b = int(b_idx[q]), int(b_rows[q])
            rows_t, cost_t = parents[ba]
            rows_new = (*rows_t, row_b)
            cost = cost_t + int(cost2[q])
            picks = tuple(exact[int(p.request[r])] for r in rows_new)
            trips.append(Insertion(v, rows_new, tuple(full), cost, picks))
            nxt.setdefault(v, []).append((rows_new, stops, cost))
        level = nxt
    return trips


def greedy_trips(trips: list[Insertion]) -> list[Insertion]:
    """Largest trips first, then cheapest; each vehicle and request at most once."""
    used_v: set[int] = set()
    used_r: set[int] = set()
    out = []
    for t in sorted(trips, key=lambda t: (-len(t.rows), t.cost, t.vehicle, t.rows)):
        if t.vehicle in used_v or used_r.intersection(t.rows):
            continue
        used_v.add(t.vehicle)
        used_r.update(t.rows)
        out.append(t)
    return out


def trip_objective(trips: list[Insertion], big: int) -> int:
    """What the exact solver minimises: cost minus a large reward per request served."""
    return sum(t.cost - big * len(t.rows) for t in trips)


def solve_trips(trips: list[Insertion], n_rows: int, time_s: float) -> list[Insertion]:
    """The assignment of trips that serves the most requests at the least cost (HiGHS MILP), or the greedy one
    when the solver has no better answer within ``time_s``."""
    greedy = greedy_trips(trips)
    big = 1 + sum(t.cost for t in trips)
    vs = sorted({t.vehicle for t in trips})
    v_index = {v: i for i, v in enumerate(vs)}
    m = len(trips)
    rows_i, cols_i = [], []
    for c, t in enumerate(trips):
        rows_i.append(v_index[t.vehicle])
        cols_i.append(c)
        for r in t.rows:
            rows_i.append(len(vs) + r)
            cols_i.append(c)
    a = coo_array((np.ones(len(rows_i)), (rows_i, cols_i)), shape=(len(vs) + n_rows, m)).tocsr()
    cost = np.asarray([t.cost - big * len(t.rows) for t in trips], dtype=np.float64)
    res = milp(
        cost,
        constraints=LinearConstraint(a, -np.inf, 1.0),
        integrality=np.ones(m),
        bounds=Bounds(0, 1),
        options={"time_limit": time_s, "disp": False},
    )
    if res.x is None:
        return greedy
    chosen = [trips[c] for c in np.flatnonzero(res.x > 0.5)]
    if trip_objective(chosen, big) > trip_objective(greedy, big):
        return greedy
    return chosen

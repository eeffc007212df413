"""Ride pooling: requests inserted into vehicles' stop plans, on arrival or in batches.

Two policies:

* :class:`InsertionPolicy` (``insertion``): each request, on arrival and in arrival order, goes to the cheapest
  feasible insertion of its pickup and dropoff into the plan of one of the ``k`` vehicles nearest its pickup.
* :class:`BatchPooling` (``pool``): every batch, a simplified request-trip-vehicle graph after Alonso-Mora et al.,
  "On-demand high-capacity ride-sharing via dynamic trip-vehicle assignment", PNAS 114(3), 2017: for each vehicle,
  the feasible trips of one or two new requests (inserted into what the vehicle already has), each with its cost;
  then an exact assignment (each vehicle one trip, each request at most one) with SciPy's HiGHS ``milp`` within a
  time budget, the greedy assignment as the fallback and as a bound the exact one must not be worse than.
  Simplification (documented): trips hold at most two *new* requests per batch; a vehicle may already carry others.

The cost of an insertion is the extra time it adds to the vehicle's plan (how much later the plan ends) plus the new
rider's wait for pickup, both in seconds. Feasibility: every pickup before its deadline, every dropoff before its
latest dropoff (:mod:`.plans`), seats never exceeded, a rider who refused to share never with another, the stop a
vehicle stands at or drives to kept first (only an idle or repositioning vehicle starts a new plan with the new
pickup). Candidate insertions are timed with the speed factor at decision time; the chosen plan is then timed
exactly (each leg at its own departure) by :func:`~.plans.schedule` and dropped if a window would be missed.

Cost of one insertion: the plan's existing times and slacks are computed once per vehicle (O(L) travel-time look-ups
for L stops, vectorised), then every (pickup, dropoff) position pair is checked in O(1) each: O(L^2) per vehicle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

from .plans import DROPOFF, PICKUP, REPOSITION, Stop, schedule
from .policies import PolicyParams
from .problem import Assignment, MatchProblem

I64 = NDArray[np.int64]
I32 = NDArray[np.int32]
_INF = np.iinfo(np.int64).max // 4


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


def _bases(p: MatchProblem, vehicles: I32) -> dict[int, _Base]:
    """Each candidate vehicle's plan as an insertion base (repositioning targets dropped: the vehicle is counted at
    its target; idle vehicles start now where they are)."""
    f = p.fleet
    out: dict[int, _Base] = {}
    for v in vehicles.tolist():
        stops = f.plan(v)
        node, t0, at_stop = int(f.leg_node[v]), int(f.leg_s[v]), bool(f.at_stop[v])
        if stops and stops[0][0] == REPOSITION and not at_stop:
            # Counted at the target when it gets there (the engine may divert it sooner on the way).
            target = stops[0][2]
            t0 = max(p.now, t0 + p.travel.time1(node, target, t0))
            node, stops = target, stops[1:]
        if not stops:
            out[v] = _Base(p, v, [], node, max(t0, p.now), 0)
        else:
            out[v] = _Base(p, v, stops, node, t0, 1)
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


def candidates(p: MatchProblem, row: int, k: int, anchor: I32 | None = None) -> I32:
    """The ``k`` dispatchable vehicles with seats nearest the pickup, from ``anchor`` (default: where each vehicle's
    current leg started)."""
    f = p.fleet
    ok = f.dispatchable() & (f.capacity - f.load >= p.passengers[row])
    op = int(p.operator[row])
    if op >= 0:
        ok &= f.operator == op
    if p.market is not None:
        ok = p.market.vehicle_ok(row, ok)
    vs = np.flatnonzero(ok).astype(np.int32)
    if vs.size <= k:
        return vs
    eta = p.travel.times_at((f.leg_node if anchor is None else anchor)[vs], p.o_node[row], p.now)
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
    """Cheapest insertion, request by request on arrival, among the ``params.candidates`` nearest vehicles."""

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
        # A request no vehicle can take now waits (the engine asks again whenever a vehicle frees up) until it is
        # served or its deadline passes: seats free up as riders get out.
        reachable = np.ones(n, dtype=bool)
        plans: dict[int, list[Stop]] = {}
        rows: list[int] = []
        vehicles: list[int] = []
        picks: list[int] = []
        p = problem
        taken_seats: dict[int, int] = {}
        # A vehicle is a candidate of many requests in one call (waiting ones are asked again whenever a vehicle
        # frees up): its insertion base is built once, and again only after it gets a new plan here.
        bases: dict[int, _Base] = {}
        for row in range(n):
            r = int(p.request[row])
            best: tuple[int, int, list[Stop]] | None = None
            for v in candidates(p, row, self.params.candidates).tolist():
                base = bases.get(v)
                if base is None:
                    base = bases[v] = _plan_base(p, v, plans)
                cap = int(p.fleet.capacity[v])
                found = best_insertion(p, base, row, cap)
                if found is None:
                    continue
                cost, i, j, _a = found
                if best is None or cost < best[0]:
                    best = (cost, v, _insert(base.stops, i, j, r, int(p.o_node[row]), int(p.d_node[row])))
            if best is None:
                continue
            _cost, v, stops = best
            full = _with_fixed_prefix(p, v, stops, plans)
            exact = verify_plan(p, v, full)
            if exact is None:
                continue
            plans[v] = full
            bases.pop(v, None)
            taken_seats[v] = taken_seats.get(v, 0) + 1
            rows.append(row)
            vehicles.append(v)
            picks.append(exact[r])
        return Assignment(
            rows=np.asarray(rows, np.int64),
            vehicles=np.asarray(vehicles, np.int32),
            pickup_s=np.asarray(picks, np.int64),
            reachable=reachable,
            plans=plans,
        )


def _plan_base(p: MatchProblem, v: int, plans: dict[int, list[Stop]]) -> _Base:
    """The insertion base of ``v``, with the plan given to it earlier in this call if any."""
    if v not in plans:
        return _bases(p, np.asarray([v], np.int32))[v]
    f = p.fleet
    stops = plans[v]
    node, t0, at_stop = int(f.leg_node[v]), int(f.leg_s[v]), bool(f.at_stop[v])
    if not f.plan(v):
        return _Base(p, v, stops, node, max(t0, p.now), 1)
    return _Base(p, v, stops, node, t0, 1 if (at_stop or stops[0][0] != REPOSITION) else 0)


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


@dataclass(frozen=True, slots=True)
class BatchPooling:
    """Batch pooling: trips of up to two new requests per vehicle, assigned exactly (HiGHS) every batch."""

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
    """Feasible trips: each request into each of its k nearest vehicles, then pairs of requests into one vehicle."""
    n = len(p)
    by_vehicle: dict[int, list[tuple[int, int, int, int]]] = {}
    anchor = anchors(p)
    for row in range(n):
        for v in candidates(p, row, k, anchor).tolist():
            by_vehicle.setdefault(v, []).append((row, 0, 0, 0))
    bases = _bases(p, np.asarray(sorted(by_vehicle), np.int32))
    trips: list[Insertion] = []
    for v, cands in by_vehicle.items():
        base = bases[v]
        cap = int(p.fleet.capacity[v])
        singles: list[tuple[int, list[Stop]]] = []
        for row, *_ in cands:
            found = best_insertion(p, base, row, cap)
            if found is None:
                continue
            cost, i, j, _a = found
            r = int(p.request[row])
            stops = _insert(base.stops, i, j, r, int(p.o_node[row]), int(p.d_node[row]))
            full = _with_fixed_prefix(p, v, stops, {})
            exact = verify_plan(p, v, full)
            if exact is None:
                continue
            singles.append((row, stops))
            trips.append(Insertion(v, (row,), tuple(full), cost, (exact[r],)))
        if cap < 2:
            continue
        for a in range(len(singles)):
            row_a, stops_a = singles[a]
            base_a = _Base(p, v, stops_a, base.origin, base.t0, base.fixed)
            for b in range(a + 1, len(singles)):
                row_b = singles[b][0]
                found = best_insertion(p, base_a, row_b, cap)
                if found is None:
                    continue
                cost2, i, j, _a = found
                rb = int(p.request[row_b])
                stops = _insert(stops_a, i, j, rb, int(p.o_node[row_b]), int(p.d_node[row_b]))
                full = _with_fixed_prefix(p, v, stops, {})
                exact = verify_plan(p, v, full)
                if exact is None:
                    continue
                ra = int(p.request[row_a])
                cost_a = next(t.cost for t in trips if t.vehicle == v and t.rows == (row_a,))
                trips.append(Insertion(v, (row_a, row_b), tuple(full), cost_a + cost2, (exact[ra], exact[rb])))
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

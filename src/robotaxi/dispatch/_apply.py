"""How the engine checks and applies each kind of input (internal to :mod:`.engine`).

Every ``check_*`` function reads the engine's state and raises on bad input without changing anything; the matching
``commit``/``add``/``cancel`` function then applies what was checked. Vehicle updates are checked row by row on
scratch copies of the vehicles they touch (rows apply in order, and a later row may depend on an earlier one), and
the copies are written back only when every row has passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DispatchError, IllegalTransitionError
from ..fleet.states import EventType, VehicleState
from . import _offers
from ._requests import Status
from .decisions import Decisions
from .events import LOCATED, RequestsArrived, RequestsCancelled, VehiclesDocked, VehiclesRetired, VehiclesUpdated
from .operators import PairRules
from .plans import DROPOFF, PICKUP, REPOSITION, Stop, schedule
from .problem import Assignment, MatchProblem
from .reasons import Reason

if TYPE_CHECKING:
    from .engine import DispatchEngine

I64 = NDArray[np.int64]
I32 = NDArray[np.int32]
E = EventType
S = VehicleState
_RIDER_EVENTS = frozenset(
    int(e)
    for e in (
        E.RESERVATION_STOP,
        E.TRIP_START,
        E.TRIP_STOP,
        E.TRIP_END,
        E.TRIP_RESUME,
        E.PASSENGER_CANCELLATION,
        E.PROVIDER_CANCELLATION,
        E.DRIVER_CANCELLATION,
    )
)
_CANCELS = frozenset(int(e) for e in (E.PASSENGER_CANCELLATION, E.PROVIDER_CANCELLATION, E.DRIVER_CANCELLATION))
_OUT_OF_SERVICE = frozenset((int(S.NON_OPERATIONAL), int(S.REMOVED)))


@dataclass(slots=True)
class Out:
    """Decisions being collected for one input."""

    now: int
    a_req: list[int] = field(default_factory=list)
    a_veh: list[int] = field(default_factory=list)
    a_pick: list[int] = field(default_factory=list)
    rej: list[I64] = field(default_factory=list)
    rej_reason: list[NDArray[np.int8]] = field(default_factory=list)
    exp: list[I64] = field(default_factory=list)
    exp_s: list[I64] = field(default_factory=list)
    exp_reason: list[NDArray[np.int8]] = field(default_factory=list)
    reopened: list[int] = field(default_factory=list)
    replanned: list[int] = field(default_factory=list)
    rep_v: list[int] = field(default_factory=list)
    rep_n: list[int] = field(default_factory=list)
    retired: list[int] = field(default_factory=list)
    offers: list[tuple[int, int, int, int]] = field(default_factory=list)  # (request, vehicle, pickup, expires)
    withdrawn: list[int] = field(default_factory=list)
    off: list[int] = field(default_factory=list)
    redispatched: list[tuple[int, int]] = field(default_factory=list)  # (old request, new request), external ids
    freed: bool = False

    def expired(self, ext: I64, at: I64, reason: NDArray[np.int8]) -> None:
        self.exp.append(ext)
        self.exp_s.append(at.astype(np.int64))
        self.exp_reason.append(reason.astype(np.int8))

    def reject(self, ext: I64, reason: NDArray[np.int8]) -> None:
        self.rej.append(ext)
        self.rej_reason.append(reason)

    def build(self) -> Decisions:
        if not (
            self.a_req
            or self.rej
            or self.exp
            or self.reopened
            or self.replanned
            or self.retired
            or self.offers
            or self.withdrawn
            or self.off
            or self.redispatched
        ):
            return Decisions(time_s=self.now)
        offers = np.asarray(self.offers, dtype=np.int64).reshape(-1, 4)
        redispatched = np.asarray(self.redispatched, dtype=np.int64).reshape(-1, 2)

        def cat(parts: list[Any], dtype: Any) -> NDArray[Any]:
            return np.concatenate(parts).astype(dtype) if parts else np.empty(0, dtype)

        return Decisions(
            time_s=self.now,
            assign_request=np.asarray(self.a_req, np.int64),
            assign_vehicle=np.asarray(self.a_veh, np.int32),
            assign_pickup_s=np.asarray(self.a_pick, np.int64),
            reject_request=cat(self.rej, np.int64),
            reject_reason=cat(self.rej_reason, np.int8),
            expired_request=cat(self.exp, np.int64),
            expired_s=cat(self.exp_s, np.int64),
            expired_reason=cat(self.exp_reason, np.int8),
            reopened_request=np.asarray(self.reopened, np.int64),
            replanned=np.asarray(list(dict.fromkeys(self.replanned)), np.int32),
            reposition_vehicle=np.asarray(self.rep_v, np.int32),
            reposition_node=np.asarray(self.rep_n, np.int32),
            retired=np.asarray(self.retired, np.int32),
            offer_request=offers[:, 0].copy(),
            offer_vehicle=offers[:, 1].astype(np.int32),
            offer_pickup_s=offers[:, 2].copy(),
            offer_expires_s=offers[:, 3].copy(),
            withdrawn_request=np.asarray(self.withdrawn, np.int64),
            off_duty=np.asarray(self.off, np.int32),
            redispatched_request=redispatched[:, 0].copy(),
            redispatched_as=redispatched[:, 1].copy(),
        )


def _check_nodes(engine: DispatchEngine, nodes: NDArray[Any], what: str) -> None:
    n = engine.travel.n_nodes
    if nodes.size and (int(nodes.min()) < 0 or int(nodes.max()) >= n):
        bad = int(nodes[(nodes < 0) | (nodes >= n)][0])
        raise DispatchError(f"{what}: node {bad} is not in the network (0..{n - 1})")


# ---------------------------------------------------------------------- requests
def check_requests(engine: DispatchEngine, ev: RequestsArrived) -> None:
    ids = ev.request_id.tolist()
    if len(set(ids)) != len(ids):
        raise DispatchError("request ids repeat within one batch")
    known = [x for x in ids if x in engine.requests.index]
    if known:
        raise DispatchError(f"request id {known[0]} was already submitted")
    _check_nodes(engine, ev.o_node, "request pickup")
    _check_nodes(engine, ev.d_node, "request dropoff")
    if ev.passengers.size and int(ev.passengers.min()) < 1:
        raise DispatchError("passengers: a request needs at least one passenger")
    mw = ev.max_wait_s
    if np.any((mw == 0) | (mw < -1)):
        raise DispatchError("max_wait_s: must be > 0, or -1 for the engine's default")
    if np.any(ev.operator < -1):
        raise DispatchError("operator: must be an operator index, or -1 for any")


def add_requests(engine: DispatchEngine, ev: RequestsArrived, out: Out) -> None:
    if len(ev) == 0:
        return
    p = engine.params
    wait = np.where(ev.max_wait_s < 0, p.max_wait_s, ev.max_wait_s).astype(np.int64)
    append_requests(
        engine, ev.time_s, ev.request_id, ev.o_node, ev.d_node, ev.passengers, wait, ev.shareable, ev.operator, out
    )
    rb = engine.rebalancing
    if rb is not None:
        t = np.full(len(ev), ev.time_s, np.int64)
        rb.forecast.observe(rb.zoning.zone_of_node[ev.o_node].astype(np.int32), t)


def append_requests(
    engine: DispatchEngine,
    time_s: int,
    ext: I64,
    o: NDArray[np.int32],
    d: NDArray[np.int32],
    pax: NDArray[np.int16],
    wait: I64,
    shareable: NDArray[np.bool_],
    operator: NDArray[np.int16],
    out: Out,
    origin: I64 | None = None,
) -> None:
    """Open checked requests at ``time_s`` (``wait``: their maximum wait in seconds); a party larger than every
    vehicle is rejected at once (``over_capacity``)."""
    n = int(ext.size)
    p = engine.params
    t = np.full(n, time_s, np.int64)
    direct = engine.travel.times_at(o, d, time_s)  # nodes checked by the caller
    f = engine.fleet
    live = ~f.cols["retired"][: f.n]
    max_cap = int(f.cols["capacity"][: f.n][live].max()) if live.any() else 0
    too_big = pax > max_cap if max_cap else np.zeros(n, bool)
    rows = engine.requests.append(
        {
            "ext": ext,
            "time": t,
            "o": o,
            "d": d,
            "pax": pax,
            "deadline": t + wait,
            "latest_dropoff": t + direct + (p.max_delay_s if p.max_delay_s > 0 else wait + p.pickup_dwell_s),
            "shareable": shareable,
            "operator": operator,
            "status": np.full(n, int(Status.OPEN), np.int8),
            "vehicle": np.full(n, -1, np.int32),
            "decided": np.zeros(n, bool),
            "declines": np.zeros(n, np.int16),
            "origin": np.full(n, -1, np.int64) if origin is None else origin,
        }
    )
    req = engine.requests
    if too_big.any():
        req.cols["status"][rows[too_big]] = Status.REJECTED
        req.cols["decided"][rows[too_big]] = True
        out.reject(ext[too_big], np.full(int(too_big.sum()), Reason.OVER_CAPACITY, np.int8))
    req.open = np.concatenate((req.open, rows[~too_big]))


def check_cancellations(engine: DispatchEngine, ev: RequestsCancelled, expire: I64) -> I64:
    req = engine.requests
    rows = np.asarray([req.row(int(x)) for x in ev.request_id.tolist()], dtype=np.int64)
    if np.unique(rows).size != rows.size:
        raise DispatchError("a request is cancelled twice in one batch")
    status = req.cols["status"][rows]
    gone = np.isin(rows, expire)
    bad = ~np.isin(status, (Status.OPEN, Status.ASSIGNED, Status.OFFERED)) | gone
    if bad.any():
        i = int(np.argmax(bad))
        what = "expired" if gone[i] else Status(int(status[i])).label
        raise DispatchError(f"request {int(ev.request_id[i])} cannot be cancelled: it is {what}")
    return rows


def cancel_requests(engine: DispatchEngine, rows: I64, out: Out) -> None:
    req = engine.requests
    for r in rows.tolist():
        if r in engine.offers:
            _offers.withdraw_for_cancellation(engine, r, out)
        v = int(req.cols["vehicle"][r])
        if v >= 0:
            sc = _Scratch.of(engine, v)
            sc.drop_request(engine, r, out.now)
            sc.settle_state()
            sc.write(engine, out)
        req.cols["vehicle"][r] = -1
    req.close(rows, Status.CANCELLED)


# ---------------------------------------------------------------------- docking and retiring
def check_docking(engine: DispatchEngine, ev: VehiclesDocked) -> None:
    ids = ev.vehicle_id
    if len(set(ids)) != len(ids):
        raise DispatchError("vehicle ids repeat within one docking batch")
    known = [x for x in ids if x in engine.fleet.index]
    if known:
        raise DispatchError(f"vehicle id {known[0]!r} is already docked")
    _check_nodes(engine, ev.node, "docked vehicle")
    if ev.capacity.size and int(ev.capacity.min()) < 1:
        raise DispatchError("capacity: a vehicle needs at least one seat")
    if ev.operator.size and int(ev.operator.min()) < 0:
        raise DispatchError("operator: must be an operator index >= 0")


def check_retiring(engine: DispatchEngine, ev: VehiclesRetired) -> list[int]:
    vs = [engine.vehicle_index(x) for x in ev.vehicle_id]
    if len(set(vs)) != len(vs):
        raise DispatchError("a vehicle is retired twice in one batch")
    f = engine.fleet
    for v in vs:
        if f.cols["draining"][v] or f.cols["retired"][v]:
            raise DispatchError(f"vehicle {f.ids[v]!r} is already retiring")
    return vs


def retire(engine: DispatchEngine, vs: list[int], out: Out) -> None:
    f = engine.fleet
    for v in vs:
        f.unindex(v)
        f.cols["draining"][v] = True
        plan = f.plans[v]
        if plan and plan[0][0] == REPOSITION and not f.cols["at_stop"][v]:
            node, t = engine.travel.divert(int(f.cols["leg_node"][v]), plan[0][2], int(f.cols["leg_s"][v]), engine.now)
            f.cols["leg_node"][v], f.cols["leg_s"][v] = node, t
        f.plans[v] = [s for s in plan if s[0] != REPOSITION]
        if len(plan) != len(f.plans[v]):
            out.replanned.append(v)
        maybe_retired(engine, v, out)


def maybe_retired(engine: DispatchEngine, v: int, out: Out) -> None:
    """Report a retiring vehicle as retired, or one going off duty as off duty, once its plan is empty."""
    f = engine.fleet
    if f.plans[v]:
        return
    c = f.cols
    if c["draining"][v] and not c["retired"][v]:
        c["retired"][v] = True
        f.unindex(v)
        out.retired.append(v)
    elif c["off_duty"][v] == 1:
        c["off_duty"][v] = 2
        out.off.append(v)


# ---------------------------------------------------------------------- vehicle updates
@dataclass(slots=True)
class _Scratch:
    """A vehicle's mutable fields, copied so that a batch can be checked before anything is written."""

    v: int
    state: int
    prev: int
    node: int
    leg_s: int
    at_stop: bool
    load: int
    n_riders: int
    end_node: int
    end_s: int
    plan: list[Stop]
    off_duty: int
    touched_requests: dict[int, tuple[int, int]] = field(default_factory=dict)  # row -> (status, vehicle)
    reopened: list[int] = field(default_factory=list)
    plan_changed: bool = False

    @classmethod
    def of(cls, engine: DispatchEngine, v: int) -> _Scratch:
        c = engine.fleet.cols
        return cls(
            v=v,
            state=int(c["state"][v]),
            prev=int(c["prev_state"][v]),
            node=int(c["leg_node"][v]),
            leg_s=int(c["leg_s"][v]),
            at_stop=bool(c["at_stop"][v]),
            load=int(c["load"][v]),
            n_riders=int(c["n_riders"][v]),
            end_node=int(c["end_node"][v]),
            end_s=int(c["end_s"][v]),
            plan=list(engine.fleet.plans[v]),
            off_duty=int(c["off_duty"][v]),
        )

    def drop_request(self, engine: DispatchEngine, r: int, now: int) -> None:
        """Remove a not-yet-boarded request's stops (re-routing at the next node if the vehicle was driving to it)."""
        first = self.plan[0] if self.plan else None
        self.plan = [s for s in self.plan if s[1] != r]
        self.n_riders -= 1
        self.plan_changed = True
        if first is not None and first[1] == r:
            if self.at_stop:
                self.at_stop = False
                self.leg_s = now
            else:
                self.node, self.leg_s = engine.travel.divert(self.node, first[2], self.leg_s, now)
        if not self.plan:
            self.end_node, self.end_s = self.node, self.leg_s

    def settle_state(self) -> None:
        """The MDS state that follows from the plan after a cancellation."""
        if self.load > 0:
            self.state = int(S.STOPPED if self.at_stop else S.ON_TRIP)
        elif self.n_riders > 0:
            self.state = int(S.STOPPED if self.at_stop else S.RESERVED)
        else:
            self.state = int(S.AVAILABLE)

    def write(self, engine: DispatchEngine, out: Out) -> None:
        f = engine.fleet
        c = f.cols
        v = self.v
        was_idle = f.is_idle(v)
        f.unindex(v)
        c["state"][v], c["prev_state"][v] = self.state, self.prev
        c["leg_node"][v], c["leg_s"][v], c["at_stop"][v] = self.node, self.leg_s, self.at_stop
        c["load"][v], c["n_riders"][v] = self.load, self.n_riders
        c["end_node"][v], c["end_s"][v] = self.end_node, self.end_s
        c["off_duty"][v] = self.off_duty
        f.plans[v] = self.plan
        req = engine.requests
        for r, (status, veh) in self.touched_requests.items():
            req.cols["status"][r], req.cols["vehicle"][r] = status, veh
        for r in self.reopened:
            req.reopen(r)
            out.reopened.append(int(req.cols["ext"][r]))
        if self.plan_changed:
            out.replanned.append(v)
        f.reindex(v)
        if (f.is_idle(v) and not was_idle) or self.reopened:
            out.freed = True
        maybe_retired(engine, v, out)


def check_vehicle_updates(engine: DispatchEngine, ev: VehiclesUpdated) -> list[_Scratch]:
    vs = [engine.vehicle_index(x) for x in ev.vehicle_id]
    _check_nodes(engine, ev.node, "vehicle update")
    scratch: dict[int, _Scratch] = {}
    req = engine.requests
    for i, v in enumerate(vs):
        sc = scratch.get(v)
        if sc is None:
            sc = scratch[v] = _Scratch.of(engine, v)
        if engine.fleet.cols["retired"][v]:
            raise DispatchError(f"vehicle {ev.vehicle_id[i]!r} has retired")
        e = int(ev.event[i])
        rid = int(ev.request_id[i])
        r = -1
        if e in _RIDER_EVENTS:
            if rid < 0:
                raise DispatchError(f"vehicle {ev.vehicle_id[i]!r}: {EventType(e).mds} needs a request id")
            r = req.row(rid)
        _step(engine, sc, e, int(ev.node[i]), r, ev.time_s, ev.vehicle_id[i])
    return list(scratch.values())


def commit_vehicle_updates(engine: DispatchEngine, work: list[_Scratch], out: Out) -> None:
    for sc in work:
        sc.write(engine, out)


def _stop_error(vid: str, e: int, r: int, plan: list[Stop], engine: DispatchEngine) -> DispatchError:
    ext = engine.requests.cols["ext"]
    head = "nothing" if not plan else f"{('pickup', 'dropoff', 'reposition')[plan[0][0]]} of {int(ext[plan[0][1]])}"
    return DispatchError(
        f"vehicle {vid!r}: {EventType(e).mds} for request {int(ext[r])} out of plan order (next stop: {head})"
    )


def _step(engine: DispatchEngine, sc: _Scratch, e: int, node: int, r: int, now: int, vid: str) -> None:  # noqa: C901, PLR0912
    if e == LOCATED:
        if sc.plan and sc.plan[0][0] == REPOSITION and sc.plan[0][2] == node:
            sc.plan = sc.plan[1:]
            sc.plan_changed = True
            if not sc.plan:
                sc.end_node, sc.end_s = node, now
        if not sc.at_stop:
            sc.node, sc.leg_s = node, now
            if not sc.plan:
                sc.end_node, sc.end_s = node, now
        return
    if e < 0 or e >= len(EventType):
        raise DispatchError(f"vehicle {vid!r}: unknown event code {e}")
    if e == E.COMMS_LOST:
        if sc.state in (S.REMOVED, S.NON_CONTACTABLE):
            raise IllegalTransitionError(f"vehicle {vid!r}: comms_lost from {S(sc.state).mds}")
        sc.prev, sc.state = sc.state, int(S.NON_CONTACTABLE)
        return
    if e == E.COMMS_RESTORED:
        if sc.state != S.NON_CONTACTABLE:
            raise IllegalTransitionError(f"vehicle {vid!r}: comms_restored from {S(sc.state).mds}")
        sc.state, sc.prev = sc.prev, -1
        return
    if e in _RIDER_EVENTS:
        _rider_step(engine, sc, e, node, r, now, vid)
        return
    from .engine import check_transition

    dst = check_transition(sc.state, e, vid, now)
    if dst in _OUT_OF_SERVICE and sc.n_riders > 0:
        raise DispatchError(f"vehicle {vid!r}: {EventType(e).mds} while riders are assigned to it; cancel them first")
    if dst in _OUT_OF_SERVICE and sc.plan:
        sc.plan = []
        sc.plan_changed = True
    sc.state = dst
    if e == E.SERVICE_START:
        sc.node, sc.leg_s, sc.at_stop = node, now, False
        sc.end_node, sc.end_s = node, now
        sc.off_duty = 0  # a vehicle entering service is on duty


def _cancel_step(engine: DispatchEngine, sc: _Scratch, e: int, r: int, status: int, now: int, vid: str) -> None:
    """The vehicle withdrew (provider, driver) or the rider cancelled (passenger) before boarding."""
    if status != Status.ASSIGNED:
        raise DispatchError(
            f"vehicle {vid!r}: {EventType(e).mds} for request {int(engine.requests.cols['ext'][r])}, which is "
            f"{Status(status).label}"
        )
    sc.drop_request(engine, r, now)
    sc.settle_state()
    if e == E.PASSENGER_CANCELLATION:
        sc.touched_requests[r] = (int(Status.CANCELLED), -1)
    else:
        sc.touched_requests[r] = (int(Status.OPEN), -1)
        sc.reopened.append(r)


def _rider_step(engine: DispatchEngine, sc: _Scratch, e: int, node: int, r: int, now: int, vid: str) -> None:  # noqa: PLR0912
    req = engine.requests
    status, veh = sc.touched_requests.get(r, (int(req.cols["status"][r]), int(req.cols["vehicle"][r])))
    if veh != sc.v:
        raise DispatchError(f"vehicle {vid!r}: request {int(req.cols['ext'][r])} is not in its plan")
    if e in _CANCELS:
        _cancel_step(engine, sc, e, r, status, now, vid)
        return
    want = PICKUP if e in (E.RESERVATION_STOP, E.TRIP_START) else DROPOFF
    if not sc.plan or sc.plan[0][0] != want or sc.plan[0][1] != r:
        raise _stop_error(vid, e, r, sc.plan, engine)
    stop_node = sc.plan[0][2]
    if node != stop_node:
        raise DispatchError(f"vehicle {vid!r}: {EventType(e).mds} reported at node {node}, the stop is at {stop_node}")
    dwell = engine.dwell
    pax = int(req.cols["pax"][r])
    if e in (E.RESERVATION_STOP, E.TRIP_STOP):
        if sc.at_stop or sc.state not in ((S.RESERVED, S.ON_TRIP) if e == E.RESERVATION_STOP else (S.ON_TRIP,)):
            raise IllegalTransitionError(f"vehicle {vid!r}: {EventType(e).mds} from {S(sc.state).mds}")
        sc.state, sc.at_stop = int(S.STOPPED), True
        sc.node, sc.leg_s = stop_node, now + dwell.at(want)
        return
    if e == E.TRIP_START:
        if sc.state not in (S.RESERVED, S.STOPPED):
            raise IllegalTransitionError(f"vehicle {vid!r}: trip_start from {S(sc.state).mds}")
        if sc.load + pax > int(engine.fleet.cols["capacity"][sc.v]):
            raise DispatchError(f"vehicle {vid!r}: boarding request {int(req.cols['ext'][r])} exceeds its seats")
        sc.load += pax
        sc.touched_requests[r] = (int(Status.ON_BOARD), sc.v)
        sc.state = int(S.ON_TRIP)
    else:  # trip_end / trip_resume: the rider got out
        if sc.state not in (S.STOPPED, S.ON_TRIP) or status != Status.ON_BOARD:
            raise IllegalTransitionError(f"vehicle {vid!r}: {EventType(e).mds} from {S(sc.state).mds}")
        sc.load -= pax
        sc.n_riders -= 1
        sc.touched_requests[r] = (int(Status.DONE), sc.v)
        if e == E.TRIP_RESUME and sc.load == 0:
            raise DispatchError(f"vehicle {vid!r}: trip_resume with nobody left on board; report trip_end")
        if sc.load > 0:
            sc.state = int(S.ON_TRIP)
        else:
            sc.state = int(S.RESERVED if sc.n_riders > 0 else S.AVAILABLE)
    sc.plan = sc.plan[1:]
    sc.at_stop = False
    sc.node, sc.leg_s = stop_node, now
    if not sc.plan:
        sc.end_node, sc.end_s = stop_node, now


# ---------------------------------------------------------------------- deciding
def decide(engine: DispatchEngine, out: Out) -> None:
    req = engine.requests
    rows = req.open
    c = req.cols
    market = None
    if engine.market is not None:
        market = _pair_rules(engine, rows, out.now)
    problem = MatchProblem(
        now=out.now,
        request=rows,
        o_node=c["o"][rows],
        d_node=c["d"][rows],
        deadline_s=c["deadline"][rows],
        latest_dropoff_s=c["latest_dropoff"][rows],
        passengers=c["pax"][rows],
        shareable=c["shareable"][rows],
        operator=c["operator"][rows],
        fleet=engine.fleet,
        travel=engine.travel,
        dwell=engine.dwell,
        requests=c,
        market=market,
        new_rows=_new_rows(engine, rows),
        retry_vehicles=np.fromiter(sorted(engine._retry_vehicles), np.int32),
    )
    n_free = int(engine.fleet.idle_count.sum()) + len(engine.fleet.repositioning)
    a = engine.policy.match(problem)
    _assign(engine, problem, a, out)
    matched = np.zeros(rows.size, dtype=bool)
    matched[a.rows] = True
    fresh = ~c["decided"][rows]
    reject = fresh & ~a.reachable & ~matched
    if reject.any():
        # An on-arrival policy decides same-instant arrivals one by one, in arrival order: a request after the
        # earlier ones took the last free vehicle had none available.
        taken_before = np.cumsum(matched) - matched if engine.policy.on_arrival else 0
        left = n_free - taken_before + np.zeros(rows.size, np.int64)
        reason = np.where(left[reject] > 0, Reason.ETA_EXCEEDS_MAX_WAIT, Reason.NO_VEHICLE_AVAILABLE).astype(np.int8)
        if market is not None:
            reason = _market_reasons(engine, problem, market, np.flatnonzero(reject), reason)
        out.reject(c["ext"][rows[reject]], reason)
        c["status"][rows[reject]] = Status.REJECTED
    c["decided"][rows] = True
    req.open = rows[~(matched | reject)]


def _new_rows(engine: DispatchEngine, rows: I64) -> NDArray[np.bool_]:
    """Open rows never decided, or re-opened since the last decision."""
    new: NDArray[np.bool_] = ~engine.requests.cols["decided"][rows]
    if engine._retry_rows:
        new |= np.isin(rows, np.fromiter(engine._retry_rows, np.int64))
    return new


def _pair_rules(engine: DispatchEngine, rows: I64, now: int) -> PairRules:
    f = engine.fleet
    n = f.n
    c = engine.requests.cols
    market = engine.market
    if market is None:  # pragma: no cover - the caller checked
        raise DispatchError("no marketplace")
    declined = np.asarray(sorted(engine.declined), dtype=np.int64) if engine.declined else np.empty(0, np.int64)
    return PairRules.build(
        market,
        now,
        rows,
        c["o"][rows],
        c["d"][rows],
        c["deadline"][rows],
        f,
        masks=engine.area_masks,
        riderless=f.cols["n_riders"][:n] == 0,
        idle=f.cols["idx_node"][:n] >= 0,
        declined=declined,
        trips=engine.trips_by_operator,
    )


def _market_reasons(
    engine: DispatchEngine, p: MatchProblem, market: PairRules, pos: I64, reason: NDArray[np.int8]
) -> NDArray[np.int8]:
    """Why no operator could take each rejected row: outside every area, or every covering operator off duty."""
    f = engine.fleet
    n = f.n
    n_ops = market.market.n
    on = f.dispatchable() | (f.cols["offer"][:n] >= 0)
    on_duty = np.bincount(f.cols["operator"][:n][on].astype(np.int64), minlength=n_ops)[:n_ops] > 0
    cover = market.cover[:, pos]
    want = p.operator[pos].astype(np.int64)
    allowed = (want[None, :] < 0) | (np.arange(n_ops)[:, None] == want[None, :])
    cover &= allowed
    outside = ~cover.any(axis=0)
    off = ~outside & ~(cover & on_duty[:, None]).any(axis=0)
    out = reason.copy()
    out[outside] = Reason.OUTSIDE_SERVICE_AREA
    out[off] = Reason.OUT_OF_HOURS
    return out


def _assign(engine: DispatchEngine, problem: MatchProblem, a: Assignment, out: Out) -> None:
    if a.rows.size == 0:
        return
    if a.plans is None:
        _assign_unpooled(engine, problem, a, out)
    else:
        _assign_plans(engine, problem, a, out)


def _assign_unpooled(engine: DispatchEngine, problem: MatchProblem, a: Assignment, out: Out) -> None:
    c = engine.fleet.cols
    rows = problem.request[a.rows]
    veh = a.vehicles.astype(np.int64)
    if np.any(c["state"][veh] != S.AVAILABLE) or np.any(c["n_riders"][veh] != 0):
        raise DispatchError(f"policy {engine.policy.name} assigned a vehicle that is not free")
    pickup = a.pickup_s.astype(np.int64)
    market = engine.market
    if market is not None:
        offers = np.asarray([o.offers for o in market.operators], dtype=bool)[c["operator"][veh].astype(np.int64)]
        if offers.any():
            if np.any(c["idx_node"][veh[offers]] < 0):
                raise DispatchError(f"policy {engine.policy.name} offered a request to a vehicle that is not idle")
            _offers.make_offers(engine, rows[offers], veh[offers], pickup[offers], out)
            rows, veh, pickup = rows[~offers], veh[~offers], pickup[~offers]
    commit_unpooled(engine, rows, veh, pickup, problem.now, out)


def commit_unpooled(engine: DispatchEngine, rows: I64, veh: I64, pickup_s: I64, now: int, out: Out) -> None:
    """Give free vehicles ``veh`` the plan ``[pickup, dropoff]`` of requests ``rows`` (dense indices)."""
    if rows.size == 0:
        return
    f = engine.fleet
    c = f.cols
    req = engine.requests
    pickup = pickup_s.astype(np.int64).copy()
    o, d = req.cols["o"][rows], req.cols["d"][rows]
    travel = engine.travel
    for i, v in enumerate(veh.tolist()):
        r = int(rows[i])
        f.unindex(v)
        plan = f.plans[v]
        new: list[Stop] = [(PICKUP, r, int(o[i])), (DROPOFF, r, int(d[i]))]
        if plan:  # repositioning: re-route at the next node if that is faster than via the target
            target = plan[0][2]
            node, t = travel.divert(int(c["leg_node"][v]), target, int(c["leg_s"][v]), now)
            eta = t + travel.time1(node, int(o[i]), t)
            if eta <= pickup[i]:
                c["leg_node"][v], c["leg_s"][v] = node, t
                pickup[i] = eta
            else:
                new.insert(0, plan[0])
        else:
            c["leg_s"][v] = now
        f.plans[v] = new
        c["at_stop"][v] = False
    dw = engine.dwell
    board = pickup + dw.pickup_s
    c["state"][veh] = S.RESERVED
    c["n_riders"][veh] = 1
    c["end_node"][veh] = d
    c["end_s"][veh] = board + travel.times(o, d, board).astype(np.int64) + dw.dropoff_s
    req.cols["status"][rows] = Status.ASSIGNED
    req.cols["vehicle"][rows] = veh
    engine.count_trips(veh)
    out.a_req.extend(req.cols["ext"][rows].tolist())
    out.a_veh.extend(veh.tolist())
    out.a_pick.extend(pickup.tolist())
    out.replanned.extend(veh.tolist())


def _assign_plans(engine: DispatchEngine, problem: MatchProblem, a: Assignment, out: Out) -> None:
    f = engine.fleet
    c = f.cols
    req = engine.requests
    now = problem.now
    plans = a.plans or {}
    new_rows = problem.request[a.rows]
    by_vehicle: dict[int, set[int]] = {}
    for r, v in zip(new_rows.tolist(), a.vehicles.tolist(), strict=True):
        by_vehicle.setdefault(v, set()).add(r)
    disp = f.dispatchable()
    for v, plan in plans.items():
        old = f.plans[v]
        added = by_vehicle.get(v, set())
        want = {s for s in old if s[0] != REPOSITION} | {
            (k, r, int(req.cols["o" if k == PICKUP else "d"][r])) for r in added for k in (PICKUP, DROPOFF)
        }
        got = [s for s in plan if s[0] != REPOSITION]
        if not disp[v] or set(got) != want or len(got) != len(want):
            raise DispatchError(f"policy {engine.policy.name} gave vehicle {v} a plan that loses or invents stops")
        if c["at_stop"][v] and (not plan or plan[0] != old[0]):
            raise DispatchError(f"policy {engine.policy.name} moved the stop vehicle {v} stands at")
        f.unindex(v)
        if not old:
            c["leg_s"][v] = now
        elif not c["at_stop"][v] and plan[0] != old[0]:
            node, t = engine.travel.divert(int(c["leg_node"][v]), old[0][2], int(c["leg_s"][v]), now)
            c["leg_node"][v], c["leg_s"][v] = node, t
        f.plans[v] = list(plan)
        c["n_riders"][v] += len(added)
        if c["state"][v] == S.AVAILABLE:
            c["state"][v] = S.RESERVED
        times = schedule(
            engine.travel,
            int(c["leg_node"][v]),
            int(c["leg_s"][v]),
            f.plans[v],
            engine.dwell,
            at_stop=bool(c["at_stop"][v]),
        )
        c["end_node"][v], c["end_s"][v] = f.plans[v][-1][2], times[-1][1]
        out.replanned.append(v)
    req.cols["status"][new_rows] = Status.ASSIGNED
    req.cols["vehicle"][new_rows] = a.vehicles
    engine.count_trips(a.vehicles)
    out.a_req.extend(req.cols["ext"][new_rows].tolist())
    out.a_veh.extend(a.vehicles.tolist())
    out.a_pick.extend(a.pickup_s.tolist())


def reposition(engine: DispatchEngine, vehicles: I32, nodes: I32, out: Out) -> None:
    """Send idle vehicles to drive to ``nodes`` (the rebalancer's moves)."""
    f = engine.fleet
    c = f.cols
    if vehicles.size == 0:
        return
    _check_nodes(engine, nodes, "reposition target")
    if np.unique(vehicles).size != vehicles.size or not all(f.is_idle(int(v)) for v in vehicles):
        raise DispatchError("the rebalancer moved a vehicle that is not idle, or one twice")
    now = engine.now
    src = c["leg_node"][vehicles]
    arrive = now + engine.travel.times(src, nodes, now).astype(np.int64)
    for v, node, t in zip(vehicles.tolist(), nodes.tolist(), arrive.tolist(), strict=True):
        if node == int(c["leg_node"][v]):
            continue
        f.unindex(v)
        f.plans[v] = [(REPOSITION, -1, node)]
        c["leg_s"][v] = now
        c["end_node"][v], c["end_s"][v] = node, t
        f.reindex(v)
        out.rep_v.append(v)
        out.rep_n.append(node)
        out.replanned.append(v)

"""The common case of vehicle updates, checked and applied without scratch copies (internal to the engine).

A batch in which every vehicle appears once and every row is a plain plan step (arrival at a stop, boarding,
alighting, reaching a repositioning target) that matches the vehicle's plan is what the simulator sends thousands
of times a second. :func:`check` recognises such a batch by reading the engine's state only; anything else (a
repeated vehicle, another event, a row that does not fit the plan) returns None and goes through the general path
in :mod:`._apply`, which checks every row in order and names the problem. Both paths give the same result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..fleet.states import EventType, VehicleState
from ._requests import RequestStatus
from .events import LOCATED, VehiclesUpdated
from .plans import DROPOFF, PICKUP, REPOSITION

if TYPE_CHECKING:
    from ._apply import Out
    from .engine import DispatchEngine

E = EventType
S = VehicleState
_ARRIVE = (int(E.RESERVATION_STOP), int(E.TRIP_STOP))
_RESERVED, _ON_TRIP, _STOPPED, _AVAILABLE = int(S.RESERVED), int(S.ON_TRIP), int(S.STOPPED), int(S.AVAILABLE)
_ON_BOARD = int(RequestStatus.ON_BOARD)

Op = tuple[int, int, int, int]  # (vehicle, event, node, request row)


def check(engine: DispatchEngine, ev: VehiclesUpdated) -> list[Op] | None:  # noqa: C901, PLR0912
    """The batch as plan steps, if it is the common case (see the module docstring); None otherwise."""
    f = engine.fleet
    index = f.index
    vs = [index.get(x, -1) for x in ev.vehicle_id]
    if -1 in vs or len(set(vs)) != len(vs):
        return None
    c = f.cols
    rc = engine.requests.cols
    rindex = engine.requests.index
    n_nodes = engine.travel.n_nodes
    ops: list[Op] = []
    for v, e, node, rid in zip(vs, ev.event.tolist(), ev.node.tolist(), ev.request_id.tolist(), strict=True):
        if c["retired"][v] or not 0 <= node < n_nodes:
            return None
        plan = f.plans[v]
        at_stop = bool(c["at_stop"][v])
        if e == LOCATED:
            if at_stop:
                return None
            ops.append((v, e, node, -1))
            continue
        r = rindex.get(rid)
        if r is None or not plan or plan[0][1] != r or plan[0][2] != node:
            return None
        kind = plan[0][0]
        st = int(c["state"][v])
        if e in _ARRIVE:
            want = PICKUP if e == E.RESERVATION_STOP else DROPOFF
            if kind != want or at_stop or st not in ((_RESERVED, _ON_TRIP) if want == PICKUP else (_ON_TRIP,)):
                return None
        elif e == E.TRIP_START:
            if kind != PICKUP or st not in (_RESERVED, _STOPPED):
                return None
            if int(c["load"][v]) + int(rc["pax"][r]) > int(c["capacity"][v]):
                return None
        elif e in (E.TRIP_END, E.TRIP_RESUME):
            left = int(c["load"][v]) - int(rc["pax"][r])
            if kind != DROPOFF or int(rc["status"][r]) != _ON_BOARD or st not in (_STOPPED, _ON_TRIP):
                return None
            if (e == E.TRIP_END) != (left == 0) or (e == E.TRIP_RESUME and st != _STOPPED):
                return None
        else:
            return None
        ops.append((v, e, node, r))
    return ops


def commit(engine: DispatchEngine, ops: list[Op], now: int, out: Out) -> None:
    """Apply what :func:`check` accepted."""
    from ._apply import maybe_retired

    f = engine.fleet
    c = f.cols
    rc = engine.requests.cols
    dwell = engine.dwell
    for v, e, node, r in ops:
        plan = f.plans[v]
        if e == LOCATED:
            was_idle = not plan
            if plan and plan[0][0] == REPOSITION and plan[0][2] == node:
                del plan[0]
                out.replanned.append(v)
            c["leg_node"][v], c["leg_s"][v] = node, now
            if not plan:
                c["end_node"][v], c["end_s"][v] = node, now
                f.reindex(v)
                out.freed = out.freed or (not was_idle and f.is_idle(v))
                maybe_retired(engine, v, out)
            continue
        if e in _ARRIVE:
            c["state"][v] = _STOPPED
            c["at_stop"][v] = True
            c["leg_node"][v] = node
            c["leg_s"][v] = now + (dwell.pickup_s if e == E.RESERVATION_STOP else dwell.dropoff_s)
            continue
        del plan[0]
        c["at_stop"][v] = False
        c["leg_node"][v], c["leg_s"][v] = node, now
        pax = int(rc["pax"][r])
        if e == E.TRIP_START:
            c["load"][v] += pax
            rc["status"][r] = _ON_BOARD
            c["state"][v] = _ON_TRIP
            continue
        c["load"][v] -= pax
        c["n_riders"][v] -= 1
        rc["status"][r] = RequestStatus.DONE
        if e == E.TRIP_RESUME:
            c["state"][v] = _ON_TRIP
        else:
            c["state"][v] = _RESERVED if c["n_riders"][v] > 0 else _AVAILABLE
        if not plan:
            c["end_node"][v], c["end_s"][v] = node, now
            f.reindex(v)
            out.freed = out.freed or f.is_idle(v)
            maybe_retired(engine, v, out)

"""Riders who leave a vehicle away from their drop-off, and ride on as new requests (internal to the engine).

:class:`~.events.RidersDisembarked` is checked completely (:func:`check`, nothing changed) before :func:`commit`
applies it: the vehicle loses the riders' drop-offs and their load (on a scratch copy written back in one go, as
the general path of vehicle updates does), each old request ends ``redispatched``, and each rider gets a new open
request from where they got out to their destination, which waits for a vehicle until its deadline (it is not turned
down at its first decision, as a re-opened request is not).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..errors import DispatchError
from ..fleet.states import VehicleState
from ._apply import Out, _check_nodes, _Scratch, append_requests
from ._requests import Status
from .events import RidersDisembarked
from .plans import schedule

if TYPE_CHECKING:
    from .engine import DispatchEngine

S = VehicleState
_WITH_RIDERS = (int(S.ON_TRIP), int(S.STOPPED))


@dataclass(slots=True)
class Checked:
    """What :func:`check` accepted: the vehicles (dense) and request rows, row for row."""

    vehicles: list[int]
    rows: list[int]


def check(engine: DispatchEngine, ev: RidersDisembarked) -> Checked:
    """Every row of ``ev`` is legal given the engine's state, or a :class:`DispatchError` names the first problem."""
    vs = [engine.vehicle_index(x) for x in ev.vehicle_id]
    _check_nodes(engine, ev.node, "riders disembarked")
    req = engine.requests
    rows = [req.row(x) for x in ev.request_id.tolist()]
    if len(set(rows)) != len(rows):
        raise DispatchError("riders disembarked: a request appears twice in one batch")
    new = ev.new_request_id.tolist()
    if len(set(new)) != len(new):
        raise DispatchError("riders disembarked: new request ids repeat within one batch")
    for x in new:
        if x < 0:
            raise DispatchError(f"riders disembarked: new request id {x} is negative")
        if x in req.index:
            raise DispatchError(f"riders disembarked: new request id {x} was already submitted")
    f = engine.fleet
    c, rc = f.cols, req.cols
    for v, r, node, vid in zip(vs, rows, ev.node.tolist(), ev.vehicle_id, strict=True):
        ext = int(rc["ext"][r])
        status = int(rc["status"][r])
        if status != Status.ON_BOARD or int(rc["vehicle"][r]) != v:
            where = "" if status != Status.ON_BOARD else f" of vehicle {f.ids[int(rc['vehicle'][r])]!r}"
            raise DispatchError(f"vehicle {vid!r}: request {ext} is not on board (it is {Status(status).label}{where})")
        state = int(c["state"][v])
        if state not in _WITH_RIDERS:
            raise DispatchError(
                f"vehicle {vid!r} is {S(state).mds}: riders get out of a vehicle that is on_trip or stopped"
            )
        here = int(c["leg_node"][v])
        if node != here:
            raise DispatchError(
                f"vehicle {vid!r}: riders disembarked at node {node}, but the vehicle was last reported at node {here} "
                "(report its position first)"
            )
        if node == int(rc["d"][r]):
            raise DispatchError(f"vehicle {vid!r}: request {ext} is at its drop-off node {node}: report trip_end")
    return Checked(vs, rows)


def commit(engine: DispatchEngine, ev: RidersDisembarked, ok: Checked, out: Out) -> None:
    """Apply what :func:`check` accepted."""
    req = engine.requests
    rc = req.cols
    now = ev.time_s
    scratch: dict[int, _Scratch] = {}
    for v, r in zip(ok.vehicles, ok.rows, strict=True):
        sc = scratch.get(v)
        if sc is None:
            sc = scratch[v] = _Scratch.of(engine, v)
        sc.plan = [s for s in sc.plan if s[1] != r]
        sc.load -= int(rc["pax"][r])
        sc.n_riders -= 1
        sc.plan_changed = True
        sc.touched_requests[r] = (int(Status.REDISPATCHED), v)
    for sc in scratch.values():
        if not sc.at_stop:  # it stood where it was while the riders got out; it leaves from there now
            sc.leg_s = now
        sc.settle_state()
        if sc.plan:
            times = schedule(engine.travel, sc.node, sc.leg_s, sc.plan, engine.dwell, at_stop=sc.at_stop)
            sc.end_node, sc.end_s = sc.plan[-1][2], int(times[-1][1])
        else:
            sc.end_node, sc.end_s = sc.node, sc.leg_s
        sc.write(engine, out)
    old = np.asarray(ok.rows, dtype=np.int64)
    wait: NDArray[np.int64] = (rc["deadline"][old] - rc["time"][old]).astype(np.int64)
    append_requests(
        engine,
        now,
        ev.new_request_id,
        ev.node,
        rc["d"][old].copy(),
        rc["pax"][old].copy(),
        wait,
        rc["shareable"][old].copy(),
        np.full(old.size, -1, np.int16),
        out,
        origin=ev.request_id,
    )
    # A rider left on the street is never turned down at once: like a re-opened request, the new one waits for a
    # vehicle until its deadline (it may expire then), and every policy tries it again whenever something changes.
    new_rows = [req.index[x] for x in ev.new_request_id.tolist()]
    waiting = [r for r in new_rows if rc["status"][r] == Status.OPEN]
    rc["decided"][waiting] = True
    engine._retry_rows.update(waiting)
    out.redispatched.extend(zip(ev.request_id.tolist(), ev.new_request_id.tolist(), strict=True))
    out.freed = True

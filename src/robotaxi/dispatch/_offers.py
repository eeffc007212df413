"""The marketplace's inputs inside the engine: offers to human drivers and vehicles going off and on duty
(internal to :mod:`.engine`; checks never change state, commits apply what was checked).

Offers. When a policy matches a request with a vehicle of an operator that makes offers (human drivers), the
engine does not assign: it *offers*. The request leaves the open set (status ``offered``) and the vehicle is held
(no other work, not in the free index) until the driver answers (:class:`~.events.OffersAnswered`) or the offer
lapses at ``offer time + offer_timeout_s``. Accepted: the engine assigns as it would have (plan ``[pickup,
dropoff]``, pickup timed from the answer). Declined or lapsed: the request goes back to matching with its
deadline, the vehicle is free again, and that pair is never offered again. Pair feasibility
(:class:`~.operators.PairRules`) only offers when ``now + timeout + ETA <= deadline``, so waiting for an answer
never pushes a pickup past the rider's deadline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..errors import DispatchError
from ..fleet.states import VehicleState
from ._requests import Status
from .events import OffersAnswered, VehiclesOffDuty, VehiclesOnDuty
from .plans import REPOSITION, Stop, schedule

if TYPE_CHECKING:
    from ._apply import Out
    from .engine import DispatchEngine

I64 = NDArray[np.int64]
S = VehicleState
_NON_OPERATIONAL = int(S.NON_OPERATIONAL)


def pair_key(request_row: int, vehicle: int) -> int:
    return request_row * (1 << 32) + vehicle


# ---------------------------------------------------------------------- offers
def lapsing(engine: DispatchEngine, now: int) -> list[int]:
    """Request rows whose offer lapses before ``now`` (nothing is changed)."""
    return sorted(r for r, (_v, until) in engine.offers.items() if until < now)


def make_offers(engine: DispatchEngine, rows: I64, veh: I64, pickup: I64, out: Out) -> None:
    """Offer requests ``rows`` (dense) to the drivers of ``veh``."""
    f = engine.fleet
    req = engine.requests
    market = engine.market
    if market is None:  # pragma: no cover - only called with a marketplace
        raise DispatchError("offers need a marketplace")
    for r, v, t in zip(rows.tolist(), veh.tolist(), pickup.tolist(), strict=True):
        until = out.now + market.operators[int(f.cols["operator"][v])].offer_timeout_s
        f.unindex(v)
        f.cols["offer"][v] = r
        req.cols["status"][r] = Status.OFFERED
        engine.offers[r] = (v, until)
        out.offers.append((int(req.cols["ext"][r]), v, t, until))


def _release(engine: DispatchEngine, r: int, *, declined: bool, out: Out) -> None:
    """End the offer of request row ``r``: the vehicle is free again, the request open (declined: not again to
    this driver, and counted)."""
    v, _until = engine.offers.pop(r)
    f = engine.fleet
    f.cols["offer"][v] = -1
    f.reindex(v)
    req = engine.requests
    if declined:
        engine.declined.add(pair_key(r, v))
        req.cols["declines"][r] += 1
    req.reopen(r)
    out.freed = True


def commit_lapses(engine: DispatchEngine, rows: list[int], out: Out) -> None:
    for r in rows:
        _release(engine, r, declined=True, out=out)
        out.withdrawn.append(int(engine.requests.cols["ext"][r]))


def check_answers(engine: DispatchEngine, ev: OffersAnswered, lapse: list[int]) -> list[tuple[int, int, bool]]:
    req = engine.requests
    rows = [req.row(int(x)) for x in ev.request_id.tolist()]
    if len(set(rows)) != len(rows):
        raise DispatchError("an offer is answered twice in one batch")
    gone = set(lapse)
    work = []
    for i, r in enumerate(rows):
        v = engine.vehicle_index(ev.vehicle_id[i])
        got = engine.offers.get(r)
        if got is None or got[0] != v or r in gone:
            what = "lapsed" if r in gone else "not pending"
            raise DispatchError(
                f"offer of request {int(ev.request_id[i])} to vehicle {ev.vehicle_id[i]!r} cannot be answered: "
                f"it is {what}"
            )
        work.append((r, v, bool(ev.accepted[i])))
    return work


def commit_answers(engine: DispatchEngine, work: list[tuple[int, int, bool]], out: Out) -> None:
    from ._apply import commit_unpooled

    now = out.now
    c = engine.requests.cols
    for r, v, accepted in work:
        if not accepted:
            _release(engine, r, declined=True, out=out)
            continue
        pickup = now + int(engine.travel.time1(int(engine.fleet.cols["leg_node"][v]), int(c["o"][r]), now))
        if pickup > int(c["deadline"][r]):  # speeds changed since the offer: too late after all
            _release(engine, r, declined=False, out=out)
            out.withdrawn.append(int(c["ext"][r]))
            continue
        engine.offers.pop(r)
        engine.fleet.cols["offer"][v] = -1
        commit_unpooled(engine, np.asarray([r], np.int64), np.asarray([v], np.int64), np.asarray([pickup]), now, out)


def withdraw_for_cancellation(engine: DispatchEngine, r: int, out: Out) -> None:
    """The rider cancelled an offered request: the offer goes, the vehicle is free."""
    v, _until = engine.offers.pop(r)
    engine.fleet.cols["offer"][v] = -1
    engine.fleet.reindex(v)
    out.freed = True
    out.withdrawn.append(int(engine.requests.cols["ext"][r]))


# ---------------------------------------------------------------------- duty
def check_off_duty(engine: DispatchEngine, ev: VehiclesOffDuty) -> list[int]:
    vs = [engine.vehicle_index(x) for x in ev.vehicle_id]
    if len(set(vs)) != len(vs):
        raise DispatchError("a vehicle goes off duty twice in one batch")
    n = engine.travel.n_nodes
    c = engine.fleet.cols
    for i, v in enumerate(vs):
        node = int(ev.return_node[i])
        if node >= n or node < -1:
            raise DispatchError(f"vehicle {ev.vehicle_id[i]!r}: return node {node} is not in the network")
        if c["retired"][v] or c["draining"][v]:
            raise DispatchError(f"vehicle {ev.vehicle_id[i]!r} is retiring")
        if c["off_duty"][v]:
            raise DispatchError(f"vehicle {ev.vehicle_id[i]!r} is already off duty")
        if c["state"][v] == _NON_OPERATIONAL:
            raise DispatchError(f"vehicle {ev.vehicle_id[i]!r} is not in service")
    return vs


def off_duty(engine: DispatchEngine, vs: list[int], nodes: list[int], out: Out) -> None:
    from ._apply import maybe_retired

    f = engine.fleet
    c = f.cols
    now = out.now
    for v, target in zip(vs, nodes, strict=True):
        r = int(c["offer"][v])
        if r >= 0:
            engine.offers.pop(r)
            c["offer"][v] = -1
            engine.requests.reopen(r)
            out.withdrawn.append(int(engine.requests.cols["ext"][r]))
            out.freed = True
        f.unindex(v)
        c["off_duty"][v] = 1
        plan = f.plans[v]
        if plan and plan[0][0] == REPOSITION and not c["at_stop"][v]:
            node, t = engine.travel.divert(int(c["leg_node"][v]), plan[0][2], int(c["leg_s"][v]), now)
            c["leg_node"][v], c["leg_s"][v] = node, t
        new: list[Stop] = [s for s in plan if s[0] != REPOSITION]
        if not new:
            c["leg_s"][v] = max(int(c["leg_s"][v]), now) if c["at_stop"][v] else now
        end = new[-1][2] if new else int(c["leg_node"][v])
        if target >= 0 and target != end:
            new.append((REPOSITION, -1, target))
        f.plans[v] = new
        if new != plan:
            out.replanned.append(v)
            if new:
                times = schedule(
                    engine.travel,
                    int(c["leg_node"][v]),
                    int(c["leg_s"][v]),
                    new,
                    engine.dwell,
                    at_stop=bool(c["at_stop"][v]),
                )
                c["end_node"][v], c["end_s"][v] = new[-1][2], times[-1][1]
            else:
                c["end_node"][v], c["end_s"][v] = int(c["leg_node"][v]), int(c["leg_s"][v])
        maybe_retired(engine, v, out)


def check_on_duty(engine: DispatchEngine, ev: VehiclesOnDuty) -> list[int]:
    vs = [engine.vehicle_index(x) for x in ev.vehicle_id]
    if len(set(vs)) != len(vs):
        raise DispatchError("a vehicle comes on duty twice in one batch")
    c = engine.fleet.cols
    for i, v in enumerate(vs):
        if not c["off_duty"][v] or c["state"][v] == _NON_OPERATIONAL:
            raise DispatchError(
                f"vehicle {ev.vehicle_id[i]!r} is not off duty and in service (a vehicle out of service comes "
                "back with service_start)"
            )
    return vs


def on_duty(engine: DispatchEngine, vs: list[int], out: Out) -> None:
    f = engine.fleet
    for v in vs:
        f.cols["off_duty"][v] = 0
        f.reindex(v)
        if f.is_idle(v):
            out.freed = True

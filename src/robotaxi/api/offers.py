"""Trip offers to operators: push over a WebSocket, a long-poll fallback, and the operator's answer.

For an operator whose rules make offers (``offers`` in ``/v1/admin/operators``), the engine does not assign a
matched request: it **offers** it to one idle vehicle (``Decisions.offer_*``) and holds that vehicle until the
operator answers or the offer lapses at ``expires_ms`` (the engine's ``offer_timeout_s``). The service

* stores each offer (``offers`` table, ``pending``) in the batch that made it, and after the commit pushes it to
  the operator's WebSocket subscribers and wakes its long-polls (:class:`OfferHub`);
* takes the answer (``POST /v1/operator/offers/{offer_id}/accept`` or ``/decline``) as the engine's
  ``OffersAnswered``: accepted, the request joins the vehicle's plan as an assignment; declined, the request goes
  back to matching without that vehicle (the engine never offers the same pair twice);
* refuses an answer after ``expires_ms`` (``409 offer_expired``), to an offer no longer pending (``409
  offer_closed``) or to another operator's offer (``404 unknown_offer``), changing nothing;
* marks an offer the engine let lapse ``lapsed`` (it goes back to matching like a declined one) and one withdrawn
  because the rider cancelled ``withdrawn``, and pushes that too.

The engine only offers when ``now + offer_timeout_s + pickup ETA <= deadline``, so however late within the timeout
the operator answers, the rider is still picked up by the deadline: an offer never makes a rider wait longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import ServiceError
from ..store import tables
from .commands import OperatorRef
from .schemas import Location, OfferOut

if TYPE_CHECKING:
    from ..dispatch import Decisions
    from .live import Ctx

logger = logging.getLogger(__name__)
OF = tables.offers
RR = tables.ride_requests
V = tables.vehicles
OP = tables.operators


# ---------------------------------------------------------------------- the hub
@dataclass(eq=False, slots=True)
class _Subscriber:
    operator_id: int
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[dict[str, Any]]


class OfferHub:
    """Fan-out of offer messages from the engine thread to the operators' WebSockets and long-polls (each on its
    event loop). Messages are sent only after the batch that made them has committed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: set[_Subscriber] = set()

    def subscribe(self, operator_id: int) -> _Subscriber:
        sub = _Subscriber(operator_id, asyncio.get_running_loop(), asyncio.Queue())
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: _Subscriber) -> None:
        with self._lock:
            self._subs.discard(sub)

    def publish(self, operator_id: int, message: dict[str, Any]) -> None:
        with self._lock:
            subs = [s for s in self._subs if s.operator_id == operator_id]
        for s in subs:
            with contextlib.suppress(RuntimeError):  # its loop has closed: the subscriber is going away
                s.loop.call_soon_threadsafe(s.queue.put_nowait, message)


# ---------------------------------------------------------------------- reading
def _offers_query() -> sa.Select[Any]:
    return sa.select(
        OF,
        RR.c.trip_id,
        RR.c.origin_lat,
        RR.c.origin_lon,
        RR.c.destination_lat,
        RR.c.destination_lon,
        RR.c.passengers,
    ).select_from(OF.join(RR, OF.c.request_id == RR.c.request_id))


def _offer_out(r: Any) -> OfferOut:
    return OfferOut(
        offer_id=r.offer_id,
        status=r.status,
        trip_id=r.trip_id,
        device_id=r.device_id,
        origin=Location(lat=r.origin_lat, lng=r.origin_lon),
        destination=Location(lat=r.destination_lat, lng=r.destination_lon),
        passengers=r.passengers,
        offered_ms=r.offered_ms,
        expires_ms=r.expires_ms,
        pickup_eta_ms=r.pickup_eta_ms,
        closed_ms=r.closed_ms,
    )


def pending(conn: sa.Connection, operator_id: int) -> list[OfferOut]:
    """The operator's offers waiting for an answer, oldest first."""
    q = _offers_query().where(OF.c.operator_id == operator_id, OF.c.status == "pending")
    return [_offer_out(r) for r in conn.execute(q.order_by(OF.c.offered_ms, OF.c.offer_id))]


# ---------------------------------------------------------------------- recording the engine's decisions
def record(ctx: Ctx, d: Decisions) -> None:
    """Store the offers the engine made and close those it withdrew (lapsed, or the rider cancelled)."""
    conn, now_ms, engine = ctx.conn, ctx.now_ms, ctx.engine
    for r in d.withdrawn_request.tolist():
        row = conn.execute(sa.select(OF).where(OF.c.request_id == r, OF.c.status == "pending")).first()
        if row is None:  # an accepted offer the engine could no longer keep: the answer wrote its status
            continue
        lapsed = now_ms > int(row.expires_ms)
        state = "lapsed" if lapsed else "withdrawn"
        conn.execute(OF.update().where(OF.c.offer_id == row.offer_id).values(status=state, closed_ms=now_ms))
        ctx.notices.append((int(row.operator_id), {"type": state, "offer_id": row.offer_id}))
    if not d.offer_request.size:
        return
    made = []
    for r, v, pickup_s, until_s in zip(
        d.offer_request.tolist(),
        d.offer_vehicle.tolist(),
        d.offer_pickup_s.tolist(),
        d.offer_expires_s.tolist(),
        strict=True,
    ):
        device = engine.vehicle_id(v)
        op_id = conn.execute(sa.select(V.c.operator_id).where(V.c.device_id == device)).scalar_one()
        oid = str(uuid.uuid4())
        conn.execute(
            OF.insert().values(
                offer_id=oid,
                request_id=r,
                device_id=device,
                operator_id=op_id,
                status="pending",
                offered_ms=now_ms,
                expires_ms=until_s * 1000,
                pickup_eta_ms=pickup_s * 1000,
            )
        )
        made.append((int(op_id), oid))
    for op_id, oid in made:
        out = _offer_out(conn.execute(_offers_query().where(OF.c.offer_id == oid)).one())
        ctx.notices.append((op_id, {"type": "offer", "offer": out.model_dump(mode="json")}))


# ---------------------------------------------------------------------- answering
def answer(op: OperatorRef, offer_id: str, accept: bool) -> Callable[[Ctx], OfferOut]:
    """The operator's answer to one of its offers (refused, changing nothing, when it is late or not pending)."""

    def run(ctx: Ctx) -> OfferOut:
        from ..dispatch import OffersAnswered

        q = _offers_query().where(OF.c.offer_id == offer_id, OF.c.operator_id == op.id)
        row = ctx.conn.execute(q).first()
        if row is None:
            raise ServiceError(
                f"offer_id: {op.name} has no offer {offer_id}", status=404, field="offer_id", code="unknown_offer"
            )
        if row.status != "pending":
            raise ServiceError(
                f"offer_id: offer {offer_id} is {row.status}; only a pending offer can be answered",
                status=409,
                field="offer_id",
                code="offer_closed",
            )
        if ctx.now_ms > int(row.expires_ms):
            raise ServiceError(
                f"offer_id: offer {offer_id} expired at {row.expires_ms} (now {ctx.now_ms}); the trip went back to "
                "matching",
                status=409,
                field="offer_id",
                code="offer_expired",
            )

        def write(d: Decisions) -> None:
            if not accept:
                state = "declined"
            elif row.request_id in set(d.assign_request.tolist()):
                state = "accepted"
            else:  # the engine could no longer reach the pickup in time (speeds changed): back to matching
                state = "withdrawn"
            ctx.conn.execute(OF.update().where(OF.c.offer_id == offer_id).values(status=state, closed_ms=ctx.now_ms))

        ctx.handle(OffersAnswered(ctx.now_s, [int(row.request_id)], [str(row.device_id)], [accept]), write)
        return _offer_out(ctx.conn.execute(_offers_query().where(OF.c.offer_id == offer_id)).one())

    return run

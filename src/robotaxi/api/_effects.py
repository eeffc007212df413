"""What the engine's decisions change in the database (internal to the engine thread).

* ride requests: ``assigned`` (vehicle, quoted pickup), ``rejected`` (reason), ``expired``, re-``open``\\ ed;
* vehicles: the stop plan (with each stop's trip id and coordinates: what the operator's vehicle drives), the MDS
  state, and the events the platform itself causes: ``reservation_start`` when an assignment reserves an available
  vehicle, ``decommissioned`` when a retiring vehicle's plan is empty. Events the operator reports are written by
  the command that takes them (``Ctx.reported``), never derived twice.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..store import tables
from . import offers

if TYPE_CHECKING:
    from ..dispatch import Decisions
    from .live import Ctx

logger = logging.getLogger(__name__)
_KINDS = ("pickup", "dropoff", "reposition")


def record_decisions(ctx: Ctx, d: Decisions) -> None:
    """Write the decisions of one engine input (and the state of every vehicle it touched)."""
    from ..dispatch import Reason

    conn, now_ms, engine = ctx.conn, ctx.now_ms, ctx.engine
    rr = tables.ride_requests
    assigned: dict[int, list[int]] = {}
    for r, v, p in zip(d.assign_request.tolist(), d.assign_vehicle.tolist(), d.assign_pickup_s.tolist(), strict=True):
        conn.execute(
            rr.update()
            .where(rr.c.request_id == r)
            .values(
                status="assigned",
                device_id=engine.vehicle_id(v),
                assigned_ms=now_ms,
                quoted_pickup_ms=p * 1000,
                updated_ms=now_ms,
            )
        )
        assigned.setdefault(v, []).append(r)
    for r, why in zip(d.reject_request.tolist(), d.reject_reason.tolist(), strict=True):
        conn.execute(
            rr.update()
            .where(rr.c.request_id == r)
            .values(status="rejected", reason=Reason(why).label, closed_ms=now_ms, updated_ms=now_ms)
        )
    for r, at, why in zip(d.expired_request.tolist(), d.expired_s.tolist(), d.expired_reason.tolist(), strict=True):
        conn.execute(
            rr.update()
            .where(rr.c.request_id == r)
            .values(status="expired", reason=Reason(why).label, closed_ms=at * 1000, updated_ms=now_ms)
        )
    for r in d.reopened_request.tolist():
        conn.execute(
            rr.update()
            .where(rr.c.request_id == r)
            .values(status="open", device_id=None, assigned_ms=None, quoted_pickup_ms=None, updated_ms=now_ms)
        )
    if d.offer_request.size or d.withdrawn_request.size:
        offers.record(ctx, d)
    retired = set(d.retired.tolist())
    for v in sorted(set(d.replanned.tolist()) | set(assigned) | retired | ctx.touched):
        sync_vehicle(ctx, v, assigned.get(v, []), retired=v in retired)


def trip_ids(conn: sa.Connection, request_ids: list[int]) -> dict[int, str]:
    """Request id -> MDS trip id."""
    if not request_ids:
        return {}
    rr = tables.ride_requests
    rows = conn.execute(sa.select(rr.c.request_id, rr.c.trip_id).where(rr.c.request_id.in_(request_ids)))
    return {int(a): str(b) for a, b in rows}


def plan_json(ctx: Ctx, v: int) -> list[dict[str, Any]]:
    """A vehicle's stop plan as the operator sees it."""
    plan = ctx.engine.plan(v)
    ids = trip_ids(ctx.conn, [r for _, r, _ in plan if r >= 0])
    net = ctx.service.network
    return [
        {
            "kind": _KINDS[k],
            "trip_id": ids.get(r) if r >= 0 else None,
            "location": {"lat": float(net.lat[n]), "lng": float(net.lon[n])},
        }
        for k, r, n in plan
    ]


def sync_vehicle(ctx: Ctx, v: int, assigned: list[int], *, retired: bool = False) -> None:
    """Write a vehicle's plan and MDS state; record the event the platform caused, if any."""
    from ..fleet import VehicleState

    t = tables.vehicles
    device = ctx.engine.vehicle_id(v)
    row = ctx.conn.execute(sa.select(t.c.state, t.c.lon, t.c.lat).where(t.c.device_id == device)).one()
    state = VehicleState(int(ctx.engine.vehicle_state[v])).mds
    values: dict[str, Any] = {"plan": plan_json(ctx, v), "state": state, "updated_ms": ctx.now_ms}
    event: list[str] | None = None
    trips: list[str] | None = None
    if retired:
        values.update(state="removed", retired_ms=ctx.now_ms)
        event = ["decommissioned"]
    elif state != row.state and v not in ctx.reported:
        if row.state == "available" and state == "reserved":
            event = ["reservation_start"]
            trips = list(trip_ids(ctx.conn, assigned).values())
        else:
            logger.warning("vehicle %s: %s -> %s without a reported event", device, row.state, state)
    if event is not None:
        eid = str(uuid.uuid4())
        ctx.conn.execute(
            tables.vehicle_events.insert().values(
                seq=ctx.service.next_event_seq(),
                event_id=eid,
                device_id=device,
                vehicle_state=values["state"],
                event_types=event,
                timestamp_ms=ctx.now_ms,
                lon=row.lon,
                lat=row.lat,
                trip_ids=trips or None,
                source="platform",
                publication_ms=ctx.now_ms,
            )
        )
        values.update(last_event_id=eid, last_event_ms=ctx.now_ms)
    ctx.conn.execute(t.update().where(t.c.device_id == device).values(**values))

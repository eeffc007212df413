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
    """Write the decisions of one engine input (and the state of every vehicle it touched): one ``executemany``
    per kind of change, not a statement per row (an engine input may decide for many requests and vehicles)."""
    from ..dispatch import Reason

    conn, now_ms, engine = ctx.conn, ctx.now_ms, ctx.engine
    rr = tables.ride_requests
    where = rr.c.request_id == sa.bindparam("b_r")
    assigned: dict[int, list[int]] = {}
    rows: list[dict[str, Any]] = []
    for r, v, p in zip(d.assign_request.tolist(), d.assign_vehicle.tolist(), d.assign_pickup_s.tolist(), strict=True):
        rows.append({"b_r": r, "b_d": engine.vehicle_id(v), "b_p": p * 1000})
        assigned.setdefault(v, []).append(r)
    values: dict[str, Any]
    if rows:
        values = {"device_id": sa.bindparam("b_d"), "quoted_pickup_ms": sa.bindparam("b_p")}
        conn.execute(
            rr.update().where(where).values(status="assigned", assigned_ms=now_ms, updated_ms=now_ms, **values), rows
        )
    rows = [
        {"b_r": r, "b_why": Reason(w).label}
        for r, w in zip(d.reject_request.tolist(), d.reject_reason.tolist(), strict=True)
    ]
    if rows:
        values = {"reason": sa.bindparam("b_why"), "closed_ms": now_ms, "updated_ms": now_ms}
        conn.execute(rr.update().where(where).values(status="rejected", **values), rows)
    rows = [
        {"b_r": r, "b_why": Reason(w).label, "b_at": at * 1000}
        for r, at, w in zip(d.expired_request.tolist(), d.expired_s.tolist(), d.expired_reason.tolist(), strict=True)
    ]
    if rows:
        values = {"reason": sa.bindparam("b_why"), "closed_ms": sa.bindparam("b_at"), "updated_ms": now_ms}
        conn.execute(rr.update().where(where).values(status="expired", **values), rows)
    rows = [{"b_r": r} for r in d.reopened_request.tolist()]
    if rows:
        values = {"device_id": None, "assigned_ms": None, "quoted_pickup_ms": None, "updated_ms": now_ms}
        conn.execute(rr.update().where(where).values(status="open", **values), rows)
    if d.offer_request.size or d.withdrawn_request.size:
        offers.record(ctx, d)
    retired = set(d.retired.tolist())
    vehicles = sorted(set(d.replanned.tolist()) | set(assigned) | retired | ctx.touched)
    if vehicles:
        sync_vehicles(ctx, vehicles, assigned, retired)


def trip_ids(conn: sa.Connection, request_ids: list[int] | set[int]) -> dict[int, str]:
    """Request id -> MDS trip id."""
    if not request_ids:
        return {}
    rr = tables.ride_requests
    rows = conn.execute(sa.select(rr.c.request_id, rr.c.trip_id).where(rr.c.request_id.in_(request_ids)))
    return {int(a): str(b) for a, b in rows}


def sync_vehicles(ctx: Ctx, vehicles: list[int], assigned: dict[int, list[int]], retired: set[int]) -> None:
    """Write the vehicles' plans and MDS states (each plan as the operator sees it: kind, trip id, location);
    record the events the platform caused (reservation_start, decommissioned)."""
    from ..fleet import VehicleState

    t = tables.vehicles
    engine, net, now_ms = ctx.engine, ctx.service.network, ctx.now_ms
    devices = [engine.vehicle_id(v) for v in vehicles]
    stored = {
        r.device_id: r
        for r in ctx.conn.execute(
            sa.select(t.c.device_id, t.c.state, t.c.lon, t.c.lat).where(t.c.device_id.in_(devices))
        )
    }
    plans = {v: engine.plan(v) for v in vehicles}
    wanted = {r for plan in plans.values() for _, r, _ in plan if r >= 0}
    wanted.update(r for v in vehicles for r in assigned.get(v, ()))
    trips = trip_ids(ctx.conn, wanted)
    updates: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for v, device in zip(vehicles, devices, strict=True):
        row = stored[device]
        state = VehicleState(int(engine.vehicle_state[v])).mds
        plan = [
            {
                "kind": _KINDS[k],
                "trip_id": trips.get(r) if r >= 0 else None,
                "location": {"lat": float(net.lat[n]), "lng": float(net.lon[n])},
            }
            for k, r, n in plans[v]
        ]
        event: list[str] | None = None
        trip_list: list[str] | None = None
        if v in retired:
            state = "removed"
            event = ["decommissioned"]
        elif state != row.state and v not in ctx.reported:
            if row.state == "available" and state == "reserved":
                event = ["reservation_start"]
                trip_list = [trips[r] for r in assigned.get(v, []) if r in trips] or None
            else:
                logger.warning("vehicle %s: %s -> %s without a reported event", device, row.state, state)
        update: dict[str, Any] = {
            "b_d": device,
            "b_plan": plan,
            "b_state": state,
            "b_eid": None,
            "b_ems": None,
            "b_ret": None,
        }
        if event is not None:
            eid = str(uuid.uuid4())
            events.append({
                "seq": ctx.service.next_event_seq(), "event_id": eid, "device_id": device, "vehicle_state": state,
                "event_types": event, "timestamp_ms": now_ms, "lon": row.lon, "lat": row.lat, "trip_ids": trip_list,
                "source": "platform", "publication_ms": now_ms,
            })  # fmt: skip
            update.update(b_eid=eid, b_ems=now_ms)
        if v in retired:
            update["b_ret"] = now_ms
        updates.append(update)
    if events:
        ctx.conn.execute(tables.vehicle_events.insert(), events)
    b = sa.bindparam
    ctx.conn.execute(
        t.update()
        .where(t.c.device_id == b("b_d"))
        .values(
            plan=b("b_plan", type_=t.c.plan.type),
            state=b("b_state"),
            updated_ms=now_ms,
            # keep the stored values where this change sets none
            last_event_id=sa.func.coalesce(b("b_eid", type_=t.c.last_event_id.type), t.c.last_event_id),
            last_event_ms=sa.func.coalesce(b("b_ems", type_=t.c.last_event_ms.type), t.c.last_event_ms),
            retired_ms=sa.func.coalesce(b("b_ret", type_=t.c.retired_ms.type), t.c.retired_ms),
        ),
        updates,
    )

"""The changes the service makes, each a function of a :class:`~.live.Ctx` run on the engine thread.

Each command checks **everything** first (ownership, ids, time order, positions; the engine then checks its own
rules), hands the engine one input, and writes only after the engine accepted it. A refused command raises a
:class:`~robotaxi.errors.ServiceError` naming the field, and nothing has changed.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from ..errors import OffNetworkError, ServiceError
from ..store import tables
from ..store.ids import uuid7_strings
from . import views
from ._bulk import insert_telemetry, one_of, update_positions
from .operators import fare_schedule
from .schemas import (
    EventBatch,
    Location,
    RideOut,
    SafetyBatch,
    TelemetryBatch,
    VehicleIn,
    VehicleOut,
)

if TYPE_CHECKING:
    from ..dispatch import Decisions
    from .live import Ctx

V = tables.vehicles
RR = tables.ride_requests
#: MDS events about a rider: they name the trip.
RIDER_EVENTS = frozenset(
    ("reservation_stop", "trip_start", "trip_stop", "trip_resume", "trip_end", "passenger_cancellation",
     "provider_cancellation", "driver_cancellation")
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class OperatorRef:
    """The operator a token speaks for."""

    id: int
    name: str
    provider_id: str


def body_digest(body: Any) -> str:
    """SHA-256 of a request body's canonical JSON (to tell a retry from a different request with the same key)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _snap(ctx: Ctx, points: list[Location], fields: list[str]) -> list[int]:
    net = ctx.service.network
    lon = np.array([p.lng for p in points], dtype=np.float64)
    lat = np.array([p.lat for p in points], dtype=np.float64)
    node, dist = net.nearest(lon, lat)
    far = np.flatnonzero(dist > ctx.service.settings.snap_limit_m)
    if far.size:
        i = int(far[0])
        raise ServiceError(
            f"{fields[i]}: lat={lat[i]:.6f}, lng={lon[i]:.6f} is {dist[i]:.0f} m from the {net.name} network "
            f"(limit {ctx.service.settings.snap_limit_m:.0f} m; the network covers lon/lat {net.bbox})",
            status=422,
            field=fields[i],
            code="off_network",
        )
    return [int(x) for x in node]


def _snap1(ctx: Ctx, p: Location, field: str) -> int:
    try:
        return _snap(ctx, [p], [field])[0]
    except OffNetworkError as e:  # pragma: no cover - _snap checks the distance itself
        raise ServiceError(str(e), status=422, field=field, code="off_network") from e


# ---------------------------------------------------------------------- vehicles
def register_vehicle(op: OperatorRef, body: VehicleIn) -> Callable[[Ctx], VehicleOut]:
    def run(ctx: Ctx) -> VehicleOut:
        from ..dispatch import VehiclesDocked

        device = str(body.device_id or uuid.uuid4())
        if ctx.conn.execute(sa.select(V.c.device_id).where(V.c.device_id == device)).first():
            raise ServiceError(
                f"device_id: vehicle {device} is already registered",
                status=409,
                field="device_id",
                code="already_registered",
            )
        clash = sa.select(V.c.device_id).where(V.c.operator_id == op.id, V.c.vehicle_id == body.vehicle_id)
        if ctx.conn.execute(clash).first():
            raise ServiceError(
                f"vehicle_id: {body.vehicle_id!r} is already registered by {op.name}",
                status=409,
                field="vehicle_id",
                code="already_registered",
            )
        node = _snap1(ctx, body.location, "location")

        def write(_: Decisions) -> None:
            ctx.conn.execute(
                V.insert().values(
                    device_id=device,
                    operator_id=op.id,
                    vehicle_id=body.vehicle_id,
                    vehicle_type=body.vehicle_type,
                    propulsion_types=list(body.propulsion_types),
                    capacity=body.capacity,
                    vehicle_attributes=(
                        body.vehicle_attributes.model_dump(exclude_none=True) if body.vehicle_attributes else None
                    ),
                    accessibility_attributes=list(body.accessibility_attributes),
                    state="non_operational",
                    registered_ms=ctx.now_ms,
                    node=node,
                    lon=body.location.lng,
                    lat=body.location.lat,
                    plan=[],
                    updated_ms=ctx.now_ms,
                )
            )

        ctx.handle(VehiclesDocked(ctx.now_s, (device,), [node], capacity=body.capacity, operator=op.id), write)
        return views.vehicle(ctx.conn, device, op.id)

    return run


def _ids(given: list[uuid.UUID | None], now_ms: int) -> list[str]:
    """The ids of a batch's rows: the client's where it chose one, else a time-ordered UUID drawn here
    (:mod:`robotaxi.store.ids`: a batch's keys then sit together in the primary-key index)."""
    drawn = iter(uuid7_strings(sum(g is None for g in given), now_ms))
    return [str(g) if g is not None else next(drawn) for g in given]


def _owned(ctx: Ctx, op: OperatorRef, devices: list[str], field: Callable[[int], str]) -> dict[str, Any]:
    """The operator's vehicles among ``devices``; another operator's vehicle is as unknown as a missing one."""
    # Only the columns the commands read (a telemetry batch asks for 1,000 vehicles: their plans are not needed),
    # by primary key alone: the operator is compared here (on PostgreSQL the planner otherwise also scans the
    # operator's whole index, every version of every row of it).
    cols = (
        V.c.device_id, V.c.operator_id, V.c.retired_ms, V.c.retire_requested_ms, V.c.battery_percent,
        V.c.last_telemetry_ms,
    )  # fmt: skip
    found = ctx.conn.execute(sa.select(*cols).where(one_of(ctx.conn, V.c.device_id, set(devices))))
    rows = {r.device_id: r for r in found if r.operator_id == op.id}
    for i, d in enumerate(devices):
        row = rows.get(d)
        if row is None:
            raise ServiceError(
                f"{field(i)}: no vehicle {d} is registered by {op.name}",
                status=404,
                field=field(i),
                code="unknown_vehicle",
            )
        if row.retired_ms is not None:
            raise ServiceError(f"{field(i)}: vehicle {d} has retired", status=409, field=field(i), code="retired")
    return rows


def retire_vehicle(op: OperatorRef, device_id: uuid.UUID) -> Callable[[Ctx], VehicleOut]:
    def run(ctx: Ctx) -> VehicleOut:
        from ..dispatch import VehiclesRetired

        device = str(device_id)
        row = _owned(ctx, op, [device], lambda _: "device_id")[device]
        if row.retire_requested_ms is not None:
            raise ServiceError(
                f"device_id: vehicle {device} is already retiring", status=409, field="device_id", code="retiring"
            )

        def write(_: Decisions) -> None:
            ctx.conn.execute(V.update().where(V.c.device_id == device).values(retire_requested_ms=ctx.now_ms))

        ctx.handle(VehiclesRetired(ctx.now_s, (device,)), write)
        return views.vehicle(ctx.conn, device, op.id)

    return run


def _check_times(
    ctx: Ctx, stamps: list[int], devices: list[str], last: dict[str, int], what: str, *, strict: bool
) -> None:
    """Refuse timestamps from the future, and per vehicle going back in time (``strict``: also repeating)."""
    limit = ctx.now_ms + ctx.service.settings.max_future_ms
    seen = dict(last)
    for i, (t, d) in enumerate(zip(stamps, devices, strict=True)):
        field = f"data[{i}].timestamp"
        if t > limit:
            raise ServiceError(
                f"{field}: {t} is {t - ctx.now_ms} ms in the future (the server's clock says {ctx.now_ms}; "
                f"tolerance {ctx.service.settings.max_future_ms} ms)",
                status=422,
                field=field,
                code="from_the_future",
            )
        before = seen.get(d)
        if before is not None and (t <= before if strict else t < before):
            raise ServiceError(
                f"{field}: {what} for vehicle {d} at {t} is {'not after' if strict else 'before'} the last one at "
                f"{before} (out of order)",
                status=409,
                field=field,
                code="out_of_order",
            )
        seen[d] = t


def _unique_ids(ids: list[str], table: sa.Table, column: str, ctx: Ctx, given: set[str] | None = None) -> None:
    """Refuse ids repeated in the batch or already stored. ``given``: the ids the client chose (those the server
    drew, random UUIDs, need no look-up); None: all of them."""
    if len(set(ids)) != len(ids):
        i = next(i for i, x in enumerate(ids) if ids.index(x) != i)
        raise ServiceError(
            f"data[{i}].{column}: {ids[i]} repeats within the batch",
            status=422,
            field=f"data[{i}].{column}",
            code="duplicate_id",
        )
    col = table.c[column]
    look = ids if given is None else [x for x in ids if x in given]
    if not look:
        return
    known = {str(x) for x in ctx.conn.execute(sa.select(col).where(one_of(ctx.conn, col, look))).scalars()}
    if known:
        i = next(i for i, x in enumerate(ids) if x in known)
        raise ServiceError(
            f"data[{i}].{column}: {ids[i]} was already received",
            status=409,
            field=f"data[{i}].{column}",
            code="already_registered",
        )


def _batch_size(ctx: Ctx, n: int) -> None:
    cap = ctx.service.settings.max_batch
    if n > cap:
        raise ServiceError(f"data: {n} rows in one batch, at most {cap}", status=422, field="data", code="too_large")


def _on_board(ctx: Ctx, devices: set[str]) -> dict[str, list[str]]:
    rows = ctx.conn.execute(
        sa.select(RR.c.device_id, RR.c.trip_id).where(
            one_of(ctx.conn, RR.c.device_id, devices), RR.c.status == "on_board"
        )
    )
    out: dict[str, list[str]] = {}
    for d, t in rows:
        out.setdefault(str(d), []).append(str(t))
    return out


def telemetry(op: OperatorRef, batch: TelemetryBatch) -> TelemetryCommand:
    return TelemetryCommand(op, batch)


@dataclass(frozen=True, slots=True)
class _CheckedTelemetry:
    devices: list[str]
    rows: dict[str, Any]
    ids: list[str]
    nodes: list[int]


@dataclass(frozen=True, slots=True, eq=False)
class TelemetryCommand:
    """A telemetry batch, in three steps: :meth:`check` (everything, before any change), :meth:`insert` (the
    points: the bulk of the batch's database work) and :meth:`apply` (the engine input, its log entry and the
    vehicles' latest positions). Called as a command it runs them in order, the insert after the engine accepted the
    input. On PostgreSQL the engine thread runs the batch in a transaction of its own and commits the ride
    requests that arrived meanwhile between the insert and the engine input (:meth:`LiveService._split`): the
    insert then comes first, and a refusal by the engine rolls the whole transaction back."""

    op: OperatorRef
    batch: TelemetryBatch

    def __call__(self, ctx: Ctx) -> int:
        checked = self.check(ctx)
        return self.apply(ctx, checked, inserted=False)

    def check(self, ctx: Ctx) -> _CheckedTelemetry:
        data = self.batch.data
        _batch_size(ctx, len(data))
        devices = [str(p.device_id) for p in data]
        rows = _owned(ctx, self.op, devices, lambda i: f"data[{i}].device_id")
        last = {d: int(r.last_telemetry_ms) for d, r in rows.items() if r.last_telemetry_ms is not None}
        _check_times(ctx, [p.timestamp for p in data], devices, last, "telemetry", strict=True)
        ids = _ids([p.telemetry_id for p in data], ctx.now_ms)
        _unique_ids(ids, tables.telemetry, "telemetry_id", ctx, {str(p.telemetry_id) for p in data if p.telemetry_id})
        nodes = _snap(ctx, [p.location for p in data], [f"data[{i}].location" for i in range(len(data))])
        return _CheckedTelemetry(devices, rows, ids, nodes)

    def insert(self, ctx: Ctx, c: _CheckedTelemetry) -> None:
        """Store every point (with the trips on board of its vehicle)."""
        aboard = _on_board(ctx, set(c.devices))
        insert_telemetry(
            ctx.conn,
            [
                {
                    "telemetry_id": tid,
                    "device_id": d,
                    "timestamp_ms": p.timestamp,
                    "lon": p.location.lng,
                    "lat": p.location.lat,
                    "battery_percent": p.battery_percent,
                    "trip_ids": aboard.get(d),
                    "received_ms": ctx.now_ms,
                }
                for tid, d, p in zip(c.ids, c.devices, self.batch.data, strict=True)
            ],
        )

    def apply(self, ctx: Ctx, c: _CheckedTelemetry, *, inserted: bool) -> int:
        """Hand the engine each vehicle's latest point and write the vehicles (and the points, unless
        ``inserted``); raises :class:`~robotaxi.errors.DispatchError`, having changed nothing, if the engine
        refuses."""
        from ..dispatch import LOCATED, VehiclesUpdated

        data = self.batch.data

        def write(_: Decisions) -> None:
            if not inserted:
                self.insert(ctx, c)
            latest: dict[str, int] = {}
            battery: dict[str, int | None] = {d: r.battery_percent for d, r in c.rows.items()}
            for i, d in enumerate(c.devices):
                latest[d] = i
                if data[i].battery_percent is not None:
                    battery[d] = data[i].battery_percent
            # One statement for the whole batch (one UPDATE per vehicle costs a round trip each).
            update_positions(
                ctx.conn,
                [
                    {
                        "device_id": d, "lon": data[i].location.lng, "lat": data[i].location.lat,
                        "node": c.nodes[i], "battery_percent": battery[d], "last_telemetry_id": c.ids[i],
                        "last_telemetry_ms": data[i].timestamp,
                    }
                    for d, i in latest.items()
                ],
                ctx.now_ms,
            )  # fmt: skip

        # The engine needs each vehicle's latest position only: one row per vehicle (its last point in the batch).
        final = {d: i for i, d in enumerate(c.devices)}
        ctx.handle(VehiclesUpdated(ctx.now_s, tuple(final), LOCATED, [c.nodes[i] for i in final.values()]), write)
        return len(data)


def vehicle_events(op: OperatorRef, batch: EventBatch) -> Callable[[Ctx], int]:
    def run(ctx: Ctx) -> int:
        from ..dispatch import VehiclesUpdated
        from ..fleet import TRANSITIONS, EventType, VehicleState

        data = batch.data
        _batch_size(ctx, len(data))
        devices = [str(p.device_id) for p in data]
        rows = _owned(ctx, op, devices, lambda i: f"data[{i}].device_id")
        ve = tables.vehicle_events
        # Order is checked against the operator's own reports (the platform's events carry the server's clock).
        last = {
            str(d): int(t)
            for d, t in ctx.conn.execute(
                sa.select(ve.c.device_id, sa.func.max(ve.c.timestamp_ms))
                .where(ve.c.device_id.in_(set(devices)), ve.c.source == "operator")
                .group_by(ve.c.device_id)
            )
        }
        _check_times(ctx, [p.timestamp for p in data], devices, last, "an event", strict=False)
        ids = _ids([p.event_id for p in data], ctx.now_ms)
        _unique_ids(ids, tables.vehicle_events, "event_id", ctx)
        trips = {str(p.trip_id) for p in data if p.trip_id is not None}
        rides = {r.trip_id: r for r in ctx.conn.execute(sa.select(RR).where(RR.c.trip_id.in_(trips)))} if trips else {}
        request_ids: list[int] = []
        for i, p in enumerate(data):
            if p.event_type in RIDER_EVENTS:
                if p.trip_id is None:
                    raise ServiceError(
                        f"data[{i}].trip_id: {p.event_type} needs the trip it is about",
                        status=422,
                        field=f"data[{i}].trip_id",
                        code="missing_param",
                    )
                ride = rides.get(str(p.trip_id))
                if ride is None or ride.device_id != devices[i]:
                    raise ServiceError(
                        f"data[{i}].trip_id: trip {p.trip_id} is not assigned to vehicle {devices[i]}",
                        status=409,
                        field=f"data[{i}].trip_id",
                        code="not_assigned",
                    )
                request_ids.append(int(ride.request_id))
            else:
                request_ids.append(-1)
        nodes = _snap(ctx, [p.location for p in data], [f"data[{i}].location" for i in range(len(data))])
        engine = ctx.engine
        index = {d: engine.vehicle_index(d) for d in set(devices)}
        state = {d: VehicleState(int(engine.vehicle_state[v])) for d, v in index.items()}
        codes = [int(EventType[p.event_type.upper()]) for p in data]

        def write(_: Decisions) -> None:
            final = {d: VehicleState(int(engine.vehicle_state[v])) for d, v in index.items()}
            last_row = {d: i for i, d in enumerate(devices)}
            for i, p in enumerate(data):
                d = devices[i]
                ev = EventType(codes[i])
                s = final[d] if last_row[d] == i else TRANSITIONS.get((state[d], ev), final[d])
                state[d] = s
                ctx.conn.execute(
                    tables.vehicle_events.insert().values(
                        seq=ctx.service.next_event_seq(),
                        event_id=ids[i],
                        device_id=d,
                        vehicle_state=s.mds,
                        event_types=[p.event_type],
                        timestamp_ms=p.timestamp,
                        lon=p.location.lng,
                        lat=p.location.lat,
                        battery_percent=p.battery_percent,
                        trip_ids=[str(p.trip_id)] if p.trip_id else None,
                        source="operator",
                        publication_ms=ctx.now_ms,
                    )
                )
                _ride_effect(ctx, p.event_type, request_ids[i], p.timestamp, p.location, op)
            for d, i in last_row.items():
                p = data[i]
                battery = p.battery_percent if p.battery_percent is not None else rows[d].battery_percent
                ctx.conn.execute(
                    V.update()
                    .where(V.c.device_id == d)
                    .values(
                        state=final[d].mds,
                        last_event_id=ids[i],
                        last_event_ms=p.timestamp,
                        lon=p.location.lng,
                        lat=p.location.lat,
                        node=nodes[i],
                        battery_percent=battery,
                        updated_ms=ctx.now_ms,
                    )
                )

        ctx.reported.update(index.values())
        ctx.touched.update(index.values())
        ctx.handle(VehiclesUpdated(ctx.now_s, tuple(devices), codes, nodes, request_ids), write)
        if any(p.event_type == "service_start" for p in data):  # back in service while its operator is closed?
            ctx.service.hours.reconcile(ctx)
        return len(data)

    return run


def _ride_effect(ctx: Ctx, event: str, request_id: int, t_ms: int, where: Location, op: OperatorRef) -> None:
    now = ctx.now_ms
    if event == "trip_start":
        ctx.conn.execute(
            RR.update()
            .where(RR.c.request_id == request_id)
            .values(status="on_board", pickup_ms=t_ms, pickup_lon=where.lng, pickup_lat=where.lat, updated_ms=now)
        )
    elif event in ("trip_end", "trip_resume"):
        ride = ctx.conn.execute(sa.select(RR).where(RR.c.request_id == request_id)).one()
        if ride.status != "on_board":  # trip_resume for another rider's stop
            return
        ctx.conn.execute(
            RR.update()
            .where(RR.c.request_id == request_id)
            .values(status="completed", dropoff_ms=t_ms, closed_ms=t_ms, updated_ms=now)
        )
        _complete_trip(ctx, ride, t_ms, where, op)
    elif event == "passenger_cancellation":
        ctx.conn.execute(
            RR.update()
            .where(RR.c.request_id == request_id)
            .values(status="cancelled", reason="rider_cancelled", closed_ms=now, updated_ms=now)
        )


def _complete_trip(ctx: Ctx, ride: Any, end_ms: int, where: Location, op: OperatorRef) -> None:
    ctx.ledger_pending = True
    start_ms = int(ride.pickup_ms)
    duration_s = max(0, round((end_ms - start_ms) / 1000))
    # Vehicles drive the router's routes (their plans come from it), so the ride's distance is the route's.
    distance_m = int(ctx.service.router.distance1(int(ride.o_node), int(ride.d_node)))
    fares = fare_schedule(ctx.conn, op.id, ctx.service.settings.fares)
    fare = int(fares.fare_cents([distance_m], [duration_s])[0]) if fares is not None else None
    ctx.conn.execute(
        tables.trips.insert().values(
            trip_id=ride.trip_id,
            request_id=ride.request_id,
            device_id=ride.device_id,
            operator_id=op.id,
            start_ms=start_ms,
            end_ms=end_ms,
            start_lon=ride.pickup_lon,
            start_lat=ride.pickup_lat,
            end_lon=where.lng,
            end_lat=where.lat,
            duration_s=duration_s,
            distance_m=distance_m,
            passengers=ride.passengers,
            fare_cents=fare,
            currency=ctx.service.settings.currency if fares else None,
            requested_ms=ride.requested_ms,
            quoted_pickup_ms=ride.quoted_pickup_ms or ride.requested_ms,
            dispatch_ms=ride.assigned_ms or ride.requested_ms,
            publication_ms=ctx.now_ms,
        )
    )


# ---------------------------------------------------------------------- rides
def cancel_ride(rider: str, ride_id: int) -> Callable[[Ctx], RideOut]:
    def run(ctx: Ctx) -> RideOut:
        from ..dispatch import RequestsCancelled
        from ..fleet import VehicleState

        ride = ctx.conn.execute(sa.select(RR).where(RR.c.request_id == ride_id, RR.c.rider == rider)).first()
        if ride is None:
            raise ServiceError(f"ride_id: you have no ride {ride_id}", status=404, field="ride_id", code="unknown_ride")
        if ride.status not in ("open", "assigned"):
            raise ServiceError(
                f"ride {ride_id} is {ride.status}: only open or assigned rides can be cancelled",
                status=409,
                field="ride_id",
                code="not_cancellable",
            )
        engine = ctx.engine
        v = engine.vehicle_index(ride.device_id) if ride.device_id else -1

        def write(_: Decisions) -> None:
            ctx.conn.execute(
                RR.update()
                .where(RR.c.request_id == ride_id)
                .values(status="cancelled", reason="rider_cancelled", closed_ms=ctx.now_ms, updated_ms=ctx.now_ms)
            )
            if v >= 0 and VehicleState(int(engine.vehicle_state[v])) is VehicleState.AVAILABLE:
                row = ctx.conn.execute(sa.select(V.c.lon, V.c.lat).where(V.c.device_id == ride.device_id)).one()
                eid = str(uuid.uuid4())
                ctx.conn.execute(
                    tables.vehicle_events.insert().values(
                        seq=ctx.service.next_event_seq(),
                        event_id=eid,
                        device_id=ride.device_id,
                        vehicle_state="available",
                        event_types=["passenger_cancellation"],
                        timestamp_ms=ctx.now_ms,
                        lon=row.lon,
                        lat=row.lat,
                        trip_ids=[ride.trip_id],
                        source="platform",
                        publication_ms=ctx.now_ms,
                    )
                )
                ctx.conn.execute(
                    V.update()
                    .where(V.c.device_id == ride.device_id)
                    .values(last_event_id=eid, last_event_ms=ctx.now_ms)
                )

        if v >= 0:
            ctx.reported.add(v)
            ctx.touched.add(v)
        ctx.handle(RequestsCancelled(ctx.now_s, [ride_id]), write)
        return views.ride(ctx.conn, ride_id, rider)

    return run


# ---------------------------------------------------------------------- safety
def safety_events(op: OperatorRef, batch: SafetyBatch) -> Callable[[Ctx], int]:
    """Disengagements and collisions: stored, then appended to the ledger (after the commit)."""

    def run(ctx: Ctx) -> int:
        data = batch.data
        _batch_size(ctx, len(data))
        devices = [str(p.device_id) for p in data]
        _owned(ctx, op, devices, lambda i: f"data[{i}].device_id")
        limit = ctx.now_ms + ctx.service.settings.max_future_ms
        for i, p in enumerate(data):
            if p.event_type == "disengagement" and p.initiated_by == "none":
                raise ServiceError(
                    f"data[{i}].initiated_by: a disengagement is initiated by someone (ads, safety_driver, "
                    "remote_operator or passenger)",
                    status=422,
                    field=f"data[{i}].initiated_by",
                    code="bad_param",
                )
            if p.timestamp > limit:
                raise ServiceError(
                    f"data[{i}].timestamp: {p.timestamp} is in the future",
                    status=422,
                    field=f"data[{i}].timestamp",
                    code="from_the_future",
                )
        ids = [str(p.event_id or uuid.uuid4()) for p in data]
        _unique_ids(ids, tables.safety_events, "event_id", ctx)
        trips = {str(p.trip_id) for p in data if p.trip_id is not None}
        owner = dict(ctx.conn.execute(sa.select(RR.c.trip_id, RR.c.device_id).where(RR.c.trip_id.in_(trips))).all())
        for i, p in enumerate(data):
            if p.trip_id is not None and owner.get(str(p.trip_id)) != devices[i]:
                raise ServiceError(
                    f"data[{i}].trip_id: trip {p.trip_id} was not served by vehicle {devices[i]}",
                    status=409,
                    field=f"data[{i}].trip_id",
                    code="not_assigned",
                )
        ctx.conn.execute(
            tables.safety_events.insert(),
            [
                {
                    "event_id": eid,
                    "device_id": d,
                    "event_type": p.event_type,
                    "timestamp_ms": p.timestamp,
                    "lon": p.location.lng,
                    "lat": p.location.lat,
                    "initiated_by": p.initiated_by,
                    "driver_present": p.driver_present,
                    "location_type": p.location_type,
                    "description": p.description,
                    "trip_id": str(p.trip_id) if p.trip_id else None,
                    "injuries": p.injuries,
                    "received_ms": ctx.now_ms,
                }
                for eid, d, p in zip(ids, devices, data, strict=True)
            ],
        )
        ctx.ledger_pending = True
        return len(data)

    return run

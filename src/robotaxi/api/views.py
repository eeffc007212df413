"""Reading the service's state from the database (never from the engine) into response bodies."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..errors import ServiceError
from ..store import tables
from .schemas import Location, Quote, RideOut, StopOut, VehicleBrief, VehicleOut

V = tables.vehicles
RR = tables.ride_requests
OP = tables.operators


def _rides_query() -> sa.Select[Any]:
    return sa.select(
        RR,
        OP.c.name.label("operator_name"),
        V.c.vehicle_id.label("v_vehicle_id"),
        V.c.state.label("v_state"),
        V.c.lon.label("v_lon"),
        V.c.lat.label("v_lat"),
    ).select_from(RR.outerjoin(OP, RR.c.operator_id == OP.c.id).outerjoin(V, RR.c.device_id == V.c.device_id))


def ride(conn: sa.Connection, ride_id: int, rider: str) -> RideOut:
    """A rider's ride; 404 when it is not theirs."""
    r = conn.execute(_rides_query().where(RR.c.request_id == ride_id, RR.c.rider == rider)).first()
    if r is None:
        raise ServiceError(f"ride_id: you have no ride {ride_id}", status=404, field="ride_id", code="unknown_ride")
    return _ride_out(r)


def rides(conn: sa.Connection, ride_ids: list[int]) -> dict[int, RideOut]:
    """Rides by id, in one query (for the engine thread, which knows whose they are)."""
    if not ride_ids:
        return {}
    return {int(r.request_id): _ride_out(r) for r in conn.execute(_rides_query().where(RR.c.request_id.in_(ride_ids)))}


def _ride_out(r: Any) -> RideOut:
    vehicle = None
    if r.device_id is not None and r.status in ("assigned", "on_board"):
        vehicle = VehicleBrief(
            device_id=r.device_id,
            vehicle_id=r.v_vehicle_id,
            state=r.v_state,
            location=Location(lat=r.v_lat, lng=r.v_lon),
        )
    return RideOut(
        ride_id=r.request_id,
        trip_id=r.trip_id,
        status=r.status,
        reason=r.reason,
        origin=Location(lat=r.origin_lat, lng=r.origin_lon),
        destination=Location(lat=r.destination_lat, lng=r.destination_lon),
        passengers=r.passengers,
        operator=r.operator_name,
        requested_ms=r.requested_ms,
        quote=Quote(
            direct_duration_s=r.direct_s,
            direct_distance_m=r.direct_m,
            fare_cents=r.fare_cents,
            currency=r.currency,
            pickup_eta_ms=r.quoted_pickup_ms,
        ),
        vehicle=vehicle,
        pickup_ms=r.pickup_ms,
        dropoff_ms=r.dropoff_ms,
    )


def _vehicle_out(r: Any) -> VehicleOut:
    return VehicleOut(
        device_id=r.device_id,
        provider_id=r.provider_id,
        vehicle_id=r.vehicle_id,
        vehicle_type=r.vehicle_type,
        propulsion_types=list(r.propulsion_types),
        capacity=r.capacity,
        state=r.state,
        location=Location(lat=r.lat, lng=r.lon),
        battery_percent=r.battery_percent,
        registered_ms=r.registered_ms,
        retire_requested_ms=r.retire_requested_ms,
        retired_ms=r.retired_ms,
        last_event_ms=r.last_event_ms,
        last_telemetry_ms=r.last_telemetry_ms,
        plan=[StopOut.model_validate(s) for s in r.plan],
    )


def _vehicles_query() -> sa.Select[Any]:
    return sa.select(V, OP.c.provider_id).select_from(V.join(OP, V.c.operator_id == OP.c.id))


def vehicle(conn: sa.Connection, device_id: str, operator_id: int) -> VehicleOut:
    """One of an operator's vehicles; 404 for any other (another operator's vehicle is as unknown as none)."""
    r = conn.execute(_vehicles_query().where(V.c.device_id == device_id, V.c.operator_id == operator_id)).first()
    if r is None:
        raise ServiceError(
            f"device_id: no vehicle {device_id} is registered by this operator",
            status=404,
            field="device_id",
            code="unknown_vehicle",
        )
    return _vehicle_out(r)


def vehicles(conn: sa.Connection, operator_id: int) -> list[VehicleOut]:
    rows = conn.execute(
        _vehicles_query().where(V.c.operator_id == operator_id).order_by(V.c.registered_ms, V.c.device_id)
    )
    return [_vehicle_out(r) for r in rows]

"""Operator routes (fleet docking): vehicles, telemetry, MDS vehicle events, trips. An operator sees and changes
only its own vehicles: another operator's vehicle answers 404, exactly like one that does not exist."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, status

from . import commands, views
from .deps import Conn, Operator, Service
from .schemas import BatchResult, EventBatch, SafetyBatch, TelemetryBatch, VehicleIn, VehicleOut

router = APIRouter(prefix="/v1/operator", tags=["operators"])
DeviceId = Annotated[uuid.UUID, Path(description="MDS device_id")]


@router.post(
    "/vehicles",
    response_model=VehicleOut,
    status_code=status.HTTP_201_CREATED,
    summary="Register (dock) a vehicle; it starts non_operational: report service_start",
)
async def register_vehicle(body: VehicleIn, service: Service, op: Operator) -> VehicleOut:
    return await service.run(commands.register_vehicle(op, body))


@router.get("/vehicles", response_model=list[VehicleOut], summary="My vehicles, with their stop plans")
def list_vehicles(conn: Conn, op: Operator) -> list[VehicleOut]:
    return views.vehicles(conn, op.id)


@router.get("/vehicles/{device_id}", response_model=VehicleOut, summary="One of my vehicles and its stop plan")
def get_vehicle(device_id: DeviceId, conn: Conn, op: Operator) -> VehicleOut:
    return views.vehicle(conn, str(device_id), op.id)


@router.post(
    "/vehicles/{device_id}/retire",
    response_model=VehicleOut,
    summary="Retire a vehicle: no new work; removed once its plan is empty",
)
async def retire_vehicle(device_id: DeviceId, service: Service, op: Operator) -> VehicleOut:
    return await service.run(commands.retire_vehicle(op, device_id))


@router.post(
    "/telemetry",
    response_model=BatchResult,
    summary="Telemetry batch (all rows or none): positions in time order, none from the future",
)
async def post_telemetry(body: TelemetryBatch, service: Service, op: Operator) -> BatchResult:
    n = await service.run(commands.telemetry(op, body))
    return BatchResult(success=n, total=n)


@router.post(
    "/events",
    response_model=BatchResult,
    summary="MDS vehicle events (all rows or none): service_start, reservation_stop, trip_start, trip_end...",
)
async def post_events(body: EventBatch, service: Service, op: Operator) -> BatchResult:
    n = await service.run(commands.vehicle_events(op, body))
    return BatchResult(success=n, total=n)


@router.post(
    "/safety-events",
    response_model=BatchResult,
    summary="Disengagements and collisions (all rows or none); each is appended to the ledger",
)
async def post_safety_events(body: SafetyBatch, service: Service, op: Operator) -> BatchResult:
    n = await service.run(commands.safety_events(op, body))
    return BatchResult(success=n, total=n)

"""Rider routes: request a ride (idempotent), follow it, cancel it."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Header, Path, Response, status

from ..store import tables
from . import commands, rides, views
from .deps import Conn, Rider, Service
from .schemas import RideOut, RideRequestIn

router = APIRouter(prefix="/v1/rides", tags=["riders"])
RideId = Annotated[int, Path(ge=1, le=2**62, description="the ride's id")]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="unique per ride for this rider: a retry with the same key and body returns the same ride",
    ),
]


@router.post(
    "",
    response_model=RideOut,
    status_code=status.HTTP_201_CREATED,
    summary="Request a ride",
    responses={200: {"model": RideOut, "description": "A retry: the ride this key already booked"}},
)
async def request_ride(
    body: RideRequestIn, key: IdempotencyKey, response: Response, service: Service, who: Rider
) -> RideOut:
    """Stored (with the dispatch decision: assigned, open, or rejected with a reason) before it is answered."""
    ride, created = await service.run(rides.request_ride(who.subject, key, body))
    if not created:
        response.status_code = status.HTTP_200_OK
    return ride


@router.get("", response_model=list[RideOut], summary="My rides, newest first")
def list_rides(conn: Conn, who: Rider) -> list[RideOut]:
    rr = tables.ride_requests
    ids = conn.execute(
        sa.select(rr.c.request_id).where(rr.c.rider == who.subject).order_by(rr.c.request_id.desc()).limit(100)
    ).scalars()
    return [views.ride(conn, int(i), who.subject) for i in ids]


@router.get("/{ride_id}", response_model=RideOut, summary="Follow a ride (state, vehicle position, ETA)")
def get_ride(ride_id: RideId, conn: Conn, who: Rider) -> RideOut:
    return views.ride(conn, ride_id, who.subject)


@router.post("/{ride_id}/cancel", response_model=RideOut, summary="Cancel a ride that has not started")
async def cancel_ride(ride_id: RideId, service: Service, who: Rider) -> RideOut:
    return await service.run(commands.cancel_ride(who.subject, ride_id))

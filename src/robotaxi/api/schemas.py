"""Request and response bodies of the platform's own endpoints (pydantic; field names follow MDS where MDS has
one: ``device_id``, ``provider_id``, ``trip_id``, ``location`` as ``{lat, lng}``, timestamps in epoch ms)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

#: MDS timestamps start at 2018-01-01 (``data-types/timestamp.yaml``: minimum 1514764800000).
MDS_MIN_TIMESTAMP_MS = 1_514_764_800_000
Text255 = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f]*$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
Subject = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]*$")]
TimestampMs = Annotated[int, Field(ge=MDS_MIN_TIMESTAMP_MS, le=10**14, description="epoch milliseconds")]

#: The MDS 2.0 passenger-services event types (``models/modes/passenger-services/event.yaml``).
EventTypeName = Literal[
    "service_start", "service_end", "reservation_start", "reservation_stop", "trip_start", "trip_stop",
    "trip_resume", "trip_end", "passenger_cancellation", "provider_cancellation", "driver_cancellation",
    "maintenance", "maintenance_end", "decommissioned", "maintenance_pick_up", "recommissioned",
    "trip_leave_jurisdiction", "trip_enter_jurisdiction", "comms_lost", "comms_restored",
]  # fmt: skip
PropulsionType = Literal[
    "human", "electric_assist", "electric", "combustion", "combustion_diesel", "hybrid", "hydrogen_fuel_cell",
    "plug_in_hybrid",
]  # fmt: skip
VehicleType = Literal["car", "bus", "truck", "motorcycle", "moped", "other"]
RideStatus = Literal["open", "assigned", "on_board", "completed", "rejected", "expired", "cancelled"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Location(Strict):
    """A WGS84 position (MDS ``gps``)."""

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lng: float = Field(ge=-180, le=180, allow_inf_nan=False)


# ---------------------------------------------------------------------- auth
class TokenRequest(Strict):
    api_key: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    role: str
    provider_id: str | None = None


# ---------------------------------------------------------------------- admin
OfferTimeout = Annotated[int, Field(ge=5, le=600, description="seconds an operator has to answer an offer")]
Permit = Annotated[
    str,
    StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]*$"),
    Field(description="California DMV permit number (the DMV reports need it)"),
]


FARES_DOC = (
    "the operator's fare schedule, integer cents: base_cents, per_km_cents, per_minute_cents, minimum_cents "
    "(and pooled_discount); its quotes and trips use it instead of the platform's"
)


HOURS_DOC = (
    'daily operating hours "HH:MM-HH:MM" in the platform\'s time zone (robotaxi serve --timezone); the end may be '
    'before the start: the window crosses midnight ("22:00-06:00"); "00:00-24:00": all day. Outside them the '
    "operator's vehicles take no new rides (they finish the riders they have)"
)
HoursText = Annotated[str, StringConstraints(min_length=1, max_length=16), Field(description=HOURS_DOC)]


class HoursIn(Strict):
    hours: HoursText
    timezone: str | None = Field(
        None,
        max_length=64,
        description="optional: the IANA time zone the hours are meant in; must be the platform's (refused otherwise)",
    )


class OperatorIn(Strict):
    name: Name
    provider_id: uuid.UUID | None = Field(None, description="MDS provider UUID; a new one when absent")
    offers: bool = Field(False, description="offer each trip to the operator, who accepts or declines it")
    offer_timeout_s: OfferTimeout = 30
    dmv_permit: Permit | None = None
    area: dict[str, Any] | None = Field(
        None, description="service area: GeoJSON FeatureCollection, Feature, Polygon or MultiPolygon (WGS84)"
    )
    fares: dict[str, Any] | None = Field(None, description=FARES_DOC)
    hours: HoursText | None = None


class OperatorPatch(Strict):
    offers: bool | None = None
    offer_timeout_s: OfferTimeout | None = None
    dmv_permit: Permit | None = None
    fares: dict[str, Any] | None = Field(None, description=FARES_DOC)
    hours: HoursText | None = None


class OperatorOut(BaseModel):
    name: str
    provider_id: str
    created_ms: int
    offers: bool
    offer_timeout_s: int
    dmv_permit: str | None
    area: dict[str, Any] | None = Field(description="the service area (GeoJSON); null: everywhere")
    fares: dict[str, Any] | None = Field(description="the operator's fare schedule; null: the platform's")
    hours: str | None = Field(
        None, description='daily operating hours "HH:MM-HH:MM" in the platform\'s time zone; null: all day'
    )


class CredentialIn(Strict):
    role: Literal["rider", "operator", "regulator", "admin"]
    subject: Subject = Field(description="who the key is for (the rider's id, the agency's name...)")
    operator: Name | None = Field(None, description="the operator an operator key acts for (required for it)")


class CredentialOut(BaseModel):
    key_id: str
    api_key: str | None = Field(None, description="the key itself: shown once, at creation")
    role: str
    subject: str
    operator: str | None
    created_ms: int
    revoked_ms: int | None


# ---------------------------------------------------------------------- riders
class RideRequestIn(Strict):
    origin: Location
    destination: Location
    passengers: int = Field(1, ge=1, le=8)
    operator: Name | None = Field(None, description="only this operator's vehicles (by name); any when absent")


class Quote(BaseModel):
    direct_duration_s: int
    direct_distance_m: int
    fare_cents: int | None = Field(description="the fare for the direct route (null: the platform sets no fares)")
    currency: str | None
    pickup_eta_ms: int | None = Field(description="when the vehicle should reach the pickup (once assigned)")


class VehicleBrief(BaseModel):
    device_id: str
    vehicle_id: str
    state: str
    location: Location


class RideOut(BaseModel):
    ride_id: int
    trip_id: str
    status: RideStatus
    reason: str | None
    origin: Location
    destination: Location
    passengers: int
    operator: str | None
    requested_ms: int
    quote: Quote
    vehicle: VehicleBrief | None
    pickup_ms: int | None
    dropoff_ms: int | None


# ---------------------------------------------------------------------- operators
class VehicleAttributes(Strict):
    """MDS passenger-services ``vehicle_attributes``."""

    year: int | None = Field(None, ge=1900, le=2100)
    make: Text255 | None = None
    model: Text255 | None = None
    color: Text255 | None = None
    vin: Text255 | None = None
    placard_number: Text255 | None = None
    license_plate: Text255 | None = None
    inspection_date: Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None


def _electric() -> list[PropulsionType]:
    return ["electric"]


class VehicleIn(Strict):
    device_id: uuid.UUID | None = Field(None, description="MDS device_id; a new UUID when absent")
    vehicle_id: Text255 = Field(description="the identifier visible on the vehicle (plate, fleet number)")
    vehicle_type: VehicleType = "car"
    propulsion_types: list[PropulsionType] = Field(default_factory=_electric, min_length=1, max_length=8)
    capacity: int = Field(4, ge=1, le=20, description="passenger seats")
    location: Location
    vehicle_attributes: VehicleAttributes | None = None
    accessibility_attributes: list[Literal["wheelchair_accessible"]] = Field(default_factory=list, max_length=1)


class StopOut(BaseModel):
    kind: Literal["pickup", "dropoff", "reposition"]
    trip_id: str | None
    location: Location


class VehicleOut(BaseModel):
    device_id: str
    provider_id: str
    vehicle_id: str
    vehicle_type: str
    propulsion_types: list[str]
    capacity: int
    state: str
    location: Location
    battery_percent: int | None
    registered_ms: int
    retire_requested_ms: int | None
    retired_ms: int | None
    last_event_ms: int | None
    last_telemetry_ms: int | None
    plan: list[StopOut]


class TelemetryPoint(Strict):
    device_id: uuid.UUID
    timestamp: TimestampMs
    location: Location
    battery_percent: int | None = Field(None, ge=0, le=100)
    telemetry_id: uuid.UUID | None = None


class TelemetryBatch(Strict):
    data: list[TelemetryPoint] = Field(min_length=1)


class EventPoint(Strict):
    device_id: uuid.UUID
    event_type: EventTypeName
    timestamp: TimestampMs
    location: Location
    trip_id: uuid.UUID | None = Field(None, description="the trip a rider event is about (required for those)")
    battery_percent: int | None = Field(None, ge=0, le=100)
    event_id: uuid.UUID | None = None


class EventBatch(Strict):
    data: list[EventPoint] = Field(min_length=1)


class BatchResult(BaseModel):
    """MDS ``bulk`` response shape: every row was written (a batch is all or nothing)."""

    success: int
    total: int


class ErrorBody(BaseModel):
    error: str
    error_description: str
    error_details: list[str]


class SafetyEventIn(Strict):
    """A disengagement or collision (the California DMV report's fields, as the ledger records them)."""

    event_id: uuid.UUID | None = None
    device_id: uuid.UUID
    event_type: Literal["disengagement", "collision"]
    timestamp: TimestampMs
    location: Location
    initiated_by: Literal["ads", "safety_driver", "remote_operator", "passenger", "none"]
    driver_present: bool
    location_type: Literal["interstate", "freeway", "highway", "rural_road", "street", "parking_facility"]
    description: Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=r"^[^\x00]*$")]
    trip_id: uuid.UUID | None = None
    injuries: int = Field(0, ge=0, le=1000)


class SafetyBatch(Strict):
    data: list[SafetyEventIn] = Field(min_length=1)


class CheckpointBrief(BaseModel):
    size: int
    root: str = Field(description="base64 of the RFC 9162 root hash")
    note: str = Field(description="the C2SP signed note")
    signed_ms: int


class CheckpointList(BaseModel):
    data: list[CheckpointBrief]
    verifier_key: str


class CheckpointOut(BaseModel):
    origin: str
    size: int
    root: str = Field(description="base64 of the RFC 9162 root hash")
    note: str = Field(description="the C2SP signed note (verify with the verifier key)")
    verifier_key: str


# ---------------------------------------------------------------------- offers
OfferStatus = Literal["pending", "accepted", "declined", "lapsed", "withdrawn"]


class OfferOut(BaseModel):
    """A trip offered to an operator's vehicle: accept or decline it by ``expires_ms``."""

    offer_id: str
    status: OfferStatus
    trip_id: str
    device_id: str
    origin: Location
    destination: Location
    passengers: int
    offered_ms: int
    expires_ms: int = Field(description="the last moment to answer (epoch ms); later answers are refused")
    pickup_eta_ms: int = Field(description="when the vehicle would reach the pickup if it accepted at once")
    closed_ms: int | None


class OfferList(BaseModel):
    data: list[OfferOut]

"""The MDS 2.0 Provider API for passenger services (``reference/provider.yaml`` of the Open Mobility Foundation's
mds-openapi, v2.0), served under ``/mds``.

* **Version negotiation** (MDS "Versioning"): a client asks ``Accept: application/vnd.mds+json;version=2.0``; a
  request without an MDS media type (no ``Accept``, ``*/*``, ``application/json``) gets 2.0 too; asking only for
  other versions gets ``406``. Every JSON response says ``Content-Type: application/vnd.mds+json;version=2.0`` and
  carries ``"version": "2.0.0"``.
* **Errors** are MDS error bodies (``models/response/error.yaml``): ``{"error", "error_description",
  "error_details"}``; a bad or missing query parameter is ``400`` with ``bad_param`` / ``missing_param`` (plus
  ``item``, as ``error_bad_param.yaml`` requires).
* **Hours** (``/trips``, ``/events/historical``, ``/telemetry``) are UTC ``YYYY-MM-DDTHH``. An hour that has not
  ended, or that ended before the platform had any operator, is ``404`` (provider.yaml: "Hour is not in the past,
  or no operations during this hour"); the platform commits everything it acknowledges, so it never answers
  ``202`` (not yet processed). ``/telemetry`` (which has no 404 in the spec) answers such hours with an empty list.
* **Scope**: regulators and admins read every provider; an operator token reads its own ``provider_id`` only.
"""

from __future__ import annotations

import calendar
import csv
import io
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from ..errors import ServiceError
from ..store import tables
from .auth import Principal, Role
from .deps import Conn, MdsReader, Service

MEDIA_TYPE = "application/vnd.mds+json"
VERSION = "2.0"
CONTENT_TYPE = f"{MEDIA_TYPE};version={VERSION}"
#: MDS response bodies carry the full version (``data-types/version.yaml``: ``2.x.y``).
BODY_VERSION = "2.0.0"
#: ``/events/recent`` serves at most two weeks back (provider.yaml).
RECENT_WINDOW_MS = 14 * 24 * 3600 * 1000
_HOUR = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2})$")
_REPORT = re.compile(r"^(\d{4})-(\d{2})\.csv$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
REPORT_HEADER = (
    "provider_id", "start_date", "duration", "special_group_type", "geography_id", "vehicle_type", "trip_count",
    "rider_count",
)  # fmt: skip

V = tables.vehicles
OP = tables.operators
VE = tables.vehicle_events
TM = tables.telemetry
TR = tables.trips
RR = tables.ride_requests


def is_mds(request: Request) -> bool:
    return request.url.path.startswith("/mds/")


def _body(code: str, description: str, details: list[str], item: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"error": code, "error_description": description, "error_details": details or [description]}
    if item is not None:
        out["item"] = item
    return out


def error_response(exc: ServiceError) -> JSONResponse:
    status = 400 if exc.status == 422 else exc.status
    code = exc.code if status != 400 else ("missing_param" if exc.code == "missing_param" else "bad_param")
    return JSONResponse(
        _body(code, str(exc), [exc.field] if exc.field else [], exc.field if status == 400 else None),
        status_code=status,
        media_type=CONTENT_TYPE if status != 401 else "application/json",
        headers={"WWW-Authenticate": "Bearer"} if status == 401 else None,
    )


def bad_param(fields: list[str], text: str) -> JSONResponse:
    return JSONResponse(
        _body("bad_param", text, fields, fields[0] if fields else None), status_code=400, media_type=CONTENT_TYPE
    )


def negotiate(request: Request) -> None:
    """Refuse (406) a request whose Accept header asks only for MDS versions other than 2.0."""
    accept = request.headers.get("accept", "")
    asked: list[str] = []
    other = False
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if media.lower() != MEDIA_TYPE:
            other = other or media in ("*/*", "application/*", "application/json", "")
            continue
        version = next((p.split("=", 1)[1].strip('" ') for p in params if p.lower().startswith("version=")), None)
        if version is None or version == VERSION or version.startswith(VERSION + "."):
            return
        asked.append(version)
    if asked and not other:
        raise ServiceError(
            f"Accept: MDS version {', '.join(asked)} is not supported; this server speaks {VERSION}",
            status=406,
            field="Accept",
            code="unsupported_version",
        )


def _scope(who: Principal) -> int | None:
    """The operator an operator token is limited to (None: every provider)."""
    return who.operator_id if who.role is Role.OPERATOR else None


def _ok(payload: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"version": BODY_VERSION, **payload}, media_type=CONTENT_TYPE)


def _now_ms(service: Any) -> int:
    return int(service.clock() * 1000)


def _hour(value: str | None, name: str) -> tuple[int, int]:
    if value is None:
        raise ServiceError(
            f"{name}: required (UTC hour as YYYY-MM-DDTHH)", status=400, field=name, code="missing_param"
        )
    m = _HOUR.match(value)
    try:
        if m is None:
            raise ValueError(value)
        start = datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), tzinfo=UTC)
    except ValueError as e:
        raise ServiceError(
            f"{name}: {value!r} is not a UTC hour YYYY-MM-DDTHH", status=400, field=name, code="bad_param"
        ) from e
    ms = int(start.timestamp()) * 1000
    return ms, ms + 3_600_000


def _operations_started(conn: sa.Connection) -> int | None:
    first = conn.execute(sa.select(sa.func.min(OP.c.created_ms))).scalar_one()
    return None if first is None else int(first)


def _past_hour(conn: sa.Connection, service: Any, lo: int, hi: int) -> None:
    if hi > _now_ms(service):
        raise ServiceError("the hour is not in the past", status=404, code="not_found")
    first = _operations_started(conn)
    if first is None or hi <= first:
        raise ServiceError("no operations during this hour", status=404, code="not_found")


def _loc(lon: float, lat: float) -> dict[str, float]:
    return {"lat": lat, "lng": lon}


# ---------------------------------------------------------------------- serialisers
def vehicle_json(r: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "device_id": r.device_id,
        "provider_id": r.provider_id,
        "vehicle_id": r.vehicle_id,
        "vehicle_type": r.vehicle_type,
        "propulsion_types": list(r.propulsion_types),
        "accessibility_attributes": list(r.accessibility_attributes or []),
    }
    if r.vehicle_attributes:
        out["vehicle_attributes"] = dict(r.vehicle_attributes)
    return out


def event_json(r: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "device_id": r.device_id,
        "provider_id": r.provider_id,
        "event_id": r.event_id,
        "vehicle_state": r.vehicle_state,
        "event_types": list(r.event_types),
        "timestamp": r.timestamp_ms,
        "publication_time": r.publication_ms,
        "location": _loc(r.lon, r.lat),
    }
    if r.trip_ids:
        out["trip_ids"] = list(r.trip_ids)
    if r.battery_percent is not None:
        out["battery_percent"] = r.battery_percent
    return out


def telemetry_json(r: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "device_id": r.device_id,
        "provider_id": r.provider_id,
        "telemetry_id": r.telemetry_id,
        "timestamp": r.timestamp_ms,
        "trip_ids": list(r.trip_ids) if r.trip_ids else None,
        "journey_id": None,
        "location": _loc(r.lon, r.lat),
    }
    if r.battery_percent is not None:
        out["battery_percent"] = r.battery_percent
    return out


def trip_json(r: Any, shared: bool) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "hail_type": "app",
        "app_name": "robotaxi",
        "passenger_count": r.passengers,
        "requested_time": r.requested_ms,
        "requested_trip_start_location": _loc(r.origin_lon, r.origin_lat),
        "quoted_trip_start_time": r.quoted_pickup_ms,
        "dispatch_time": r.dispatch_ms,
    }
    out: dict[str, Any] = {
        "provider_id": r.provider_id,
        "device_id": r.device_id,
        "trip_id": r.trip_id,
        "trip_type": ["shared" if shared else "private"],
        "trip_attributes": attrs,
        "start_time": r.start_ms,
        "end_time": r.end_ms,
        "start_location": _loc(r.start_lon, r.start_lat),
        "end_location": _loc(r.end_lon, r.end_lat),
        "duration": r.duration_s,
        "distance": r.distance_m,
        "publication_time": r.publication_ms,
    }
    if r.fare_cents is not None:
        out["fare_attributes"] = {"payment_type": "mobile_app", "fare_type": "upfront_pricing"}
        out["actual_cost"] = r.fare_cents
        out["currency"] = r.currency
    return out


# ---------------------------------------------------------------------- queries
def _vehicles_query(scope: int | None, device: str | None = None, *, with_status: bool = False) -> sa.Select[Any]:
    q = sa.select(V, OP.c.provider_id).select_from(V.join(OP, V.c.operator_id == OP.c.id))
    if scope is not None:
        q = q.where(V.c.operator_id == scope)
    if device is not None:
        q = q.where(V.c.device_id == device)
    if with_status:  # MDS vehicle status needs both a last event and a last telemetry point
        q = q.where(V.c.last_event_id.is_not(None), V.c.last_telemetry_id.is_not(None))
    return q.order_by(V.c.registered_ms, V.c.device_id)


def _vehicles(conn: sa.Connection, scope: int | None, device: str | None = None) -> list[Any]:
    return list(conn.execute(_vehicles_query(scope, device)))


def _events_query(scope: int | None, lo: int, hi: int) -> sa.Select[Any]:
    q = (
        sa.select(VE, OP.c.provider_id)
        .select_from(VE.join(V, VE.c.device_id == V.c.device_id).join(OP, V.c.operator_id == OP.c.id))
        .where(VE.c.timestamp_ms >= lo, VE.c.timestamp_ms < hi)
    )
    if scope is not None:
        q = q.where(V.c.operator_id == scope)
    return q.order_by(VE.c.timestamp_ms, VE.c.seq)


def _events(conn: sa.Connection, scope: int | None, lo: int, hi: int) -> list[Any]:
    return list(conn.execute(_events_query(scope, lo, hi)))


def _paged(
    conn: sa.Connection, q: sa.Select[Any], request: Request, page: int, size: int
) -> tuple[list[Any], dict[str, str | None]]:
    """One page of an ordered query and its MDS ``links`` (JSON:API pagination: first, last, prev, next; ``next``
    null on the last page). Pages are numbered from 0 by the ``page`` query parameter."""
    total = int(conn.execute(sa.select(sa.func.count()).select_from(q.order_by(None).subquery())).scalar_one())
    pages = max(1, -(-total // size))
    if page >= pages:
        raise ServiceError(
            f"page: {page} is beyond the last page ({pages - 1}; {total} rows, {size} per page)",
            status=400,
            field="page",
            code="bad_param",
        )

    def link(n: int | None) -> str | None:
        return None if n is None else str(request.url.include_query_params(page=n))

    rows = list(conn.execute(q.limit(size).offset(page * size)))
    links = {
        "first": link(0),
        "last": link(pages - 1),
        "prev": link(page - 1 if page > 0 else None),
        "next": link(page + 1 if page + 1 < pages else None),
    }
    return rows, links


def _device(device_id: str) -> str:
    if not _UUID.match(device_id):
        raise ServiceError(
            f"device_id: {device_id!r} is not a lower-case UUID", status=400, field="device_id", code="bad_param"
        )
    return device_id


def _status(conn: sa.Connection, rows: list[Any]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        if r.last_event_id is None or r.last_telemetry_id is None:
            continue  # MDS vehicle status needs both a last event and a last telemetry point
        ev = conn.execute(sa.select(VE).where(VE.c.event_id == r.last_event_id)).one()
        tm = conn.execute(sa.select(TM).where(TM.c.telemetry_id == r.last_telemetry_id)).one()
        e = event_json(_with_provider(ev, r.provider_id))
        t = telemetry_json(_with_provider(tm, r.provider_id))
        out.append({"device_id": r.device_id, "provider_id": r.provider_id, "last_event": e, "last_telemetry": t})
    return out


class _Row:
    def __init__(self, row: Any, provider_id: str) -> None:
        self.__dict__.update(row._mapping)
        self.provider_id = provider_id


def _with_provider(row: Any, provider_id: str) -> Any:
    return _Row(row, provider_id)


# ---------------------------------------------------------------------- routes
router = APIRouter(prefix="/mds", tags=["MDS 2.0 Provider (passenger services)"])
_TTL_MS = 1000
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Not found (or another provider's)"}}


Page = Annotated[int, Query(ge=0, le=10**9, description="page number (0 first); see the response's links")]


@router.get("/vehicles", summary="MDS /vehicles (paged)")
def vehicles(request: Request, conn: Conn, service: Service, who: MdsReader, page: Page = 0) -> JSONResponse:
    negotiate(request)
    rows, links = _paged(conn, _vehicles_query(_scope(who)), request, page, service.settings.mds_page_size)
    return _ok(
        {
            "vehicles": [vehicle_json(r) for r in rows],
            "last_updated": _now_ms(service),
            "ttl": _TTL_MS,
            "links": links,
        }
    )


@router.get("/vehicles/status", summary="MDS /vehicles/status (paged)")
def vehicles_status(request: Request, conn: Conn, service: Service, who: MdsReader, page: Page = 0) -> JSONResponse:
    negotiate(request)
    q = _vehicles_query(_scope(who), with_status=True)
    rows, links = _paged(conn, q, request, page, service.settings.mds_page_size)
    return _ok(
        {
            "vehicles_status": _status(conn, rows),
            "last_updated": _now_ms(service),
            "ttl": _TTL_MS,
            "links": links,
        }
    )


@router.get("/vehicles/status/{device_id}", summary="MDS /vehicles/status/{device_id}", responses=_NOT_FOUND)
def vehicle_status(device_id: str, request: Request, conn: Conn, service: Service, who: MdsReader) -> JSONResponse:
    negotiate(request)
    status = _status(conn, _vehicles(conn, _scope(who), _device(device_id)))
    if not status:
        raise ServiceError(f"device_id: no status for vehicle {device_id}", status=404, code="not_found")
    return _ok({"vehicles_status": status, "last_updated": _now_ms(service), "ttl": _TTL_MS})


@router.get("/vehicles/{device_id}", summary="MDS /vehicles/{device_id}", responses=_NOT_FOUND)
def vehicle(device_id: str, request: Request, conn: Conn, service: Service, who: MdsReader) -> JSONResponse:
    negotiate(request)
    rows = _vehicles(conn, _scope(who), _device(device_id))
    if not rows:
        raise ServiceError(f"device_id: no vehicle {device_id}", status=404, code="not_found")
    return _ok({"vehicles": [vehicle_json(rows[0])], "last_updated": _now_ms(service), "ttl": _TTL_MS})


HourParam = Annotated[str | None, Query(description="UTC hour, YYYY-MM-DDTHH")]


@router.get("/trips", summary="MDS /trips (trips that ended in the hour)", responses=_NOT_FOUND)
def trips(request: Request, conn: Conn, service: Service, who: MdsReader, end_time: HourParam = None) -> JSONResponse:
    negotiate(request)
    lo, hi = _hour(end_time, "end_time")
    _past_hour(conn, service, lo, hi)
    other = TR.alias("other")
    shared = (
        sa.exists()
        .where(
            other.c.device_id == TR.c.device_id,
            other.c.trip_id != TR.c.trip_id,
            other.c.start_ms < TR.c.end_ms,
            other.c.end_ms > TR.c.start_ms,
        )
        .label("shared")
    )
    q = (
        sa.select(TR, OP.c.provider_id, RR.c.origin_lon, RR.c.origin_lat, shared)
        .select_from(TR.join(OP, TR.c.operator_id == OP.c.id).join(RR, RR.c.request_id == TR.c.request_id))
        .where(TR.c.end_ms >= lo, TR.c.end_ms < hi)
    )
    scope = _scope(who)
    if scope is not None:
        q = q.where(TR.c.operator_id == scope)
    rows = conn.execute(q.order_by(TR.c.end_ms, TR.c.trip_id))
    return _ok({"trips": [trip_json(r, bool(r.shared)) for r in rows]})


@router.get("/events/historical", summary="MDS /events/historical (events in the hour)", responses=_NOT_FOUND)
def events_historical(
    request: Request, conn: Conn, service: Service, who: MdsReader, event_time: HourParam = None
) -> JSONResponse:
    negotiate(request)
    lo, hi = _hour(event_time, "event_time")
    _past_hour(conn, service, lo, hi)
    return _ok({"events": [event_json(r) for r in _events(conn, _scope(who), lo, hi)]})


@router.get("/events/recent", summary="MDS /events/recent (at most two weeks back)")
def events_recent(
    request: Request,
    conn: Conn,
    service: Service,
    who: MdsReader,
    start_time: Annotated[int | None, Query(ge=0, le=10**14, description="epoch ms, inclusive")] = None,
    end_time: Annotated[int | None, Query(ge=0, le=10**14, description="epoch ms, exclusive")] = None,
    page: Page = 0,
) -> JSONResponse:
    negotiate(request)
    for name, value in (("start_time", start_time), ("end_time", end_time)):
        if value is None:
            raise ServiceError(f"{name}: required (epoch milliseconds)", status=400, field=name, code="missing_param")
    assert start_time is not None
    assert end_time is not None
    if end_time <= start_time:
        raise ServiceError("end_time: must be after start_time", status=400, field="end_time", code="bad_param")
    if start_time < _now_ms(service) - RECENT_WINDOW_MS:
        raise ServiceError(
            "start_time: more than two weeks in the past (use /events/historical)",
            status=400,
            field="start_time",
            code="bad_param",
        )
    q = _events_query(_scope(who), start_time, end_time)
    rows, links = _paged(conn, q, request, page, service.settings.mds_page_size)
    return _ok({"events": [event_json(r) for r in rows], "links": links})


@router.get("/telemetry", summary="MDS /telemetry (telemetry in the hour)")
def telemetry(
    request: Request, conn: Conn, service: Service, who: MdsReader, telemetry_time: HourParam = None
) -> JSONResponse:
    negotiate(request)
    lo, hi = _hour(telemetry_time, "telemetry_time")
    if hi > _now_ms(service):
        return _ok({"telemetry": []})
    q = (
        sa.select(TM, OP.c.provider_id)
        .select_from(TM.join(V, TM.c.device_id == V.c.device_id).join(OP, V.c.operator_id == OP.c.id))
        .where(TM.c.timestamp_ms >= lo, TM.c.timestamp_ms < hi)
    )
    scope = _scope(who)
    if scope is not None:
        q = q.where(V.c.operator_id == scope)
    rows = conn.execute(q.order_by(TM.c.timestamp_ms, TM.c.telemetry_id))
    return _ok({"telemetry": [telemetry_json(r) for r in rows]})


@router.get(
    "/reports/{filename}",
    summary="MDS /reports/{YYYY-MM}.csv (monthly trip and rider counts)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}, **_NOT_FOUND},
)
def reports(filename: str, request: Request, conn: Conn, service: Service, who: MdsReader) -> Response:
    """One row per provider and vehicle type, ``special_group_type`` ``all_riders`` (the platform knows no
    special groups), ``geography_id`` the service area: a UUID derived from the network's name."""
    negotiate(request)
    m = _REPORT.match(filename)
    if m is None or not 1 <= int(m[2]) <= 12:
        raise ServiceError(f"filename: {filename!r} is not YYYY-MM.csv", status=400, field="filename", code="bad_param")
    year, month = int(m[1]), int(m[2])
    lo = int(datetime(year, month, 1, tzinfo=UTC).timestamp()) * 1000
    hi = lo + calendar.monthrange(year, month)[1] * 86_400_000
    _past_hour(conn, service, lo, hi)
    q = (
        sa.select(
            OP.c.provider_id, V.c.vehicle_type, sa.func.count(TR.c.trip_id), sa.func.count(sa.distinct(RR.c.rider))
        )
        .select_from(
            TR.join(OP, TR.c.operator_id == OP.c.id)
            .join(V, V.c.device_id == TR.c.device_id)
            .join(RR, RR.c.request_id == TR.c.request_id)
        )
        .where(TR.c.end_ms >= lo, TR.c.end_ms < hi)
        .group_by(OP.c.provider_id, V.c.vehicle_type)
        .order_by(OP.c.provider_id, V.c.vehicle_type)
    )
    scope = _scope(who)
    if scope is not None:
        q = q.where(TR.c.operator_id == scope)
    geography = str(uuid.uuid5(uuid.NAMESPACE_URL, f"robotaxi:service-area:{service.network.name}"))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(REPORT_HEADER)
    for provider, vtype, n_trips, n_riders in conn.execute(q):
        w.writerow((provider, f"{year:04d}-{month:02d}-01", "P1M", "all_riders", geography, vtype, n_trips, n_riders))
    return Response(buf.getvalue(), media_type="text/csv")

"""DMV-format safety reports for regulators, built from the platform's own records with the report builders of
:mod:`robotaxi.safety.dmv` (the same layouts ``robotaxi safety report`` writes for simulated runs).

* ``GET /v1/safety/dmv/{year}/disengagements.csv``: one row per disengagement the operators reported
  (``POST /v1/operator/safety-events``) whose local date falls in the reporting period (1 December of ``year - 1``
  to 30 November of ``year``, 13 CCR 227.50(b)), oldest first.
* ``GET /v1/safety/dmv/{year}/mileage.csv``: one row per vehicle docked during the period, with its miles in each
  month: the great-circle distance between its consecutive telemetry points (haversine on a sphere of radius
  6,371,008.8 m, the IUGG mean Earth radius), each step counted in the local month it started in.

Dates and months are on the platform's local calendar (``robotaxi serve --timezone``). Every vehicle in service
under the platform is driverless-capable (``VEHICLE IS CAPABLE OF OPERATING WITHOUT A DRIVER: Yes``). The reports
need each operator's DMV permit number (``dmv_permit``, set by an admin) and each vehicle's VIN (MDS
``vehicle_attributes.vin`` at registration): a report that would lack one is refused with ``409 incomplete``
naming the operator or vehicle, never written with blanks. A period that has not ended gives the records so far.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from collections.abc import Iterator
from typing import Annotated, Any

import numpy as np
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response

from ..errors import ServiceError
from ..safety import DisengagementRecord, Initiator, LocationType, ReportingPeriod
from ..safety.dmv import disengagement_csv, mileage_csv
from ..store import tables
from .auth import Principal, Role, allow
from .deps import Conn, Service

router = APIRouter(prefix="/v1/safety/dmv", tags=["regulators"])
Auditor = Annotated[Principal, Depends(allow(Role.REGULATOR, Role.ADMIN))]
Year = Annotated[int, Path(ge=2015, le=9998, description="DMV reporting year (December of year-1 to November)")]
SE = tables.safety_events
V = tables.vehicles
OP = tables.operators
TM = tables.telemetry
#: The API's initiators (the ledger's words) as the DMV report names them; ``none`` is no disengagement.
_INITIATOR = {
    "ads": Initiator.AV_SYSTEM,
    "safety_driver": Initiator.TEST_DRIVER,
    "remote_operator": Initiator.REMOTE_OPERATOR,
    "passenger": Initiator.PASSENGER,
}
EARTH_RADIUS_M = 6_371_008.8
METRES_PER_MILE = 1609.344
_CSV = {"description": "CSV (RFC 4180)", "content": {"text/csv": {}}}


def _bounds(period: ReportingPeriod, tz: zoneinfo.ZoneInfo) -> tuple[int, int]:
    """The period as epoch ms [start, end) on the local calendar."""
    start = dt.datetime.combine(period.start, dt.time(), tz)
    end = dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time(), tz)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def _period(year: int, service: Any) -> tuple[ReportingPeriod, zoneinfo.ZoneInfo, int, int]:
    period = ReportingPeriod(year)
    tz = zoneinfo.ZoneInfo(service.settings.timezone)
    lo, hi = _bounds(period, tz)
    if lo > int(service.clock() * 1000):
        raise ServiceError(f"year: the {period} reporting period has not started", status=404, code="not_found")
    return period, tz, lo, hi


def _incomplete(text: str, field: str) -> ServiceError:
    return ServiceError(text, status=409, field=field, code="incomplete")


def _vin(r: Any) -> str:
    vin = (r.vehicle_attributes or {}).get("vin")
    if not vin:
        raise _incomplete(
            f"vehicle {r.device_id} ({r.vehicle_id}) has no VIN (vehicle_attributes.vin): the DMV reports need one",
            "vin",
        )
    return str(vin).upper()


def _permit(r: Any) -> str:
    if not r.dmv_permit:
        raise _incomplete(
            f"operator {r.operator_name!r} has no DMV permit number (PATCH /v1/admin/operators/{r.operator_name})",
            "dmv_permit",
        )
    return str(r.dmv_permit)


def _csv_response(text: str, name: str) -> Response:
    return Response(
        text, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get(
    "/{year}/disengagements.csv",
    response_class=Response,
    responses={200: _CSV},
    summary="DMV disengagement report of a reporting year (CSV, the DMV's columns)",
)
def disengagements(year: Year, conn: Conn, service: Service, _: Auditor) -> Response:
    period, tz, lo, hi = _period(year, service)
    q = (
        sa.select(SE, V.c.vehicle_id, V.c.vehicle_attributes, OP.c.name.label("operator_name"), OP.c.dmv_permit)
        .select_from(SE.join(V, SE.c.device_id == V.c.device_id).join(OP, V.c.operator_id == OP.c.id))
        .where(SE.c.event_type == "disengagement", SE.c.timestamp_ms >= lo, SE.c.timestamp_ms < hi)
        .order_by(SE.c.timestamp_ms, SE.c.event_id)
    )
    records = []
    for r in conn.execute(q):
        initiator = _INITIATOR.get(r.initiated_by)
        if initiator is None:  # refused at intake since; kept for rows stored before
            raise _incomplete(f"disengagement {r.event_id} names no initiator ({r.initiated_by})", "initiated_by")
        try:
            records.append(
                DisengagementRecord(
                    event_id=r.event_id,
                    operator=r.operator_name,
                    date=dt.datetime.fromtimestamp(r.timestamp_ms / 1000, tz).date(),
                    initiator=initiator,
                    location_type=LocationType(r.location_type),
                    description=r.description,
                    driver_present=bool(r.driver_present),
                    can_operate_without_driver=True,
                    permit_number=_permit(r),
                    vin=_vin(r),
                    reporting_year=year,
                    time_ms=r.timestamp_ms,
                    lon=r.lon,
                    lat=r.lat,
                    vehicle_id=r.device_id,
                    trip_id=r.trip_id,
                )
            )
        except ValueError as e:  # the record's own checks (a VIN of other characters, a test driver not present)
            raise _incomplete(f"disengagement {r.event_id}: {e}", "safety_events") from e
    return _csv_response(disengagement_csv(records, period), f"dmv_disengagements_{year}.csv")


def _steps(conn: sa.Connection, lo: int, hi: int) -> Iterator[tuple[str, Any, Any, Any]]:
    """Per vehicle: telemetry times (ms), lon, lat in time order within [lo, hi)."""
    q = (
        sa.select(TM.c.device_id, TM.c.timestamp_ms, TM.c.lon, TM.c.lat)
        .where(TM.c.timestamp_ms >= lo, TM.c.timestamp_ms < hi)
        .order_by(TM.c.device_id, TM.c.timestamp_ms)
    )
    device: str | None = None
    rows: list[tuple[int, float, float]] = []
    for d, t, lon, lat in conn.execute(q.execution_options(yield_per=10_000)):
        if d != device:
            if device is not None:
                a = np.asarray(rows, dtype=np.float64)
                yield device, a[:, 0], a[:, 1], a[:, 2]
            device, rows = d, []
        rows.append((t, lon, lat))
    if device is not None:
        a = np.asarray(rows, dtype=np.float64)
        yield device, a[:, 0], a[:, 1], a[:, 2]


def haversine_m(lon1: Any, lat1: Any, lon2: Any, lat2: Any) -> Any:
    """Great-circle distance in metres (haversine formula, R. W. Sinnott, Sky & Telescope 68(2), 1984)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def _month_starts(period: ReportingPeriod, tz: zoneinfo.ZoneInfo) -> list[int]:
    """Epoch ms of the first instant of each local month of the period, and of the day after it ends."""
    out = [int(dt.datetime(y, m, 1, tzinfo=tz).timestamp() * 1000) for y, m in period.months()]
    return [*out, _bounds(period, tz)[1]]


@router.get(
    "/{year}/mileage.csv",
    response_class=Response,
    responses={200: _CSV},
    summary="DMV annual mileage report of a reporting year (CSV: autonomous miles per VIN and month)",
)
def mileage(year: Year, conn: Conn, service: Service, _: Auditor) -> Response:
    period, tz, lo, hi = _period(year, service)
    months = period.months()
    edges = np.asarray(_month_starts(period, tz), dtype=np.float64)
    miles: dict[str, dict[tuple[int, int], float]] = {}
    for device, t, lon, lat in _steps(conn, lo, hi):
        if t.size < 2:
            continue
        step = haversine_m(lon[:-1], lat[:-1], lon[1:], lat[1:]) / METRES_PER_MILE
        month = np.searchsorted(edges, t[:-1], side="right") - 1
        per = np.bincount(month, weights=step, minlength=len(months))[: len(months)]
        miles[device] = {ym: float(x) for ym, x in zip(months, per.tolist(), strict=True) if x > 0}
    q = (
        sa.select(V, OP.c.name.label("operator_name"), OP.c.dmv_permit)
        .select_from(V.join(OP, V.c.operator_id == OP.c.id))
        .where(V.c.registered_ms < hi, sa.or_(V.c.retired_ms.is_(None), V.c.retired_ms >= lo))
        .order_by(OP.c.name, V.c.registered_ms, V.c.device_id)
    )
    vehicles = conn.execute(q).all()
    counts: dict[str, int] = defaultdict(int)
    for (d,) in conn.execute(
        sa.select(SE.c.device_id).where(
            SE.c.event_type == "disengagement", SE.c.timestamp_ms >= lo, SE.c.timestamp_ms < hi
        )
    ):
        counts[d] += 1
    rows = [(r.operator_name, _permit(r), _vin(r), miles.get(r.device_id, {}), counts[r.device_id]) for r in vehicles]
    try:
        text = mileage_csv(period, rows)
    except ValueError as e:  # a VIN registered for two vehicles
        raise _incomplete(str(e), "vin") from e
    return _csv_response(text, f"dmv_mileage_{year}.csv")

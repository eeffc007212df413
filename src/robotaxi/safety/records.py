"""Disengagement and collision records, with the fields of the California DMV's reports.

A *disengagement* follows the columns of the DMV's annual disengagement report (form OL 311R, Title 13 CCR
section 227.50, used since the December 2017 - November 2018 reporting period): manufacturer, permit number,
date, VIN, whether the vehicle can operate without a driver, whether a driver was present, who initiated the
disengagement, where it happened (location type) and a description of the facts. The platform adds the time,
position, vehicle and trip it knows.

A *collision* carries the main facts of the DMV's "Report of Traffic Collision Involving an Autonomous Vehicle"
(form OL 316): date, time, location, operator, vehicle, whether autonomous mode was engaged, whether the AV was
moving or stopped, the other party, damage, injuries, weather, lighting, road surface, collision type, fault.

Both constructors validate everything and raise :class:`ValueError` naming the field; nothing is defaulted
silently.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = [
    "CollisionRecord",
    "Damage",
    "DisengagementRecord",
    "Fault",
    "Initiator",
    "LocationType",
    "Motion",
    "ReportingPeriod",
]

#: California's AV testing regulations took effect on 2014-09-16; no DMV safety report can predate them.
FIRST_REPORTABLE_DATE = dt.date(2014, 9, 16)


class _Labelled(Enum):
    """An enum with a code (its value) and the label the DMV prints on its forms."""

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def parse(cls, text: object, field: str) -> Any:
        """The member whose code or DMV label is ``text`` (case and spacing ignored); ``ValueError`` otherwise."""
        if isinstance(text, cls):
            return text
        key = " ".join(str(text).replace("_", " ").split()).casefold()
        for member in cls:
            if key in (member.value.replace("_", " "), member.label.casefold()):
                return member
        known = ", ".join(f"{m.value!r}" for m in cls)
        raise ValueError(f"{field}: unknown value {text!r} (expected one of {known})")


class Initiator(_Labelled):
    """Who ended autonomous operation (DMV: "Disengagement initiated by")."""

    AV_SYSTEM = "av_system"
    TEST_DRIVER = "test_driver"
    REMOTE_OPERATOR = "remote_operator"
    PASSENGER = "passenger"


class LocationType(_Labelled):
    """Where a disengagement happened (DMV: "Disengagement location"); see :mod:`robotaxi.safety.roads`."""

    INTERSTATE = "interstate"
    FREEWAY = "freeway"
    HIGHWAY = "highway"
    RURAL_ROAD = "rural_road"
    STREET = "street"
    PARKING_FACILITY = "parking_facility"


class Motion(_Labelled):
    """Whether a vehicle was moving or stopped at the collision (OL 316 section 2)."""

    MOVING = "moving"
    STOPPED = "stopped"


class Damage(_Labelled):
    """Vehicle damage as the OL 316 grades it."""

    NONE = "none"
    MINOR = "minor"
    MODERATE = "moderate"
    MAJOR = "major"


class Fault(_Labelled):
    """Who caused the collision, as a reviewer judged it (not a field of OL 316 itself)."""

    AV = "av"
    OTHER = "other"
    UNCLEAR = "unclear"
    UNKNOWN = "unknown"


_LABELS: dict[Enum, str] = {
    Initiator.AV_SYSTEM: "AV System",
    Initiator.TEST_DRIVER: "Test Driver",
    Initiator.REMOTE_OPERATOR: "Remote Operator",
    Initiator.PASSENGER: "Passenger",
    LocationType.INTERSTATE: "Interstate",
    LocationType.FREEWAY: "Freeway",
    LocationType.HIGHWAY: "Highway",
    LocationType.RURAL_ROAD: "Rural Road",
    LocationType.STREET: "Street",
    LocationType.PARKING_FACILITY: "Parking Facility",
    Motion.MOVING: "Moving",
    Motion.STOPPED: "Stopped",
    Damage.NONE: "None",
    Damage.MINOR: "Minor",
    Damage.MODERATE: "Moderate",
    Damage.MAJOR: "Major",
    Fault.AV: "AV",
    Fault.OTHER: "Other party",
    Fault.UNCLEAR: "Unclear",
    Fault.UNKNOWN: "Unknown",
}


@dataclass(frozen=True, slots=True, order=True)
class ReportingPeriod:
    """A DMV reporting year: 1 December of ``year - 1`` to 30 November of ``year`` (13 CCR 227.50(b)).

    The "2019 disengagement report" covers December 2018 to November 2019.
    """

    year: int

    def __post_init__(self) -> None:
        if not 2014 <= self.year <= 9998:
            raise ValueError(f"reporting year: {self.year} is not a plausible DMV reporting year")

    @property
    def start(self) -> dt.date:
        return dt.date(self.year - 1, 12, 1)

    @property
    def end(self) -> dt.date:
        """The last day of the period (inclusive)."""
        return dt.date(self.year, 11, 30)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, dt.date) and self.start <= _as_date(day) <= self.end

    @classmethod
    def of(cls, day: dt.date) -> ReportingPeriod:
        """The period a day falls in (December belongs to the next year's report)."""
        return cls(day.year + 1 if day.month == 12 else day.year)

    def months(self) -> list[tuple[int, int]]:
        """``(year, month)`` from December to November, the mileage report's column order."""
        return [(self.year - 1, 12)] + [(self.year, m) for m in range(1, 12)]

    def __str__(self) -> str:
        return f"{self.year} (Dec {self.year - 1} - Nov {self.year})"


def _as_date(day: dt.date) -> dt.date:
    return day.date() if isinstance(day, dt.datetime) else day


_VIN_CHARS = re.compile(r"^[A-Z0-9*-]+$")


def _text(value: object, field: str, *, required: bool = True) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field}: must be a non-empty string, got {value!r}")


def _lonlat(lon: float | None, lat: float | None) -> None:
    if (lon is None) != (lat is None):
        raise ValueError("lon, lat: give both or neither")
    if lon is None or lat is None:
        return
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"lon, lat: ({lon}, {lat}) is not a longitude/latitude in degrees")


@dataclass(frozen=True, slots=True)
class DisengagementRecord:
    """One disengagement, one row of the DMV disengagement report.

    Parameters
    ----------
    event_id : str
        Unique id of the event.
    operator : str
        Manufacturer / permit holder (DMV "Manufacturer").
    date : datetime.date
        Local calendar date of the event.
    initiator : Initiator
    location_type : LocationType
    description : str
        "Description of facts causing disengagement".
    driver_present : bool
    can_operate_without_driver : bool
    permit_number, vin : str or None
        Required for the DMV report; ``None`` only for records read from the 2015-2017 layouts, which had neither.
    reporting_year : int or None
        The DMV reporting year; ``None`` derives it from ``date``. When given, ``date`` must lie in its period.
    time_ms : int or None
        UTC epoch milliseconds, when known.
    lon, lat : float or None
    vehicle_id, trip_id, road_class : str or None
        The platform's own ids, and the OSM road class the location type was derived from.

    Raises
    ------
    ValueError
        Naming the field: empty texts, a date out of the reporting period or before 2014-09-16, a test driver
        initiating a disengagement with no driver present, a bad position or time.
    """

    event_id: str
    operator: str
    date: dt.date
    initiator: Initiator
    location_type: LocationType
    description: str
    driver_present: bool
    can_operate_without_driver: bool
    permit_number: str | None = None
    vin: str | None = None
    reporting_year: int | None = None
    time_ms: int | None = None
    lon: float | None = None
    lat: float | None = None
    vehicle_id: str | None = None
    trip_id: str | None = None
    road_class: str | None = None

    def __post_init__(self) -> None:
        _text(self.event_id, "event_id")
        _text(self.operator, "operator")
        _text(self.description, "description")
        _text(self.permit_number, "permit_number", required=False)
        for name in ("vehicle_id", "trip_id", "road_class"):
            _text(getattr(self, name), name, required=False)
        if self.vin is not None and not _VIN_CHARS.match(self.vin):
            raise ValueError(f"vin: {self.vin!r} is not a VIN (letters and digits)")
        if not isinstance(self.initiator, Initiator):
            raise ValueError(f"initiator: expected an Initiator, got {self.initiator!r}")
        if not isinstance(self.location_type, LocationType):
            raise ValueError(f"location_type: expected a LocationType, got {self.location_type!r}")
        for name in ("driver_present", "can_operate_without_driver"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: expected true or false, got {getattr(self, name)!r}")
        if self.initiator is Initiator.TEST_DRIVER and not self.driver_present:
            raise ValueError("initiator: a test driver cannot initiate a disengagement when no driver is present")
        if not isinstance(self.date, dt.date) or isinstance(self.date, dt.datetime):
            raise ValueError(f"date: expected a calendar date, got {self.date!r}")
        if self.date < FIRST_REPORTABLE_DATE:
            raise ValueError(
                f"date: {self.date} is before California's AV testing rules began ({FIRST_REPORTABLE_DATE})"
            )
        if self.reporting_year is None:
            object.__setattr__(self, "reporting_year", ReportingPeriod.of(self.date).year)
        elif self.date not in ReportingPeriod(self.reporting_year):
            period = ReportingPeriod(self.reporting_year)
            raise ValueError(f"date: {self.date} is outside the reporting period {period}")
        if self.time_ms is not None and (not isinstance(self.time_ms, int) or self.time_ms < 0):
            raise ValueError(f"time_ms: expected epoch milliseconds >= 0, got {self.time_ms!r}")
        _lonlat(self.lon, self.lat)

    @property
    def period(self) -> ReportingPeriod:
        return ReportingPeriod(int(self.reporting_year or ReportingPeriod.of(self.date).year))


@dataclass(frozen=True, slots=True)
class CollisionRecord:
    """The main facts of one OL 316 collision report.

    Parameters
    ----------
    report_id : str
    date : datetime.date
    time : datetime.time or None
        Local time of day; ``None`` when the report gives none.
    location : str
        Address or intersection.
    operator : str
        Manufacturer / operator of the AV.
    vehicle : str
        Make, model and year of the AV.
    autonomous_mode : bool
        Whether the AV was in autonomous mode at the collision.
    av_motion : Motion
    damage : Damage
        Damage to the AV.
    other_party : str or None
        What the AV collided with ("vehicle", "bicyclist"...), when stated.
    other_party_motion : Motion or None
    injuries : int or None
        ``None`` when the source does not say (never read as zero).
    weather, lighting, road_surface, collision_type, narrative : str or None
    fault : Fault
    """

    report_id: str
    date: dt.date
    time: dt.time | None
    location: str
    operator: str
    vehicle: str
    autonomous_mode: bool
    av_motion: Motion
    damage: Damage
    other_party: str | None = None
    other_party_motion: Motion | None = None
    injuries: int | None = None
    weather: str | None = None
    lighting: str | None = None
    road_surface: str | None = None
    collision_type: str | None = None
    narrative: str | None = None
    fault: Fault = Fault.UNKNOWN

    def __post_init__(self) -> None:
        for name in ("report_id", "location", "operator", "vehicle"):
            _text(getattr(self, name), name)
        for name in ("other_party", "weather", "lighting", "road_surface", "collision_type", "narrative"):
            _text(getattr(self, name), name, required=False)
        if not isinstance(self.date, dt.date) or isinstance(self.date, dt.datetime):
            raise ValueError(f"date: expected a calendar date, got {self.date!r}")
        if self.date < FIRST_REPORTABLE_DATE:
            raise ValueError(
                f"date: {self.date} is before California's AV testing rules began ({FIRST_REPORTABLE_DATE})"
            )
        if self.time is not None and not isinstance(self.time, dt.time):
            raise ValueError(f"time: expected a time of day, got {self.time!r}")
        if not isinstance(self.autonomous_mode, bool):
            raise ValueError(f"autonomous_mode: expected true or false, got {self.autonomous_mode!r}")
        checks: tuple[tuple[str, type[Enum], bool], ...] = (
            ("av_motion", Motion, False),
            ("damage", Damage, False),
            ("other_party_motion", Motion, True),
            ("fault", Fault, False),
        )
        for name, kind, optional in checks:
            value = getattr(self, name)
            if not (isinstance(value, kind) or (optional and value is None)):
                raise ValueError(f"{name}: expected a {kind.__name__}, got {value!r}")
        if self.injuries is not None and (isinstance(self.injuries, bool) or self.injuries < 0):
            raise ValueError(f"injuries: must be a count >= 0 or unknown, got {self.injuries!r}")

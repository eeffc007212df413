"""Disengagement and collision records: validation names the field; reporting periods run December to November."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from robotaxi.safety import (
    CollisionRecord,
    Damage,
    DisengagementRecord,
    Fault,
    Initiator,
    LocationType,
    Motion,
    ReportingPeriod,
)


def _disengagement(**kw: Any) -> DisengagementRecord:
    fields: dict[str, Any] = {
        "event_id": "e1",
        "operator": "Acme AV",
        "date": dt.date(2019, 3, 4),
        "initiator": Initiator.TEST_DRIVER,
        "location_type": LocationType.STREET,
        "description": "pedestrian stepped off the kerb",
        "driver_present": True,
        "can_operate_without_driver": False,
        "permit_number": "AVT001",
        "vin": "1M8GDM9AXKP042788",
    }
    fields.update(kw)
    return DisengagementRecord(**fields)


def test_reporting_period_runs_december_to_november() -> None:
    p = ReportingPeriod(2019)
    assert (p.start, p.end) == (dt.date(2018, 12, 1), dt.date(2019, 11, 30))
    assert dt.date(2018, 12, 1) in p
    assert dt.date(2019, 11, 30) in p
    assert dt.date(2018, 11, 30) not in p
    assert dt.date(2019, 12, 1) not in p
    assert ReportingPeriod.of(dt.date(2018, 12, 24)) == p
    assert ReportingPeriod.of(dt.date(2019, 11, 30)) == p
    assert p.months()[0] == (2018, 12)
    assert p.months()[-1] == (2019, 11)
    assert len(p.months()) == 12


def test_record_derives_its_reporting_year() -> None:
    assert _disengagement(date=dt.date(2018, 12, 3)).reporting_year == 2019
    assert _disengagement(date=dt.date(2019, 11, 3), reporting_year=2019).period == ReportingPeriod(2019)


def test_date_outside_the_given_period_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"date: 2019-12-02 is outside the reporting period 2019"):
        _disengagement(date=dt.date(2019, 12, 2), reporting_year=2019)
    with pytest.raises(ValueError, match="before California's AV testing rules"):
        _disengagement(date=dt.date(2013, 5, 1))


def test_unknown_initiator_values_are_named() -> None:
    with pytest.raises(ValueError, match=r"initiator: unknown value 'the cat'"):
        Initiator.parse("the cat", "initiator")
    assert Initiator.parse("AV System", "initiator") is Initiator.AV_SYSTEM
    assert Initiator.parse("remote_operator", "initiator") is Initiator.REMOTE_OPERATOR
    assert LocationType.parse("Parking Facility", "location") is LocationType.PARKING_FACILITY
    with pytest.raises(ValueError, match="initiator: expected an Initiator"):
        _disengagement(initiator="test_driver")


def test_a_test_driver_needs_to_be_on_board() -> None:
    with pytest.raises(ValueError, match="no driver is present"):
        _disengagement(driver_present=False)
    assert _disengagement(driver_present=False, initiator=Initiator.REMOTE_OPERATOR).driver_present is False


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("operator", "", "operator: must be a non-empty string"),
        ("vin", "1M8 GDM", "vin: .* is not a VIN"),
        ("lon", 200.0, "lon, lat: give both or neither"),
        ("time_ms", -5, "time_ms: expected epoch milliseconds"),
        ("driver_present", "yes", "driver_present: expected true or false"),
    ],
)
def test_bad_fields_are_named(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _disengagement(**{field: value})


def _collision(**kw: Any) -> CollisionRecord:
    fields: dict[str, Any] = {
        "report_id": "r1",
        "date": dt.date(2019, 6, 26),
        "time": dt.time(0, 36),
        "location": "10th Ave and California St, San Francisco",
        "operator": "Cruise",
        "vehicle": "Chevrolet Bolt 2020",
        "autonomous_mode": True,
        "av_motion": Motion.MOVING,
        "damage": Damage.MINOR,
    }
    fields.update(kw)
    return CollisionRecord(**fields)


def test_collision_record_validation() -> None:
    c = _collision(injuries=None, fault=Fault.OTHER)
    assert c.injuries is None
    assert c.fault is Fault.OTHER
    with pytest.raises(ValueError, match="injuries: must be a count"):
        _collision(injuries=-1)
    with pytest.raises(ValueError, match="damage: expected a Damage"):
        _collision(damage="minor")
    with pytest.raises(ValueError, match="before California's AV testing rules"):
        _collision(date=dt.date(2014, 1, 1))
    with pytest.raises(ValueError, match="location: must be a non-empty string"):
        _collision(location=" ")

"""Disengagement records as the ledger's ``SafetyEvent`` entries (``docs/ledger.md``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import SafetyError

if TYPE_CHECKING:
    from ..ledger import SafetyEvent
    from .records import DisengagementRecord

__all__ = ["LEDGER_INITIATOR", "ledger_event"]

#: How the ledger's SafetyEvent names who initiated a disengagement.
LEDGER_INITIATOR = {
    "av_system": "ads",
    "test_driver": "safety_driver",
    "remote_operator": "remote_operator",
    "passenger": "passenger",
}


def ledger_event(record: DisengagementRecord) -> SafetyEvent:
    """The ledger's record of a disengagement."""
    from ..ledger import SafetyEvent

    if record.time_ms is None or record.lon is None or record.lat is None or record.vehicle_id is None:
        raise SafetyError(f"event {record.event_id}: the ledger needs its time, position and vehicle")
    return SafetyEvent(
        event_id=record.event_id,
        event_type="disengagement",
        provider_id=record.operator,
        vehicle_id=record.vehicle_id,
        time_ms=record.time_ms,
        lon=record.lon,
        lat=record.lat,
        initiated_by=LEDGER_INITIATOR[record.initiator.value],  # type: ignore[arg-type]
        driver_present=record.driver_present,
        location_type=record.location_type.value,
        description=record.description,
        trip_id=record.trip_id,
    )

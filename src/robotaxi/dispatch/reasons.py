"""One outcome-reason enumeration for the whole platform (engine, simulator, outputs, live service)."""

from __future__ import annotations

from enum import IntEnum


class Reason(IntEnum):
    """Why a request was not served (stored as int8; 0 for served or still open).

    The engine gives the first three when it turns a request down at its first decision, and ``MAX_WAIT_EXCEEDED``
    when a request that waited for a vehicle reaches its deadline unassigned (the engine owns rider expiry). With
    several operators (the marketplace), a request turned down at its first decision says why no operator could
    take it (``OUTSIDE_SERVICE_AREA``, ``OUT_OF_HOURS``, else the first two: too far or nobody free), and one that
    expired after a human driver declined (or let lapse) an offer for it says ``OFFER_DECLINED``.
    """

    NONE = 0
    #: No vehicle was free when the request was first decided.
    NO_VEHICLE_AVAILABLE = 1
    #: Vehicles were free, but none could reach the pickup within the rider's maximum wait.
    ETA_EXCEEDS_MAX_WAIT = 2
    #: The party is larger than any vehicle's capacity.
    OVER_CAPACITY = 3
    #: The request waited for a vehicle until its deadline and was cancelled by the engine.
    MAX_WAIT_EXCEEDED = 4
    #: The rider cancelled.
    RIDER_CANCELLED = 5
    #: No operator the request accepts has both its pickup and its dropoff inside its service area.
    OUTSIDE_SERVICE_AREA = 6
    #: Operators cover the trip, but none of them had a vehicle on duty (outside their hours or shifts).
    OUT_OF_HOURS = 7
    #: Offers for the request were declined or lapsed, and it reached its deadline unassigned.
    OFFER_DECLINED = 8
    #: The rider refused the fare and pickup time quoted when a vehicle was found (rider choice: lost demand).
    QUOTE_DECLINED = 9
    #: The rider was on board when the vehicle stopped service (a disengagement, a breakdown) and got out; the ride
    #: goes on as a new request from there (:class:`~.events.RidersDisembarked`): this request ends, not the ride.
    VEHICLE_STOPPED = 10

    @property
    def label(self) -> str:
        """The lower-case name used in files (``"max_wait_exceeded"``)."""
        return self.name.lower() if self else ""


#: Code -> label, for writing files.
REASON_LABELS: dict[int, str] = {int(r): r.label for r in Reason}

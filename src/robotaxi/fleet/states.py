"""The MDS 2.0 passenger-services vehicle state machine.

States and event types are the enumerations of the MDS 2.0 ``passenger-services`` mode
(``models/modes/passenger-services/event.yaml``, which lists, for every state a vehicle can be left in, the event
types that may put it there). The schema does not say *from* which state each event departs; that lives in the MDS
prose. The table :data:`TRANSITIONS` is our reading of it, restricted to transitions we can justify:

==========================  =======================  ==================  =============================================
event type                  from                     to                  why
==========================  =======================  ==================  =============================================
service_start               non_operational          available           a vehicle enters passenger service
service_end                 available                non_operational     leaves service while idle (end of shift)
reservation_start           available                reserved            dispatched to a pickup
reservation_stop            reserved                 stopped             arrived at the pickup, waiting for the rider
trip_start                  reserved, stopped        on_trip             rider on board (from reserved: no wait)
trip_stop                   on_trip                  stopped             stopped mid-trip or at the dropoff
trip_resume                 stopped                  on_trip             a stopped trip goes on
trip_end                    on_trip, stopped         available           rider got out
passenger_cancellation      reserved, stopped        available           the rider cancelled before boarding
provider_cancellation       reserved, stopped        available           the operator withdrew the reservation
driver_cancellation         reserved, stopped        available           the (human) driver withdrew it
maintenance                 available,               non_operational     taken out of service for maintenance
                            non_operational
maintenance_end             non_operational          non_operational     maintenance over, still out of service
decommissioned              available,               removed             retired from the fleet
                            non_operational
maintenance_pick_up         available,               removed             towed or collected
                            non_operational
recommissioned              removed                  non_operational     back in the fleet, not yet in service
trip_leave_jurisdiction     on_trip                  elsewhere           drove out of the jurisdiction with a rider
trip_enter_jurisdiction     elsewhere                on_trip             came back with the rider on board
comms_lost                  any but removed          non_contactable     telemetry lost
==========================  =======================  ==================  =============================================

``comms_restored`` returns a ``non_contactable`` vehicle to the state it reports (any state but ``non_contactable``):
it is the one event whose target is not fixed, so it is handled by :func:`restore` rather than by the table.

Anything else (say ``trip_end`` from ``reserved``: the rider never boarded) is a bug in the caller and raises
:class:`~robotaxi.errors.IllegalTransitionError`; the state never changes silently.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from ..errors import IllegalTransitionError


class VehicleState(IntEnum):
    """MDS 2.0 ``vehicle_state`` values (stored as int8 in fleet arrays)."""

    AVAILABLE = 0
    RESERVED = 1
    ON_TRIP = 2
    STOPPED = 3
    NON_OPERATIONAL = 4
    NON_CONTACTABLE = 5
    REMOVED = 6
    ELSEWHERE = 7

    @property
    def mds(self) -> str:
        """The MDS spelling (``"on_trip"``)."""
        return self.name.lower()


class EventType(IntEnum):
    """MDS 2.0 passenger-services ``event_types`` values (stored as int8 in event logs)."""

    SERVICE_START = 0
    SERVICE_END = 1
    RESERVATION_START = 2
    RESERVATION_STOP = 3
    TRIP_START = 4
    TRIP_STOP = 5
    TRIP_RESUME = 6
    TRIP_END = 7
    PASSENGER_CANCELLATION = 8
    PROVIDER_CANCELLATION = 9
    DRIVER_CANCELLATION = 10
    MAINTENANCE = 11
    MAINTENANCE_END = 12
    DECOMMISSIONED = 13
    MAINTENANCE_PICK_UP = 14
    RECOMMISSIONED = 15
    TRIP_LEAVE_JURISDICTION = 16
    TRIP_ENTER_JURISDICTION = 17
    COMMS_LOST = 18
    COMMS_RESTORED = 19

    @property
    def mds(self) -> str:
        """The MDS spelling (``"trip_start"``)."""
        return self.name.lower()


S = VehicleState
E = EventType
_CANCELS = (E.PASSENGER_CANCELLATION, E.PROVIDER_CANCELLATION, E.DRIVER_CANCELLATION)

#: (from state, event) -> to state. See the module docstring for the justification of each row.
TRANSITIONS: dict[tuple[VehicleState, EventType], VehicleState] = {
    (S.NON_OPERATIONAL, E.SERVICE_START): S.AVAILABLE,
    (S.AVAILABLE, E.SERVICE_END): S.NON_OPERATIONAL,
    (S.AVAILABLE, E.RESERVATION_START): S.RESERVED,
    (S.RESERVED, E.RESERVATION_STOP): S.STOPPED,
    (S.RESERVED, E.TRIP_START): S.ON_TRIP,
    (S.STOPPED, E.TRIP_START): S.ON_TRIP,
    (S.ON_TRIP, E.TRIP_STOP): S.STOPPED,
    (S.STOPPED, E.TRIP_RESUME): S.ON_TRIP,
    (S.ON_TRIP, E.TRIP_END): S.AVAILABLE,
    (S.STOPPED, E.TRIP_END): S.AVAILABLE,
    **{(src, ev): S.AVAILABLE for ev in _CANCELS for src in (S.RESERVED, S.STOPPED)},
    **{
        (src, ev): dst
        for src in (S.AVAILABLE, S.NON_OPERATIONAL)
        for ev, dst in (
            (E.MAINTENANCE, S.NON_OPERATIONAL),
            (E.DECOMMISSIONED, S.REMOVED),
            (E.MAINTENANCE_PICK_UP, S.REMOVED),
        )
    },
    (S.NON_OPERATIONAL, E.MAINTENANCE_END): S.NON_OPERATIONAL,
    (S.REMOVED, E.RECOMMISSIONED): S.NON_OPERATIONAL,
    (S.ON_TRIP, E.TRIP_LEAVE_JURISDICTION): S.ELSEWHERE,
    (S.ELSEWHERE, E.TRIP_ENTER_JURISDICTION): S.ON_TRIP,
    **{(src, E.COMMS_LOST): S.NON_CONTACTABLE for src in S if src not in (S.REMOVED, S.NON_CONTACTABLE)},
}

#: The same table as an int8 array ``[from_state, event] -> to_state`` with -1 for illegal, for vectorised checks.
TRANSITION_TABLE: NDArray[np.int8] = np.full((len(VehicleState), len(EventType)), -1, dtype=np.int8)
for (_src, _ev), _dst in TRANSITIONS.items():
    TRANSITION_TABLE[_src, _ev] = _dst
TRANSITION_TABLE.setflags(write=False)


def next_state(state: VehicleState | int, event: EventType | int) -> VehicleState:
    """The state a vehicle in ``state`` is in after ``event``.

    Raises
    ------
    IllegalTransitionError
        If MDS does not allow ``event`` from ``state`` (including ``comms_restored``: see :func:`restore`).
    """
    dst = int(TRANSITION_TABLE[int(state), int(event)])
    if dst < 0:
        raise IllegalTransitionError(
            f"illegal MDS transition: {EventType(event).mds} from {VehicleState(state).mds}",
            hint="see robotaxi.fleet.states for the allowed passenger-services transitions",
        )
    return VehicleState(dst)


def restore(state: VehicleState | int, reported: VehicleState | int) -> VehicleState:
    """``comms_restored``: a non-contactable vehicle comes back in the state it reports."""
    if int(state) != S.NON_CONTACTABLE:
        raise IllegalTransitionError(f"illegal MDS transition: comms_restored from {VehicleState(state).mds}")
    if int(reported) == S.NON_CONTACTABLE:
        raise IllegalTransitionError("comms_restored must report the state the vehicle is back in")
    return VehicleState(reported)


def check_transitions(states: NDArray[np.int8], event: EventType) -> NDArray[np.int8]:
    """Vectorised :func:`next_state`: new states for many vehicles taking the same event.

    Raises
    ------
    IllegalTransitionError
        If any of them may not take ``event``; the message counts them and names the first.
    """
    dst: NDArray[np.int8] = TRANSITION_TABLE[states.astype(np.intp), int(event)]
    bad = dst < 0
    if np.any(bad):
        first = VehicleState(int(states[np.argmax(bad)]))
        raise IllegalTransitionError(
            f"illegal MDS transition for {int(bad.sum())} vehicles: {event.mds} from {first.mds} (first of them)"
        )
    return dst

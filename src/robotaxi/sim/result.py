"""What a simulation produces: one row per request, one row per vehicle state transition."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..demand import Requests
from ..dispatch.reasons import REASON_LABELS as _REASON_LABELS
from ..fleet import Fleet

I64 = NDArray[np.int64]
I32 = NDArray[np.int32]


class Outcome(IntEnum):
    """How a request ended (stored as int8). ``PENDING`` never survives a completed run."""

    PENDING = 0
    SERVED = 1
    REJECTED = 2
    CANCELLED = 3

    @property
    def label(self) -> str:
        return self.name.lower()


#: Reason labels by code (the platform-wide :class:`~robotaxi.dispatch.Reason`).
REASON_LABELS = _REASON_LABELS


@dataclass(frozen=True, slots=True, eq=False)
class RequestOutcomes:
    """Per-request results, aligned with the rows of the simulated :class:`~robotaxi.demand.Requests`.

    Times are seconds since the requests' ``day_start``; -1 where an event did not happen. ``pickup_s`` is the
    vehicle's arrival at the pickup, ``board_s`` the rider's boarding, ``dropoff_s`` the arrival at the dropoff.
    ``pickup_m`` is what the vehicle drove from the assignment to the pickup, ``ride_m`` what the rider rode (longer
    than ``direct_m``, the fastest route, when the ride was shared); ``direct_s`` is the fastest route's time when
    requested.
    """

    outcome: NDArray[np.int8]
    reason: NDArray[np.int8]
    vehicle: I32
    assigned_s: I64
    pickup_s: I64
    board_s: I64
    dropoff_s: I64
    pickup_m: I32
    ride_m: I32
    direct_m: I32
    direct_s: I32


@dataclass(frozen=True, slots=True, eq=False)
class VehicleEvents:
    """MDS-shaped state transitions, in time order: one row per (vehicle, event)."""

    vehicle: I32
    time_s: I64
    event: NDArray[np.int8]
    state: NDArray[np.int8]
    node: I32
    request: I64

    def __len__(self) -> int:
        return int(self.vehicle.size)


@dataclass(frozen=True, slots=True, eq=False)
class VehicleLegs:
    """Every leg a vehicle drove between two nodes, in the order driven per vehicle.

    ``kind`` is the stop the leg led to (:data:`~robotaxi.dispatch.PICKUP`, ``DROPOFF`` or ``REPOSITION``); a leg
    cut short because the plan changed ends at the node where the vehicle re-routed. ``load`` is the number of
    riders on board during the leg.
    """

    vehicle: I32
    from_node: I32
    to_node: I32
    start_s: I64
    end_s: I64
    load: NDArray[np.int16]
    kind: NDArray[np.int8]
    length_m: I32

    def __len__(self) -> int:
        return int(self.vehicle.size)


@dataclass(frozen=True, slots=True, eq=False)
class SimResult:
    """Everything a run produced.

    Attributes
    ----------
    requests : Requests
        The simulated requests (the time window of the demand).
    outcomes : RequestOutcomes
        Per-request results, row-aligned with ``requests``.
    events : VehicleEvents
        Vehicle state transitions.
    legs : VehicleLegs
        What each vehicle drove.
    fleet : Fleet
    offers, declines : ndarray of int16, optional
        Per request, offers made to human drivers and how many of them were declined or lapsed (marketplace).
    vehicle_offers, vehicle_declines : ndarray of int32, optional
        The same per vehicle (the driver who got the offer).
    safety : SimSafety, optional
        Disengagements drawn inside the run and what they did (operators with ``[operators.safety]``,
        :mod:`robotaxi.safety.insim`).
    start_s, end_s : int
        The demand window; ``last_event_s`` when the last trip ended.
    wall_s : float
        Wall-clock seconds of the event loop.
    policy : str
    """

    requests: Requests
    outcomes: RequestOutcomes
    events: VehicleEvents
    legs: VehicleLegs
    fleet: Fleet
    start_s: int
    end_s: int
    last_event_s: int
    wall_s: float
    policy: str
    offers: NDArray[np.int16] | None = None
    declines: NDArray[np.int16] | None = None
    vehicle_offers: NDArray[np.int32] | None = None
    vehicle_declines: NDArray[np.int32] | None = None
    safety: Any = None

    @property
    def operator(self) -> NDArray[np.int16]:
        """Operator index that served each request, -1 for the unserved."""
        v = self.outcomes.vehicle
        served = (self.outcomes.outcome == Outcome.SERVED) & (v >= 0)
        out = np.full(v.size, -1, dtype=np.int16)
        out[served] = self.fleet.operator[v[served]]
        return out

    @property
    def served(self) -> NDArray[np.bool_]:
        served: NDArray[np.bool_] = self.outcomes.outcome == Outcome.SERVED
        return served

    @property
    def wait_s(self) -> I64:
        """Request time to the vehicle's arrival at the pickup (-1 unless served)."""
        o = self.outcomes
        return np.where(o.pickup_s >= 0, o.pickup_s - self.requests.time_s, -1)

    @property
    def ride_s(self) -> I64:
        """Boarding to arrival at the dropoff (-1 unless served)."""
        o = self.outcomes
        return np.where(o.dropoff_s >= 0, o.dropoff_s - o.board_s, -1)

    def completed_trips(self) -> dict[str, NDArray[np.generic]]:
        """Served trips as columns (request id, vehicle, operator, times, distances): what a ledger appends."""
        served = self.outcomes.outcome == Outcome.SERVED
        v = self.outcomes.vehicle[served]
        return {
            "request_id": self.requests.request_id[served],
            "vehicle": v,
            "operator": self.fleet.operator[v],
            "requested_s": self.requests.time_s[served],
            "pickup_s": self.outcomes.pickup_s[served],
            "dropoff_s": self.outcomes.dropoff_s[served],
            "o_node": self.requests.o_node[served],
            "d_node": self.requests.d_node[served],
            "ride_m": self.outcomes.ride_m[served],
            "pickup_m": self.outcomes.pickup_m[served],
        }

"""What a simulation produces: one row per request, one row per vehicle state transition."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from ..demand import Requests
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


#: Reason code for a rider who cancelled because nobody was assigned within the max wait (beside RejectReason).
CANCEL_MAX_WAIT = 10

REASON_LABELS: dict[int, str] = {
    0: "",
    1: "no_vehicle_available",
    2: "eta_exceeds_max_wait",
    3: "over_capacity",
    CANCEL_MAX_WAIT: "max_wait_exceeded",
}


@dataclass(frozen=True, slots=True, eq=False)
class RequestOutcomes:
    """Per-request results, aligned with the rows of the simulated :class:`~robotaxi.demand.Requests`.

    Times are seconds since the requests' ``day_start``; -1 where an event did not happen.
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
    fleet : Fleet
    start_s, end_s : int
        The demand window; ``last_event_s`` when the last trip ended.
    wall_s : float
        Wall-clock seconds of the event loop.
    policy : str
    """

    requests: Requests
    outcomes: RequestOutcomes
    events: VehicleEvents
    fleet: Fleet
    start_s: int
    end_s: int
    last_event_s: int
    wall_s: float
    policy: str

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

"""What the dispatch engine answers: decisions, as columns."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

I64 = NDArray[np.int64]
I32 = NDArray[np.int32]


class RejectReason(IntEnum):
    """Why the engine turned a request down (stored as int8)."""

    #: No vehicle was idle when the request was first considered.
    NO_VEHICLE_AVAILABLE = 1
    #: Vehicles were idle, but none could reach the pickup within the rider's maximum wait.
    ETA_EXCEEDS_MAX_WAIT = 2
    #: The party is larger than any vehicle's capacity.
    OVER_CAPACITY = 3

    @property
    def label(self) -> str:
        return self.name.lower()


def _e64() -> I64:
    return np.empty(0, dtype=np.int64)


def _e32() -> I32:
    return np.empty(0, dtype=np.int32)


def _e8() -> NDArray[np.int8]:
    return np.empty(0, dtype=np.int8)


@dataclass(frozen=True, slots=True, eq=False)
class Decisions:
    """Decisions taken in answer to one input event.

    Attributes
    ----------
    assign_request, assign_vehicle, assign_eta_s : arrays of equal length
        Request ``assign_request[i]`` goes to vehicle ``assign_vehicle[i]``, which should reach the pickup
        ``assign_eta_s[i]`` seconds after the decision time.
    reject_request, reject_reason : arrays of equal length
        Requests turned down, with a :class:`RejectReason` code each.
    move_vehicle, move_node : arrays of equal length
        Idle vehicles asked to drive to a node (rebalancing; no policy emits these yet).
    """

    assign_request: I64 = field(default_factory=_e64)
    assign_vehicle: I32 = field(default_factory=_e32)
    assign_eta_s: I32 = field(default_factory=_e32)
    reject_request: I64 = field(default_factory=_e64)
    reject_reason: NDArray[np.int8] = field(default_factory=_e8)
    move_vehicle: I32 = field(default_factory=_e32)
    move_node: I32 = field(default_factory=_e32)

    def __post_init__(self) -> None:
        if not (self.assign_request.size == self.assign_vehicle.size == self.assign_eta_s.size):
            raise ValueError("Decisions: assign_request, assign_vehicle and assign_eta_s must have equal length")
        if self.reject_request.size != self.reject_reason.size:
            raise ValueError("Decisions: reject_request and reject_reason must have equal length")
        if self.move_vehicle.size != self.move_node.size:
            raise ValueError("Decisions: move_vehicle and move_node must have equal length")

    @property
    def empty(self) -> bool:
        return not (self.assign_request.size or self.reject_request.size or self.move_vehicle.size)

    def __len__(self) -> int:
        return int(self.assign_request.size + self.reject_request.size + self.move_vehicle.size)


#: The answer "nothing to do".
NO_DECISIONS = Decisions()

"""What the dispatch engine answers: decisions, as columns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from .reasons import Reason

I64 = NDArray[np.int64]
I32 = NDArray[np.int32]


def _empty(dtype: type) -> NDArray[np.generic]:
    a: NDArray[np.generic] = np.empty(0, dtype=dtype)
    a.setflags(write=False)  # shared by every Decisions that leaves a field empty
    return a


_E64: I64 = _empty(np.int64)  # type: ignore[assignment]
_E32: I32 = _empty(np.int32)  # type: ignore[assignment]
_E8: NDArray[np.int8] = _empty(np.int8)  # type: ignore[assignment]


def _e64() -> I64:
    return _E64


def _e32() -> I32:
    return _E32


def _e8() -> NDArray[np.int8]:
    return _E8


@dataclass(frozen=True, slots=True, eq=False)
class Decisions:
    """Decisions taken in answer to one input.

    Requests are named by their external ids, vehicles by their dense engine index (``engine.vehicle_id(i)`` gives
    the external id; indices are never reused). Times are epoch seconds.

    Attributes
    ----------
    time_s : int
        The input's time.
    assign_request, assign_vehicle, assign_pickup_s : arrays of equal length
        Request ``assign_request[i]`` joins the plan of vehicle ``assign_vehicle[i]``, which should reach its
        pickup at ``assign_pickup_s[i]``.
    reject_request, reject_reason : arrays of equal length
        Requests turned down at their first decision, with a :class:`~.reasons.Reason` each.
    expired_request, expired_s, expired_reason : arrays of equal length
        Open requests whose deadline passed unassigned: the engine cancelled them as of ``expired_s`` (their
        deadline), with ``max_wait_exceeded`` (or ``offer_declined`` when human drivers declined offers for it).
    reopened_request : array
        Assigned requests the vehicle withdrew from (provider or driver cancellation): open again.
    replanned : array
        Vehicles whose stop plan changed (assignment, pooling insertion, repositioning, cancellation): the executor
        reads their new plan with ``engine.plan(i)`` and where they go from with ``engine.leg(i)``.
    reposition_vehicle, reposition_node : arrays of equal length
        Idle vehicles sent to drive to a node (rebalancing); also in ``replanned``.
    retired : array
        Vehicles asked to retire whose plan is now empty: they take no more work.
    offer_request, offer_vehicle, offer_pickup_s, offer_expires_s : arrays of equal length
        Offers to human drivers: request ``offer_request[i]`` is offered to vehicle ``offer_vehicle[i]`` (which would
        reach the pickup at ``offer_pickup_s[i]`` if it accepted now); the driver answers with
        :class:`~.events.OffersAnswered` by ``offer_expires_s[i]``, else the offer lapses. Until then the request
        waits for that answer and the vehicle takes no other work.
    withdrawn_request : array
        Offers the engine withdrew (lapsed unanswered, the vehicle went off duty, the rider cancelled): an answer to
        them is refused. Lapsed ones go back to matching like declined ones.
    off_duty : array
        Vehicles sent off duty (:class:`~.events.VehiclesOffDuty`) whose plan is now empty (riders dropped off, the
        return to their depot done): the caller ends their service (``service_end``).
    redispatched_request, redispatched_as : arrays of equal length
        Riders who left a stopped vehicle on the way (:class:`~.events.RidersDisembarked`): request
        ``redispatched_request[i]`` ended (reason ``vehicle_stopped``) and the ride goes on as the new request
        ``redispatched_as[i]`` from where the rider got out (decided like any other: it may be assigned in the same
        decisions, rejected, or expire later).
    """

    time_s: int = 0
    assign_request: I64 = field(default_factory=_e64)
    assign_vehicle: I32 = field(default_factory=_e32)
    assign_pickup_s: I64 = field(default_factory=_e64)
    reject_request: I64 = field(default_factory=_e64)
    reject_reason: NDArray[np.int8] = field(default_factory=_e8)
    expired_request: I64 = field(default_factory=_e64)
    expired_s: I64 = field(default_factory=_e64)
    expired_reason: NDArray[np.int8] = field(default_factory=_e8)
    reopened_request: I64 = field(default_factory=_e64)
    replanned: I32 = field(default_factory=_e32)
    reposition_vehicle: I32 = field(default_factory=_e32)
    reposition_node: I32 = field(default_factory=_e32)
    retired: I32 = field(default_factory=_e32)
    offer_request: I64 = field(default_factory=_e64)
    offer_vehicle: I32 = field(default_factory=_e32)
    offer_pickup_s: I64 = field(default_factory=_e64)
    offer_expires_s: I64 = field(default_factory=_e64)
    withdrawn_request: I64 = field(default_factory=_e64)
    off_duty: I32 = field(default_factory=_e32)
    redispatched_request: I64 = field(default_factory=_e64)
    redispatched_as: I64 = field(default_factory=_e64)

    def __post_init__(self) -> None:
        if not (self.assign_request.size == self.assign_vehicle.size == self.assign_pickup_s.size):
            raise ValueError("Decisions: assign_request, assign_vehicle and assign_pickup_s must have equal length")
        if self.reject_request.size != self.reject_reason.size:
            raise ValueError("Decisions: reject_request and reject_reason must have equal length")
        if not (self.expired_request.size == self.expired_s.size == self.expired_reason.size):
            raise ValueError("Decisions: expired_request, expired_s and expired_reason must have equal length")
        if not (
            self.offer_request.size == self.offer_vehicle.size == self.offer_pickup_s.size == self.offer_expires_s.size
        ):
            raise ValueError("Decisions: the offer_* arrays must have equal length")
        if self.redispatched_request.size != self.redispatched_as.size:
            raise ValueError("Decisions: redispatched_request and redispatched_as must have equal length")
        if self.reposition_vehicle.size != self.reposition_node.size:
            raise ValueError("Decisions: reposition_vehicle and reposition_node must have equal length")

    @property
    def empty(self) -> bool:
        """True when nothing was decided."""
        return len(self) == 0

    def __len__(self) -> int:
        return int(
            self.assign_request.size
            + self.reject_request.size
            + self.expired_request.size
            + self.reopened_request.size
            + self.replanned.size
            + self.retired.size
            + self.offer_request.size
            + self.withdrawn_request.size
            + self.off_duty.size
            + self.redispatched_request.size
        )

    def reasons(self) -> list[Reason]:
        """The reject reasons as enum members."""
        return [Reason(int(x)) for x in self.reject_reason]

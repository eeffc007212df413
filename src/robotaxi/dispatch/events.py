"""The typed inputs of the dispatch engine.

Every input is a frozen batch of columns that happened at one instant ``time_s`` (epoch seconds). Constructors check
shapes and types only; the engine checks everything that depends on its state (unknown ids, nodes, transitions)
before it changes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import DispatchError

I64 = NDArray[np.int64]
I32 = NDArray[np.int32]

#: ``VehiclesUpdated.event`` value for a position report that is no MDS event (telemetry, reached a waypoint).
LOCATED = -1


def _col(values: ArrayLike, n: int, dtype: type, name: str) -> NDArray[Any]:
    if isinstance(values, np.ndarray) and values.dtype == dtype and values.ndim == 1 and values.size == n:
        view = values.view()
        view.flags.writeable = False
        return view
    a = np.asarray(values)
    if a.ndim == 0:
        a = np.full(n, a)
    if a.ndim != 1 or a.size != n:
        raise DispatchError(f"{name}: expected {n} values, got shape {a.shape}")
    if np.dtype(dtype).kind in "iu" and a.size and a.dtype.kind not in "iub":
        raise DispatchError(f"{name}: expected integers, got {a.dtype}")
    out: NDArray[Any] = a.astype(dtype)
    out.setflags(write=False)
    return out


def _ids(values: ArrayLike, name: str) -> tuple[str, ...]:
    if isinstance(values, tuple) and all(type(x) is str and x for x in values):
        return values
    a = np.atleast_1d(np.asarray(values))
    if a.ndim != 1:
        raise DispatchError(f"{name}: expected a flat list of ids")
    out = tuple(str(x) for x in a.tolist())
    if any(not x for x in out):
        raise DispatchError(f"{name}: an id is empty")
    return out


@dataclass(frozen=True, slots=True, eq=False, init=False)
class RequestsArrived:
    """New ride requests, in arrival order.

    Parameters
    ----------
    time_s : int
        When they arrived (epoch seconds).
    request_id : int64 array
        External ids (unique over the engine's life).
    o_node, d_node : int arrays
        Pickup and dropoff nodes.
    passengers : int or array
        Party size (default 1).
    max_wait_s : int or array
        Longest wait for pickup, seconds; -1 = the engine's default.
    shareable : bool or array
        Whether the rider accepts sharing the vehicle (pooling policies only).
    operator : int or array
        Operator index the request is restricted to; -1 = any.
    """

    time_s: int
    request_id: I64
    o_node: I32
    d_node: I32
    passengers: NDArray[np.int16]
    max_wait_s: I32
    shareable: NDArray[np.bool_]
    operator: NDArray[np.int16]

    def __init__(
        self,
        time_s: int,
        request_id: ArrayLike,
        o_node: ArrayLike,
        d_node: ArrayLike,
        *,
        passengers: ArrayLike = 1,
        max_wait_s: ArrayLike = -1,
        shareable: ArrayLike = True,
        operator: ArrayLike = -1,
    ) -> None:
        ids = np.atleast_1d(np.asarray(request_id))
        n = ids.size
        s = object.__setattr__
        s(self, "time_s", int(time_s))
        s(self, "request_id", _col(ids, n, np.int64, "request_id"))
        s(self, "o_node", _col(o_node, n, np.int32, "o_node"))
        s(self, "d_node", _col(d_node, n, np.int32, "d_node"))
        s(self, "passengers", _col(passengers, n, np.int16, "passengers"))
        s(self, "max_wait_s", _col(max_wait_s, n, np.int32, "max_wait_s"))
        s(self, "shareable", _col(shareable, n, np.bool_, "shareable"))
        s(self, "operator", _col(operator, n, np.int16, "operator"))

    def __len__(self) -> int:
        return int(self.request_id.size)


@dataclass(frozen=True, slots=True, eq=False, init=False)
class VehiclesUpdated:
    """Vehicles report what happened to them: an MDS event (or :data:`LOCATED`) at a node, maybe for a request.

    Rows apply in order. The stop-related events are how a vehicle executes its plan, one stop at a time:
    ``reservation_stop`` (arrived at a pickup), ``trip_start`` (the rider boarded), ``trip_stop`` (arrived at a
    dropoff), ``trip_end`` or ``trip_resume`` (the rider got out; ``trip_resume`` when others stay on board) and
    :data:`LOCATED` at a repositioning target.
    """

    time_s: int
    vehicle_id: tuple[str, ...]
    event: NDArray[np.int8]
    node: I32
    request_id: I64

    def __init__(
        self, time_s: int, vehicle_id: ArrayLike, event: ArrayLike, node: ArrayLike, request_id: ArrayLike = -1
    ) -> None:
        ids = _ids(vehicle_id, "vehicle_id")
        n = len(ids)
        s = object.__setattr__
        s(self, "time_s", int(time_s))
        s(self, "vehicle_id", ids)
        s(self, "event", _col(event, n, np.int8, "event"))
        s(self, "node", _col(node, n, np.int32, "node"))
        s(self, "request_id", _col(request_id, n, np.int64, "request_id"))

    def __len__(self) -> int:
        return len(self.vehicle_id)


@dataclass(frozen=True, slots=True, eq=False, init=False)
class RequestsCancelled:
    """Riders cancelled these requests (open or assigned, not yet on board)."""

    time_s: int
    request_id: I64

    def __init__(self, time_s: int, request_id: ArrayLike) -> None:
        ids = np.atleast_1d(np.asarray(request_id))
        object.__setattr__(self, "time_s", int(time_s))
        object.__setattr__(self, "request_id", _col(ids, ids.size, np.int64, "request_id"))

    def __len__(self) -> int:
        return int(self.request_id.size)


@dataclass(frozen=True, slots=True, eq=False, init=False)
class VehiclesDocked:
    """New vehicles join the platform (state ``non_operational``: send ``service_start`` to put them in service).

    Parameters
    ----------
    vehicle_id : ids
        External ids (MDS ``device_id``), unique over the engine's life.
    node : int array
        Where each one is.
    capacity : int or array
        Seats.
    operator : int or array
        Operator index (0 for a single fleet).
    """

    time_s: int
    vehicle_id: tuple[str, ...]
    node: I32
    capacity: NDArray[np.int16]
    operator: NDArray[np.int16]

    def __init__(
        self, time_s: int, vehicle_id: ArrayLike, node: ArrayLike, *, capacity: ArrayLike = 4, operator: ArrayLike = 0
    ) -> None:
        ids = _ids(vehicle_id, "vehicle_id")
        n = len(ids)
        s = object.__setattr__
        s(self, "time_s", int(time_s))
        s(self, "vehicle_id", ids)
        s(self, "node", _col(node, n, np.int32, "node"))
        s(self, "capacity", _col(capacity, n, np.int16, "capacity"))
        s(self, "operator", _col(operator, n, np.int16, "operator"))

    def __len__(self) -> int:
        return len(self.vehicle_id)


@dataclass(frozen=True, slots=True, eq=False, init=False)
class VehiclesRetired:
    """Vehicles leave the platform (shift end, undocking): no new work; each is reported in
    :attr:`Decisions.retired` as soon as its plan is empty (at once if it already is)."""

    time_s: int
    vehicle_id: tuple[str, ...]

    def __init__(self, time_s: int, vehicle_id: ArrayLike) -> None:
        object.__setattr__(self, "time_s", int(time_s))
        object.__setattr__(self, "vehicle_id", _ids(vehicle_id, "vehicle_id"))

    def __len__(self) -> int:
        return len(self.vehicle_id)


@dataclass(frozen=True, slots=True, eq=False, init=False)
class OffersAnswered:
    """Human drivers answer offers (:attr:`~.decisions.Decisions.offer_request`): accepted or declined.

    An accepted offer becomes an assignment (in :attr:`~.decisions.Decisions.assign_request`, the pickup timed from
    the answer); a declined one sends the request back to matching (never again to the same driver). An answer to
    an offer that is not pending (lapsed, withdrawn, never made) is refused.
    """

    time_s: int
    request_id: I64
    vehicle_id: tuple[str, ...]
    accepted: NDArray[np.bool_]

    def __init__(self, time_s: int, request_id: ArrayLike, vehicle_id: ArrayLike, accepted: ArrayLike) -> None:
        ids = np.atleast_1d(np.asarray(request_id))
        n = ids.size
        vids = _ids(vehicle_id, "vehicle_id")
        if len(vids) != n:
            raise DispatchError(f"vehicle_id: expected {n} values, got {len(vids)}")
        s = object.__setattr__
        s(self, "time_s", int(time_s))
        s(self, "request_id", _col(ids, n, np.int64, "request_id"))
        s(self, "vehicle_id", vids)
        acc = np.asarray(accepted)
        if acc.size and acc.dtype != np.bool_:
            raise DispatchError(f"accepted: expected booleans, got {acc.dtype}")
        s(self, "accepted", _col(acc, n, np.bool_, "accepted"))

    def __len__(self) -> int:
        return int(self.request_id.size)


@dataclass(frozen=True, slots=True, eq=False, init=False)
class VehiclesOffDuty:
    """Vehicles go off duty (an operator's hours end, a driver's shift ends): no new work from now on.

    Each vehicle finishes the riders in its plan (a repositioning target is dropped), then drives to
    ``return_node`` if one is given (-1: stays where it ends), and is reported in
    :attr:`~.decisions.Decisions.off_duty` once its plan is empty; the caller then ends its service
    (``service_end``, MDS-legal from ``available``). ``service_start`` (or :class:`VehiclesOnDuty` for one still
    finishing) brings it back.
    """

    time_s: int
    vehicle_id: tuple[str, ...]
    return_node: I32

    def __init__(self, time_s: int, vehicle_id: ArrayLike, return_node: ArrayLike = -1) -> None:
        ids = _ids(vehicle_id, "vehicle_id")
        object.__setattr__(self, "time_s", int(time_s))
        object.__setattr__(self, "vehicle_id", ids)
        object.__setattr__(self, "return_node", _col(return_node, len(ids), np.int32, "return_node"))

    def __len__(self) -> int:
        return len(self.vehicle_id)


@dataclass(frozen=True, slots=True, eq=False, init=False)
class VehiclesOnDuty:
    """Vehicles sent off duty that are still in service (finishing their plan) take work again."""

    time_s: int
    vehicle_id: tuple[str, ...]

    def __init__(self, time_s: int, vehicle_id: ArrayLike) -> None:
        object.__setattr__(self, "time_s", int(time_s))
        object.__setattr__(self, "vehicle_id", _ids(vehicle_id, "vehicle_id"))

    def __len__(self) -> int:
        return len(self.vehicle_id)


#: What :func:`continuation_id` adds to a request id: the new request of a rider re-dispatched from on board.
CONTINUATION_ID_STEP = 1 << 40


def continuation_id(request_id: int) -> int:
    """The default id of the request that continues ``request_id`` after its rider left a stopped vehicle
    (:class:`RidersDisembarked` without ``new_request_id``): ``request_id + 2**40``.

    Raises
    ------
    DispatchError
        If the result does not fit a signed 64-bit id.
    """
    new = int(request_id) + CONTINUATION_ID_STEP
    if new > np.iinfo(np.int64).max:
        raise DispatchError(f"request {int(request_id)}: no room for a continuation id above it; give new_request_id")
    return new


@dataclass(frozen=True, slots=True, eq=False, init=False)
class RidersDisembarked:
    """Riders on board get out away from their drop-off, and ride on with another vehicle.

    For when a vehicle stops service with riders on board (a driverless vehicle's disengagement that stops it, a
    breakdown): each row says the rider of ``request_id`` left ``vehicle_id`` at ``node``, which must be where the
    engine last heard the vehicle is (report its position with :data:`LOCATED` first) and not the rider's drop-off
    (there the rider simply alights: ``trip_end``). The engine then

    * ends the request (status ``redispatched``; its outcome reason is
      :attr:`~.reasons.Reason.VEHICLE_STOPPED`), takes its drop-off out of the vehicle's plan and its passengers
      off the vehicle's load;
    * opens a new request ``new_request_id`` (default :func:`continuation_id` of the old one) from ``node`` to the
      original drop-off, at ``time_s``: same party size and sharing, the original's maximum wait counted from now,
      and any operator may serve it. It is never turned down at its first decision: like a re-opened request it
      waits for a vehicle until its deadline (and may expire then).

    :attr:`~.decisions.Decisions.redispatched_request` and ``redispatched_as`` list the pairs. The engine does not
    take the vehicle out of service: send it off duty (:class:`VehiclesOffDuty`) first if it is to take no new work.
    """

    time_s: int
    vehicle_id: tuple[str, ...]
    request_id: I64
    node: I32
    new_request_id: I64

    def __init__(
        self,
        time_s: int,
        vehicle_id: ArrayLike,
        request_id: ArrayLike,
        node: ArrayLike,
        new_request_id: ArrayLike | None = None,
    ) -> None:
        ids = np.atleast_1d(np.asarray(request_id))
        n = ids.size
        vids = _ids(vehicle_id, "vehicle_id")
        if len(vids) == 1 and n > 1:
            vids = vids * n
        if len(vids) != n:
            raise DispatchError(f"vehicle_id: expected {n} values, got {len(vids)}")
        s = object.__setattr__
        s(self, "time_s", int(time_s))
        s(self, "vehicle_id", vids)
        rid = _col(ids, n, np.int64, "request_id")
        s(self, "request_id", rid)
        s(self, "node", _col(node, n, np.int32, "node"))
        if new_request_id is None:
            new_request_id = [continuation_id(x) for x in rid.tolist()]
        s(self, "new_request_id", _col(np.atleast_1d(np.asarray(new_request_id)), n, np.int64, "new_request_id"))

    def __len__(self) -> int:
        return int(self.request_id.size)


@dataclass(frozen=True, slots=True, eq=False)
class Tick:
    """Time has passed (batch policies decide here; expiry and rebalancing run on every input)."""

    time_s: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "time_s", int(self.time_s))


#: Everything :meth:`DispatchEngine.handle` accepts.
Event = (
    RequestsArrived
    | VehiclesUpdated
    | RequestsCancelled
    | VehiclesDocked
    | VehiclesRetired
    | OffersAnswered
    | VehiclesOffDuty
    | VehiclesOnDuty
    | RidersDisembarked
    | Tick
)

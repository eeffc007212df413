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


@dataclass(frozen=True, slots=True, eq=False)
class Tick:
    """Time has passed (batch policies decide here; expiry and rebalancing run on every input)."""

    time_s: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "time_s", int(self.time_s))


#: Everything :meth:`DispatchEngine.handle` accepts.
Event = RequestsArrived | VehiclesUpdated | RequestsCancelled | VehiclesDocked | VehiclesRetired | Tick

"""The matching problem a policy solves, and its answer.

A policy sees a :class:`MatchProblem`: the decision time, the open requests as columns, a read-only view of the
whole fleet (:class:`FleetView`: every vehicle's leg, load, capacity and stop plan) and the travel times. It returns
an :class:`Assignment`. It never changes the engine's state: the engine validates and applies the answer itself
(state transitions, bookkeeping), so every policy gets the same guarantees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ..network.travel import TravelTimes
from .plans import Dwell, Stop

if TYPE_CHECKING:
    from .operators import PairRules

I64 = NDArray[np.int64]
I32 = NDArray[np.int32]


class FleetView(Protocol):
    """Read-only view of the engine's fleet (indices are dense vehicle indices)."""

    @property
    def size(self) -> int:
        """Number of vehicles ever docked (retired ones included, never dispatchable)."""
        ...

    @property
    def capacity(self) -> NDArray[np.int16]:
        """Seats per vehicle."""
        ...

    @property
    def load(self) -> NDArray[np.int16]:
        """Passengers on board per vehicle."""
        ...

    @property
    def operator(self) -> NDArray[np.int16]:
        """Operator index per vehicle."""
        ...

    @property
    def leg_node(self) -> I32:
        """Node each vehicle leaves from towards its first stop (its position when idle)."""
        ...

    @property
    def leg_s(self) -> I64:
        """When it leaves ``leg_node`` (for a vehicle standing at a stop: when its dwell ends)."""
        ...

    @property
    def at_stop(self) -> NDArray[np.bool_]:
        """Whether each vehicle stands at its first stop."""
        ...

    def dispatchable(self) -> NDArray[np.bool_]:
        """Vehicles that may take new work (in service, contactable, not retiring)."""
        ...

    def free(self, now: int) -> tuple[I32, I32, I64]:
        """Dispatchable vehicles with no rider in their plan: ``(vehicle, node, ready_s)`` sorted by
        ``(node, ready_s, vehicle)``.

        An idle vehicle is ready at its node now; a repositioning one is counted at its target when it gets there
        (the engine may divert it earlier on its way, which can only be faster).
        """
        ...

    @property
    def idle_count(self) -> I32:
        """Idle vehicles (in service, empty plan) per network node."""
        ...

    def idle_vehicles_at(self, node: int) -> list[int]:
        """Idle vehicles at ``node``, by increasing index."""
        ...

    def repositioning_vehicles(self, now: int) -> tuple[I32, I32, I64]:
        """Free vehicles driving to a repositioning target: ``(vehicle, target, arrival)``."""
        ...

    def plan(self, vehicle: int) -> list[Stop]:
        """The vehicle's stops (a copy)."""
        ...


@dataclass(frozen=True, slots=True, eq=False)
class MatchProblem:
    """Open requests to match at time ``now`` (rows are in arrival order).

    Attributes
    ----------
    now : int
        Decision time (epoch seconds).
    request : int64
        Dense request indices (what an :class:`Assignment` refers to).
    o_node, d_node : int32
    deadline_s : int64
        Latest pickup (request time + max wait).
    latest_dropoff_s : int64
        Latest dropoff (request time + direct ride time + max delay).
    passengers : int16
    shareable : bool
        The rider accepts pooling.
    operator : int16
        Operator the request is restricted to, -1 = any.
    fleet : FleetView
    travel : TravelTimes
    dwell : Dwell
    requests : mapping of str to array
        Read-only columns of every request the engine knows, by dense index (``pax``, ``deadline``,
        ``latest_dropoff``, ``shareable``, ``o``, ``d``...): what pooling needs about riders already in plans.
    market : PairRules, optional
        With several operators (the marketplace): the feasibility of each (vehicle, request) pair (service areas,
        pooling allowed, offers to human drivers) and the batch assignment's cost; every policy must consult it.
        None: any vehicle may serve any request its seats, windows and operator constraint allow.
    new_rows : bool, one per row, optional
        Rows decided for the first time, or re-opened, since the last decision (None: treat every row as new).
    retry_vehicles : int32, optional
        Vehicles whose plans gained room since the last decision (seats freed at dropoffs, plans cut by a
        cancellation or a target reached, vehicles docked or back in service): a row that is not new can only fit
        into one of these, if its plans were exactly timed before. None: no such knowledge, try every vehicle.
        Policies may ignore both (``immediate`` and ``batch`` do).
    """

    now: int
    request: I64
    o_node: I32
    d_node: I32
    deadline_s: I64
    latest_dropoff_s: I64
    passengers: NDArray[np.int16]
    shareable: NDArray[np.bool_]
    operator: NDArray[np.int16]
    fleet: FleetView
    travel: TravelTimes
    dwell: Dwell
    requests: Mapping[str, NDArray[Any]]
    market: PairRules | None = None
    new_rows: NDArray[np.bool_] | None = None
    retry_vehicles: I32 | None = None

    def __len__(self) -> int:
        return int(self.request.size)


@dataclass(frozen=True, slots=True, eq=False)
class Assignment:
    """A policy's answer.

    Attributes
    ----------
    rows : int64
        Rows of the :class:`MatchProblem` that get a vehicle (each at most once).
    vehicles : int32
        The vehicle for each of ``rows``.
    pickup_s : int64
        When that vehicle is planned to reach the pickup (epoch seconds).
    reachable : bool, one per problem row
        Whether some vehicle could have served the request in time (a request that lost a competition may wait;
        one nobody can serve is rejected at its first decision).
    plans : dict or None
        The new full stop plan of every vehicle touched, for policies that build plans (pooling). None: each
        vehicle in ``vehicles`` (appearing once) drops any repositioning target and gets ``[pickup, dropoff]``.
    """

    rows: I64
    vehicles: I32
    pickup_s: I64
    reachable: NDArray[np.bool_]
    plans: dict[int, list[Stop]] | None = None

    def __post_init__(self) -> None:
        if not (self.rows.size == self.vehicles.size == self.pickup_s.size):
            raise ValueError("Assignment: rows, vehicles and pickup_s must have equal length")
        if np.unique(self.rows).size != self.rows.size:
            raise ValueError("Assignment: a request was given two vehicles")
        if self.plans is None and np.unique(self.vehicles).size != self.vehicles.size:
            raise ValueError("Assignment: a vehicle was given two requests without a plan")

    @classmethod
    def none(cls, n_rows: int, *, waiting: bool = False) -> Assignment:
        """Nothing assigned; nothing reachable, or (``waiting``) every request left to wait for a later decision."""
        return cls(
            rows=np.empty(0, np.int64),
            vehicles=np.empty(0, np.int32),
            pickup_s=np.empty(0, np.int64),
            reachable=np.full(n_rows, waiting, dtype=bool),
        )

"""The matching problem a policy solves, and its answer.

A policy sees a :class:`MatchProblem`: the decision time, the open requests as columns and a read-only view of the
idle vehicles (:class:`IdleFleet`). It returns a :class:`Matching`. It never changes the engine's state: the engine
applies the matching (state transitions, bookkeeping) itself, so every policy gets the same guarantees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from ..network import Router

I64 = NDArray[np.int64]
I32 = NDArray[np.int32]


class IdleFleet(Protocol):
    """Read-only view of the vehicles a policy may assign (MDS state ``available``)."""

    @property
    def count(self) -> I32:
        """Idle vehicles per node (length = number of network nodes)."""
        ...

    @property
    def capacity(self) -> NDArray[np.int16]:
        """Seats per vehicle (all vehicles, indexed by vehicle id)."""
        ...

    def nodes(self) -> I32:
        """Nodes holding at least one idle vehicle, increasing."""
        ...

    def vehicles_at(self, node: int) -> list[int]:
        """Idle vehicles at ``node``, by increasing id."""
        ...

    def by_node(self) -> tuple[I32, I32, I64, I64]:
        """All idle vehicles sorted by (node, id), with the distinct nodes, group starts and group sizes."""
        ...


@dataclass(frozen=True, slots=True, eq=False)
class MatchProblem:
    """Open requests to match at time ``now`` (rows are in arrival order).

    Attributes
    ----------
    now : int
        Decision time (seconds; the engine's caller defines the epoch).
    request_id, o_node, deadline_s, passengers : arrays, one row per open request
        ``deadline_s`` is the latest acceptable pickup time (request time + max wait).
    router : Router
        Travel times; ETAs are taken with the departure at ``now``.
    idle : IdleFleet
        The vehicles that may be assigned.
    """

    now: int
    request_id: I64
    o_node: I32
    deadline_s: I64
    passengers: NDArray[np.int16]
    router: Router
    idle: IdleFleet

    def __len__(self) -> int:
        return int(self.request_id.size)


@dataclass(frozen=True, slots=True, eq=False)
class Matching:
    """A policy's answer.

    Attributes
    ----------
    rows : int64
        Rows of the :class:`MatchProblem` that get a vehicle.
    vehicles : int32
        The vehicle for each of ``rows`` (never repeated).
    eta_s : int32
        Seconds from ``now`` until that vehicle reaches the pickup.
    reachable : bool, one per problem row
        Whether some idle vehicle could reach the request within its deadline (the engine uses this to tell a
        request that lost a competition, which may wait, from one nobody can serve, which is rejected).
    """

    rows: I64
    vehicles: I32
    eta_s: I32
    reachable: NDArray[np.bool_]

    def __post_init__(self) -> None:
        if not (self.rows.size == self.vehicles.size == self.eta_s.size):
            raise ValueError("Matching: rows, vehicles and eta_s must have equal length")
        if np.unique(self.vehicles).size != self.vehicles.size:
            raise ValueError("Matching: a vehicle was given two requests")
        if np.unique(self.rows).size != self.rows.size:
            raise ValueError("Matching: a request was given two vehicles")

    @classmethod
    def none(cls, n_rows: int) -> Matching:
        return cls(
            rows=np.empty(0, np.int64),
            vehicles=np.empty(0, np.int32),
            eta_s=np.empty(0, np.int32),
            reachable=np.zeros(n_rows, dtype=bool),
        )

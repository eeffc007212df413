"""The vehicle motion model: where a vehicle is, interpolated along its shortest path.

Vehicles drive the router's fastest path at the router's travel times (time-of-day factor at departure, see
:mod:`robotaxi.network.speeds`). A leg is stored as four numbers per vehicle (from node, to node, start, end), not as
a path: the path is looked up only when someone asks where a moving vehicle is, and the time along the leg is
shared between its edges in proportion to their travel times at departure (free-flow times, major roads scaled by
their own factor when the profile has road classes; the per-leg overhead is spread along with them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..network import Router


@dataclass(frozen=True, slots=True)
class Position:
    """Where a vehicle is at one instant: between ``node_from`` and ``node_to``, ``fraction`` of the way."""

    node_from: int
    node_to: int
    fraction: float
    lon: float
    lat: float

    @property
    def nearest_node(self) -> int:
        """The node a stopping vehicle would report (the one it is closer to)."""
        return self.node_to if self.fraction >= 0.5 else self.node_from


class Motion:
    """Current leg of every vehicle (a parked vehicle has ``from == to``).

    Legs are plain Python lists: the simulator reads and writes single entries millions of times a day, which is
    several times faster on lists than on NumPy arrays.
    """

    def __init__(self, router: Router, start_nodes: NDArray[np.int32]) -> None:
        self.router = router
        self.leg_from: list[int] = start_nodes.astype(np.int64).tolist()
        self.leg_to: list[int] = list(self.leg_from)
        self.leg_start: list[int] = [0] * len(self.leg_from)
        self.leg_end: list[int] = [0] * len(self.leg_from)

    def start_legs(self, vehicles: list[int], src: list[int], dst: list[int], t0: list[int], t1: list[int]) -> None:
        """Vehicles leave ``src`` at ``t0`` and reach ``dst`` at ``t1``."""
        for v, a, b, s, e in zip(vehicles, src, dst, t0, t1, strict=True):
            self.leg_from[v], self.leg_to[v], self.leg_start[v], self.leg_end[v] = a, b, s, e

    def set_leg(self, vehicle: int, src: int, dst: int, t0: int, t1: int) -> None:
        """One vehicle leaves ``src`` at ``t0`` and reaches ``dst`` at ``t1``."""
        self.leg_from[vehicle], self.leg_to[vehicle] = src, dst
        self.leg_start[vehicle], self.leg_end[vehicle] = t0, t1

    def park(self, vehicle: int, node: int, t: int) -> None:
        self.leg_from[vehicle] = self.leg_to[vehicle] = node
        self.leg_start[vehicle] = self.leg_end[vehicle] = t

    def position(self, vehicle: int, t: int) -> Position:
        """Interpolated position of ``vehicle`` at time ``t`` (clamped to its current leg)."""
        a, b = int(self.leg_from[vehicle]), int(self.leg_to[vehicle])
        net = self.router.network
        t0, t1 = int(self.leg_start[vehicle]), int(self.leg_end[vehicle])
        if a == b or t >= t1:
            return Position(b, b, 1.0, float(net.lon[b]), float(net.lat[b]))
        if t <= t0:
            return Position(a, a, 0.0, float(net.lon[a]), float(net.lat[a]))
        path = self.router.path(a, b)
        edge_t = self.router.edge_times(self.router.path_edges(path), t0)
        cum = np.concatenate(([0.0], np.cumsum(edge_t)))
        target = (t - t0) / (t1 - t0) * cum[-1]
        k = int(np.clip(np.searchsorted(cum, target, side="right") - 1, 0, edge_t.size - 1))
        frac = float((target - cum[k]) / edge_t[k])
        u, v = int(path[k]), int(path[k + 1])
        lon = float(net.lon[u] + frac * (net.lon[v] - net.lon[u]))
        lat = float(net.lat[u] + frac * (net.lat[v] - net.lat[u]))
        return Position(u, v, frac, lon, lat)

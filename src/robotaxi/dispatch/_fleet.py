"""The engine's own view of the fleet: per-vehicle columns, stop plans and the free-vehicle index.

Internal to the engine. Columns grow when vehicles dock; a vehicle's dense index never changes and is never reused.
The free-vehicle index (idle vehicles by node, repositioning vehicles by target) is kept up to date incrementally,
because the immediate policy asks for it once per request.
"""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..fleet.states import VehicleState
from .plans import REPOSITION, Stop

I64 = NDArray[np.int64]
I32 = NDArray[np.int32]
_AVAILABLE = int(VehicleState.AVAILABLE)
_IN_SERVICE = np.zeros(len(VehicleState), dtype=bool)
_IN_SERVICE[[VehicleState.AVAILABLE, VehicleState.RESERVED, VehicleState.ON_TRIP, VehicleState.STOPPED]] = True

#: Per-vehicle columns: name -> (dtype, initial value).
COLUMNS: dict[str, tuple[Any, int]] = {
    "state": (np.int8, int(VehicleState.NON_OPERATIONAL)),
    "prev_state": (np.int8, -1),  # state before comms_lost
    "capacity": (np.int16, 0),
    "load": (np.int16, 0),
    "operator": (np.int16, 0),
    "leg_node": (np.int32, 0),
    "leg_s": (np.int64, 0),
    "at_stop": (np.bool_, False),
    "end_node": (np.int32, 0),  # where the plan ends ...
    "end_s": (np.int64, 0),  # ... and when (repositioning: arrival at the target)
    "n_riders": (np.int32, 0),  # requests in the plan (assigned or on board)
    "draining": (np.bool_, False),  # asked to retire: no new work
    "retired": (np.bool_, False),
    "idx_node": (np.int32, -1),  # node under which the vehicle sits in the idle index, or -1
    "off_duty": (np.int8, 0),  # 0 on duty, 1 going off duty (finishing its plan), 2 off duty (reported)
    "offer": (np.int32, -1),  # request row of the offer the vehicle's driver has not answered yet, or -1
}


class FleetState:
    """Columns, plans and the free index. Implements :class:`~.problem.FleetView` for the policies."""

    def __init__(self, n_nodes: int) -> None:
        self.n = 0
        self.cols: dict[str, NDArray[Any]] = {k: np.empty(0, dtype=d) for k, (d, _) in COLUMNS.items()}
        self.plans: list[list[Stop]] = []
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.idle_count = np.zeros(n_nodes, dtype=np.int32)
        self.idle_at: dict[int, list[int]] = {}
        self.repositioning: dict[int, tuple[int, int]] = {}  # vehicle -> (target, arrival)

    # ------------------------------------------------------------------ growth
    def add(self, ids: tuple[str, ...], node: I32, capacity: NDArray[np.int16], operator: NDArray[np.int16]) -> None:
        k = len(ids)
        for name, (dtype, init) in COLUMNS.items():
            self.cols[name] = np.concatenate((self.cols[name], np.full(k, init, dtype=dtype)))
        sl = slice(self.n, self.n + k)
        self.cols["capacity"][sl] = capacity
        self.cols["operator"][sl] = operator
        self.cols["leg_node"][sl] = node
        self.cols["end_node"][sl] = node
        for i, vid in enumerate(ids):
            self.index[vid] = self.n + i
        self.ids.extend(ids)
        self.plans.extend([] for _ in range(k))
        self.n += k

    # ------------------------------------------------------------------ free index
    def is_idle(self, v: int) -> bool:
        c = self.cols
        return bool(
            c["state"][v] == _AVAILABLE
            and not self.plans[v]
            and not c["draining"][v]
            and not c["retired"][v]
            and not c["off_duty"][v]
            and c["offer"][v] < 0
        )

    def unindex(self, v: int) -> None:
        node = int(self.cols["idx_node"][v])
        if node >= 0:
            self.idle_count[node] -= 1
            at = self.idle_at[node]
            at.remove(v)
            if not at:
                del self.idle_at[node]
            self.cols["idx_node"][v] = -1
        self.repositioning.pop(v, None)

    def reindex(self, v: int) -> None:
        """Put ``v`` back in the free index if it is free (call after every change to it)."""
        self.unindex(v)
        c = self.cols
        if c["state"][v] != _AVAILABLE or c["draining"][v] or c["retired"][v] or c["off_duty"][v] or c["offer"][v] >= 0:
            return
        plan = self.plans[v]
        if not plan:
            node = int(c["leg_node"][v])
            self.idle_count[node] += 1
            bisect.insort(self.idle_at.setdefault(node, []), v)
            self.cols["idx_node"][v] = node
        elif len(plan) == 1 and plan[0][0] == REPOSITION:
            self.repositioning[v] = (int(plan[0][2]), int(c["end_s"][v]))

    # ------------------------------------------------------------------ FleetView
    @property
    def size(self) -> int:
        return self.n

    def _ro(self, name: str) -> NDArray[Any]:
        a = self.cols[name][: self.n]
        a.flags.writeable = False
        return a

    @property
    def capacity(self) -> NDArray[np.int16]:
        return self._ro("capacity")

    @property
    def load(self) -> NDArray[np.int16]:
        return self._ro("load")

    @property
    def operator(self) -> NDArray[np.int16]:
        return self._ro("operator")

    @property
    def leg_node(self) -> I32:
        return self._ro("leg_node")

    @property
    def leg_s(self) -> I64:
        return self._ro("leg_s")

    @property
    def at_stop(self) -> NDArray[np.bool_]:
        return self._ro("at_stop")

    def dispatchable(self) -> NDArray[np.bool_]:
        c = self.cols
        n = self.n
        out: NDArray[np.bool_] = _IN_SERVICE[c["state"][:n]] & ~c["draining"][:n] & ~c["retired"][:n]
        out &= (c["off_duty"][:n] == 0) & (c["offer"][:n] < 0)
        return out

    def idle_vehicles_at(self, node: int) -> list[int]:
        return self.idle_at.get(node, [])

    def repositioning_vehicles(self, now: int) -> tuple[I32, I32, I64]:
        if not self.repositioning:
            return np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0, np.int64)
        # Sorted by vehicle: the order must not depend on when each one started moving (a restored engine
        # rebuilds this index in vehicle order and must decide exactly as the original).
        rv = np.asarray(sorted(self.repositioning), dtype=np.int32)
        tg = np.asarray([self.repositioning[int(v)] for v in rv], dtype=np.int64).reshape(-1, 2)
        return rv, tg[:, 0].astype(np.int32), np.maximum(tg[:, 1], now)

    def free(self, now: int) -> tuple[I32, I32, I64]:
        idx = self.cols["idx_node"][: self.n]
        v_idle = np.flatnonzero(idx >= 0).astype(np.int32)
        n_idle = idx[v_idle]
        order = np.lexsort((v_idle, n_idle))
        v_idle, n_idle = v_idle[order], n_idle[order]
        r_idle = np.full(v_idle.size, now, dtype=np.int64)
        if not self.repositioning:
            return v_idle, n_idle, r_idle
        rv = np.asarray(sorted(self.repositioning), dtype=np.int32)
        tg = np.asarray([self.repositioning[int(v)] for v in rv], dtype=np.int64).reshape(-1, 2)
        v = np.concatenate((v_idle, rv))
        node = np.concatenate((n_idle, tg[:, 0].astype(np.int32)))
        ready = np.concatenate((r_idle, np.maximum(tg[:, 1], now)))
        order = np.lexsort((v, ready, node))
        return v[order], node[order], ready[order]

    def plan(self, vehicle: int) -> list[Stop]:
        return list(self.plans[vehicle])

    # ------------------------------------------------------------------ snapshot
    def to_state(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "cols": {k: a[: self.n].copy() for k, a in self.cols.items()},
            "plans": [list(p) for p in self.plans],
            "ids": list(self.ids),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], n_nodes: int) -> FleetState:
        f = cls(n_nodes)
        f.n = int(state["n"])
        f.cols = {k: np.asarray(state["cols"][k], dtype=d).copy() for k, (d, _) in COLUMNS.items()}
        f.plans = [[tuple(s) for s in p] for p in state["plans"]]
        f.ids = list(state["ids"])
        f.index = {vid: i for i, vid in enumerate(f.ids)}
        f.cols["idx_node"][:] = -1
        for v in range(f.n):
            f.reindex(v)
        return f

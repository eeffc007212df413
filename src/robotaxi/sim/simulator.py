"""The discrete-event simulator: a heap of timed vehicle events, merged with the sorted request stream and the
policy's clock ticks, driving one :class:`~robotaxi.dispatch.DispatchEngine`.

There is no fixed time step. The loop always handles the earliest of: the next vehicle event on the heap, the next
request arrival, the next batch tick; at equal times in that order (a vehicle that frees up at ``t`` can serve a
request made at ``t``). Once a trip is assigned its timeline is fixed (no re-assignment, deterministic travel
times), so its four vehicle events are pushed at once and the event log rows are written as columns.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..demand import Requests
from ..dispatch import Decisions, DispatchEngine, DispatchPolicy
from ..errors import SimulationError
from ..fleet import EventType, Fleet, VehicleState
from ..network import Router
from .motion import Motion
from .result import CANCEL_MAX_WAIT, Outcome, RequestOutcomes, SimResult, VehicleEvents

logger = logging.getLogger(__name__)

I64 = NDArray[np.int64]
I32 = NDArray[np.int32]
_INF = np.iinfo(np.int64).max

# Heap event kinds, in the order a trip goes through them; the node is the pickup for the first two.
_KIND_EVENTS = (EventType.RESERVATION_STOP, EventType.TRIP_START, EventType.TRIP_STOP, EventType.TRIP_END)
_KIND_STATES = (VehicleState.STOPPED, VehicleState.ON_TRIP, VehicleState.STOPPED, VehicleState.AVAILABLE)


@dataclass(frozen=True, slots=True)
class SimParams:
    """Simulation parameters.

    Parameters
    ----------
    start_s, end_s : int
        Demand window, seconds since the requests' ``day_start``: requests with ``start_s <= time_s < end_s``.
        The run goes on after ``end_s`` until every request is closed.
    pickup_dwell_s : int
        Time at the pickup between the vehicle's arrival and the trip start (boarding).
    dropoff_dwell_s : int
        Time at the dropoff between arrival and the trip end (alighting).
    max_wait_s : int
        Default longest wait for pickup (requests may carry their own).
    """

    start_s: int = 0
    end_s: int = 86_400
    pickup_dwell_s: int = 30
    dropoff_dwell_s: int = 30
    max_wait_s: int = 600

    def __post_init__(self) -> None:
        if not 0 <= self.start_s < self.end_s:
            raise ValueError(f"the time window needs 0 <= start_s < end_s, got {self.start_s}..{self.end_s}")
        if self.pickup_dwell_s < 0 or self.dropoff_dwell_s < 0:
            raise ValueError("dwell times must be >= 0")
        if self.max_wait_s <= 0:
            raise ValueError(f"max_wait_s must be > 0, got {self.max_wait_s}")


class _Log:
    """Vehicle event rows, appended as column chunks; a global sequence number keeps same-time events in order."""

    def __init__(self) -> None:
        self.chunks: list[tuple[I64, I64, I32, NDArray[np.int8], NDArray[np.int8], I32, I64]] = []
        self.seq = 0

    def add(
        self,
        time_s: I64,
        vehicle: I32,
        event: NDArray[np.int8],
        state: NDArray[np.int8],
        node: I32,
        request: I64,
    ) -> None:
        n = time_s.size
        self.chunks.append(
            (time_s, np.arange(self.seq, self.seq + n, dtype=np.int64), vehicle, event, state, node, request)
        )
        self.seq += n

    def build(self) -> VehicleEvents:
        cols = [np.concatenate([c[i] for c in self.chunks]) for i in range(7)]
        order = np.lexsort((cols[1], cols[0]))
        return VehicleEvents(
            vehicle=cols[2][order].astype(np.int32),
            time_s=cols[0][order],
            event=cols[3][order].astype(np.int8),
            state=cols[4][order].astype(np.int8),
            node=cols[5][order].astype(np.int32),
            request=cols[6][order],
        )


class Simulator:
    """Runs one scenario: demand through a dispatch engine over a fleet on a network.

    Parameters
    ----------
    router : Router
    fleet : Fleet
    requests : Requests
        Demand; only the rows in ``params``' window are simulated.
    policy : DispatchPolicy
    params : SimParams
    """

    def __init__(
        self, router: Router, fleet: Fleet, requests: Requests, policy: DispatchPolicy, params: SimParams
    ) -> None:
        self.router = router
        self.fleet = fleet
        self.params = params
        self.policy = policy
        self.requests = requests.window(params.start_s, params.end_s)
        if len(self.requests) == 0:
            raise SimulationError(
                f"no requests in the time window {params.start_s}..{params.end_s} s",
                hint="check the scenario's [time] window against the demand",
            )
        n = router.network.n_nodes
        if int(self.requests.o_node.max()) >= n or int(self.requests.d_node.max()) >= n:
            raise SimulationError("the demand refers to nodes that are not in the network (wrong network?)")
        self.engine = DispatchEngine(
            router, policy, start_nodes=fleet.start_node, capacity=fleet.capacity, max_wait_s=params.max_wait_s
        )
        self.motion = Motion(router, fleet.start_node)
        nr = len(self.requests)
        self._o = self.requests.o_node
        self._d = self.requests.d_node
        self._outcome = np.zeros(nr, np.int8)
        self._reason = np.zeros(nr, np.int8)
        self._vehicle = np.full(nr, -1, np.int32)
        self._times = {k: np.full(nr, -1, np.int64) for k in ("assigned", "pickup", "board", "dropoff")}
        self._pickup_m = np.full(nr, -1, np.int32)
        self._ride_m = np.full(nr, -1, np.int32)
        self._serving = np.full(len(fleet), -1, np.int64)
        self._heap: list[tuple[int, int, int]] = []
        self._seq = 0
        self._log = _Log()
        self._now = params.start_s

    # ------------------------------------------------------------------ public
    def position(self, vehicle: int, t: int | None = None) -> tuple[float, float]:
        """Interpolated (lon, lat) of a vehicle at time ``t`` (default: the simulation's current time)."""
        p = self.motion.position(vehicle, self._now if t is None else t)
        return p.lon, p.lat

    def run(self, progress: Callable[[int, int], None] | None = None) -> SimResult:
        """Run to completion. ``progress(done_requests, total_requests)`` is called now and then."""
        t_wall = time.perf_counter()
        p = self.params
        n_v = len(self.fleet)
        vs = np.arange(n_v, dtype=np.int32)
        self.engine.vehicles_updated(vs, EventType.SERVICE_START, self.fleet.start_node, p.start_s)
        self._log_uniform(p.start_s, vs, EventType.SERVICE_START, VehicleState.AVAILABLE, self.fleet.start_node)
        self._loop(progress)
        if np.any(self._outcome == Outcome.PENDING):
            raise SimulationError(f"{int((self._outcome == Outcome.PENDING).sum())} requests left unresolved")
        end = max(self._now, p.end_s)
        nodes = self.engine.vehicle_node
        self.engine.vehicles_updated(vs, EventType.SERVICE_END, nodes, end)
        self._log_uniform(end, vs, EventType.SERVICE_END, VehicleState.NON_OPERATIONAL, nodes)
        wall = time.perf_counter() - t_wall
        outcomes = RequestOutcomes(
            outcome=self._outcome,
            reason=self._reason,
            vehicle=self._vehicle,
            assigned_s=self._times["assigned"],
            pickup_s=self._times["pickup"],
            board_s=self._times["board"],
            dropoff_s=self._times["dropoff"],
            pickup_m=self._pickup_m,
            ride_m=self._ride_m,
        )
        return SimResult(
            requests=self.requests,
            outcomes=outcomes,
            events=self._log.build(),
            fleet=self.fleet,
            start_s=p.start_s,
            end_s=p.end_s,
            last_event_s=int(self._now),
            wall_s=wall,
            policy=self.policy.name,
        )

    # ------------------------------------------------------------------ the event loop
    def _loop(self, progress: Callable[[int, int], None] | None) -> None:
        req_t = self.requests.time_s
        nr = req_t.size
        i = 0
        tick_every = self.policy.tick_seconds
        next_tick = self.params.start_s + tick_every if tick_every > 0 else _INF
        heap = self._heap
        engine = self.engine
        since_report = 0
        while True:
            t_heap = heap[0][0] if heap else _INF
            t_req = int(req_t[i]) if i < nr else _INF
            t = min(t_heap, t_req, next_tick)
            if t == _INF:
                break
            self._now = t
            if t_heap == t:
                self._vehicle_event(*heapq.heappop(heap))
            elif t_req == t:
                if self.policy.on_arrival:
                    j = int(np.searchsorted(req_t, t, side="right"))
                else:  # nothing is decided on arrival: hand over everything up to the next tick at once
                    j = int(np.searchsorted(req_t, next_tick, side="right"))
                rows = np.arange(i, j, dtype=np.int64)
                self._apply(
                    engine.requests_arrived(
                        rows,
                        req_t[i:j],
                        self._o[i:j],
                        passengers=self.requests.passengers[i:j],
                        max_wait_s=self.requests.max_wait_s[i:j],
                    ),
                    t,
                )
                since_report += j - i
                i = j
            else:
                self._cancel_expired(t)
                self._apply(engine.tick(t), t)
                open_ids, _ = engine.open_requests()
                next_tick = t + tick_every if (i < nr or open_ids.size) else _INF
            if progress is not None and since_report >= 2_000:
                progress(i, nr)
                since_report = 0
        if progress is not None:
            progress(nr, nr)

    def _cancel_expired(self, t: int) -> None:
        """Riders still unassigned past their deadline cancel (at the deadline itself)."""
        ids, deadline = self.engine.open_requests()
        gone = deadline < t
        if not gone.any():
            return
        rows = ids[gone]
        self.engine.requests_cancelled(rows, t)
        self._outcome[rows] = Outcome.CANCELLED
        self._reason[rows] = CANCEL_MAX_WAIT
        self._times["dropoff"][rows] = -1

    def _vehicle_event(self, t: int, _seq: int, code: int) -> None:
        v, kind = divmod(code, 4)
        row = int(self._serving[v])
        node = int(self._o[row] if kind < 2 else self._d[row])
        self.engine.vehicle_updated(v, _KIND_EVENTS[kind], node, t)
        if kind == 1:  # ride leg starts now
            self.motion.set_leg(v, node, int(self._d[row]), t, int(self._times["dropoff"][row]))
        elif kind == 3:
            self.motion.park(v, node, t)
            self._outcome[row] = Outcome.SERVED
            self._serving[v] = -1

    def _apply(self, d: Decisions, t: int) -> None:
        if d.reject_request.size:
            self._outcome[d.reject_request] = Outcome.REJECTED
            self._reason[d.reject_request] = d.reject_reason
        if d.assign_request.size:
            self._assign(d.assign_request, d.assign_vehicle, d.assign_eta_s.astype(np.int64), t)

    def _assign(self, rows: I64, veh: I32, eta: I64, t: int) -> None:
        p = self.params
        o, dn = self._o[rows], self._d[rows]
        start = self.motion.leg_to[veh].copy()
        ta = t + eta
        tb = ta + p.pickup_dwell_s
        tc = tb + self.router.times(o, dn, tb).astype(np.int64)
        te = tc + p.dropoff_dwell_s
        tm = self._times
        tm["assigned"][rows], tm["pickup"][rows], tm["board"][rows], tm["dropoff"][rows] = t, ta, tb, tc
        self._vehicle[rows] = veh
        self._pickup_m[rows] = self.router.distances(start, o)
        self._ride_m[rows] = self.router.distances(o, dn)
        self._serving[veh] = rows
        self.motion.start_legs(veh, start, o, np.full(rows.size, t, np.int64), ta)
        heap = self._heap
        base = veh.astype(np.int64) * 4
        for times, kind in ((ta, 0), (tb, 1), (tc, 2), (te, 3)):
            for tt, code in zip(times.tolist(), (base + kind).tolist(), strict=True):
                heapq.heappush(heap, (tt, self._seq, code))
                self._seq += 1
        # Log all five transitions of each trip now, in trip order (rows: trip-major, then event).
        n = rows.size
        ev = np.array([EventType.RESERVATION_START, *_KIND_EVENTS], dtype=np.int8)
        st = np.array([VehicleState.RESERVED, *_KIND_STATES], dtype=np.int8)
        self._log.add(
            np.column_stack((np.full(n, t, np.int64), ta, tb, tc, te)).ravel(),
            np.repeat(veh, 5),
            np.tile(ev, n),
            np.tile(st, n),
            np.column_stack((start, o, o, dn, dn)).ravel().astype(np.int32),
            np.repeat(rows, 5),
        )

    def _log_uniform(self, t: int, vs: I32, event: EventType, state: VehicleState, nodes: I32) -> None:
        n = vs.size
        self._log.add(
            np.full(n, t, np.int64),
            vs,
            np.full(n, int(event), np.int8),
            np.full(n, int(state), np.int8),
            np.asarray(nodes, np.int32),
            np.full(n, -1, np.int64),
        )

"""The dispatch engine: one event-driven core for the simulator and the live service.

The engine keeps its own view of the fleet (last known node, MDS state, which request each vehicle serves) and of
the open requests. It is driven by three kinds of input and answers with :class:`~.decisions.Decisions`:

* ``request_arrived`` / ``requests_arrived``: new ride requests;
* ``vehicle_updated`` / ``vehicles_updated``: a vehicle reports an MDS event (arrived at pickup, trip ended, went
  off service...) and where it is;
* ``tick(now)``: time has passed (batch policies decide here).

It never moves a vehicle and has no clock: every input carries its own time, and the caller (the simulator's
event loop or the HTTP service) decides when to call. Given the same inputs it gives the same decisions.

Request lifecycle, as the engine sees it: *open* (waiting for a vehicle) -> *assigned* (vehicle committed,
state ``reserved``) -> closed when the vehicle reports ``trip_end``. An open request is *rejected* at its first
decision if no idle vehicle can reach it before its deadline; one that could be reached but lost its vehicles to
other requests stays open for the next decision, until assigned or cancelled by the rider. If the vehicle reports
``provider_cancellation`` or ``driver_cancellation`` before the rider boards, the request is open again (same deadline,
never rejected): the rider still wants a ride, and the request must not be lost.
"""

from __future__ import annotations

import bisect
import logging

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import DispatchError, IllegalTransitionError
from ..fleet.states import TRANSITIONS, EventType, VehicleState, check_transitions, restore
from ..network import Router
from .decisions import NO_DECISIONS, Decisions, RejectReason
from .policies import DispatchPolicy
from .problem import MatchProblem

logger = logging.getLogger(__name__)

I64 = NDArray[np.int64]
I32 = NDArray[np.int32]
_AVAILABLE = int(VehicleState.AVAILABLE)
_RELEASE = frozenset(
    int(e)
    for e in (
        EventType.TRIP_END,
        EventType.PASSENGER_CANCELLATION,
        EventType.PROVIDER_CANCELLATION,
        EventType.DRIVER_CANCELLATION,
    )
)
_TABLE = {(int(s), int(e)): int(d) for (s, e), d in TRANSITIONS.items()}
# The operator or driver withdrew a reservation: the rider still wants a ride, so the request goes back to open.
_REOPEN = frozenset((int(EventType.PROVIDER_CANCELLATION), int(EventType.DRIVER_CANCELLATION)))


class _Idle:
    """The idle-vehicle index the policies see (implements :class:`~.problem.IdleFleet`)."""

    def __init__(self, n_nodes: int, capacity: NDArray[np.int16], state: NDArray[np.int8], node: I32) -> None:
        self._count = np.zeros(n_nodes, dtype=np.int32)
        self._at: dict[int, list[int]] = {}
        self._capacity = capacity
        self._state = state
        self._node = node

    @property
    def count(self) -> I32:
        return self._count

    @property
    def capacity(self) -> NDArray[np.int16]:
        return self._capacity

    @property
    def total(self) -> int:
        return int(self._count.sum())

    def add(self, v: int, node: int) -> None:
        self._count[node] += 1
        bisect.insort(self._at.setdefault(node, []), v)

    def remove(self, v: int, node: int) -> None:
        self._count[node] -= 1
        at = self._at[node]
        at.remove(v)
        if not at:
            del self._at[node]

    def nodes(self) -> I32:
        return np.flatnonzero(self._count).astype(np.int32)

    def vehicles_at(self, node: int) -> list[int]:
        return self._at.get(node, [])

    def by_node(self) -> tuple[I32, I32, I64, I64]:
        idle = np.flatnonzero(self._state == _AVAILABLE).astype(np.int32)
        node = self._node[idle]
        order = np.lexsort((idle, node))
        idle, node = idle[order], node[order]
        nodes, starts, counts = np.unique(node, return_index=True, return_counts=True)
        return idle, nodes.astype(np.int32), starts.astype(np.int64), counts.astype(np.int64)


class DispatchEngine:
    """Assigns ride requests to vehicles through a :class:`~.policies.DispatchPolicy`.

    Parameters
    ----------
    router : Router
        Travel times on the network the nodes refer to.
    policy : DispatchPolicy
        How requests are matched (see :data:`~.policies.POLICIES`).
    start_nodes : array of int
        Initial node of each vehicle (vehicle ids are ``0..len-1``).
    capacity : array of int
        Seats per vehicle.
    max_wait_s : int
        Default longest wait for pickup, for requests that do not carry their own.
    initial_state : VehicleState
        State of every vehicle before its first update (``non_operational``: send ``service_start``).
    """

    def __init__(
        self,
        router: Router,
        policy: DispatchPolicy,
        *,
        start_nodes: ArrayLike,
        capacity: ArrayLike,
        max_wait_s: int = 600,
        initial_state: VehicleState = VehicleState.NON_OPERATIONAL,
    ) -> None:
        if max_wait_s <= 0:
            raise DispatchError(f"max_wait_s must be > 0, got {max_wait_s}")
        self.router = router
        self.policy = policy
        self.max_wait_s = int(max_wait_s)
        self._node = np.array(start_nodes, dtype=np.int32)
        n_v = self._node.size
        if n_v == 0:
            raise DispatchError("the engine needs at least one vehicle")
        if self._node.min() < 0 or self._node.max() >= router.network.n_nodes:
            raise DispatchError("a vehicle start node is outside the network")
        self._cap = np.broadcast_to(np.asarray(capacity, dtype=np.int16), (n_v,)).copy()
        self._max_cap = int(self._cap.max())
        self._state = np.full(n_v, int(initial_state), dtype=np.int8)
        self._serving = np.full(n_v, -1, dtype=np.int64)
        self._idle = _Idle(router.network.n_nodes, self._cap, self._state, self._node)
        if initial_state == VehicleState.AVAILABLE:
            for v in range(n_v):
                self._idle.add(v, int(self._node[v]))
        self._assigned: dict[int, int] = {}
        # Assigned requests whose rider has not boarded yet: (pickup node, deadline, passengers), to re-open them.
        self._booked: dict[int, tuple[int, int, int]] = {}
        self._seen: set[int] = set()
        # Open requests, as columns in arrival order.
        self._rid = np.empty(0, np.int64)
        self._o = np.empty(0, np.int32)
        self._deadline = np.empty(0, np.int64)
        self._pax = np.empty(0, np.int16)
        self._decided = np.empty(0, bool)

    # ------------------------------------------------------------------ views
    @property
    def n_vehicles(self) -> int:
        return int(self._node.size)

    @property
    def vehicle_state(self) -> NDArray[np.int8]:
        """MDS state of each vehicle (a read-only copy)."""
        s = self._state.copy()
        s.setflags(write=False)
        return s

    @property
    def vehicle_node(self) -> I32:
        """Last known node of each vehicle (a read-only copy)."""
        n = self._node.copy()
        n.setflags(write=False)
        return n

    @property
    def n_idle(self) -> int:
        return self._idle.total

    def open_requests(self) -> tuple[I64, I64]:
        """Ids and pickup deadlines of the requests still waiting for a vehicle."""
        return self._rid.copy(), self._deadline.copy()

    def vehicle_of(self, request_id: int) -> int:
        """Vehicle serving an assigned request, or -1."""
        return self._assigned.get(int(request_id), -1)

    # ------------------------------------------------------------------ input: requests
    def request_arrived(
        self, request_id: int, time_s: int, o_node: int, *, passengers: int = 1, max_wait_s: int = -1
    ) -> Decisions:
        """One new request; see :meth:`requests_arrived`."""
        return self.requests_arrived([request_id], [time_s], [o_node], passengers=[passengers], max_wait_s=[max_wait_s])

    def requests_arrived(
        self,
        request_id: ArrayLike,
        time_s: ArrayLike,
        o_node: ArrayLike,
        *,
        passengers: ArrayLike = 1,
        max_wait_s: ArrayLike = -1,
    ) -> Decisions:
        """New requests that arrived at the same instant (``now = max(time_s)``), in arrival order.

        A policy with ``on_arrival`` decides them at once; others keep them open until the next :meth:`tick`.
        Parties larger than every vehicle are rejected at once (``over_capacity``).

        Raises
        ------
        DispatchError
            On a repeated request id or a node outside the network.
        """
        rid = np.atleast_1d(np.asarray(request_id, dtype=np.int64))
        n = rid.size
        if n == 0:
            return NO_DECISIONS
        t = np.broadcast_to(np.asarray(time_s, dtype=np.int64), (n,))
        o = np.broadcast_to(np.asarray(o_node, dtype=np.int32), (n,))
        pax = np.broadcast_to(np.asarray(passengers, dtype=np.int16), (n,))
        mw = np.broadcast_to(np.asarray(max_wait_s, dtype=np.int64), (n,))
        self._check_new(rid, o)
        deadline = t + np.where(mw < 0, self.max_wait_s, mw)
        too_big = pax > self._max_cap
        self._rid = np.concatenate((self._rid, rid[~too_big]))
        self._o = np.concatenate((self._o, o[~too_big]))
        self._deadline = np.concatenate((self._deadline, deadline[~too_big]))
        self._pax = np.concatenate((self._pax, pax[~too_big]))
        self._decided = np.concatenate((self._decided, np.zeros(int((~too_big).sum()), bool)))
        rejected = (rid[too_big], np.full(int(too_big.sum()), RejectReason.OVER_CAPACITY, np.int8))
        if self.policy.on_arrival:
            return self._decide(int(t.max()), rejected)
        if rejected[0].size:
            return Decisions(reject_request=rejected[0], reject_reason=rejected[1])
        return NO_DECISIONS

    def _check_new(self, rid: I64, o: NDArray[np.int32]) -> None:
        if np.unique(rid).size != rid.size or any(int(r) in self._seen for r in rid):
            raise DispatchError("request id already submitted to the engine")
        if o.min() < 0 or o.max() >= self.router.network.n_nodes:
            raise DispatchError("a request's pickup node is outside the network")
        self._seen.update(rid.tolist())

    def requests_cancelled(self, request_id: ArrayLike, time_s: int) -> I32:
        """Riders cancelled. Open requests are dropped; returns, for each, the vehicle that was serving it or -1.

        A vehicle serving a cancelled request stays committed until it reports ``passenger_cancellation``.

        Raises
        ------
        DispatchError
            If a request is unknown, or already closed.
        """
        rid = np.atleast_1d(np.asarray(request_id, dtype=np.int64))
        is_open = np.isin(rid, self._rid)
        out = np.full(rid.size, -1, dtype=np.int32)
        for i in np.flatnonzero(~is_open):
            v = self._assigned.pop(int(rid[i]), None)
            if v is None:
                raise DispatchError(f"request {int(rid[i])} cancelled at {time_s}: not open and not assigned")
            out[i] = v
        if is_open.any():
            self._keep(~np.isin(self._rid, rid[is_open]))
        return out

    # ------------------------------------------------------------------ input: vehicles
    def vehicle_updated(
        self,
        vehicle: int,
        event: EventType | int | None,
        node: int,
        time_s: int,
        *,
        reported_state: VehicleState | None = None,
    ) -> None:
        """Vehicle ``vehicle`` reports MDS ``event`` at ``node`` (``event=None``: a plain position report).

        Raises
        ------
        IllegalTransitionError
            If MDS does not allow ``event`` from the engine's view of the vehicle's state.
        """
        v = int(vehicle)
        old = int(self._state[v])
        if event is None:
            new = old
        elif int(event) == EventType.COMMS_RESTORED:
            if reported_state is None:
                raise IllegalTransitionError("comms_restored needs the state the vehicle reports")
            new = int(restore(old, reported_state))
        else:
            dst = _TABLE.get((old, int(event)))
            if dst is None:
                raise IllegalTransitionError(
                    f"vehicle {v} at {time_s}: illegal MDS transition {EventType(event).mds} "
                    f"from {VehicleState(old).mds}"
                )
            new = dst
        if old == _AVAILABLE:
            self._idle.remove(v, int(self._node[v]))
        self._state[v] = new
        self._node[v] = node
        if new == _AVAILABLE:
            self._idle.add(v, int(node))
        if event is None or self._serving[v] < 0:
            return
        r = int(self._serving[v])
        if int(event) == EventType.TRIP_START:
            self._booked.pop(r, None)  # on board: no longer re-openable
        elif int(event) in _RELEASE:
            booked = self._booked.pop(r, None)
            if self._assigned.pop(r, None) is not None and booked is not None and int(event) in _REOPEN:
                self._reopen(r, *booked)
            self._serving[v] = -1

    def vehicles_updated(self, vehicles: ArrayLike, event: EventType, nodes: ArrayLike, time_s: int) -> None:
        """Many vehicles report the same ``event`` (e.g. ``service_start`` for a whole shift)."""
        vs = np.atleast_1d(np.asarray(vehicles, dtype=np.int64))
        nd = np.broadcast_to(np.asarray(nodes, dtype=np.int32), vs.shape)
        check_transitions(self._state[vs], event)
        for v, n in zip(vs.tolist(), nd.tolist(), strict=True):
            self.vehicle_updated(v, event, n, time_s)

    # ------------------------------------------------------------------ input: clock
    def tick(self, now: int) -> Decisions:
        """Time ``now`` has come: a policy without ``on_arrival`` matches the open requests."""
        if self.policy.on_arrival or self._rid.size == 0:
            return NO_DECISIONS
        return self._decide(int(now), None)

    # ------------------------------------------------------------------ internals
    def _reopen(self, request: int, o_node: int, deadline: int, passengers: int) -> None:
        """Put a request whose reservation was withdrawn back among the open ones, keeping its deadline.

        It counts as already decided: it is matched again at a later decision or, unassigned past its deadline,
        cancelled by the rider; never rejected.
        """
        self._rid = np.append(self._rid, np.int64(request))
        self._o = np.append(self._o, np.int32(o_node))
        self._deadline = np.append(self._deadline, np.int64(deadline))
        self._pax = np.append(self._pax, np.int16(passengers))
        self._decided = np.append(self._decided, True)

    def _keep(self, mask: NDArray[np.bool_]) -> None:
        self._rid, self._o, self._deadline = self._rid[mask], self._o[mask], self._deadline[mask]
        self._pax, self._decided = self._pax[mask], self._decided[mask]

    def _decide(self, now: int, rejected: tuple[I64, NDArray[np.int8]] | None) -> Decisions:
        problem = MatchProblem(
            now=now,
            request_id=self._rid,
            o_node=self._o,
            deadline_s=self._deadline,
            passengers=self._pax,
            router=self.router,
            idle=self._idle,
        )
        n_idle = self._idle.total
        m = self.policy.match(problem)
        req = self._rid[m.rows]
        veh = m.vehicles
        if veh.size:
            if np.any(self._state[veh] != _AVAILABLE):
                raise DispatchError(f"policy {self.policy.name} assigned a vehicle that is not available")
            self._state[veh] = check_transitions(self._state[veh], EventType.RESERVATION_START)
            for v, r in zip(veh.tolist(), req.tolist(), strict=True):
                self._idle.remove(v, int(self._node[v]))
                self._serving[v] = r
                self._assigned[r] = v
            rows = m.rows.tolist()
            for r, o, dl, pax in zip(
                req.tolist(),
                self._o[rows].tolist(),
                self._deadline[rows].tolist(),
                self._pax[rows].tolist(),
                strict=True,
            ):
                self._booked[r] = (o, dl, pax)
        matched = np.zeros(self._rid.size, dtype=bool)
        matched[m.rows] = True
        reject = ~matched & ~m.reachable & ~self._decided
        rej_ids = self._rid[reject]
        # Idle vehicles left when each request was decided. An on-arrival policy decides same-instant arrivals one
        # by one, in arrival order: a request after the earlier ones took the last idle vehicle had none available.
        taken_before = np.cumsum(matched) - matched if self.policy.on_arrival else 0
        left = n_idle - taken_before + np.zeros(matched.size, np.int64)
        rej_reason = np.where(
            left[reject] > 0, RejectReason.ETA_EXCEEDS_MAX_WAIT, RejectReason.NO_VEHICLE_AVAILABLE
        ).astype(np.int8)
        if rejected is not None and rejected[0].size:
            rej_ids = np.concatenate((rejected[0], rej_ids))
            rej_reason = np.concatenate((rejected[1], rej_reason))
        self._decided[:] = True
        self._keep(~(matched | reject))
        if not (veh.size or rej_ids.size):
            return NO_DECISIONS
        return Decisions(
            assign_request=req,
            assign_vehicle=veh.astype(np.int32),
            assign_eta_s=m.eta_s.astype(np.int32),
            reject_request=rej_ids,
            reject_reason=rej_reason,
        )

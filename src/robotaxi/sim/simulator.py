"""The discrete-event simulator: a heap of timed vehicle events, merged with the sorted request stream and the
policy's clock ticks, driving one :class:`~robotaxi.dispatch.DispatchEngine`.

There is no fixed time step. The loop always handles the earliest of: the vehicle events due next on the heap (all
those of one instant, as one :class:`~robotaxi.dispatch.VehiclesUpdated` batch), the next request arrivals, the next
tick; at equal times in that order (a vehicle that frees up at ``t`` can serve a request made at ``t``).

The simulator executes whatever stop plan the engine gives each vehicle, one stop at a time: it drives to the first
stop (arrival = leg start + the router's travel time), reports the arrival (``reservation_stop``, ``trip_stop``, or a
position report at a repositioning target), dwells, reports the departure (``trip_start``, ``trip_end`` or
``trip_resume``), and goes on with whatever the plan is then. When the engine changes a moving vehicle's plan it says
where the vehicle re-routes (the next node on its way, see :meth:`~robotaxi.network.Router.divert`); a heap entry of
the old plan is then stale and skipped (each vehicle carries a version number). Every decision kind is executed;
an unknown one raises.

Times inside the simulator are seconds since the demand's ``day_start`` (local midnight); the engine runs on epoch
seconds (``epoch0 + t``), so the speed profile's time zone applies.
"""

from __future__ import annotations

import heapq
import logging
import time
import uuid
from array import array
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..demand import Requests
from ..dispatch import (
    DROPOFF,
    LOCATED,
    PICKUP,
    REPOSITION,
    Decisions,
    DispatchEngine,
    DispatchPolicy,
    EngineParams,
    Marketplace,
    OffersAnswered,
    Rebalancing,
    RequestsArrived,
    RequestsCancelled,
    RidersDisembarked,
    Tick,
    VehiclesDocked,
    VehiclesOffDuty,
    VehiclesOnDuty,
    VehiclesUpdated,
)
from ..dispatch.reasons import Reason
from ..errors import SimulationError
from ..fleet import EventType, Fleet, VehicleState
from ..network import Router
from .choice import QuoteChoice
from .motion import Motion
from .result import Outcome, RequestOutcomes, SimResult, VehicleEvents, VehicleLegs

if TYPE_CHECKING:
    from ..safety.insim import Disengagements

logger = logging.getLogger(__name__)

I64 = NDArray[np.int64]
I32 = NDArray[np.int32]
_INF = np.iinfo(np.int64).max


def _no_progress(_done: int, _total: int) -> None:
    """The progress callback of a run that reports none."""


_ARRIVE, _DEPART = 0, 1
#: Heap entries of disengagements (robotaxi.safety.insim): a held vehicle leaves (the engine hears where it is), a
#: stopped vehicle is recovered.
_LOCATE, _RECOVER = 2, 3
E = EventType
S = VehicleState
_RESERVATION_STOP, _TRIP_START, _TRIP_STOP = int(E.RESERVATION_STOP), int(E.TRIP_START), int(E.TRIP_STOP)
_TRIP_END, _TRIP_RESUME = int(E.TRIP_END), int(E.TRIP_RESUME)
_STOPPED, _ON_TRIP, _AVAILABLE, _RESERVED = int(S.STOPPED), int(S.ON_TRIP), int(S.AVAILABLE), int(S.RESERVED)
#: Namespace of the simulator's vehicle ids (UUIDv5 of "operator/index"), as MDS ``device_id`` values.
VEHICLE_NAMESPACE = uuid.UUID("5b1d0c36-5f8e-4d1a-9a53-3f2a5c0f7e21")
#: Decision fields the simulator executes; a new kind of decision must be taught here, never silently dropped.
EXECUTED = frozenset(
    {
        "time_s",
        "assign_request",
        "assign_vehicle",
        "assign_pickup_s",
        "reject_request",
        "reject_reason",
        "expired_request",
        "expired_s",
        "expired_reason",
        "reopened_request",
        "replanned",
        "reposition_vehicle",
        "reposition_node",
        "retired",
        "offer_request",
        "offer_vehicle",
        "offer_pickup_s",
        "offer_expires_s",
        "withdrawn_request",
        "off_duty",
        "redispatched_request",  # riders out of a stopped vehicle: the simulator chose the new ids itself
        "redispatched_as",
    }
)


@dataclass(frozen=True, slots=True)
class SimParams:
    """Simulation parameters.

    Parameters
    ----------
    start_s, end_s : int
        Demand window, seconds since the requests' ``day_start``: requests with ``start_s <= time_s < end_s``.
        The run goes on after ``end_s`` until every request is closed.
    epoch0_s : int
        Epoch second of the requests' ``day_start`` in the service area's time zone (0: 1970-01-01 UTC).
    seed : int
        Seeds what the simulated world decides at random: human drivers' answers to offers and their delays.
    """

    start_s: int = 0
    end_s: int = 86_400
    epoch0_s: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.start_s < self.end_s:
            raise ValueError(f"the time window needs 0 <= start_s < end_s, got {self.start_s}..{self.end_s}")


_DECISION_FIELDS = frozenset(f.name for f in fields(Decisions))


class _Log:
    """Vehicle event rows, appended to one flat int64 buffer (8 bytes a value, not a Python object each)."""

    def __init__(self) -> None:
        self.rows = array("q")

    def add(self, t: int, v: int, event: int, state: int, node: int, request: int) -> None:
        self.rows.extend((t, v, event, state, node, request))

    def build(self, origin: dict[int, int] | None = None) -> VehicleEvents:
        """The rows in time order; ``origin`` names requests that continue a ride by the demand row they continue."""
        a = np.frombuffer(self.rows, dtype=np.int64).reshape(-1, 6)
        order = np.argsort(a[:, 0], kind="stable")
        a = a[order]
        if origin:
            new = np.fromiter(origin, np.int64, len(origin))
            root = np.fromiter(origin.values(), np.int64, len(origin))
            hit = np.isin(a[:, 5], new)
            a[hit, 5] = root[np.searchsorted(new, a[hit, 5])]  # new ids increase in the order they were made
        return VehicleEvents(
            vehicle=a[:, 1].astype(np.int32),
            time_s=a[:, 0],
            event=a[:, 2].astype(np.int8),
            state=a[:, 3].astype(np.int8),
            node=a[:, 4].astype(np.int32),
            request=a[:, 5],
        )


class Simulator:
    """Runs one scenario: demand through a dispatch engine over a fleet on a network.

    Parameters
    ----------
    router : Router
        Its speed profile should be in the service area's time zone (``params.epoch0_s`` is local midnight).
    fleet : Fleet
    requests : Requests
        Demand; only the rows in ``params``' window are simulated. Request ids are the rows of the window.
    policy : DispatchPolicy
    params : SimParams
    engine : EngineParams
        Max wait, max delay and dwell times (the engine plans with the same dwell times the simulator executes).
    rebalancing : Rebalancing, optional
    market : Marketplace, optional
        Several operators with areas, offers and a matching objective (see :mod:`robotaxi.dispatch.operators`).
    choice : QuoteChoice, optional
        Riders see a quote when first matched and may refuse it (:mod:`robotaxi.sim.choice`).
    safety : Disengagements, optional
        Disengagements drawn over every leg as it is driven (:mod:`robotaxi.safety.insim`): the vehicle is held for
        the delay at the end of the stretch; a stopped one stands where it stopped (its leg cut there), hands its
        pending pickups back to the engine (``provider_cancellation``), lets its riders on board out to ride on as
        new requests (:class:`~robotaxi.dispatch.RidersDisembarked`, ids from ``len(requests)`` on, folded back into
        their original rows at the end), goes off duty and comes back when recovered.

    Operating hours and driver shifts come from ``fleet.operators``: the simulator plays the vehicles, so it puts
    them in and out of service at those (local) times. A vehicle on duty at the window start starts service then;
    the others wait (``non_operational``) for their opening. At a closing the engine gets
    :class:`~robotaxi.dispatch.VehiclesOffDuty` (autonomous vehicles return to their operator's depot), and each
    vehicle reports ``service_end`` once the engine says its plan is done; at an opening ``service_start``.
    Human drivers answer every offer after a delay drawn from their operator's ``response_s`` range (uniform,
    seeded), accepting with its ``acceptance`` probability; a delay past the offer timeout never answers.
    """

    def __init__(
        self,
        router: Router,
        fleet: Fleet,
        requests: Requests,
        policy: DispatchPolicy,
        params: SimParams | None = None,
        engine: EngineParams | None = None,
        rebalancing: Rebalancing | None = None,
        market: Marketplace | None = None,
        choice: QuoteChoice | None = None,
        safety: Disengagements | None = None,
    ) -> None:
        self.router = router
        self.fleet = fleet
        self.params = params or SimParams()
        self.policy = policy
        p = self.params
        self.requests = requests.window(p.start_s, p.end_s)
        if len(self.requests) == 0:
            raise SimulationError(
                f"no requests in the time window {p.start_s}..{p.end_s} s",
                hint="check the scenario's [time] window against the demand",
            )
        n = router.network.n_nodes
        if int(self.requests.o_node.max()) >= n or int(self.requests.d_node.max()) >= n:
            raise SimulationError("the demand refers to nodes that are not in the network (wrong network?)")
        self.epoch0 = p.epoch0_s
        self.engine = DispatchEngine(
            router, policy, engine, rebalancing=rebalancing, start_s=self.epoch0 + p.start_s, market=market
        )
        self.dwell = self.engine.params.dwell
        ops = fleet.operators
        self.vehicle_ids = tuple(
            str(uuid.uuid5(VEHICLE_NAMESPACE, f"{ops[int(fleet.operator[i])].name}/{i}")) for i in range(len(fleet))
        )
        self.motion = Motion(router, fleet.start_node)
        nr = len(self.requests)
        self._o = self.requests.o_node
        self._d = self.requests.d_node
        self.choice = choice
        if choice is not None:
            choice.bind(self._o, self._d)
        self._outcome = np.zeros(nr, np.int8)
        self._reason = np.zeros(nr, np.int8)
        self._vehicle = np.full(nr, -1, np.int32)
        # Per-request times and odometer readings as lists while running (written one at a time), arrays at the end.
        self._tm: dict[str, list[int]] = {k: [-1] * nr for k in ("pickup", "board", "dropoff", "alight")}
        self._odo_at: dict[str, list[int]] = {k: [-1] * nr for k in ("assigned", "pickup", "board", "dropoff")}
        self._assigned = np.full(nr, -1, np.int64)
        self._pax: list[int] = self.requests.passengers.tolist()
        n_v = len(fleet)
        self._version = [0] * n_v
        self._odo = [0] * n_v  # metres driven by each vehicle, at its last node
        self._logged = [int(S.NON_OPERATIONAL)] * n_v
        self._heap: list[tuple[int, int, int, int, int]] = []
        self._seq = 0
        self._log = _Log()
        self._legs = array("q")
        self._now = p.start_s
        self._rng = np.random.default_rng(p.seed)
        self._answers: list[tuple[int, int, int, int, int]] = []  # (time, seq, request, vehicle, accepted/-1 tick)
        self._offer_token: dict[int, int] = {}  # request -> seq of its live offer
        self._n_offers = np.zeros(nr, np.int16)
        self._n_declines = np.zeros(nr, np.int16)
        self._v_offers = np.zeros(len(fleet), np.int32)
        self._v_declines = np.zeros(len(fleet), np.int32)
        self._calendar = _calendar(fleet, p.start_s, p.end_s)
        self._init_safety(safety)

    # ------------------------------------------------------------------ public
    def position(self, vehicle: int, t: int | None = None) -> tuple[float, float]:
        """Interpolated (lon, lat) of a vehicle at time ``t`` (default: the simulation's current time)."""
        pos = self.motion.position(vehicle, self._now if t is None else t)
        return pos.lon, pos.lat

    def run(self, progress: Callable[[int, int], None] | None = None) -> SimResult:
        """Run to completion. ``progress(done_requests, total_requests)`` is called now and then."""
        t_wall = time.perf_counter()
        p = self.params
        n_v = len(self.fleet)
        t0 = p.start_s
        self.engine.handle(
            VehiclesDocked(
                self.epoch0 + t0,
                self.vehicle_ids,
                self.fleet.start_node,
                capacity=self.fleet.capacity,
                operator=self.fleet.operator,
            )
        )
        on = self.fleet.on_duty(t0)
        if on.all():
            self._execute(
                self.engine.handle(
                    VehiclesUpdated(self.epoch0 + t0, self.vehicle_ids, E.SERVICE_START, self.fleet.start_node)
                )
            )
            for v in range(n_v):
                self._log_row(t0, v, E.SERVICE_START, S.AVAILABLE, int(self.fleet.start_node[v]), -1)
        else:
            self._start_service(t0, np.flatnonzero(on))
        self._loop(progress or _no_progress)
        self._outcome[np.asarray(self._tm["alight"]) >= 0] = Outcome.SERVED
        self._board_again: dict[int, int] = {x: self._tm["board"][x] for x in self._origin}  # before _fold drops them
        self._fold(len(self.requests))
        if np.any(self._outcome == Outcome.PENDING):
            raise SimulationError(f"{int((self._outcome == Outcome.PENDING).sum())} requests left unresolved")
        end = max(self._now, p.end_s)
        in_service = np.flatnonzero(self.engine.fleet.cols["state"][:n_v] != S.NON_OPERATIONAL)
        nodes = self.engine.fleet.cols["leg_node"][in_service].astype(np.int32)
        ids = tuple(self.vehicle_ids[v] for v in in_service.tolist())
        self.engine.handle(VehiclesUpdated(self.epoch0 + end, ids, E.SERVICE_END, nodes))
        for v, node in zip(in_service.tolist(), nodes.tolist(), strict=True):
            self._log_row(end, v, E.SERVICE_END, S.NON_OPERATIONAL, node, -1)
        wall = time.perf_counter() - t_wall
        return self._result(end, wall)

    def _result(self, end: int, wall: float) -> SimResult:
        tm = {k: np.asarray(v, dtype=np.int64) for k, v in self._tm.items()}
        odo = {k: np.asarray(v, dtype=np.int64) for k, v in self._odo_at.items()}
        served = tm["alight"] >= 0
        o = RequestOutcomes(
            outcome=self._outcome,
            reason=self._reason,
            vehicle=self._vehicle,
            assigned_s=self._assigned,
            pickup_s=tm["pickup"],
            board_s=tm["board"],
            dropoff_s=tm["dropoff"],
            pickup_m=np.where(served, odo["pickup"] - odo["assigned"], -1).astype(np.int32),
            ride_m=np.where(served, odo["dropoff"] - odo["board"], -1).astype(np.int32),
            direct_m=self.router.distances(self._o, self._d).astype(np.int32),
            direct_s=self.router.times(self._o, self._d, self.epoch0 + self.requests.time_s).astype(np.int32),
        )
        legs = np.frombuffer(self._legs, dtype=np.int64).reshape(-1, 8)
        return SimResult(
            requests=self.requests,
            outcomes=o,
            events=self._log.build(self._origin),
            legs=VehicleLegs(
                vehicle=legs[:, 0].astype(np.int32),
                from_node=legs[:, 1].astype(np.int32),
                to_node=legs[:, 2].astype(np.int32),
                start_s=legs[:, 3],
                end_s=legs[:, 4],
                load=legs[:, 5].astype(np.int16),
                kind=legs[:, 6].astype(np.int8),
                length_m=legs[:, 7].astype(np.int32),
            ),
            fleet=self.fleet,
            offers=self._n_offers,
            declines=self._n_declines,
            vehicle_offers=self._v_offers,
            vehicle_declines=self._v_declines,
            start_s=self.params.start_s,
            end_s=self.params.end_s,
            last_event_s=int(self._now),
            wall_s=wall,
            policy=self.policy.name,
            safety=self.safety.result(self._board_again) if self.safety is not None else None,
        )

    # ------------------------------------------------------------------ the event loop
    def _loop(self, progress: Callable[[int, int], None]) -> None:
        req_t = self.requests.time_s
        nr = req_t.size
        i = 0
        tick_every = self.policy.tick_seconds
        rb = self.engine.rebalancing
        if rb is not None:
            tick_every = min(tick_every, rb.rebalancer.interval_s) if tick_every else rb.rebalancer.interval_s
        next_tick = self.params.start_s + tick_every if tick_every > 0 else _INF
        heap = self._heap
        answers = self._answers
        cal = self._calendar
        k = 0
        since_report = 0
        while True:
            t_heap = heap[0][0] if heap else _INF
            t_req = int(req_t[i]) if i < nr else _INF
            t_ans = answers[0][0] if answers else _INF
            t_cal = cal[k][0] if k < len(cal) else _INF
            t = min(t_heap, t_req, next_tick, t_ans, t_cal)
            if t == _INF:
                # Nothing left to happen but requests still open (a policy deciding on arrivals only, no periodic
                # tick): wake the engine when the first of them expires, which cancels it.
                t = next_tick = self._next_expiry()
                if t == _INF:
                    break
            self._now = t
            if self.choice is not None:
                self.choice.on_tick(t, self.epoch0, self.engine)
            if t_heap == t:
                self._vehicle_events(t)
                next_tick = self._resume_ticks(next_tick, t, tick_every)
            elif t_cal == t:
                self._duty(cal[k])
                k += 1
                if next_tick == _INF and tick_every > 0:
                    next_tick = t + tick_every
            elif t_ans == t:
                self._answer_offers(t)
            elif t_req == t:
                j = int(np.searchsorted(req_t, t, side="right"))
                self._arrivals(i, j, t)
                since_report += j - i
                i = j
            else:
                self._execute(self.engine.handle(Tick(self.epoch0 + t)))
                next_tick = t + tick_every if tick_every > 0 and self._needs_ticks(i, nr, t) else _INF
            if since_report >= 2_000:
                progress(i, nr)
                since_report = 0
        progress(nr, nr)

    def _resume_ticks(self, next_tick: int, t: int, tick_every: int) -> int:
        """The next tick after vehicle events at ``t``: ticks that had ended start again when those events opened
        requests (riders let out of a stopped vehicle ride on with another one)."""
        if next_tick == _INF and tick_every > 0 and self.engine.requests.open.size:
            return t + tick_every
        return next_tick

    def _needs_ticks(self, i: int, nr: int, t: int) -> bool:
        """Whether the engine still needs clock ticks after the one at ``t``: while requests are still to come or
        open, or offers wait for answers; inside the demand window also while vehicles move (rebalancing works
        through quiet hours). Past the window's end with every request closed, a tick could only rebalance for
        demand that will never come (runs used to reposition vehicles for hours after their last rider)."""
        if i < nr or self.engine.requests.open.size or self._answers:
            return True
        return bool(self._heap) and t < self.params.end_s

    def _next_expiry(self) -> int:
        """The simulation second at which the engine cancels its first open request (the second after that
        request's deadline); ``_INF`` when none is open, or when the engine kept one open past that second already
        (then :meth:`run` reports it unresolved)."""
        reqs = self.engine.requests
        if reqs.open.size == 0:
            return _INF
        t = int(reqs.cols["deadline"][reqs.open].min()) - self.epoch0 + 1
        return t if t > self._now else _INF

    def _arrivals(self, i: int, j: int, t: int) -> None:
        r = self.requests
        ev = RequestsArrived(
            self.epoch0 + t,
            np.arange(i, j, dtype=np.int64),
            self._o[i:j],
            self._d[i:j],
            passengers=r.passengers[i:j],
            max_wait_s=r.max_wait_s[i:j],
        )
        self._execute(self.engine.handle(ev))

    def _vehicle_events(self, t: int) -> None:  # noqa: C901, PLR0912, PLR0915 - one flat loop on purpose (hot path)
        """Report every vehicle event due at ``t`` in one batch, then schedule what each vehicle does next.

        This loop runs a few million times a day: it works on plain lists and writes its log rows inline.
        """
        heap = self._heap
        version = self._version
        plans = self.engine.fleet.plans
        load = self.engine.fleet.cols["load"]
        pax = self._pax
        m = self.motion
        log = self._log.rows
        logged = self._logged
        tm, odo_at, odo = self._tm, self._odo_at, self._odo
        vs: list[int] = []
        evs: list[int] = []
        nodes: list[int] = []
        reqs: list[int] = []
        hold = self._hold
        recovered: list[int] = []
        remap = self._remap  # request rows are ids until a rider first rides on as a new request
        ext = self.engine.requests.cols["ext"]
        while heap and heap[0][0] == t:
            _t, _seq, v, ver, kind = heapq.heappop(heap)
            if kind == _RECOVER:
                recovered.append(v)
                continue
            if ver != version[v]:
                continue  # the plan changed after this was scheduled
            if kind == _LOCATE:  # a held vehicle leaves: the engine hears where and when
                vs.append(v)
                evs.append(LOCATED)
                nodes.append(m.leg_from[v])
                reqs.append(-1)
                continue
            stop_kind, req, node = plans[v][0]
            if remap and req >= 0:
                req = int(ext[req])
            if kind == _ARRIVE:
                a = m.leg_from[v]
                if a != node:
                    self._add_leg(v, a, node, m.leg_start[v], t)
                m.leg_from[v] = m.leg_to[v] = node
                m.leg_start[v] = m.leg_end[v] = t
                if hold and hold.get(v, t) > t:  # a disengagement on the way: it waits here, and the engine hears
                    if self._stopped_at:  # where it is (the stop is reached when the wait is over, scheduled anew)
                        self._park_stopped(v, node)
                    vs.append(v)
                    evs.append(LOCATED)
                    nodes.append(m.leg_from[v])
                    reqs.append(-1)
                    continue
                if stop_kind == REPOSITION:
                    ev, state = LOCATED, -1
                elif stop_kind == PICKUP:
                    ev, state = _RESERVATION_STOP, _STOPPED
                    tm["pickup"][req], odo_at["pickup"][req] = t, odo[v]
                else:
                    ev, state = _TRIP_STOP, _STOPPED
                    tm["dropoff"][req], odo_at["dropoff"][req] = t, odo[v]
            elif stop_kind == PICKUP:
                ev, state = _TRIP_START, _ON_TRIP
                tm["board"][req], odo_at["board"][req] = t, odo[v]
            else:
                if int(load[v]) - pax[req] > 0:
                    ev, state = _TRIP_RESUME, _ON_TRIP
                else:
                    ev, state = _TRIP_END, _AVAILABLE
                tm["alight"][req] = t
            if state >= 0:
                log.extend((t, v, ev, state, node, req))
                logged[v] = state
            vs.append(v)
            evs.append(ev)
            nodes.append(node)
            reqs.append(req)
        if vs:
            ids = tuple([self.vehicle_ids[v] for v in vs])
            d = self.engine.handle(
                VehiclesUpdated(self.epoch0 + t, ids, np.asarray(evs, np.int8), np.asarray(nodes, np.int32), reqs)
            )
            self._execute(d, also=vs)
        if self.safety is not None:
            self._stop_stranded(t)
            if recovered:
                self._recover(t, recovered)

    def _log_row(self, t: int, v: int, event: int, state: int, node: int, request: int) -> None:
        self._log.add(t, v, int(event), int(state), node, request)
        self._logged[v] = int(state)

    # ------------------------------------------------------------------ executing decisions
    def _execute(self, d: Decisions, also: list[int] | None = None) -> None:  # noqa: PLR0912 - a branch per decision kind
        unknown = _DECISION_FIELDS - EXECUTED
        if unknown or type(d) is not Decisions:
            raise SimulationError(f"the simulator does not know how to execute decisions {sorted(unknown)}")
        t = d.time_s - self.epoch0
        if d.reject_request.size:
            self._outcome[d.reject_request] = Outcome.REJECTED
            self._reason[d.reject_request] = d.reject_reason
        if d.expired_request.size:
            self._outcome[d.expired_request] = Outcome.CANCELLED
            self._reason[d.expired_request] = d.expired_reason
        if d.offer_request.size or d.withdrawn_request.size:
            self._offers(t, d)
        if d.reopened_request.size:
            self._assigned[d.reopened_request] = -1
            self._vehicle[d.reopened_request] = -1
            for r in d.reopened_request.tolist():
                self._tm["pickup"][r] = -1
        if d.assign_request.size:
            rows = d.assign_request
            self._assigned[rows] = t
            self._vehicle[rows] = d.assign_vehicle
            odo_assigned, odo = self._odo_at["assigned"], self._odo
            for r, v in zip(rows.tolist(), d.assign_vehicle.tolist(), strict=True):
                odo_assigned[r] = odo[v]
            if self.choice is not None and self._quotes_refused(self.choice, d, also):
                return  # the cancellation's decisions were executed together with this batch's vehicles
        # d.retired: vehicles the engine no longer dispatches; the simulator only retires vehicles at the end.
        touched = d.replanned.tolist()
        if also:
            touched = list(dict.fromkeys([*also, *touched]))
        if touched:
            self._schedule(t, touched)
        if d.off_duty.size:
            self._end_service(t, d.off_duty)
        if self.safety is not None and self.safety.stranded:
            self._stop_stranded(t)

    def _quotes_refused(self, choice: QuoteChoice, d: Decisions, also: list[int] | None) -> bool:
        """Riders matched for the first time see their quote; those who refuse cancel at once (lost demand)."""
        refused = choice.decide(d.time_s, d.assign_request, d.assign_vehicle, d.assign_pickup_s, self.fleet.operator)
        if refused.size == 0:
            return False
        self._assigned[refused] = -1
        self._vehicle[refused] = -1
        self._outcome[refused] = Outcome.CANCELLED
        self._reason[refused] = Reason.QUOTE_DECLINED
        cancelled = self.engine.handle(RequestsCancelled(d.time_s, refused))
        touched = list(dict.fromkeys([*(also or []), *d.replanned.tolist()]))
        self._execute(cancelled, also=touched)
        if d.off_duty.size:
            self._end_service(d.time_s - self.epoch0, d.off_duty)
        return True

    # ------------------------------------------------------------------ the marketplace: duty and offers
    def _start_service(self, t: int, vehicles: NDArray[np.integer]) -> None:
        """Vehicles come on duty: ``service_start`` for those out of service, on duty again for the others."""
        if self._stranded:  # a stopped vehicle waits for its recovery
            vehicles = vehicles[[self._stranded.get(int(v), t) <= t for v in vehicles.tolist()]]
        if vehicles.size == 0:
            return
        c = self.engine.fleet.cols
        state = c["state"][vehicles]
        out = vehicles[state == S.NON_OPERATIONAL]
        back = vehicles[(state != S.NON_OPERATIONAL) & (c["off_duty"][vehicles] > 0)]
        if back.size:
            self._execute(self.engine.handle(VehiclesOnDuty(self.epoch0 + t, [self.vehicle_ids[v] for v in back])))
        if out.size:
            nodes = c["leg_node"][out].astype(np.int32)
            ids = tuple(self.vehicle_ids[v] for v in out.tolist())
            d = self.engine.handle(VehiclesUpdated(self.epoch0 + t, ids, E.SERVICE_START, nodes))
            for v, node in zip(out.tolist(), nodes.tolist(), strict=True):
                self._log_row(t, v, E.SERVICE_START, S.AVAILABLE, node, -1)
                self.motion.park(v, node, t)
            self._execute(d)

    def _duty(self, entry: tuple[int, bool, NDArray[np.int64], int]) -> None:
        t, opens, vehicles, depot = entry
        if opens:
            self._start_service(t, vehicles)
            return
        c = self.engine.fleet.cols
        on = vehicles[(c["state"][vehicles] != S.NON_OPERATIONAL) & (c["off_duty"][vehicles] == 0)]
        if on.size:
            ids = [self.vehicle_ids[v] for v in on.tolist()]
            self._execute(self.engine.handle(VehiclesOffDuty(self.epoch0 + t, ids, depot)))

    def _end_service(self, t: int, vehicles: NDArray[np.int32]) -> None:
        """The engine says these vehicles are done for their hours or shift: they end service where they are."""
        nodes = self.engine.fleet.cols["leg_node"][vehicles].astype(np.int32)
        ids = tuple(self.vehicle_ids[v] for v in vehicles.tolist())
        d = self.engine.handle(VehiclesUpdated(self.epoch0 + t, ids, E.SERVICE_END, nodes))
        for v, node in zip(vehicles.tolist(), nodes.tolist(), strict=True):
            self._log_row(t, v, E.SERVICE_END, S.NON_OPERATIONAL, node, -1)
        self._execute(d)

    def _offers(self, t: int, d: Decisions) -> None:
        """Human drivers receive offers: each answers (or not) after a seeded delay."""
        for r in d.withdrawn_request.tolist():
            self._offer_token.pop(r, None)
        ops = self.fleet.operators
        for r, v, expires in zip(
            d.offer_request.tolist(), d.offer_vehicle.tolist(), d.offer_expires_s.tolist(), strict=True
        ):
            op = ops[int(self.fleet.operator[v])]
            self._n_offers[r] += 1
            self._v_offers[v] += 1
            accept = bool(self._rng.random() < op.acceptance)
            lo, hi = op.response_s
            delay = int(self._rng.integers(lo, hi + 1))
            token = self._seq
            self._seq += 1
            self._offer_token[r] = token
            answered = t + delay <= expires - self.epoch0
            if not (accept and answered):  # declined, or no answer in time (the offer lapses)
                self._n_declines[r] += 1
                self._v_declines[v] += 1
            if answered:
                heapq.heappush(self._answers, (t + delay, token, r, v, int(accept)))
            else:  # wake the engine when the offer has lapsed
                heapq.heappush(self._answers, (expires - self.epoch0 + 1, token, r, v, -1))

    def _answer_offers(self, t: int) -> None:
        answers = self._answers
        req: list[int] = []
        veh: list[int] = []
        acc: list[bool] = []
        lapsed = False
        while answers and answers[0][0] == t:
            _t, token, r, v, a = heapq.heappop(answers)
            if self._offer_token.get(r) != token:
                continue  # withdrawn meanwhile
            if a < 0:
                lapsed = True
                continue
            del self._offer_token[r]
            req.append(r)
            veh.append(v)
            acc.append(bool(a))
        if req:
            ids = tuple(self.vehicle_ids[v] for v in veh)
            self._execute(self.engine.handle(OffersAnswered(self.epoch0 + t, req, ids, np.asarray(acc, bool))))
        elif lapsed:
            self._execute(self.engine.handle(Tick(self.epoch0 + t)))

    def _schedule(self, t: int, vehicles: list[int]) -> None:
        """(Re)schedule the next event of each vehicle from the engine's plan and leg."""
        eng = self.engine
        c = eng.fleet.cols
        plans = eng.fleet.plans
        m = self.motion
        logged = self._logged
        version = self._version
        epoch0 = self.epoch0
        idx = np.asarray(vehicles, dtype=np.int64)
        states = c["state"][idx].tolist()
        leg_nodes = c["leg_node"][idx].tolist()
        leg_times = c["leg_s"][idx].tolist()
        at_stops = c["at_stop"][idx].tolist()
        moving: list[int] = []
        heap = self._heap
        for v, s, node, leg_abs, at_stop in zip(vehicles, states, leg_nodes, leg_times, at_stops, strict=True):
            if s == _RESERVED and logged[v] == _AVAILABLE:
                plan = plans[v]
                r = plan[0][1] if plan[0][0] != REPOSITION else plan[1][1]
                self._log_row(t, v, E.RESERVATION_START, S.RESERVED, m.leg_to[v], self._req_id(r))
            version[v] += 1
            leg_s = leg_abs - epoch0
            a, b = m.leg_from[v], m.leg_to[v]
            held = bool(self._hold) and self._hold.get(v, t) > t  # waiting at ``a`` (a disengagement)
            if a != b and node not in (a, b) and m.leg_end[v] > m.leg_start[v] and not held:
                # A moving vehicle re-routed at ``node``: the part of its old leg up to there was driven.
                self._add_leg(v, a, node, m.leg_start[v], leg_s)
                m.leg_from[v] = m.leg_to[v] = node
                m.leg_start[v] = m.leg_end[v] = leg_s
            here = self._park_stopped(v, node) if self._stopped_at else node  # it may have stopped before ``node``
            if at_stop:
                heapq.heappush(heap, (leg_s, self._seq, v, version[v], _DEPART))
                self._seq += 1
            elif plans[v]:
                moving.append(v)
            else:
                m.park(v, here, leg_s)
        if not moving:
            return
        mv = np.asarray(moving, dtype=np.int64)
        src = c["leg_node"][mv]
        dst = np.asarray([plans[v][0][2] for v in moving], dtype=np.int32)
        t0 = c["leg_s"][mv]
        if self._hold:  # vehicles held by a disengagement leave from where they wait when it is over
            t0, src = self._held(t, moving, t0, src, dst)
        if int(t0.min()) == int(t0.max()):  # the usual case: every leg leaves now (no per-leg departure arrays)
            legs = self.router.times_at(src, dst, int(t0[0]))
        else:
            legs = self.router.times(src, dst, t0).astype(np.int64)
        arrive = (t0 + legs - epoch0).tolist()
        m.start_legs(moving, src.tolist(), dst.tolist(), (t0 - epoch0).tolist(), arrive)
        for v, ta in zip(moving, arrive, strict=True):
            heapq.heappush(heap, (ta, self._seq, v, version[v], _ARRIVE))
            self._seq += 1

    def _add_leg(self, v: int, a: int, b: int, t0: int, t1: int) -> None:
        plan = self.engine.fleet.plans[v]
        kind = plan[0][0] if plan else REPOSITION
        load = int(self.engine.fleet.cols["load"][v])
        length = self.router.distance1(a, b)
        self._odo[v] += length
        self._legs.extend((v, a, b, t0, t1, load, kind, length))
        if self.safety is not None:
            lost = self.safety.on_leg(v, a, b, t0, t1, length, len(self._legs) // 8 - 1)
            cut = self.safety.cut.pop(v, None)
            if cut is not None and cut[0] != b:  # it stopped part of the way: the leg ends there
                node, tc, metres = cut
                legs = self._legs
                legs[-6], legs[-4], legs[-1] = node, tc, metres
                self._odo[v] += metres - length
                self._stopped_at[v] = (node, tc)
                self._stop_s[v] = tc
                self._hold[v] = max(self._hold.get(v, t1), t1, tc + lost)
            elif lost:
                self._hold[v] = max(self._hold.get(v, t1), t1) + lost

    # ------------------------------------------------------------------ disengagements (robotaxi.safety.insim)
    def _init_safety(self, safety: Disengagements | None) -> None:
        self.safety = safety
        self._hold: dict[int, int] = {}  # vehicle -> time before which it cannot move on (a disengagement)
        self._stranded: dict[int, int] = {}  # vehicle -> when a stopped vehicle is recovered
        # Riders who got out of a stopped vehicle ride on as new requests, ids from len(requests) on (the engine's
        # rows are then no longer the ids: _remap). New id -> the demand row whose ride it continues; metres each
        # demand row's rider rode before getting out.
        self._remap = False
        self._next_id = len(self.requests)
        self._origin: dict[int, int] = {}
        self._ridden_before: dict[int, int] = {}
        self._board_again = {}
        self._stopped_at: dict[int, tuple[int, int]] = {}  # vehicle -> (node, time): stopped before its leg's end
        self._stop_s: dict[int, int] = {}  # vehicle -> when it stopped (heard of at the end of its leg, or later)
        if safety is not None:
            safety.bind(self._on_board, self.requests.request_id)

    def _held(
        self, t: int, moving: list[int], t0: NDArray[np.int64], src: NDArray[np.integer], dst: I32
    ) -> tuple[NDArray[np.int64], NDArray[np.integer]]:
        """Leg starts and origins of moving vehicles: a vehicle a disengagement holds leaves from where it waits
        when the wait is over (the engine, whose clock does not know the wait, may think it further on); the engine
        hears where it is when it leaves (a ``LOCATED`` report then), so its clock agrees with the simulator's."""
        hold = self._hold
        t0 = t0.copy()
        src = src.copy()
        for k, v in enumerate(moving):
            h = hold.get(v)
            if h is None:
                continue
            if h > t:
                src[k] = self.motion.leg_from[v]
            if h + self.epoch0 > t0[k]:
                t0[k] = h + self.epoch0
                if src[k] != dst[k] and h >= t:  # never schedule into the past
                    heapq.heappush(self._heap, (h, self._seq, v, self._version[v], _LOCATE))
                    self._seq += 1
            if h <= t:
                del hold[v]
        return t0, src

    def _park_stopped(self, v: int, node: int) -> int:
        """Where vehicle ``v`` is: where a disengagement stopped it before ``node``, the end of the leg just drawn
        (it is parked there), else ``node``."""
        where = self._stopped_at.pop(v, None)
        if where is None:
            return node
        self.motion.park(v, where[0], where[1])
        return where[0]

    def _req_id(self, row: int) -> int:
        """The request id of an engine request row (the same number until a rider rode on as a new request)."""
        return int(self.engine.requests.cols["ext"][row]) if self._remap else row

    def _on_board(self, v: int) -> tuple[int, int]:
        """Passengers on board vehicle ``v`` and the demand row of the rider who boarded last (-1: nobody)."""
        plan = self.engine.fleet.plans[v]
        waiting = {r for kind, r, _node in plan if kind == PICKUP}
        riders = [self._req_id(r) for kind, r, _node in plan if kind == DROPOFF and r not in waiting]
        if not riders:
            return 0, -1
        board = self._tm["board"]
        last = max(riders, key=lambda r: (board[r], r))
        return int(self.engine.fleet.cols["load"][v]), self._origin.get(last, last)

    def _stop_stranded(self, t: int) -> None:
        """Vehicles whose disengagement stops service: the engine hears where each is, its pending pickups are
        handed back (re-dispatched), it takes no new work, and it comes back when recovered."""
        assert self.safety is not None
        stranded, self.safety.stranded = self.safety.stranded, []
        c = self.engine.fleet.cols
        for v, event in stranded:
            until = self._hold.get(v, t)
            vid = self.vehicle_ids[v]
            located = VehiclesUpdated(self.epoch0 + t, (vid,), LOCATED, self.motion.leg_from[v])
            self._execute(self.engine.handle(located), also=[v])
            if c["state"][v] != S.NON_OPERATIONAL and c["off_duty"][v] == 0:  # no new work until recovered
                self._execute(self.engine.handle(VehiclesOffDuty(self.epoch0 + t, [vid])))
            pickups = [self._req_id(r) for kind, r, _node in self.engine.fleet.plans[v] if kind == PICKUP]
            if pickups:
                was = self._logged[v]
                d = self.engine.handle(
                    VehiclesUpdated(
                        self.epoch0 + t, (vid,) * len(pickups), E.PROVIDER_CANCELLATION, int(c["leg_node"][v]), pickups
                    )
                )
                if was == _RESERVED and int(c["state"][v]) == _AVAILABLE:
                    self._log_row(t, v, E.PROVIDER_CANCELLATION, S.AVAILABLE, int(c["leg_node"][v]), pickups[0])
                self._execute(d, also=[v])
            self.safety.handed_back(event, [self._origin.get(r, r) for r in pickups])
            if self.engine.fleet.plans[v]:
                self._riders_get_out(t, v, event)
            self._stop_s.pop(v, None)
            if until > self._stranded.get(v, -1):
                self._stranded[v] = until
                heapq.heappush(self._heap, (until, self._seq, v, -1, _RECOVER))
                self._seq += 1

    def _riders_get_out(self, t: int, v: int, event: int) -> None:
        """Riders on board a stopped vehicle get out where it stands: those at their destination are dropped off,
        the others ride on with another vehicle (:class:`~robotaxi.dispatch.RidersDisembarked`: a new request from
        here to their destination, decided by the engine like a re-opened one)."""
        assert self.safety is not None
        eng = self.engine
        c, rc = eng.fleet.cols, eng.requests.cols
        node = int(c["leg_node"][v])
        rows = [r for kind, r, _n in eng.fleet.plans[v] if kind == DROPOFF]  # its pickups were handed back
        away = [self._req_id(r) for r in rows if int(rc["d"][r]) != node]
        here = [self._req_id(r) for r in rows if int(rc["d"][r]) == node]
        self._log_getting_out(t, v, node, away + here)
        vid = self.vehicle_ids[v]
        if away:
            new = list(range(self._next_id, self._next_id + len(away)))
            self._next_id += len(away)
            self._ride_on(t, v, away, new)
            d = eng.handle(RidersDisembarked(self.epoch0 + t, vid, away, node, new))
            self.safety.got_out(event, [self._origin[x] for x in new], new, self._stop_s.get(v, t))
            self._execute(d, also=[v])
        if here:  # at their destination: an ordinary drop-off (no dwell: the vehicle stands there anyway)
            evs: list[int] = []
            load = int(c["load"][v])
            for r in here:
                load -= self._pax[r]
                evs += [_TRIP_STOP, _TRIP_RESUME if load > 0 else _TRIP_END]
                self._tm["dropoff"][r] = self._tm["alight"][r] = t
                self._odo_at["dropoff"][r] = self._odo[v]
            reqs = [r for r in here for _ in (0, 1)]
            d = eng.handle(VehiclesUpdated(self.epoch0 + t, (vid,) * len(evs), np.asarray(evs, np.int8), node, reqs))
            self._execute(d, also=[v])

    def _log_getting_out(self, t: int, v: int, node: int, riders: list[int]) -> None:
        """MDS events of riders leaving a stopped vehicle one after the other: ``trip_stop``, then ``trip_resume``
        while others are still on board, ``trip_end`` after the last one."""
        for i, r in enumerate(riders):
            if self._logged[v] == _ON_TRIP:
                self._log_row(t, v, E.TRIP_STOP, S.STOPPED, node, r)
            last = i == len(riders) - 1
            self._log_row(t, v, E.TRIP_END if last else E.TRIP_RESUME, S.AVAILABLE if last else S.ON_TRIP, node, r)

    def _ride_on(self, t: int, v: int, old: list[int], new: list[int]) -> None:
        """Room for the requests ``new`` that continue the rides of ``old`` (riders out of vehicle ``v`` at ``t``)."""
        self._remap = True
        k = len(new)
        odo = self._odo[v]
        board = self._odo_at["board"]
        for a, b in zip(old, new, strict=True):
            root = self._origin.get(a, a)
            self._origin[b] = root
            self._ridden_before[root] = self._ridden_before.get(root, 0) + odo - board[a]
            self._pax.append(self._pax[a])
            self._reason[a] = Reason.VEHICLE_STOPPED
        self._outcome = np.concatenate((self._outcome, np.zeros(k, np.int8)))
        self._reason = np.concatenate((self._reason, np.zeros(k, np.int8)))
        self._vehicle = np.concatenate((self._vehicle, np.full(k, -1, np.int32)))
        self._assigned = np.concatenate((self._assigned, np.full(k, -1, np.int64)))
        self._n_offers = np.concatenate((self._n_offers, np.zeros(k, np.int16)))
        self._n_declines = np.concatenate((self._n_declines, np.zeros(k, np.int16)))
        for lists in (self._tm, self._odo_at):
            for col in lists.values():
                col.extend([-1] * k)
        if self.choice is not None:  # the fare was quoted (and accepted) for the whole ride
            node = int(self.engine.fleet.cols["leg_node"][v])
            rows = [self.engine.requests.index[a] for a in old]
            self.choice.add_rows([node] * k, [int(self.engine.requests.cols["d"][r]) for r in rows])
        self._outcome[old] = Outcome.CANCELLED  # this part of the ride ended; its continuation decides (_fold)

    def _fold(self, n: int) -> None:
        """Each demand row (the first ``n`` ids) takes the outcome of the last request its ride went on as: served
        once if that one reached the destination; its wait and boarding stay the first vehicle's, its drop-off and
        riding distance cover the whole ride. The continuation ids are dropped."""
        if not self._origin:
            return
        last: dict[int, int] = {}
        for new, root in self._origin.items():  # in the order they were made: the last one is where the ride ended
            last[root] = new
        tm, odo = self._tm, self._odo_at
        for root, new in last.items():
            self._outcome[root] = self._outcome[new]
            self._reason[root] = self._reason[new]
            for k in ("dropoff", "alight"):
                tm[k][root] = tm[k][new]
            served = tm["alight"][new] >= 0
            # ride_m is dropoff - board: the board reading is shifted so that it also counts the parts before
            odo["dropoff"][root] = odo["dropoff"][new] if served else -1
            odo["board"][root] = odo["board"][new] - self._ridden_before[root] if served else odo["board"][root]
            self._n_offers[root] += self._n_offers[new]
            self._n_declines[root] += self._n_declines[new]
        self._outcome, self._reason = self._outcome[:n], self._reason[:n]
        self._vehicle, self._assigned = self._vehicle[:n], self._assigned[:n]
        self._n_offers, self._n_declines = self._n_offers[:n], self._n_declines[:n]
        for lists in (self._tm, self._odo_at):
            for key in lists:
                lists[key] = lists[key][:n]

    def _recover(self, t: int, vehicles: list[int]) -> None:
        """Stopped vehicles are recovered: back in service if their operator's hours or shift say so."""
        back = [v for v in vehicles if self._stranded.get(v) == t]
        for v in back:
            del self._stranded[v]
        if back:
            on = self.fleet.on_duty(t)
            self._start_service(t, np.asarray([v for v in back if on[v]], dtype=np.int64))


def _calendar(fleet: Fleet, t0: int, t1: int) -> list[tuple[int, bool, NDArray[np.int64], int]]:
    """Openings and closings of operators' hours and drivers' shifts within ``(t0, t1)``:
    ``(time, opens, vehicles, return node)``, in time order (closings first at equal times)."""
    out: list[tuple[int, bool, NDArray[np.int64], int]] = []
    shift = fleet.shift if fleet.shift is not None else np.full(len(fleet), -1, np.int16)
    for i, op in enumerate(fleet.operators):
        mine = fleet.operator == i
        groups = [(op.hours, np.flatnonzero(mine), op.depot)] if not op.shifts else []
        groups += [(s.hours, np.flatnonzero(mine & (shift == j)), -1) for j, s in enumerate(op.shifts)]
        for hours, vehicles, depot in groups:
            out.extend((t, opens, vehicles, depot) for t, opens in hours.changes(t0, t1 - 1))
    out.sort(key=lambda e: (e[0], e[1]))
    return out


__all__ = ["DROPOFF", "EXECUTED", "SimParams", "Simulator"]

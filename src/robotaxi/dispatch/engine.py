"""The dispatch engine: one event-driven core for the simulator and the live service.

The engine keeps its own view of the fleet (each vehicle's MDS state, leg, load and stop plan) and of the requests,
and answers every input with :class:`~.decisions.Decisions`. It has one entry point, :meth:`DispatchEngine.handle`,
taking the typed inputs of :mod:`.events`. It never moves a vehicle and reads no clock: every input carries its time
(epoch seconds), and the caller (the simulator's event loop, or the HTTP service on the wall clock) decides when to
call. Given the same inputs it gives the same decisions.

Guarantees, for every input:

* **validated first**: a bad id, node, time or MDS transition raises a :class:`~robotaxi.errors.DispatchError`
  (:class:`~robotaxi.errors.IllegalTransitionError` for transitions) and the state stays exactly as it was;
* **expiry**: an open request whose deadline has passed is cancelled by the engine (``max_wait_exceeded``, as of its
  deadline) before the input is applied: the simulator and the live service share this rule;
* **decisions on any input**: an on-arrival policy decides waiting requests whenever a vehicle frees up or a
  request is re-opened, not only on arrival; batch policies decide on :class:`~.events.Tick`; rebalancing runs on
  ticks every ``rebalancer.interval_s``.

Request lifecycle: *open* -> *assigned* (in a vehicle's plan) -> *on board* -> *done*; or *rejected* at its first
decision when no vehicle can reach it in time; or *cancelled* (expired, or by the rider). A reservation withdrawn by
the vehicle (provider or driver cancellation) re-opens the request with its deadline: it is never lost. A rider on
board a vehicle that stops service gets out (:class:`~.events.RidersDisembarked`): the request ends *redispatched*
and the ride goes on as a new open request from there (``origin`` links it to the old one).
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DispatchError, IllegalTransitionError
from ..fleet.states import TRANSITION_TABLE, EventType, VehicleState
from ..network.travel import TravelTimes
from . import _apply, _disembark, _fastpath, _offers
from ._fleet import FleetState
from ._requests import RequestTable, Status
from .decisions import Decisions
from .events import (
    Event,
    OffersAnswered,
    RequestsArrived,
    RequestsCancelled,
    RidersDisembarked,
    Tick,
    VehiclesDocked,
    VehiclesOffDuty,
    VehiclesOnDuty,
    VehiclesRetired,
    VehiclesUpdated,
)
from .operators import FareQuote, Marketplace
from .plans import Dwell
from .policies import DispatchPolicy
from .reasons import Reason

if TYPE_CHECKING:
    from .rebalance import DemandForecast, Rebalancer, Zoning

logger = logging.getLogger(__name__)

I64 = NDArray[np.int64]
I32 = NDArray[np.int32]
_SNAPSHOT_MAGIC = b"robotaxi-engine-v3\n"
# Vehicle events after which a plan may have room it did not have: a rider out, a plan cut, back in service. As a
# look-up table by event code + 1 (LOCATED is -1).
_ROOM = np.zeros(len(EventType) + 1, dtype=bool)
_ROOM[
    np.asarray(
        [
            EventType.TRIP_END,
            EventType.TRIP_RESUME,
            EventType.PASSENGER_CANCELLATION,
            EventType.PROVIDER_CANCELLATION,
            EventType.DRIVER_CANCELLATION,
            EventType.SERVICE_START,
            EventType.MAINTENANCE_END,
            EventType.RECOMMISSIONED,
            EventType.COMMS_RESTORED,
        ],
        dtype=np.int64,
    )
    + 1
] = True


@dataclass(frozen=True, slots=True)
class EngineParams:
    """The engine's parameters: the one place where their defaults live.

    Parameters
    ----------
    max_wait_s : int
        Default longest wait for pickup, for requests that do not carry their own (> 0).
    max_delay_s : int
        Longest delay of a dropoff against riding alone at once (Alonso-Mora's Delta: wait plus detour), > 0; -1
        (default) sets it to ``max_wait_s + pickup_dwell_s``, which never binds an unshared ride.
    pickup_dwell_s, dropoff_dwell_s : int
        Seconds for boarding and alighting (>= 0).
    """

    max_wait_s: int = 600
    max_delay_s: int = -1
    pickup_dwell_s: int = 30
    dropoff_dwell_s: int = 30

    def __post_init__(self) -> None:
        if self.max_wait_s <= 0:
            raise ValueError(f"max_wait_s: must be > 0, got {self.max_wait_s}")
        if self.max_delay_s == 0 or self.max_delay_s < -1:
            raise ValueError(f"max_delay_s: must be > 0 (or -1 for the default), got {self.max_delay_s}")
        if self.pickup_dwell_s < 0 or self.dropoff_dwell_s < 0:
            raise ValueError("pickup_dwell_s, dropoff_dwell_s: must be >= 0")

    @property
    def dwell(self) -> Dwell:
        return Dwell(self.pickup_dwell_s, self.dropoff_dwell_s)


@dataclass(frozen=True, slots=True, eq=False)
class Rebalancing:
    """What the engine needs to rebalance: the algorithm, the zones and a demand forecast."""

    rebalancer: Rebalancer
    zoning: Zoning
    forecast: DemandForecast
    horizon_s: int = 900


class DispatchEngine:
    """Assigns ride requests to vehicles' stop plans through a :class:`~.policies.DispatchPolicy`.

    Parameters
    ----------
    travel : TravelTimes
        Travel times on the network the nodes refer to (a :class:`~robotaxi.network.Router`).
    policy : DispatchPolicy
        How requests are matched (see :data:`~.policies.POLICIES`).
    params : EngineParams
    rebalancing : Rebalancing, optional
        Idle-vehicle rebalancing, run on ticks every ``rebalancer.interval_s`` seconds.
    start_s : int
        Engine time before the first input (epoch seconds); inputs may not go back before it.
    market : Marketplace, optional
        Several operators (see :mod:`.operators`): service areas, offers to human drivers, the cross-operator
        matching objective. None: every vehicle may serve every request (the operator constraint of a request
        still holds).

    Vehicles join with :class:`~.events.VehiclesDocked` (or :meth:`dock` at construction time) and enter service
    with ``service_start``.
    """

    def __init__(
        self,
        travel: TravelTimes,
        policy: DispatchPolicy,
        params: EngineParams | None = None,
        *,
        rebalancing: Rebalancing | None = None,
        start_s: int = 0,
        market: Marketplace | None = None,
    ) -> None:
        self.travel = travel
        self.policy = policy
        self.params = params or EngineParams()
        self.dwell = self.params.dwell
        self.rebalancing = rebalancing
        self.fleet = FleetState(travel.n_nodes)
        self.requests = RequestTable()
        self.now = int(start_s)
        self._next_rebalance = int(start_s)
        self._wake = False  # something freed a vehicle or re-opened a request since the last decision
        # Since the last decision: vehicles whose plans gained room, and requests re-opened (for policies that try a
        # waiting request again only where something changed; see MatchProblem.retry_vehicles).
        self._retry_vehicles: set[int] = set()
        self._retry_rows: set[int] = set()
        self.fast_path = True  # False: every vehicle update through the general path (tests compare the two)
        self.market = market
        n_ops = market.n if market is not None else 0
        self.area_masks = market.masks(travel.n_nodes) if market is not None else np.ones((0, travel.n_nodes), bool)
        self.offers: dict[int, tuple[int, int]] = {}  # request row -> (vehicle, lapses after)
        self.declined: set[int] = set()  # request row * 2**32 + vehicle: offers declined or lapsed
        self.trips_by_operator = np.zeros(n_ops, dtype=np.int64)  # assignments per operator (share targets)

    def set_market(self, market: Marketplace | None) -> None:
        """Replace the operators' rules (the live service adds operators and changes their rules while it runs).

        The new rules apply from the next decision on; assignments and offers already made stay as they are.

        Raises
        ------
        DispatchError
            If a docked vehicle's operator has no rules in ``market``, an area is not one flag per node, or an
            offer is pending for an operator whose rules no longer make offers (nothing is changed then).
        """
        f = self.fleet
        if market is not None:
            ops = f.cols["operator"][: f.n]
            if ops.size and int(ops.max()) >= market.n:
                raise DispatchError(f"set_market: vehicles of operator {int(ops.max())} but rules for {market.n}")
            if any(o.area is not None and o.area.size != self.travel.n_nodes for o in market.operators):
                raise DispatchError(f"set_market: areas must have one flag per node ({self.travel.n_nodes})")
        for v, _until in self.offers.values():
            j = int(f.cols["operator"][v])
            if market is None or not market.operators[j].offers:
                raise DispatchError(f"set_market: operator {j} has offers pending; it must keep making offers")
        n_ops = market.n if market is not None else 0
        trips = np.zeros(n_ops, dtype=np.int64)
        keep = min(n_ops, self.trips_by_operator.size)
        trips[:keep] = self.trips_by_operator[:keep]
        self.market = market
        n_nodes = self.travel.n_nodes
        self.area_masks = market.masks(n_nodes) if market is not None else np.ones((0, n_nodes), bool)
        self.trips_by_operator = trips

    def count_trips(self, vehicles: NDArray[np.integer[Any]]) -> None:
        """Count new assignments per operator (for the marketplace's share targets)."""
        if self.market is not None and len(vehicles):
            ops = self.fleet.cols["operator"][np.asarray(vehicles, dtype=np.int64)].astype(np.int64)
            self.trips_by_operator += np.bincount(ops, minlength=self.market.n)[: self.market.n]

    # ------------------------------------------------------------------ views
    @property
    def n_vehicles(self) -> int:
        return self.fleet.n

    def vehicle_id(self, index: int) -> str:
        """External id of a dense vehicle index."""
        return self.fleet.ids[index]

    def vehicle_index(self, vehicle_id: str) -> int:
        """Dense index of an external vehicle id.

        Raises
        ------
        DispatchError
            If the id is unknown.
        """
        v = self.fleet.index.get(str(vehicle_id))
        if v is None:
            raise DispatchError(f"unknown vehicle id {vehicle_id!r}")
        return v

    @property
    def vehicle_state(self) -> NDArray[np.int8]:
        """MDS state of each vehicle (a read-only copy)."""
        s = self.fleet.cols["state"][: self.fleet.n].copy()
        s.setflags(write=False)
        return s

    @property
    def vehicle_load(self) -> NDArray[np.int16]:
        """Passengers on board of each vehicle (a read-only copy)."""
        s = self.fleet.cols["load"][: self.fleet.n].copy()
        s.setflags(write=False)
        return s

    def plan(self, vehicle: int) -> list[tuple[int, int, int]]:
        """Stops ``(kind, request_id, node)`` of a vehicle (external request ids; -1 for a repositioning target)."""
        ext = self.requests.cols["ext"]
        return [(k, int(ext[r]) if r >= 0 else -1, n) for k, r, n in self.fleet.plans[vehicle]]

    def leg(self, vehicle: int) -> tuple[int, int, bool]:
        """``(node, time_s, at_stop)``: where and when the vehicle leaves for its first stop (see :mod:`.plans`)."""
        c = self.fleet.cols
        return int(c["leg_node"][vehicle]), int(c["leg_s"][vehicle]), bool(c["at_stop"][vehicle])

    @property
    def n_idle(self) -> int:
        """Vehicles in service with an empty plan."""
        return int(self.fleet.idle_count.sum())

    def open_requests(self) -> tuple[I64, I64]:
        """External ids and pickup deadlines of the requests waiting for a vehicle."""
        rows = self.requests.open
        return self.requests.cols["ext"][rows].copy(), self.requests.cols["deadline"][rows].copy()

    def request_status(self, request_id: int) -> Status:
        """Where a request is in its lifecycle.

        Raises
        ------
        DispatchError
            If the id is unknown.
        """
        return Status(int(self.requests.cols["status"][self.requests.row(int(request_id))]))

    def origin_of(self, request_id: int) -> int:
        """The request whose ride ``request_id`` continues (:class:`~.events.RidersDisembarked`), or -1.

        Raises
        ------
        DispatchError
            If the id is unknown.
        """
        return int(self.requests.cols["origin"][self.requests.row(int(request_id))])

    def vehicle_of(self, request_id: int) -> int:
        """Vehicle serving an assigned or on-board request, or -1."""
        r = self.requests.index.get(int(request_id))
        return -1 if r is None else int(self.requests.cols["vehicle"][r])

    # ------------------------------------------------------------------ the entry point
    def handle(self, event: Event) -> Decisions:
        """Apply one input and return the decisions it leads to.

        Raises
        ------
        DispatchError
            If the input is invalid (unknown or repeated id, node outside the network, time going backwards, an
            illegal MDS transition, a stop reported out of plan order); nothing has changed then.
        """
        now = event.time_s
        if now < self.now:
            raise DispatchError(f"time went backwards: input at {now} after {self.now}")
        expire, lapse = self._expiring(now)
        out = _apply.Out(now)
        if isinstance(event, RequestsArrived):
            _apply.check_requests(self, event)
            self._commit_expiry(expire, lapse, out)
            _apply.add_requests(self, event, out)
        elif isinstance(event, VehiclesUpdated):
            fast = _fastpath.check(self, event) if self.fast_path else None
            work = _apply.check_vehicle_updates(self, event) if fast is None else []
            self._commit_expiry(expire, lapse, out)
            if fast is None:
                _apply.commit_vehicle_updates(self, work, out)
            else:
                _fastpath.commit(self, fast, now, out)
        elif isinstance(event, RequestsCancelled):
            rows = _apply.check_cancellations(self, event, expire)
            self._commit_expiry(expire, lapse, out)
            _apply.cancel_requests(self, rows, out)
        elif isinstance(event, VehiclesDocked):
            _apply.check_docking(self, event)
            self._commit_expiry(expire, lapse, out)
            self.fleet.add(event.vehicle_id, event.node, event.capacity, event.operator)
        elif isinstance(event, VehiclesRetired):
            vs = _apply.check_retiring(self, event)
            self._commit_expiry(expire, lapse, out)
            _apply.retire(self, vs, out)
        elif isinstance(event, OffersAnswered | VehiclesOffDuty | VehiclesOnDuty | RidersDisembarked):
            self._apply_more(event, expire, lapse, out)
        elif isinstance(event, Tick):
            self._commit_expiry(expire, lapse, out)
        else:  # pragma: no cover - the type checker sees every kind above
            raise DispatchError(f"unknown input {type(event).__name__}")
        self.now = now
        self._note_room(event, out)
        self._decide(event, out)
        if isinstance(event, Tick):
            before = len(out.replanned)
            self._rebalance(now, out)
            self._retry_vehicles.update(out.replanned[before:])  # sent towards a target: counted there from now
        return out.build()

    # ------------------------------------------------------------------ internals
    def _expiring(self, now: int) -> tuple[I64, list[int]]:
        """Open requests past their deadline at ``now`` and offers that lapsed before it (nothing is changed)."""
        lapse = _offers.lapsing(self, now) if self.offers else []
        expire = self.requests.expiring(now)
        if lapse:  # a lapsed offer's request is open again, and may be past its deadline too
            c = self.requests.cols
            gone = [r for r in lapse if int(c["deadline"][r]) < now]
            expire = np.union1d(expire, np.asarray(gone, np.int64)) if gone else expire
        return expire, lapse

    def _apply_more(
        self,
        event: OffersAnswered | VehiclesOffDuty | VehiclesOnDuty | RidersDisembarked,
        expire: I64,
        lapse: list[int],
        out: _apply.Out,
    ) -> None:
        if isinstance(event, RidersDisembarked):
            ok = _disembark.check(self, event)
            self._commit_expiry(expire, lapse, out)
            _disembark.commit(self, event, ok, out)
        elif isinstance(event, OffersAnswered):
            answers = _offers.check_answers(self, event, lapse)
            self._commit_expiry(expire, lapse, out)
            _offers.commit_answers(self, answers, out)
        elif isinstance(event, VehiclesOffDuty):
            vs = _offers.check_off_duty(self, event)
            self._commit_expiry(expire, lapse, out)
            _offers.off_duty(self, vs, event.return_node.tolist(), out)
        else:
            vs = _offers.check_on_duty(self, event)
            self._commit_expiry(expire, lapse, out)
            _offers.on_duty(self, vs, out)

    def _commit_expiry(self, rows: I64, lapse: list[int], out: _apply.Out) -> None:
        if lapse:
            _offers.commit_lapses(self, lapse, out)
        if rows.size:
            c = self.requests.cols
            deadline = c["deadline"][rows]
            self.requests.close(rows, Status.CANCELLED)
            reason = np.where(c["declines"][rows] > 0, Reason.OFFER_DECLINED, Reason.MAX_WAIT_EXCEEDED)
            out.expired(c["ext"][rows], deadline, reason.astype(np.int8))

    def _note_room(self, event: Event, out: _apply.Out) -> None:
        """Remember the vehicles whose plans gained room and the requests re-opened by this input."""
        rv = self._retry_vehicles
        rv.update(out.replanned)
        if isinstance(event, VehiclesUpdated):
            room = _ROOM[event.event.astype(np.int64) + 1]
            if room.any():
                rv.update(self.fleet.index[event.vehicle_id[i]] for i in np.flatnonzero(room).tolist())
        elif isinstance(event, VehiclesDocked | VehiclesOnDuty | OffersAnswered):
            rv.update(self.fleet.index[x] for x in event.vehicle_id)
        if out.reopened:
            self._retry_rows.update(self.requests.row(x) for x in out.reopened)

    def _decide(self, event: Event, out: _apply.Out) -> None:
        if self.requests.open.size == 0:
            self._wake = False
            self._retry_vehicles.clear()
            self._retry_rows.clear()
            return
        if self.policy.on_arrival:
            if not (isinstance(event, RequestsArrived | RidersDisembarked) or self._wake or out.freed):
                return
        elif not isinstance(event, Tick):
            return
        self._wake = False
        _apply.decide(self, out)
        self._retry_vehicles.clear()
        self._retry_rows.clear()

    def _rebalance(self, now: int, out: _apply.Out) -> None:
        rb = self.rebalancing
        if rb is None or now < self._next_rebalance:
            return
        from .rebalance import RebalanceView

        self._next_rebalance = now + rb.rebalancer.interval_s
        f = self.fleet
        n = f.n
        idle = np.asarray(sorted(v for vs in f.idle_at.values() for v in vs), dtype=np.int32)
        # Vehicles that will be free within the horizon, where: busy ones at the end of their plan, repositioning
        # ones at their target (else the next call would see the target zone still short and send more).
        busy = np.flatnonzero(f.dispatchable() & ((f.cols["n_riders"][:n] > 0) | (f.cols["idx_node"][:n] < 0)))
        soon = busy[f.cols["end_s"][busy] <= now + rb.horizon_s]
        view = RebalanceView(
            now_s=now,
            vehicle=idle,
            node=f.cols["leg_node"][idle].astype(np.int32),
            soon_free_zone=rb.zoning.zone_of_node[f.cols["end_node"][soon]].astype(np.int32),
            fleet_size=int(f.dispatchable().sum()),
            expected=rb.forecast.expected(now, rb.horizon_s),
            area=self._area_of(idle),
            area_mask=self.area_masks if self.market is not None else None,
            waiting_node=self.requests.cols["o"][self.requests.open].astype(np.int32),  # left unassigned
        )
        moves = rb.rebalancer.rebalance(view, rb.zoning, self.travel)
        _apply.reposition(self, moves.vehicle, moves.node, out)

    def _area_of(self, vehicles: NDArray[np.int32]) -> NDArray[np.int32] | None:
        """Per vehicle, the operator whose area it must stay in (-1: anywhere); None without a marketplace."""
        market = self.market
        if market is None:
            return None
        limited = np.asarray([o.area is not None for o in market.operators], dtype=bool)
        op = self.fleet.cols["operator"][vehicles].astype(np.int32)
        return np.where(limited[op], op, -1).astype(np.int32)

    # ------------------------------------------------------------------ snapshot
    def snapshot(self) -> bytes:
        """The whole engine state as bytes (for :meth:`restore`).

        The bytes are a pickle: restore only snapshots this platform wrote itself (they are not a data exchange
        format and must never come from an untrusted party).
        """
        state = {
            "n_nodes": self.travel.n_nodes,
            "now": self.now,
            "next_rebalance": self._next_rebalance,
            "wake": self._wake,
            "retry_vehicles": sorted(self._retry_vehicles),
            "retry_rows": sorted(self._retry_rows),
            "params": self.params,
            "policy": self.policy,
            "rebalancing": self.rebalancing,
            "fleet": self.fleet.to_state(),
            "requests": self.requests.to_state(),
            # Pickled on its own: alone it pickles the same before and after a restore, but pickle's memo would
            # otherwise share its NumPy internals with the fleet's columns differently in a restored engine. The
            # fare quote is left out (it holds a router): restore takes it again.
            "market": pickle.dumps(
                None if self.market is None else (self.market.operators, self.market.params), protocol=5
            ),
            "offers": dict(self.offers),
            "declined": sorted(self.declined),
            "trips_by_operator": self.trips_by_operator.copy(),
        }
        return _SNAPSHOT_MAGIC + pickle.dumps(state, protocol=5)

    @classmethod
    def restore(cls, data: bytes, travel: TravelTimes, *, fare: FareQuote | None = None) -> DispatchEngine:
        """An engine in the state :meth:`snapshot` captured, on the same network.

        ``fare`` gives a marketplace its fare quote back (the ``cheapest`` objective needs it; a snapshot does not
        hold it).

        Raises
        ------
        DispatchError
            If the bytes are not an engine snapshot, or were taken on a network of another size.
        """
        if not data.startswith(_SNAPSHOT_MAGIC):
            raise DispatchError("not a robotaxi engine snapshot (wrong header)")
        try:
            state: dict[str, Any] = pickle.loads(data[len(_SNAPSHOT_MAGIC) :])
        except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as e:
            raise DispatchError(f"engine snapshot is corrupt: {e}") from e
        if state["n_nodes"] != travel.n_nodes:
            raise DispatchError(
                f"engine snapshot was taken on a network of {state['n_nodes']} nodes, not {travel.n_nodes}"
            )
        engine = cls(
            travel,
            state["policy"],
            state["params"],
            rebalancing=state["rebalancing"],
            start_s=state["now"],
            market=_with_fare(pickle.loads(state["market"]), fare),
        )
        engine.offers = dict(state["offers"])
        engine.declined = set(state["declined"])
        engine.trips_by_operator = np.asarray(state["trips_by_operator"], dtype=np.int64).copy()
        engine._next_rebalance = state["next_rebalance"]
        engine._wake = state["wake"]
        engine._retry_vehicles = set(state.get("retry_vehicles", ()))
        engine._retry_rows = set(state.get("retry_rows", ()))
        engine.fleet = FleetState.from_state(state["fleet"], travel.n_nodes)
        engine.requests = RequestTable.from_state(state["requests"])
        return engine


def _with_fare(saved: Any, fare: FareQuote | None) -> Marketplace | None:
    if saved is None:
        return None
    operators, params = saved
    if fare is None and params.objective == "cheapest":
        raise DispatchError("this engine matches on fares ('cheapest'): restore it with its fare quote")
    return Marketplace(operators, params, fare)


def check_transition(state: int, event: int, vehicle: str, now: int) -> int:
    """The MDS state after ``event`` from ``state``, or an :class:`IllegalTransitionError` naming the vehicle."""
    dst = int(TRANSITION_TABLE[state, event])
    if dst < 0:
        raise IllegalTransitionError(
            f"vehicle {vehicle} at {now}: illegal MDS transition {EventType(event).mds} from {VehicleState(state).mds}"
        )
    return dst

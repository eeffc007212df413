"""A hypothesis state machine over random sequences of every input kind, on a 3x3 grid city.

Invariants after every step: no request lost or in two plans, every rider's pickup before their dropoff, loads
within seats and equal to the riders on board, states that follow from the plans, assignments inside their time
windows; a rejected input changes nothing (the engine's snapshot is byte-identical before and after); and an engine
restored from a snapshot answers the next input exactly as the original does, and so does one that takes every
vehicle update through the general (row by row, on scratch copies) path instead of the fast one.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from robotaxi.dispatch import (
    DROPOFF,
    LOCATED,
    PICKUP,
    REPOSITION,
    Decisions,
    DispatchEngine,
    EngineParams,
    Event,
    MarketParams,
    Marketplace,
    OffersAnswered,
    OperatorRules,
    PolicyName,
    RequestsArrived,
    RequestsCancelled,
    RequestStatus,
    RidersDisembarked,
    Tick,
    VehiclesDocked,
    VehiclesOffDuty,
    VehiclesOnDuty,
    VehiclesRetired,
    VehiclesUpdated,
    make_policy,
)
from robotaxi.dispatch._apply import reposition
from robotaxi.errors import DispatchError
from robotaxi.fleet import EventType, VehicleState
from robotaxi.network import Router, grid_city

ROUTER = Router(grid_city(3, 3))
E = EventType


def same_decisions(a: Decisions, b: Decisions) -> bool:
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            if not np.array_equal(x, y):
                return False
        elif x != y:
            return False
    return True


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.e: DispatchEngine
        self.now = 0
        self.next_request = 0
        self.n_vehicles = 0

    @initialize(
        policy=st.sampled_from(["immediate", "batch", "insertion", "pool"]),
        nodes=st.lists(st.integers(0, 8), min_size=1, max_size=4),
        capacity=st.sampled_from([1, 2, 4]),
    )
    def start(self, policy: PolicyName, nodes: list[int], capacity: int) -> None:
        self.e = DispatchEngine(ROUTER, make_policy(policy), EngineParams(max_wait_s=200, max_delay_s=400))
        self._dock(nodes, capacity)

    def _dock(self, nodes: list[int], capacity: int) -> None:
        ids = [f"v{self.n_vehicles + i}" for i in range(len(nodes))]
        self.send(VehiclesDocked(self.now, ids, nodes, capacity=capacity))
        self.send(VehiclesUpdated(self.now, ids, E.SERVICE_START, nodes))
        self.n_vehicles += len(nodes)

    def send(self, event: Event) -> Decisions:
        """Apply an input to the engine and to a copy restored from its snapshot: both must answer alike."""
        twin = DispatchEngine.restore(self.e.snapshot(), ROUTER)
        slow = DispatchEngine.restore(self.e.snapshot(), ROUTER)
        slow.fast_path = False  # the general path must agree with the fast one on the common case
        d = self.e.handle(event)
        for other in (twin, slow):
            assert same_decisions(d, other.handle(event))
            assert other.snapshot() == self.e.snapshot()
        for r, t in zip(d.assign_request.tolist(), d.assign_pickup_s.tolist(), strict=True):
            row = self.e.requests.index[r]
            assert t <= int(self.e.requests.cols["deadline"][row])  # assigned inside the time window
        return d

    def refused(self, event: Event) -> None:
        before = self.e.snapshot()
        try:
            self.e.handle(event)
        except DispatchError:
            assert self.e.snapshot() == before
        else:
            raise AssertionError(f"{event} was accepted")

    @rule(dt=st.integers(0, 60), data=st.data())
    def requests(self, dt: int, data: st.DataObject) -> None:
        self.now += dt
        n = data.draw(st.integers(1, 3))
        o = data.draw(st.lists(st.integers(0, 8), min_size=n, max_size=n))
        d = [(x + data.draw(st.integers(1, 8))) % 9 for x in o]
        pax = data.draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
        share = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
        ids = list(range(self.next_request, self.next_request + n))
        self.next_request += n
        self.send(RequestsArrived(self.now, ids, o, d, passengers=pax, shareable=share))

    @rule(dt=st.integers(0, 90))
    def tick(self, dt: int) -> None:
        self.now += dt
        self.send(Tick(self.now))

    @rule(data=st.data(), dt=st.integers(0, 60))
    def advance_a_vehicle(self, data: st.DataObject, dt: int) -> None:
        """A vehicle with a plan does its next step (arrive, board, arrive, alight, or reach its target)."""
        f = self.e.fleet
        busy = [v for v in range(f.n) if f.plans[v] and not f.cols["retired"][v]]
        if busy:
            self.now += dt
            self._step(data.draw(st.sampled_from(busy)))

    @rule(data=st.data(), dt=st.integers(0, 20))
    def drive_a_whole_plan(self, data: st.DataObject, dt: int) -> None:
        """A vehicle drives every stop of its plan, one step every ``dt`` seconds."""
        f = self.e.fleet
        busy = [v for v in range(f.n) if f.plans[v] and not f.cols["retired"][v]]
        if not busy:
            return
        v = data.draw(st.sampled_from(busy))
        for _ in range(40):
            if not f.plans[v]:
                break
            self.now += dt
            self._step(v)

    def _step(self, v: int) -> None:
        f = self.e.fleet
        kind, r, node = f.plans[v][0]
        vid = f.ids[v]
        ext = -1 if r < 0 else int(self.e.requests.cols["ext"][r])
        if kind == REPOSITION:
            ev = LOCATED
        elif kind == PICKUP:
            ev = E.TRIP_START if f.cols["at_stop"][v] else E.RESERVATION_STOP
        elif not f.cols["at_stop"][v]:
            ev = E.TRIP_STOP
        else:
            left = int(f.cols["load"][v]) - int(self.e.requests.cols["pax"][r])
            ev = E.TRIP_RESUME if left > 0 else E.TRIP_END
        self.send(VehiclesUpdated(self.now, [vid], ev, [node], [ext]))

    @rule(data=st.data(), who=st.sampled_from(["driver", "provider", "passenger", "rider"]))
    def cancel(self, data: st.DataObject, who: str) -> None:
        req = self.e.requests
        assigned = [r for r in range(req.n) if req.cols["status"][r] == RequestStatus.ASSIGNED]
        if not assigned:
            return
        r = data.draw(st.sampled_from(assigned))
        ext = int(req.cols["ext"][r])
        if who == "rider":
            self.send(RequestsCancelled(self.now, [ext]))
            return
        v = int(req.cols["vehicle"][r])
        ev = {"driver": E.DRIVER_CANCELLATION, "provider": E.PROVIDER_CANCELLATION}.get(who, E.PASSENGER_CANCELLATION)
        self.send(VehiclesUpdated(self.now, [self.e.fleet.ids[v]], ev, [int(self.e.fleet.cols["leg_node"][v])], [ext]))

    @rule(
        data=st.data(),
        dt=st.integers(0, 30),
        stop=st.booleans(),
        how=st.sampled_from(["here", "here", "here", "elsewhere"]),
    )
    def riders_get_out(self, data: st.DataObject, dt: int, stop: bool, how: str) -> None:
        """Riders on board leave a vehicle where it is (it stopped service: first sent off duty, or not), and ride on
        as new requests; at a node where the vehicle is not, or at a rider's own drop-off, it is refused."""
        f, req = self.e.fleet, self.e.requests
        aboard = [r for r in range(req.n) if req.cols["status"][r] == RequestStatus.ON_BOARD]
        if not aboard:  # board someone first (riders on board are rare otherwise)
            ready = [v for v in range(f.n) if f.plans[v] and f.plans[v][0][0] == PICKUP and not f.cols["retired"][v]]
            if not ready:  # and ask for a ride first if nobody is on the way to a pickup
                o = data.draw(st.integers(0, 8))
                self.send(RequestsArrived(self.now, [self.next_request], [o], [(o + data.draw(st.integers(1, 8))) % 9]))
                self.next_request += 1
                self.send(Tick(self.now))
                ready = [v for v in range(f.n) if f.plans[v] and f.plans[v][0][0] == PICKUP]
                ready = [v for v in ready if not f.cols["retired"][v]]
            if not ready:
                return
            v = data.draw(st.sampled_from(ready))
            while f.plans[v][0][0] == PICKUP and not f.cols["at_stop"][v]:
                self._step(v)
            self._step(v)
            aboard = [r for r in range(req.n) if req.cols["status"][r] == RequestStatus.ON_BOARD]
        r = data.draw(st.sampled_from(aboard))
        v = int(req.cols["vehicle"][r])
        riders = [x for x in aboard if int(req.cols["vehicle"][x]) == v]
        out = data.draw(st.lists(st.sampled_from(riders), min_size=1, max_size=len(riders), unique=True))
        self.now += dt
        vid = f.ids[v]
        if not f.cols["at_stop"][v]:
            self.send(VehiclesUpdated(self.now, [vid], LOCATED, [data.draw(st.integers(0, 8))]))
        node = int(f.cols["leg_node"][v])
        ext = [int(req.cols["ext"][x]) for x in out]
        if how == "elsewhere":
            self.refused(RidersDisembarked(self.now, vid, ext, (node + 1) % 9))
            return
        if stop and not f.cols["off_duty"][v] and not f.cols["draining"][v]:
            self.send(VehiclesOffDuty(self.now, [vid]))
        event = RidersDisembarked(self.now, vid, ext, node)
        if any(int(req.cols["d"][x]) == node for x in out):
            self.refused(event)
            return
        d = self.send(event)
        assert d.redispatched_request.tolist() == ext
        for old, new in zip(ext, d.redispatched_as.tolist(), strict=True):
            assert self.e.request_status(old) == RequestStatus.REDISPATCHED
            assert self.e.origin_of(new) == old

    @rule(nodes=st.lists(st.integers(0, 8), min_size=1, max_size=2))
    def dock(self, nodes: list[int]) -> None:
        self._dock(nodes, 4)

    @rule(data=st.data())
    def retire(self, data: st.DataObject) -> None:
        f = self.e.fleet
        live = [v for v in range(f.n) if not f.cols["draining"][v]]
        if live:
            self.send(VehiclesRetired(self.now, [f.ids[data.draw(st.sampled_from(live))]]))

    @precondition(lambda self: self.e.n_idle > 0)
    @rule(data=st.data())
    def reposition_idle(self, data: st.DataObject) -> None:
        """The rebalancer's way in: an idle vehicle is sent elsewhere (then may be dispatched on its way)."""
        f = self.e.fleet
        idle = [v for v in range(f.n) if f.is_idle(v)]
        v = data.draw(st.sampled_from(idle))
        target = data.draw(st.integers(0, 8))
        from robotaxi.dispatch._apply import Out

        reposition(self.e, np.asarray([v], np.int32), np.asarray([target], np.int32), Out(self.now))

    @rule(kind=st.integers(0, 6))
    def bad_input(self, kind: int) -> None:
        f = self.e.fleet
        if kind == 0:
            self.refused(VehiclesUpdated(self.now, ["nobody"], E.SERVICE_END, [0]))
        elif kind == 1:
            self.refused(RequestsArrived(self.now, [self.next_request], [0], [99]))
        elif kind == 2 and self.next_request:
            self.refused(RequestsArrived(self.now, [0], [0], [1]))  # a repeated id
        elif kind == 3:
            self.refused(Tick(self.now - 1))
        elif kind == 4:
            # A stop reported out of plan order (or for a request the vehicle does not have).
            self.refused(VehiclesUpdated(self.now, [f.ids[0]], E.TRIP_END, [0], [10_000]))
        elif kind == 5:
            # Two rows: a legal one first, then an illegal one: nothing of the first may stick.
            v = f.ids[0]
            self.refused(VehiclesUpdated(self.now, [v, v], [LOCATED, E.SERVICE_START], [1, 1]))
        elif kind == 6:
            self.refused(RequestsCancelled(self.now, [10_000]))

    @invariant()
    def plans_hold_every_request_once(self) -> None:
        f, req = self.e.fleet, self.e.requests
        seen: dict[int, int] = {}
        for v in range(f.n):
            plan = f.plans[v]
            load = int(f.cols["load"][v])
            assert 0 <= load <= int(f.cols["capacity"][v])
            picks = {r for k, r, _ in plan if k == PICKUP}
            drops = [r for k, r, _ in plan if k == DROPOFF]
            for r in drops:
                assert r not in seen
                seen[r] = v
                if r in picks:  # pickup before dropoff
                    kinds = [(k, x) for k, x, _ in plan]
                    assert kinds.index((PICKUP, r)) < kinds.index((DROPOFF, r))
                    assert req.cols["status"][r] == RequestStatus.ASSIGNED
                else:
                    assert req.cols["status"][r] == RequestStatus.ON_BOARD
            assert picks <= set(drops)
            on_board = sum(int(req.cols["pax"][r]) for r in drops if r not in picks)
            assert on_board == load
            state = int(f.cols["state"][v])
            riders = bool(drops)
            if state == VehicleState.AVAILABLE:
                assert not riders
            if riders and not f.cols["retired"][v]:
                assert state in (VehicleState.RESERVED, VehicleState.ON_TRIP, VehicleState.STOPPED)
        for r in range(req.n):
            status = int(req.cols["status"][r])
            if status in (RequestStatus.ASSIGNED, RequestStatus.ON_BOARD):
                assert seen.get(r) == int(req.cols["vehicle"][r])
            else:
                assert r not in seen
            assert (status == RequestStatus.OPEN) == (r in set(req.open.tolist()))
        # A ride that left a stopped vehicle goes on as exactly one new request: never lost, never twice.
        origin = req.cols["origin"][: req.n]
        continued = origin[origin >= 0].tolist()
        assert len(continued) == len(set(continued))
        redispatched = req.cols["ext"][: req.n][req.cols["status"][: req.n] == RequestStatus.REDISPATCHED]
        assert sorted(continued) == sorted(redispatched.tolist())


TestEngineMachine = pytest.mark.slow(EngineMachine.TestCase)
TestEngineMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


# ---------------------------------------------------------------------------------------------------- marketplace
WEST3 = (np.arange(9) % 3) <= 1  # the two western columns of the 3x3 grid


class MarketMachine(EngineMachine):
    """The same machine with a marketplace: operator 0 robotaxis inside ``WEST3``; operator 1 human drivers who
    get offers (unpooled policies), or unrestricted robotaxis without pooling (pooling policies). Extra rules
    answer offers and send vehicles off and on duty."""

    @initialize(
        policy=st.sampled_from(["immediate", "batch", "insertion", "pool"]),
        nodes=st.lists(st.integers(0, 8), min_size=1, max_size=4),
        capacity=st.sampled_from([1, 2, 4]),
        objective=st.sampled_from(["fastest", "autonomous_first"]),
    )
    def start(self, policy: PolicyName, nodes: list[int], capacity: int, objective: str) -> None:
        offers = policy in ("immediate", "batch")
        rules = (
            OperatorRules("av", area=WEST3),
            OperatorRules("other", offers=offers, offer_timeout_s=25, pooling=False, autonomous=not offers),
        )
        m = Marketplace(rules, MarketParams(objective=objective if policy == "batch" else "fastest"))  # type: ignore[arg-type]
        self.e = DispatchEngine(ROUTER, make_policy(policy), EngineParams(max_wait_s=200, max_delay_s=400), market=m)
        self._dock(nodes, capacity)

    def _dock(self, nodes: list[int], capacity: int) -> None:
        ops = [(self.n_vehicles + i) % 2 for i in range(len(nodes))]
        nodes = [n if op == 1 or WEST3[n] else 0 for n, op in zip(nodes, ops, strict=True)]
        ids = [f"v{self.n_vehicles + i}" for i in range(len(nodes))]
        self.send(VehiclesDocked(self.now, ids, nodes, capacity=capacity, operator=ops))
        self.send(VehiclesUpdated(self.now, ids, E.SERVICE_START, nodes))
        self.n_vehicles += len(nodes)

    @precondition(lambda self: bool(self.e.offers))
    @rule(data=st.data(), dt=st.integers(0, 30), accept=st.booleans())
    def answer_offer(self, data: st.DataObject, dt: int, accept: bool) -> None:
        r = data.draw(st.sampled_from(sorted(self.e.offers)))
        v, until = self.e.offers[r]
        self.now = min(self.now + dt, until)
        ext = int(self.e.requests.cols["ext"][r])
        self.send(OffersAnswered(self.now, [ext], [self.e.fleet.ids[v]], [accept]))

    @rule(data=st.data(), depot=st.sampled_from([-1, 0, 4]))
    def off_duty(self, data: st.DataObject, depot: int) -> None:
        f = self.e.fleet
        c = f.cols
        on = [v for v in range(f.n) if not c["off_duty"][v] and not c["draining"][v]]
        on = [v for v in on if c["state"][v] != VehicleState.NON_OPERATIONAL]
        if on:
            v = data.draw(st.sampled_from(on))
            self.send(VehiclesOffDuty(self.now, [f.ids[v]], depot))

    @rule(data=st.data())
    def back_on_duty(self, data: st.DataObject) -> None:
        f = self.e.fleet
        c = f.cols
        off = [v for v in range(f.n) if c["off_duty"][v] and not c["retired"][v] and not c["draining"][v]]
        if not off:
            return
        v = data.draw(st.sampled_from(off))
        node = int(c["leg_node"][v])
        if c["off_duty"][v] == 2 and not f.plans[v]:
            self.send(VehiclesUpdated(self.now, [f.ids[v]], E.SERVICE_END, [node]))
            self.send(VehiclesUpdated(self.now, [f.ids[v]], E.SERVICE_START, [node]))
        else:
            self.send(VehiclesOnDuty(self.now, [f.ids[v]]))

    @invariant()
    def market_rules_hold(self) -> None:
        f, req = self.e.fleet, self.e.requests
        for v in range(f.n):
            if int(f.cols["operator"][v]) == 0:  # a robotaxi's stops are all inside its area
                assert all(WEST3[n] for k, _r, n in f.plans[v] if k != REPOSITION)
            if not f.cols["off_duty"][v]:
                continue
            assert not f.is_idle(v)
        for r, (v, until) in self.e.offers.items():
            assert req.cols["status"][r] == RequestStatus.OFFERED
            assert int(f.cols["offer"][v]) == r
            assert not f.plans[v]
            assert until <= int(req.cols["deadline"][r])  # waiting for the answer never passes the deadline
        held = {int(r) for r in f.cols["offer"][: f.n] if r >= 0}
        assert held == set(self.e.offers)


TestMarketMachine = pytest.mark.slow(MarketMachine.TestCase)
TestMarketMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)

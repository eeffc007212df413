"""The marketplace inside the engine, on a 5x5 grid city (node = row * 5 + col, 20 s per block).

Operator 0, "av", is a robotaxi operator whose area is the three western columns (col <= 2); operator 1, "drivers",
is a human-driven pool (offers, answered with OffersAnswered) that may go anywhere.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from robotaxi.dispatch import (
    DispatchEngine,
    EngineParams,
    MarketParams,
    Marketplace,
    OffersAnswered,
    OperatorRules,
    PolicyName,
    Reason,
    RequestsArrived,
    RequestStatus,
    Tick,
    VehiclesDocked,
    VehiclesOffDuty,
    VehiclesOnDuty,
    VehiclesUpdated,
    make_policy,
)
from robotaxi.errors import DispatchError
from robotaxi.fleet import EventType, VehicleState
from robotaxi.network import Router, grid_city

from .helpers import pick_up_and_drop

NET = grid_city(5, 5)
ROUTER = Router(NET)
WEST = (np.arange(25) % 5) <= 2
E = EventType


def market(objective: str = "fastest", **kw: object) -> Marketplace:
    rules = (
        OperatorRules("av", area=WEST),
        OperatorRules("drivers", offers=True, offer_timeout_s=20, autonomous=False),
    )
    return Marketplace(rules, MarketParams(objective=objective, **kw))  # type: ignore[arg-type]


def build(
    av: list[int],
    human: list[int],
    *,
    policy: PolicyName = "batch",
    m: Marketplace | None = None,
    max_wait_s: int = 300,
) -> DispatchEngine:
    """Robotaxis ``a0..`` at nodes ``av`` and drivers ``h0..`` at nodes ``human``, in service at time 0."""
    e = DispatchEngine(ROUTER, make_policy(policy), EngineParams(max_wait_s=max_wait_s), market=m or market())
    ids = [f"a{i}" for i in range(len(av))] + [f"h{i}" for i in range(len(human))]
    nodes = av + human
    ops = [0] * len(av) + [1] * len(human)
    e.handle(VehiclesDocked(0, ids, nodes, operator=ops))
    e.handle(VehiclesUpdated(0, ids, E.SERVICE_START, nodes))
    return e


def test_a_request_crossing_the_area_boundary_goes_to_a_human_driver() -> None:
    e = build(av=[0], human=[24])
    e.handle(RequestsArrived(0, [1, 2], [1, 6], [4, 12]))  # 1 -> 4 leaves the west; 6 -> 12 stays inside
    d = e.handle(Tick(30))
    assert d.assign_request.tolist() == [2]  # the robotaxi takes the trip inside its area
    assert e.vehicle_id(int(d.assign_vehicle[0])) == "a0"
    assert d.offer_request.tolist() == [1]  # the crossing trip is offered to the driver, though the AV is nearer
    assert e.vehicle_id(int(d.offer_vehicle[0])) == "h0"
    assert int(d.offer_expires_s[0]) == 30 + 20
    assert e.request_status(1) == RequestStatus.OFFERED


def test_immediate_honours_areas_too() -> None:
    e = build(av=[0], human=[24], policy="immediate")
    d = e.handle(RequestsArrived(0, [1], [1], [4]))
    assert d.assign_request.size == 0
    assert d.offer_request.tolist() == [1]
    d = e.handle(RequestsArrived(5, [2], [1], [2]))
    assert d.assign_request.tolist() == [2]


def test_a_declined_offer_is_matched_again_and_the_rider_served_in_time() -> None:
    e = build(av=[], human=[0, 3])
    e.handle(RequestsArrived(0, [7], [1], [2]))
    d = e.handle(Tick(30))
    assert d.offer_request.tolist() == [7]
    assert e.vehicle_id(int(d.offer_vehicle[0])) == "h0"
    d = e.handle(OffersAnswered(40, [7], ["h0"], [False]))
    assert e.request_status(7) == RequestStatus.OPEN
    assert d.assign_request.size == 0
    d = e.handle(Tick(60))
    assert e.vehicle_id(int(d.offer_vehicle[0])) == "h1"  # never again to the driver who declined
    d = e.handle(OffersAnswered(70, [7], ["h1"], [True]))
    assert d.assign_request.tolist() == [7]
    pickup = int(d.assign_pickup_s[0])
    assert pickup == 70 + 2 * 20  # timed from the answer: two blocks from node 3 to node 1
    assert pickup <= 300  # within the rider's deadline
    pick_up_and_drop_h(e, 70 + 40, "h1", 7, 1, 2)
    assert e.request_status(7) == RequestStatus.DONE


def pick_up_and_drop_h(e: DispatchEngine, t: int, vid: str, r: int, o: int, d: int) -> None:
    for ev, node, dt in ((E.RESERVATION_STOP, o, 30), (E.TRIP_START, o, 20), (E.TRIP_STOP, d, 30)):
        e.handle(VehiclesUpdated(t, [vid], ev, [node], [r]))
        t += dt
    e.handle(VehiclesUpdated(t, [vid], E.TRIP_END, [d], [r]))


def test_an_unanswered_offer_lapses_and_goes_to_another_driver() -> None:
    e = build(av=[], human=[0, 3])
    e.handle(RequestsArrived(0, [7], [1], [2]))
    e.handle(Tick(30))  # offered to h0 until 50
    d = e.handle(Tick(50))
    assert d.withdrawn_request.size == 0  # not yet: lapses *after* its expiry
    d = e.handle(Tick(51))
    assert d.withdrawn_request.tolist() == [7]
    assert e.vehicle_id(int(d.offer_vehicle[0])) == "h1"
    with pytest.raises(DispatchError, match="not pending"):
        e.handle(OffersAnswered(52, [7], ["h0"], [True]))  # a late answer is refused and changes nothing


def test_no_offer_that_could_make_the_rider_wait_past_the_deadline() -> None:
    # 4 blocks = 80 s away; max wait 90 s; the driver may take the whole 20 s timeout: 80 + 20 > 90 - 0.
    e = build(av=[], human=[4], max_wait_s=90)
    e.handle(RequestsArrived(0, [1], [0], [5]))
    d = e.handle(Tick(0))
    assert d.offer_request.size == 0
    assert d.reasons() == [Reason.ETA_EXCEEDS_MAX_WAIT]


def test_expiry_after_declines_says_offer_declined() -> None:
    e = build(av=[], human=[1], max_wait_s=120)
    e.handle(RequestsArrived(0, [1], [0], [5]))
    e.handle(Tick(0))
    e.handle(OffersAnswered(5, [1], ["h0"], [False]))
    d = e.handle(Tick(121))
    assert d.expired_request.tolist() == [1]
    assert d.expired_reason.tolist() == [Reason.OFFER_DECLINED]


def test_reasons_outside_every_area_and_out_of_hours() -> None:
    only_av = Marketplace((OperatorRules("av", area=WEST),))
    e = DispatchEngine(ROUTER, make_policy("batch"), EngineParams(max_wait_s=300), market=only_av)
    e.handle(VehiclesDocked(0, ["a0"], [0], operator=0))
    e.handle(VehiclesUpdated(0, ["a0"], E.SERVICE_START, [0]))
    e.handle(RequestsArrived(0, [1], [1], [4]))
    d = e.handle(Tick(30))
    assert d.reasons() == [Reason.OUTSIDE_SERVICE_AREA]
    e.handle(VehiclesOffDuty(40, ["a0"]))
    e.handle(RequestsArrived(40, [2], [1], [2]))
    d = e.handle(Tick(60))
    assert d.reasons() == [Reason.OUT_OF_HOURS]


def test_policies_differ_as_documented() -> None:
    # The robotaxi is 3 blocks (60 s) from the pickup, the driver 1 block (20 s).
    def winner(m: Marketplace) -> str:
        e = build(av=[3], human=[1], m=m)
        e.handle(RequestsArrived(0, [1], [0], [5]))
        d = e.handle(Tick(30))
        got = d.assign_vehicle if d.assign_vehicle.size else d.offer_vehicle
        return e.vehicle_id(int(got[0]))

    assert winner(market("fastest")) == "h0"  # fastest ETA
    assert winner(market("autonomous_first", autonomous_first_s=60)) == "a0"  # 40 s later: still the robotaxi
    assert winner(market("autonomous_first", autonomous_first_s=30)) == "h0"  # 40 s later: too late
    # Cheapest for the rider: the operator quoting the lower fare wins, though its car is farther.
    rules = market().operators

    def fares(cheap: int) -> Marketplace:
        def quote(op: int, o: NDArray[np.int32], d: NDArray[np.int32], now: int) -> NDArray[np.int64]:
            assert o.tolist() == [0]
            assert d.tolist() == [5]
            assert now == 30
            return np.full(o.size, 900 if op == cheap else 1200, dtype=np.int64)

        return Marketplace(rules, MarketParams(objective="cheapest"), fare=quote)

    assert winner(fares(cheap=0)) == "a0"
    assert winner(fares(cheap=1)) == "h0"


def test_share_target_keeps_an_operator_at_its_share() -> None:
    m = market("fastest", max_share=0.5, share_warmup=0)
    e = build(av=[0, 1, 2, 5, 6, 7], human=[24], m=m)
    # Three requests next to the robotaxis: the first batch may give them all to "av" (no trips yet); afterwards
    # "av" holds 100 % > 50 % of the trips and takes nothing until the drivers catch up.
    e.handle(RequestsArrived(0, [1, 2, 3], [0, 1, 2], [5, 6, 7]))
    d = e.handle(Tick(30))
    assert sorted(e.vehicle_id(int(v))[0] for v in d.assign_vehicle) == ["a", "a", "a"]
    e.handle(RequestsArrived(31, [4], [5], [10]))
    d = e.handle(Tick(60))
    assert d.assign_request.size == 0
    assert e.vehicle_id(int(d.offer_vehicle[0])) == "h0"
    assert e.trips_by_operator.tolist() == [3, 0]


def test_off_duty_finishes_the_trip_then_returns_to_the_depot_and_comes_back() -> None:
    e = build(av=[0], human=[])
    e.handle(RequestsArrived(0, [1], [1], [2]))
    e.handle(Tick(30))  # a0 at node 0 -> pickup 1
    e.handle(VehiclesUpdated(50, ["a0"], E.RESERVATION_STOP, [1], [1]))
    e.handle(VehiclesUpdated(80, ["a0"], E.TRIP_START, [1], [1]))
    d = e.handle(VehiclesOffDuty(90, ["a0"], return_node=10))  # hours end with a rider on board
    assert d.off_duty.size == 0
    assert e.plan(0)[-1] == (2, -1, 10)  # finish the dropoff, then the depot
    e.handle(RequestsArrived(95, [2], [2], [3]))
    d = e.handle(Tick(99))
    assert d.assign_request.size == 0  # no new work while going off duty
    e.handle(VehiclesUpdated(100, ["a0"], E.TRIP_STOP, [2], [1]))
    d = e.handle(VehiclesUpdated(130, ["a0"], E.TRIP_END, [2], [1]))
    assert d.off_duty.size == 0
    assert e.plan(0) == [(2, -1, 10)]
    d = e.handle(VehiclesUpdated(170, ["a0"], -1, [10]))  # reached the depot
    assert d.off_duty.tolist() == [0]
    e.handle(VehiclesUpdated(170, ["a0"], E.SERVICE_END, [10]))
    assert e.vehicle_state[0] == VehicleState.NON_OPERATIONAL
    e.handle(VehiclesUpdated(400, ["a0"], E.SERVICE_START, [10]))  # the next opening
    e.handle(RequestsArrived(400, [3], [11], [12]))
    d = e.handle(Tick(420))
    assert d.assign_request.tolist() == [3]


def test_on_duty_again_before_the_plan_is_done() -> None:
    e = build(av=[0], human=[])
    e.handle(VehiclesOffDuty(10, ["a0"], return_node=12))
    with pytest.raises(DispatchError, match="already off duty"):
        e.handle(VehiclesOffDuty(11, ["a0"]))
    e.handle(VehiclesOnDuty(20, ["a0"]))
    with pytest.raises(DispatchError, match="not off duty"):
        e.handle(VehiclesOnDuty(21, ["a0"]))
    e.handle(RequestsArrived(30, [1], [1], [2]))
    d = e.handle(Tick(60))
    assert d.assign_request.tolist() == [1]  # dispatched on its way to the depot


def test_off_duty_withdraws_a_pending_offer() -> None:
    e = build(av=[], human=[0, 2])
    e.handle(RequestsArrived(0, [1], [1], [6]))
    e.handle(Tick(30))  # offered to h0
    d = e.handle(VehiclesOffDuty(35, ["h0"]))
    assert d.withdrawn_request.tolist() == [1]
    assert d.off_duty.tolist() == [0]  # h0 (engine index 0) has an empty plan: off at once
    d = e.handle(Tick(60))
    assert e.vehicle_id(int(d.offer_vehicle[0])) == "h1"


def test_rider_cancels_an_offered_request() -> None:
    from robotaxi.dispatch import RequestsCancelled

    e = build(av=[], human=[0])
    e.handle(RequestsArrived(0, [1], [1], [6]))
    e.handle(Tick(30))
    d = e.handle(RequestsCancelled(35, [1]))
    assert d.withdrawn_request.tolist() == [1]
    assert e.request_status(1) == RequestStatus.CANCELLED
    assert e.n_idle == 1


def test_bad_answers_change_nothing() -> None:
    e = build(av=[], human=[0])
    e.handle(RequestsArrived(0, [1], [1], [6]))
    e.handle(Tick(30))
    before = e.snapshot()
    for ev in (
        OffersAnswered(31, [1], ["h9"], [True]),  # unknown vehicle
        OffersAnswered(31, [2], ["h0"], [True]),  # unknown request
        OffersAnswered(31, [1, 1], ["h0", "h0"], [True, False]),  # twice
    ):
        with pytest.raises(DispatchError):
            e.handle(ev)
        assert e.snapshot() == before
    with pytest.raises(DispatchError, match="booleans"):
        OffersAnswered(31, [1], ["h0"], [1])


def test_helpers_single_operator_still_work() -> None:
    # Sanity: the plain engine (no marketplace) is unchanged by the marketplace columns.
    from .helpers import arrive, engine

    e = engine(ROUTER, "batch", [0])
    arrive(e, 0, [1], [1], [2])
    d = e.handle(Tick(30))
    assert d.assign_request.tolist() == [1]
    pick_up_and_drop(e, 50, 0, 1, 1, 2)


def test_a_snapshot_leaves_the_fare_quote_out_and_restore_takes_it_back() -> None:
    def quote(op: int, o: NDArray[np.int32], d: NDArray[np.int32], now: int) -> NDArray[np.int64]:
        return np.full(o.size, 500 + op, dtype=np.int64)

    m = Marketplace(market().operators, MarketParams(objective="cheapest"), fare=quote)
    e = build(av=[3], human=[1], m=m)
    e.handle(RequestsArrived(0, [1], [0], [5]))
    data = e.snapshot()
    with pytest.raises(DispatchError, match="restore it with its fare quote"):
        DispatchEngine.restore(data, ROUTER)
    twin = DispatchEngine.restore(data, ROUTER, fare=quote)
    a, b = e.handle(Tick(30)), twin.handle(Tick(30))
    assert a.assign_vehicle.tolist() == b.assign_vehicle.tolist() == [0]  # the robotaxi quotes 500, drivers 501


def test_set_market_replaces_the_rules_only_when_the_engine_can_take_them() -> None:
    """The live service adds operators and changes their rules while the engine runs (``set_market``)."""
    e = DispatchEngine(ROUTER, make_policy("immediate"), EngineParams(max_wait_s=300))
    e.handle(VehiclesDocked(0, ["a0", "h0"], [0, 24], operator=[0, 1]))
    e.handle(VehiclesUpdated(0, ["a0", "h0"], E.SERVICE_START, [0, 24]))
    before = e.snapshot()
    with pytest.raises(DispatchError, match="vehicles of operator 1"):
        e.set_market(Marketplace((OperatorRules("av", offers=True),)))
    assert e.snapshot() == before
    e.set_market(market())
    e.handle(RequestsArrived(1, [1], [23], [22]))  # east: outside av's area, offered to the driver
    assert e.request_status(1) == RequestStatus.OFFERED
    with pytest.raises(DispatchError, match="offers pending"):
        e.set_market(Marketplace((OperatorRules("av"), OperatorRules("drivers"))))
    with pytest.raises(DispatchError, match="offers pending"):
        e.set_market(None)
    with pytest.raises(DispatchError, match="one flag per node"):
        e.set_market(Marketplace((OperatorRules("av", area=np.ones(3, bool)), OperatorRules("drivers", offers=True))))
    d = e.handle(OffersAnswered(2, [1], ["h0"], [True]))
    assert d.assign_request.tolist() == [1]
    e.set_market(None)  # nothing pending: every vehicle may serve every request again
    d = e.handle(RequestsArrived(3, [2], [1], [3]))
    assert d.assign_request.tolist() == [2]
    assert e.vehicle_id(int(d.assign_vehicle[0])) == "a0"
    restored = DispatchEngine.restore(e.snapshot(), ROUTER)
    assert restored.market is None

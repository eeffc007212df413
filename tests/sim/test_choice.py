"""Rider choice in a run: quotes at the first assignment, refusals as lost demand, live surge, seeded decisions."""

from __future__ import annotations

import numpy as np
import pytest

from robotaxi.dispatch import PolicyParams, Reason, make_policy
from robotaxi.fleet import TRANSITIONS, Fleet, Operator, OperatorKind, VehicleState
from robotaxi.market import (
    ChoiceSettings,
    Commission,
    FareSchedule,
    OperatorTerms,
    Pricing,
    RiderChoice,
    SurgeParams,
    SurgeSettings,
)
from robotaxi.network import RoadNetwork, Router
from robotaxi.sim import Outcome, SimParams, Simulator
from robotaxi.sim.choice import QuoteChoice
from robotaxi.sim.pricing import price_run
from robotaxi.sim.result import SimResult

from .helpers import random_requests

ALPHA = OperatorTerms(
    "alpha", OperatorKind.AUTONOMOUS, FareSchedule(base_cents=300, per_km_cents=150, per_minute_cents=40)
)
ZONES = np.array([0, 0, 0, 0, 0, 1, 0, 1, 1], dtype=np.int64)


def mds_legal(res: SimResult) -> None:
    state = {v: VehicleState.NON_OPERATIONAL for v in range(len(res.fleet))}
    ev = res.events
    for v, e, s in zip(ev.vehicle.tolist(), ev.event.tolist(), ev.state.tolist(), strict=True):
        assert TRANSITIONS[(state[v], e)] == s, f"vehicle {v}: illegal {(state[v], e)}"
        state[v] = VehicleState(s)


def pricing(constant: float, *, surge: bool = False, seed: int = 4) -> Pricing:
    model = RiderChoice(constant=constant, fare_per_dollar=-0.5, wait_per_minute=-0.3)
    return Pricing(
        commission=Commission(rate_bp=2000),
        choice=ChoiceSettings(model, seed=seed),
        surge=SurgeSettings(SurgeParams(interval_s=60, sensitivity=1.0)) if surge else None,
    )


def run(grid3: RoadNetwork, p: Pricing | None, policy: str = "batch") -> tuple[SimResult, QuoteChoice | None]:
    router = Router(grid3)
    fleet = Fleet.build((Operator("alpha", 3),), grid3, np.random.default_rng(2))
    reqs = random_requests(grid3, 60, 1800, seed=9)
    choice = None
    if p is not None:
        choice = QuoteChoice(p, (ALPHA,), router, zone_of_node=ZONES if p.surge else None, zone_names=("a", "b"))
    policy_ = make_policy(policy, PolicyParams(batch_seconds=30))  # type: ignore[arg-type]
    res = Simulator(router, fleet, reqs, policy_, SimParams(end_s=1800), choice=choice).run()
    return res, choice


@pytest.mark.parametrize("policy", ["immediate", "batch", "pool"])
def test_riders_who_like_every_quote_change_nothing(grid3: RoadNetwork, policy: str) -> None:
    plain, _ = run(grid3, None, policy)
    keen, choice = run(grid3, pricing(50.0), policy)
    assert choice is not None
    assert choice.quoted[plain.served].all()
    assert not choice.refused.any()
    for name in ("outcome", "reason", "vehicle", "assigned_s", "pickup_s", "dropoff_s"):
        assert getattr(keen.outcomes, name).tolist() == getattr(plain.outcomes, name).tolist(), name


def test_riders_who_refuse_everything_are_lost_demand(grid3: RoadNetwork) -> None:
    res, choice = run(grid3, pricing(-50.0), "immediate")
    assert choice is not None
    o = res.outcomes
    quoted = choice.quoted
    assert quoted.any()
    assert (o.outcome[quoted] == Outcome.CANCELLED).all()
    assert (o.reason[quoted] == Reason.QUOTE_DECLINED).all()
    assert (o.vehicle[quoted] == -1).all()
    assert (o.assigned_s[quoted] == -1).all()
    assert not res.served.any()
    assert len(res.legs) == 0  # every vehicle was freed at the instant it was matched: nobody drove
    mds_legal(res)


def test_a_mixed_crowd_is_seeded_and_every_request_ends(grid3: RoadNetwork) -> None:
    a, ca = run(grid3, pricing(4.0))
    b, cb = run(grid3, pricing(4.0))
    _, cc = run(grid3, pricing(4.0, seed=5))
    assert ca is not None
    assert cb is not None
    assert cc is not None
    assert ca.refused.tolist() == cb.refused.tolist()
    assert a.outcomes.outcome.tolist() == b.outcomes.outcome.tolist()
    assert 0 < int(ca.refused.sum()) < int(ca.quoted.sum())
    assert ca.refused.tolist() != cc.refused.tolist()
    o = a.outcomes
    assert (o.outcome != Outcome.PENDING).all()
    assert (o.reason[ca.refused] == Reason.QUOTE_DECLINED).all()
    assert (o.outcome[a.served] == Outcome.SERVED).all()
    assert not (ca.refused & a.served).any()
    mds_legal(a)
    # Quotes are the fares of the direct ride at 1.0x (no surge here), at least the base.
    assert (ca.quote_cents[ca.quoted] >= 300).all()


def test_live_surge_quotes_and_prices_the_run(grid3: RoadNetwork) -> None:
    p = pricing(6.0, surge=True)
    res, choice = run(grid3, p)
    assert choice is not None
    table = choice.surge_table()
    assert table is not None
    assert table.bp.shape[0] >= 30  # one row per minute of the 30-minute window (and on until the last trip)
    assert table.bp.shape[1] == 2
    assert int(table.bp.max()) > 10_000  # three vehicles, sixty riders: it surged somewhere
    refused = int(choice.refused.sum())
    market = price_run(res, p, (ALPHA,), zone_of_node=ZONES, zone_names=("a", "b"), surge=table, refused=refused)
    assert market.surge is table
    assert market.accounts.trips == int(res.served.sum())
    assert market.refused == refused > 0
    # Every trip was priced with the multiplier published live for its request time and pickup zone.
    served = np.flatnonzero(res.served)
    expected = table.lookup(res.requests.time_s[served], ZONES[res.requests.o_node[served]])
    assert market.trips.surge_bp.tolist() == expected.tolist()

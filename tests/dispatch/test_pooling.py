"""Ride pooling on crafted cases: who shares, who does not, and the exact batch solver against greedy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robotaxi.dispatch import PICKUP, DispatchEngine, PolicyName, Tick
from robotaxi.dispatch.plans import schedule
from robotaxi.dispatch.pooling import Insertion, greedy_trips, solve_trips, trip_objective
from robotaxi.network import Router, grid_city

from .helpers import arrive, engine


@pytest.fixture(scope="module")
def line10() -> Router:
    """A 1x10 grid city: ten nodes on a line, 20 s apart."""
    return Router(grid_city(1, 10))


@pytest.fixture(scope="module")
def grid5() -> Router:
    """A 5x5 grid city, 20 s per block."""
    return Router(grid_city(5, 5))


def pooled(router: Router, policy: PolicyName, nodes: list[int], **kw: int) -> DispatchEngine:
    return engine(router, policy, nodes, max_wait_s=kw.pop("max_wait_s", 300), max_delay_s=kw.pop("max_delay_s", 600))


def decide(e: DispatchEngine, policy: PolicyName, t: int, ids: list[int], o: list[int], d: list[int], **kw: object):  # type: ignore[no-untyped-def]
    out = arrive(e, t, ids, o, d, **kw)
    if policy == "pool":
        out = e.handle(Tick(t))
    return out


@pytest.mark.parametrize("policy", ["insertion", "pool"])
def test_two_riders_going_the_same_way_share(line10: Router, policy: PolicyName) -> None:
    e = pooled(line10, policy, [0])
    d = decide(e, policy, 0, [1, 2], [1, 2], [8, 7])
    assert sorted(d.assign_request.tolist()) == [1, 2]
    assert d.assign_vehicle.tolist() == [0, 0]
    kinds = [(k, r) for k, r, _ in e.plan(0)]
    assert kinds == [(0, 1), (0, 2), (1, 2), (1, 1)]  # pick up 1, pick up 2, drop 2, drop 1


def test_a_batch_fills_a_vehicle_with_more_than_two_new_riders(line10: Router) -> None:
    """Four riders along the line in one batch and one car of four seats at node 0: the batch gives all four to it
    in one trip (trips grow up to the seats; with trips of at most two new riders, two would wait)."""
    e = pooled(line10, "pool", [0])
    d = decide(e, "pool", 0, [1, 2, 3, 4], [1, 2, 3, 4], [8, 8, 7, 8])
    assert sorted(d.assign_request.tolist()) == [1, 2, 3, 4]
    assert d.assign_vehicle.tolist() == [0, 0, 0, 0]
    assert [k for k, _, _ in e.plan(0)] == [0, 0, 0, 0, 1, 1, 1, 1]  # four pickups on the way, then the dropoffs


@pytest.mark.parametrize("policy", ["insertion", "pool"])
def test_two_riders_going_opposite_ways_do_not_share(line10: Router, policy: PolicyName) -> None:
    """Both want the only car at once; serving both in one plan would delay one of them past 200 s of delay."""
    e = pooled(line10, policy, [4], max_delay_s=200)
    d = decide(e, policy, 0, [1, 2], [3, 5], [0, 9])
    assert d.assign_request.size == 1
    assert len(e.plan(0)) == 2


@pytest.mark.parametrize("policy", ["insertion", "pool"])
def test_a_rider_who_refused_to_share_rides_alone(line10: Router, policy: PolicyName) -> None:
    e = pooled(line10, policy, [0, 9])
    d = decide(e, policy, 0, [1, 2], [1, 2], [8, 7], shareable=[True, False])
    assert sorted(d.assign_request.tolist()) == [1, 2]
    assert d.assign_vehicle[0] != d.assign_vehicle[1]
    for v in (0, 1):
        assert len({r for _, r, _ in e.plan(v)}) == 1


@pytest.mark.parametrize("policy", ["insertion", "pool"])
def test_a_detour_beyond_the_limit_is_refused(grid5: Router, policy: PolicyName) -> None:
    """Rider 1 rides 0 -> 4 along the bottom row (80 s). Rider 2 waits at the top-left corner (20), going to 24:
    picking them up on the way would delay rider 1 by 160 s, over the 120 s allowed; a second car takes them."""
    e = pooled(grid5, policy, [0, 24], max_delay_s=120)
    d = decide(e, policy, 0, [1, 2], [0, 20], [4, 24])
    got = dict(zip(d.assign_request.tolist(), d.assign_vehicle.tolist(), strict=True))
    assert got[1] != got[2]


def test_an_insertion_keeps_everyone_in_their_window(line10: Router) -> None:
    """Four nested rides on a line, one 4-seater: all fit (rider 1's delay is 230 s of the 240 s allowed), and the
    planned times keep every rider within max wait and max delay; a fifth rider no longer fits."""
    e = pooled(line10, "insertion", [0], max_wait_s=300, max_delay_s=240)
    trips = {1: (1, 9), 2: (2, 8), 3: (3, 7), 4: (4, 6)}
    for k, (o, d) in trips.items():
        arrive(e, k - 1, [k], [o], [d])
    plan = e.plan(0)
    assert sorted(r for kind, r, _ in plan if kind == PICKUP) == [1, 2, 3, 4]
    node, t0, _ = e.leg(0)
    times = schedule(e.travel, node, t0, [(k, int(e.requests.index[r]), n) for k, r, n in plan], e.params.dwell)
    for (kind, r, _), (arrive_s, _dep) in zip(plan, times, strict=True):
        requested = r - 1
        if kind == PICKUP:
            assert arrive_s - requested <= 300
        else:
            o, d = trips[r]
            assert arrive_s - requested - 20 * (d - o) <= 240
    assert arrive(e, 5, [5], [5], [6]).assign_request.size == 0  # seats and windows are used up


def _trip(v: int, rows: tuple[int, ...], cost: int) -> Insertion:
    return Insertion(v, rows, (), cost, tuple(0 for _ in rows))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 7), st.integers(0, 7), st.booleans(), st.integers(0, 500)),
        min_size=1,
        max_size=30,
    )
)
def test_the_exact_solver_is_never_worse_than_greedy(raw: list[tuple[int, int, int, bool, int]]) -> None:
    trips = [_trip(v, (a, b) if pair and a != b else (a,), c) for v, a, b, pair, c in raw]
    big = 1 + sum(t.cost for t in trips)
    exact = solve_trips(trips, 8, time_s=5.0)
    greedy = greedy_trips(trips)
    assert trip_objective(exact, big) <= trip_objective(greedy, big)
    vs = [t.vehicle for t in exact]
    rows = [r for t in exact for r in t.rows]
    assert len(set(vs)) == len(vs)
    assert len(set(rows)) == len(rows)


def test_the_exact_solver_beats_greedy_on_a_crafted_case() -> None:
    """Greedy takes the pair (0, 1) on vehicle 0 first and leaves request 2 alone; exact serves all three."""
    trips = [_trip(0, (0, 1), 10), _trip(0, (1, 2), 30), _trip(1, (0,), 5), _trip(0, (2,), 1)]
    exact = solve_trips(trips, 3, time_s=5.0)
    assert sorted(r for t in exact for r in t.rows) == [0, 1, 2]
    assert sorted(r for t in greedy_trips(trips) for r in t.rows) == [0, 1]
    assert np.isfinite(trip_objective(exact, 100))


class _Checked:
    """The insertion policy, checking on every problem that the vectorised grid gives what the scalar insertion
    gives for every (open request, dispatchable vehicle) pair; counts the pairs and the feasible ones."""

    def __init__(self) -> None:
        from robotaxi.dispatch.pooling import InsertionPolicy

        self.inner = InsertionPolicy()
        self.pairs = 0
        self.feasible = 0
        self.long_plans = 0

    name = "insertion"
    on_arrival = True
    tick_seconds = 0

    def match(self, problem):  # type: ignore[no-untyped-def]
        from robotaxi.dispatch.pooling import _INF, Pack, _bases, best_insertion, grid

        p = problem
        vs = np.flatnonzero(p.fleet.dispatchable()).astype(np.int32)
        if len(p) and vs.size:
            bases = _bases(p, vs)
            pack = Pack(p, vs.tolist(), {})
            self.long_plans += int((pack.n >= 3).sum())
            idx = np.repeat(np.arange(vs.size), len(p))
            rows = np.tile(np.arange(len(p)), vs.size)
            cost, i, j, a_p = grid(p, pack, idx, rows)
            for q in range(idx.size):
                v = int(vs[idx[q]])
                want = best_insertion(p, bases[v], int(rows[q]), int(p.fleet.capacity[v]))
                got = None if cost[q] >= _INF else (int(cost[q]), int(i[q]), int(j[q]), int(a_p[q]))
                assert got == want, (v, int(rows[q]), got, want)
                self.pairs += 1
                self.feasible += want is not None
        return self.inner.match(problem)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_vectorised_grid_agrees_with_scalar_insertion(seed: int) -> None:
    """On every decision of a busy pooled run (plans of several riders, vehicles at stops, repositioning), the
    vectorised insertion grid gives exactly the scalar insertion's cost, positions and pickup time."""
    from robotaxi.dispatch import EngineParams
    from robotaxi.fleet import Fleet, Operator
    from robotaxi.sim import SimParams, Simulator

    from ..sim.helpers import random_requests

    net = grid_city(6, 6)
    router = Router(net)
    fleet = Fleet.build((Operator("acme", 8, capacity=3),), net, np.random.default_rng(seed))
    reqs = random_requests(net, 240, 1800, seed)
    policy = _Checked()
    res = Simulator(
        router,
        fleet,
        reqs,
        policy,
        SimParams(end_s=4000),
        EngineParams(max_wait_s=300, max_delay_s=400),
    ).run()
    assert policy.pairs > 30000
    assert policy.feasible > 300
    assert policy.long_plans > 1000
    assert res.outcomes.outcome.size == 240


def _pooled_run(policy_name: str, seed: int) -> tuple[object, object]:
    """A busy pooled run on a 9x9 grid city (40 vehicles of 3 seats, 400 requests): outcomes and vehicle events."""
    from robotaxi.dispatch import EngineParams, PolicyParams, make_policy
    from robotaxi.fleet import Fleet, Operator
    from robotaxi.sim import SimParams, Simulator

    from ..sim.helpers import random_requests

    net = grid_city(9, 9)
    router = Router(net)
    fleet = Fleet.build((Operator("acme", 40, capacity=3),), net, np.random.default_rng(seed))
    reqs = random_requests(net, 400, 1800, seed)
    policy = make_policy(policy_name, PolicyParams(candidates=3))  # type: ignore[arg-type]
    res = Simulator(
        router, fleet, reqs, policy, SimParams(end_s=3000), EngineParams(max_wait_s=240, max_delay_s=400)
    ).run()
    return res.outcomes, res.events


@pytest.mark.parametrize("policy_name", ["insertion", "pool"])
def test_the_node_lists_rank_candidates_as_every_vehicle_would(
    policy_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On every decision of a busy pooled run, the candidates found through each pickup's nodes by travel time are
    exactly those of ranking every request against every vehicle; both outcomes (settled by the node lists, left
    to the full ranking) occur."""
    from robotaxi.dispatch import pooling

    seen = {"certified": 0, "left": 0, "calls": 0}
    real = pooling._nearest

    def checked(p, sel, vs, leg_node, seats, k):  # type: ignore[no-untyped-def]
        every = np.arange(sel.size, dtype=np.int64)
        want = pooling._nearest_full(p, sel, every, vs, leg_node, seats, k)
        order = pooling._node_order(p.travel)
        assert order is not None
        q1, p1, todo = pooling._nearest_indexed(p, sel, vs, leg_node, seats, k, order)
        q2, p2 = pooling._nearest_full(p, sel, todo, vs, leg_node, seats, k)
        got = (np.concatenate((q1, q2)), np.concatenate((p1, p2)))
        assert sorted(zip(*got, strict=True)) == sorted(zip(*want, strict=True))
        seen["certified"] += np.unique(q1).size
        seen["left"] += todo.size
        seen["calls"] += 1
        return real(p, sel, vs, leg_node, seats, k)

    monkeypatch.setattr(pooling, "_COMPILED", False)  # the NumPy ranking (the compiled one ranks every vehicle)
    monkeypatch.setattr(pooling, "_INDEX_MIN_PAIRS", 0)
    monkeypatch.setattr(pooling, "_NODE_PREFIX", 8)
    monkeypatch.setattr(pooling, "_nearest", checked)
    _pooled_run(policy_name, 5)
    assert seen["calls"] > 50
    assert seen["certified"] > 100
    assert seen["left"] > 10


def test_plans_timed_together_agree_with_plans_timed_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """On every batch of a busy pooled run under speeds that change every 15 minutes (so that some candidate
    plans, costed at the batch's speeds, miss a window once each leg is timed at its own departure), timing all
    candidate plans of a batch at once (`verify_many`) gives exactly what timing each alone gives; both answers
    (a plan kept, a plan dropped) occur, and so do vehicles standing at a stop."""
    from robotaxi.dispatch import EngineParams, PolicyParams, make_policy, pooling
    from robotaxi.fleet import Fleet, Operator
    from robotaxi.network import SpeedProfile
    from robotaxi.sim import SimParams, Simulator

    from ..sim.helpers import random_requests

    seen = {"kept": 0, "dropped": 0, "standing": 0}
    real = pooling.verify_many

    def checked(p, items):  # type: ignore[no-untyped-def]
        got = real(p, items)
        assert len(got) == len(items)
        for (v, stops), g in zip(items, got, strict=True):
            assert g == pooling.verify_plan(p, v, stops), (v, stops)
            seen["kept" if g is not None else "dropped"] += 1
            seen["standing"] += bool(p.fleet.at_stop[v])
        return got

    monkeypatch.setattr(pooling, "verify_many", checked)
    net = grid_city(9, 9)
    router = Router(net, profile=SpeedProfile(tuple(1.0 + 0.9 * (k % 2) for k in range(96)), overhead_s=20.0))
    fleet = Fleet.build((Operator("acme", 30, capacity=4),), net, np.random.default_rng(3))
    reqs = random_requests(net, 500, 3600, 3)
    policy = make_policy("pool", PolicyParams(candidates=4))
    res = Simulator(
        router, fleet, reqs, policy, SimParams(end_s=4500), EngineParams(max_wait_s=300, max_delay_s=400)
    ).run()
    assert res.outcomes.outcome.size == 500
    assert seen["kept"] > 500
    assert seen["dropped"] > 5
    assert seen["standing"] > 50


def test_retiming_one_by_one_decides_as_the_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    """`insertion` re-times the later pairs of a vehicle that just got a request one by one when they are few, and
    with one grid pass otherwise: a busy pooled run decides exactly the same either way."""
    from robotaxi.dispatch import pooling

    used = {"scalar": 0}
    real = pooling.best_insertion

    def counted(*a):  # type: ignore[no-untyped-def]
        used["scalar"] += 1
        return real(*a)

    monkeypatch.setattr(pooling, "best_insertion", counted)
    monkeypatch.setattr(pooling, "_COMPILED", False)  # the NumPy path, where re-timing one by one is an option
    monkeypatch.setattr(pooling, "_SCALAR_RETIME", 1_000_000)
    outcomes_a, events_a = _pooled_run("insertion", 7)
    assert used["scalar"] > 20
    monkeypatch.setattr(pooling, "_SCALAR_RETIME", 0)
    outcomes_b, events_b = _pooled_run("insertion", 7)
    for a, b in ((outcomes_a, outcomes_b), (events_a, events_b)):
        for name in a.__dataclass_fields__:  # type: ignore[attr-defined]
            assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_the_32_bit_ranking_key_ranks_as_the_64_bit_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """With 16-bit travel times the k nearest are ranked with a 32-bit key; a run with the same table in 32 bits
    (so the 64-bit key) decides exactly the same."""
    from robotaxi.dispatch import pooling

    seen = {"small": 0}
    real = pooling._to_table

    def counted(travel):  # type: ignore[no-untyped-def]
        out = real(travel)
        seen["small"] += out is not None and out.dtype.itemsize == 2  # the router keeps 16-bit times
        return out

    monkeypatch.setattr(pooling, "_COMPILED", False)  # the NumPy ranking (the compiled one keys in 64 bits)
    monkeypatch.setattr(pooling, "_to_table", counted)
    outcomes_a, events_a = _pooled_run("insertion", 11)
    assert seen["small"] > 50

    def wide(travel):  # type: ignore[no-untyped-def]
        out = real(travel)
        return None if out is None else out.astype(np.int32)

    monkeypatch.setattr(pooling, "_to_table", wide)
    outcomes_b, events_b = _pooled_run("insertion", 11)
    for a, b in ((outcomes_a, outcomes_b), (events_a, events_b)):
        for name in a.__dataclass_fields__:  # type: ignore[attr-defined]
            assert np.array_equal(getattr(a, name), getattr(b, name)), name

"""The compiled kernels of the insertion policies (`dispatch/_kernels.py`) against the NumPy path they replace."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robotaxi.network import Router, SpeedProfile, grid_city

#: Speed profiles covering every way a leg is timed: free flow, factors alone, factors and a per-leg overhead,
#: road classes, and (set on the router below) zone multipliers.
PROFILES: dict[str, SpeedProfile | None] = {
    "free": None,
    "factors": SpeedProfile(tuple(1.0 + 0.37 * (k % 3) for k in range(96))),
    "overhead": SpeedProfile(tuple(1.0 + 0.9 * (k % 2) for k in range(96)), overhead_s=20.0),
    "classes": SpeedProfile(
        tuple(1.3 + 0.1 * (k % 4) for k in range(24)),
        major_factors=tuple(1.1 + 0.05 * (k % 5) for k in range(24)),
        overhead_s=12.0,
    ),
}


def _router(name: str, side: int, seed: int = 0) -> Router:
    """A grid city's router with profile ``name`` ("zones": road classes and a random multiplier per node, for leg
    times only: the simulator's motion model does not see multipliers set this way)."""
    net = grid_city(side, side)
    if name == "zones":
        router = Router(net, profile=PROFILES["classes"])
        router._node_w = np.random.default_rng(seed).uniform(0.8, 1.3, net.n_nodes)
        return router
    return Router(net, profile=PROFILES[name])


@pytest.mark.parametrize("name", [*PROFILES, "zones"])
def test_a_compiled_leg_takes_the_routers_time(name: str) -> None:
    """Every leg timed inside the kernels takes exactly the seconds `Router.times_at` gives, at many times of day."""
    from robotaxi.dispatch import _kernels

    router = _router(name, 7, seed=3)
    rng = np.random.default_rng(1)
    n = router.n_nodes
    for t in rng.integers(0, 3 * 86_400, 40).tolist():
        o = rng.integers(0, n, 500)
        d = rng.integers(0, n, 500)
        d[:20] = o[:20]  # legs of zero seconds too
        terms = router.leg_terms(int(t))
        assert terms is not None
        got = _kernels.leg_times(o, d, tuple(terms))
        assert np.array_equal(got, router.times_at(o, d, int(t)))


class _Compared:
    """A pooling policy that, on every problem, checks the compiled pack, grid and ranking against the NumPy ones
    for every (open request, dispatchable vehicle) pair, then decides as the wrapped policy."""

    def __init__(self, name: str, k: int) -> None:
        from robotaxi.dispatch import PolicyParams, make_policy

        self.inner = make_policy(name, PolicyParams(candidates=k))  # type: ignore[arg-type]
        self.name = self.inner.name
        self.on_arrival = self.inner.on_arrival
        self.tick_seconds = self.inner.tick_seconds
        self.k = k
        self.seen = {"pairs": 0, "feasible": 0, "long": 0}

    def match(self, problem: Any) -> Any:
        from robotaxi.dispatch import pooling

        p = problem
        vs = np.flatnonzero(p.fleet.dispatchable()).astype(np.int64)
        if len(p) and vs.size:
            fast = pooling.Pack(p, vs.tolist(), {}, compiled=True)
            slow = pooling.Pack(p, vs.tolist(), {}, compiled=False)
            assert fast.terms is not None
            assert slow.terms is None
            for name in ("nodes", "depart", "arrive", "end", "load_before", "slack", "suffix_slack", "has_riders",
                         "shareable", "n", "t0", "fixed", "origin", "capacity"):  # fmt: skip
                assert np.array_equal(getattr(fast, name), getattr(slow, name)), name
            idx = np.repeat(np.arange(vs.size), len(p))
            rows = np.tile(np.arange(len(p)), vs.size)
            got = pooling.grid(p, fast, idx, rows)
            want = pooling.grid(p, slow, idx, rows)
            ok = want[0] < pooling._INF
            for a, b in zip(got, want, strict=True):  # cost, positions and pickup time
                assert np.array_equal(a, b)
            self.seen["pairs"] += idx.size
            self.seen["feasible"] += int(ok.sum())
            self.seen["long"] += int((slow.n >= 3).sum())
            seats = (p.fleet.capacity - p.fleet.load).astype(np.int64)
            sel = np.arange(len(p), dtype=np.int64)
            args = (p, sel, vs, p.fleet.leg_node, seats, self.k)
            near_c = pooling._nearest(*args, compiled=True)
            near_n = pooling._nearest(*args, compiled=False)
            assert sorted(zip(*near_c, strict=True)) == sorted(zip(*near_n, strict=True))
            cand_c = pooling._call_candidates(p, self.k)
            pooling._COMPILED = False  # restored below, before the policy decides
            try:
                cand_n = pooling._call_candidates(p, self.k)
            finally:
                pooling._COMPILED = True
            for a, b in zip(cand_c, cand_n, strict=True):  # the pairs kept, in the same order
                assert np.array_equal(a, b)
        return self.inner.match(problem)


def _run(router: Router, policy: Any, seed: int, vehicles: int, capacity: int, n_req: int) -> tuple[Any, Any]:
    from robotaxi.dispatch import EngineParams
    from robotaxi.fleet import Fleet, Operator
    from robotaxi.sim import SimParams, Simulator

    from ..sim.helpers import random_requests

    net = router.network
    fleet = Fleet.build((Operator("acme", vehicles, capacity=capacity),), net, np.random.default_rng(seed))
    reqs = random_requests(net, n_req, 1800, seed)
    res = Simulator(
        router, fleet, reqs, policy, SimParams(end_s=30_000), EngineParams(max_wait_s=300, max_delay_s=400)
    ).run()
    return res.outcomes, res.events


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    profile=st.sampled_from(list(PROFILES)),
    policy=st.sampled_from(["insertion", "pool"]),
    vehicles=st.integers(3, 12),
    capacity=st.integers(1, 4),
    k=st.integers(1, 6),
    by_vehicle=st.sampled_from([0, 128]),
)
def test_compiled_kernels_give_the_numpy_answers_on_random_plans(
    seed: int, profile: str, policy: str, vehicles: int, capacity: int, k: int, by_vehicle: int
) -> None:
    """On every decision of a random pooled run (random fleet, seats, speed profile, candidates, ranking through
    the nearest nodes or vehicle by vehicle), the compiled pack, grid and ranking give exactly the NumPy path's
    values, pair by pair."""
    from robotaxi.dispatch import pooling

    router = _router(profile, 6, seed)
    checked = _Compared(policy, k)
    pooling._BY_VEHICLE_MAX = by_vehicle  # restored below
    try:
        _run(router, checked, seed, vehicles, capacity, 120)
    finally:
        pooling._BY_VEHICLE_MAX = 128
    assert checked.seen["pairs"] > 0


def test_the_comparison_sees_busy_plans() -> None:
    """The comparison above is not vacuous: a busy run has many feasible pairs and plans of three stops or more."""
    checked = _Compared("insertion", 4)
    _run(_router("overhead", 6), checked, 5, 8, 4, 240)
    assert checked.seen["pairs"] > 20_000
    assert checked.seen["feasible"] > 500
    assert checked.seen["long"] > 1_000


@pytest.mark.parametrize("policy", ["insertion", "pool"])
@pytest.mark.parametrize("profile", ["overhead", "classes"])
@pytest.mark.parametrize("by_vehicle", [0, 128])
def test_compiled_runs_decide_as_numpy_runs(
    policy: str, profile: str, by_vehicle: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy pooled run decides exactly the same with the compiled kernels (ranking through the nearest nodes or
    vehicle by vehicle) and with the NumPy path."""
    from robotaxi.dispatch import PolicyParams, make_policy, pooling

    monkeypatch.setattr(pooling, "_BY_VEHICLE_MAX", by_vehicle)

    def run() -> tuple[Any, Any]:
        return _run(_router(profile, 9, 2), make_policy(policy, PolicyParams(candidates=5)), 4, 30, 4, 500)  # type: ignore[arg-type]

    outcomes_a, events_a = run()
    monkeypatch.setattr(pooling, "_COMPILED", False)
    outcomes_b, events_b = run()
    for a, b in ((outcomes_a, outcomes_b), (events_a, events_b)):
        for name in a.__dataclass_fields__:
            assert np.array_equal(getattr(a, name), getattr(b, name)), name

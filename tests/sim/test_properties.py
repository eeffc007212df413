"""Simulator invariants on random small cities (hypothesis): nothing lost, time monotone, MDS-legal histories."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from robotaxi.dispatch import EngineParams, PolicyName, Reason, make_policy
from robotaxi.fleet import Fleet, Operator, VehicleState
from robotaxi.fleet.states import TRANSITIONS
from robotaxi.network import Router, grid_city
from robotaxi.sim import Simulator
from robotaxi.sim.result import Outcome
from robotaxi.sim.simulator import SimParams

from .helpers import random_requests

_ROUTERS = {size: Router(grid_city(size, size)) for size in (3, 4, 5)}


@settings(max_examples=40, deadline=None)
@given(
    size=st.sampled_from([3, 4, 5]),
    n_req=st.integers(1, 120),
    n_veh=st.integers(1, 8),
    max_wait=st.integers(30, 900),
    seed=st.integers(0, 100_000),
    policy=st.sampled_from(["immediate", "batch"]),
)
def test_simulation_invariants(size: int, n_req: int, n_veh: int, max_wait: int, seed: int, policy: PolicyName) -> None:
    router = _ROUTERS[size]
    net = router.network
    reqs = random_requests(net, n_req, 3600, seed=seed)
    fleet = Fleet.build((Operator("acme", n_veh),), net, np.random.default_rng(seed))
    res = Simulator(
        router, fleet, reqs, make_policy(policy), SimParams(end_s=3600), EngineParams(max_wait_s=max_wait)
    ).run()
    out = res.outcomes
    # Every request ends served, rejected or cancelled: none is lost or left pending.
    assert out.outcome.size == n_req
    assert set(np.unique(out.outcome).tolist()) <= {Outcome.SERVED, Outcome.REJECTED, Outcome.CANCELLED}
    served = out.outcome == Outcome.SERVED
    # A served trip happens in order, within the rider's patience.
    t_req = reqs.time_s[served]
    assert np.all(t_req <= out.assigned_s[served])
    assert np.all(out.assigned_s[served] <= out.pickup_s[served])
    assert np.all(out.pickup_s[served] <= out.dropoff_s[served])
    assert np.all(out.pickup_s[served] - t_req <= max_wait)
    # Each outcome carries a reason of its own kind: none when served, a RejectReason when rejected, max wait when
    # cancelled.
    assert np.all(out.reason[served] == 0)
    assert set(out.reason[out.outcome == Outcome.REJECTED].tolist()) <= {
        int(Reason.NO_VEHICLE_AVAILABLE),
        int(Reason.ETA_EXCEEDS_MAX_WAIT),
        int(Reason.OVER_CAPACITY),
    }
    assert np.all(out.reason[out.outcome == Outcome.CANCELLED] == Reason.MAX_WAIT_EXCEEDED)
    # One trip at a time per vehicle: the next assignment comes after the previous trip_end (dropoff + dwell 30 s).
    v, ta, te = out.vehicle[served], out.assigned_s[served], out.dropoff_s[served] + 30
    order = np.lexsort((ta, v))
    same = v[order][1:] == v[order][:-1]
    assert np.all(ta[order][1:][same] >= te[order][:-1][same])
    # Simulated time never goes backwards, and every vehicle's history follows the MDS state machine.
    ev = res.events
    assert np.all(np.diff(ev.time_s) >= 0)
    state = {v: VehicleState.NON_OPERATIONAL for v in range(n_veh)}
    for v, e, s in zip(ev.vehicle.tolist(), ev.event.tolist(), ev.state.tolist(), strict=True):
        key = (state[v], e)
        assert key in TRANSITIONS, f"vehicle {v}: illegal {key}"
        assert TRANSITIONS[key] == s
        state[v] = VehicleState(s)

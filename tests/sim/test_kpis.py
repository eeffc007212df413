"""KPIs on hand-checkable grid runs (every block is 200 m and 20 s, dwell 30 s at each end)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robotaxi.dispatch import EngineParams, make_policy
from robotaxi.fleet import Fleet, Operator
from robotaxi.network import RoadNetwork, Router
from robotaxi.sim import RunOutput, SimParams, Simulator, compute_kpis

from .helpers import requests_on


def test_kpis_of_two_cars_and_three_trips(grid3: RoadNetwork) -> None:
    """The run of ``test_two_vehicles_three_requests_exact_times``: vehicle 0 is busy 10..150 (reserved 40 s,
    stopped 30 s, on trip 40 s, stopped 30 s), vehicle 1 the same plus 200..340; both in service 0..3600."""
    fleet = Fleet.build((Operator("acme", 2, start_nodes=(0, 8)),), grid3, np.random.default_rng(0))
    reqs = requests_on(grid3, [10, 10, 200], [2, 6, 4], [8, 0, 0])
    res = Simulator(Router(grid3), fleet, reqs, make_policy("immediate"), SimParams(end_s=3600)).run()
    k = compute_kpis(res)
    assert (k.requests, k.served, k.served_pct) == (3, 3, 100.0)
    assert (k.wait_mean_s, k.wait_median_s, k.wait_p95_s) == (40.0, 40.0, 40.0)
    assert k.in_vehicle_mean_s == 40.0
    assert (k.vehicle_km_occupied, k.vehicle_km_empty) == (1.2, 1.2)  # 3 x 2 blocks each
    assert k.fleet_utilisation_pct == pytest.approx(100 * (140 + 280) / 7200, abs=0.01)
    assert (k.trips_per_vehicle_mean, k.trips_per_vehicle_max) == (1.5, 2)
    assert k.vehicle_state_hours["on_trip"] == round(3 * 40 / 3600, 1)


def test_kpis_without_a_served_trip_are_valid_json(grid3: RoadNetwork) -> None:
    """One car at a corner, one rider at the far corner who waits at most 30 s: rejected, nothing served.
    Percentiles of no wait at all must be null, not NaN (which is not JSON)."""
    fleet = Fleet.build((Operator("acme", 1, start_nodes=(0,)),), grid3, np.random.default_rng(0))
    reqs = requests_on(grid3, [10], [8], [0])
    res = Simulator(
        Router(grid3), fleet, reqs, make_policy("immediate"), SimParams(end_s=600), EngineParams(max_wait_s=30)
    ).run()
    k = compute_kpis(res)
    assert k.served == 0
    assert k.rejected_by_reason == {"eta_exceeds_max_wait": 1}
    assert k.wait_median_s is None
    assert k.wait_p90_s is None
    json.loads(json.dumps(k.to_dict(), allow_nan=False))
    assert json.loads(k.to_json()) == k.to_dict()


def test_the_cli_summary_prints_a_run_without_a_served_trip(
    grid3: RoadNetwork, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import robotaxi.cli.simulate as cli_simulate
    from robotaxi.cli import main

    fleet = Fleet.build((Operator("acme", 1, start_nodes=(0,)),), grid3, np.random.default_rng(0))
    reqs = requests_on(grid3, [10], [8], [0])
    res = Simulator(
        Router(grid3), fleet, reqs, make_policy("immediate"), SimParams(end_s=600), EngineParams(max_wait_s=30)
    ).run()
    out = RunOutput(result=res, kpis=compute_kpis(res), folder=None, network=grid3, timings_s={})
    monkeypatch.setattr(cli_simulate, "run_scenario", lambda *_a, **_k: out)
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", "-q"]) == 0


def test_fleet_states_are_counted_at_each_bin_start(grid3: RoadNetwork) -> None:
    """One car at node 0, a rider at node 2 at t=280: reserved 280..320, so at 0 s it is available, at 300 s
    reserved, at 600 s available again (trip over at 420)."""
    from robotaxi.fleet import VehicleState
    from robotaxi.sim.report import fleet_states_over_time

    fleet = Fleet.build((Operator("acme", 1, start_nodes=(0,)),), grid3, np.random.default_rng(0))
    reqs = requests_on(grid3, [280], [2], [8])
    res = Simulator(Router(grid3), fleet, reqs, make_policy("immediate"), SimParams(end_s=900)).run()
    edges, counts = fleet_states_over_time(res, bin_s=300)
    assert edges.tolist() == [0, 300, 600, 900]
    assert counts[:3, VehicleState.AVAILABLE].tolist() == [1, 0, 1]
    assert counts[:3, VehicleState.RESERVED].tolist() == [0, 1, 0]
    assert counts[3, VehicleState.NON_OPERATIONAL] == 1  # service_end at 900

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


def test_utilisation_by_hour_cuts_a_trip_at_the_hour(grid3: RoadNetwork) -> None:
    """One car at node 0 in service 0..7200, a rider at node 2 at 3540 going to node 8: busy 3540..3680 (40 s to
    the pickup, 30 s to board, 40 s riding, 30 s to alight), so 60 s of hour 0 and 80 s of hour 1; no vehicle is
    in service after 7200. The hours weighted by time in service give the whole run's utilisation."""
    fleet = Fleet.build((Operator("acme", 1, start_nodes=(0,)),), grid3, np.random.default_rng(0))
    reqs = requests_on(grid3, [3540], [2], [8])
    res = Simulator(Router(grid3), fleet, reqs, make_policy("immediate"), SimParams(end_s=7200)).run()
    k = compute_kpis(res)
    by_hour = k.utilisation_pct_by_hour
    assert len(by_hour) == len(k.served_pct_by_hour) == 24
    first, second = by_hour[0], by_hour[1]
    assert (first, second) == (round(100 * 60 / 3600, 2), round(100 * 80 / 3600, 2))
    assert by_hour[2:] == [None] * 22
    assert first is not None
    assert second is not None
    assert k.fleet_utilisation_pct == pytest.approx((first + second) / 2, abs=0.01)


def test_a_saturated_hour_shows_in_the_utilisation(grid3: RoadNetwork) -> None:
    """Two cars and a rider every 50 s from 0 to 3550, alternately 2 -> 8 and 6 -> 0 (two blocks each): a trip
    takes a car 100 s plus the drive to the pickup, and the cars together get one rider per 50 s, so they are busy
    over 90 % of the hour (92.8 %: the first minute and each car's last rider leave a little idle time) and some
    riders give up waiting; after the demand ends the fleet idles."""
    fleet = Fleet.build((Operator("acme", 2, start_nodes=(0, 8)),), grid3, np.random.default_rng(0))
    times = list(range(0, 3600, 50))
    origins = [2 if i % 2 else 6 for i in range(len(times))]
    destinations = [8 if i % 2 else 0 for i in range(len(times))]
    reqs = requests_on(grid3, times, origins, destinations)
    res = Simulator(Router(grid3), fleet, reqs, make_policy("immediate"), SimParams(end_s=7200)).run()
    k = compute_kpis(res)
    busy = k.utilisation_pct_by_hour
    first, second, served = busy[0], busy[1], k.served_pct_by_hour[0]
    assert first is not None
    assert second is not None
    assert served is not None
    assert first > 90
    assert served < 100
    assert second < first
    assert busy[2] is None

"""The static report for people: readable labels with units, the run's inputs, streets behind maps, km by hour."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from robotaxi.dispatch import make_policy
from robotaxi.fleet import Fleet, Operator
from robotaxi.network import RoadNetwork, Router, grid_city
from robotaxi.sim import Scenario
from robotaxi.sim.kpis import Kpis, compute_kpis
from robotaxi.sim.report import KPI_ELSEWHERE, KPI_SECTIONS, DevFigures, km_by_hour, kpi_table, render_report
from robotaxi.sim.result import SimResult
from robotaxi.sim.run import scenario_inputs
from robotaxi.sim.simulator import SimParams, Simulator

from .helpers import random_requests


@pytest.fixture(scope="module")
def grid_run() -> tuple[RoadNetwork, SimResult, Kpis]:
    net = grid_city(8, 8, spacing_m=250.0, speed_kmh=30.0)
    fleet = Fleet.build((Operator("acme", 6),), net, np.random.default_rng(1))
    reqs = random_requests(net, 300, 4 * 3600, seed=2)
    res = Simulator(Router(net), fleet, reqs, make_policy("batch"), SimParams(end_s=4 * 3600)).run()
    return net, res, compute_kpis(res, "grid")


def test_every_kpi_has_a_label_or_a_place() -> None:
    labelled = {key for _, rows in KPI_SECTIONS for key, _, _ in rows}
    fields = {f.name for f in dataclasses.fields(Kpis)}
    assert not labelled & KPI_ELSEWHERE
    assert fields == labelled | KPI_ELSEWHERE, "a new KPI needs a label in KPI_SECTIONS (or a place in KPI_ELSEWHERE)"


def test_waits_in_minutes_and_shares_in_percent(grid_run: tuple[RoadNetwork, SimResult, Kpis]) -> None:
    _, _, kpis = grid_run
    k = dataclasses.replace(kpis, wait_mean_s=150.0, served_pct=97.25, vehicle_km_saved_pct=-0.01)
    rows = dict(row for _, section in kpi_table(k) for row in section)
    assert rows["Mean wait for pickup"] == "2.5 min"
    assert rows["Served share"] == "97.2 %"
    assert rows["Vehicle-km saved against riding alone"] == "0.0 %"  # never "-0.0 %"
    assert "Other indicators" not in [h for h, _ in kpi_table(k)]


def test_report_reads_like_a_report(grid_run: tuple[RoadNetwork, SimResult, Kpis]) -> None:
    net, res, kpis = grid_run
    html = render_report(
        res,
        kpis,
        title="t",
        inputs=[("Road network", "grid")],
        network=net,
        dev=DevFigures({"prepare": 1.5, "simulate": 2.0}),
    )
    assert "<h2>Inputs</h2>" in html
    assert "Mean wait for pickup" in html
    # no developer key names in the text people read
    labels = re.findall(r"<th>([^<]*)</th>", html)
    assert len(labels) > 30
    for label in labels:  # not "wait mean s", "served pct", "wall s", "vehicle_km_total"
        assert "_" not in label
        assert not re.search(r"\s(s|pct|km)$", label), label
    # developer figures in their own section, after the plots
    assert html.index("For developers") > html.rindex("data:image/png")
    assert "simulation (event loop), wall" in html
    assert html.count("data:image/png;base64,") == 6  # hourly, wait/occupancy, waits, km by hour, states, map


def test_km_by_hour_adds_up_to_the_kpis(grid_run: tuple[RoadNetwork, SimResult, Kpis]) -> None:
    _, res, kpis = grid_run
    hours, km = km_by_hour(res)
    assert hours.tolist() == [0, 1, 2, 3]  # the window only, even when trips end after it
    assert km[:, 0].sum() == pytest.approx(kpis.vehicle_km_occupied, abs=0.1)
    assert km[:, 1].sum() == pytest.approx(kpis.vehicle_km_empty, abs=0.1)
    assert km[:, 2].sum() == pytest.approx(kpis.vehicle_km_rebalancing, abs=0.1)


def test_scenario_inputs_name_what_the_run_was_given(grid_run: tuple[RoadNetwork, SimResult, Kpis]) -> None:
    net, res, _ = grid_run
    sc = Scenario.default()
    rows = dict(scenario_inputs(sc, net, res.requests))
    assert sc.fleet is not None
    assert rows["Fleet"].startswith(f"{sc.fleet.vehicles:,} autonomous vehicles of {sc.fleet.capacity} seats")
    assert rows["Demand"].startswith("synthetic")
    assert f"{len(res.requests):,} requests" in rows["Demand"]
    assert rows["Time window"] == f"00:00-24:00 {sc.timezone}"
    assert rows["Rebalancing"] == ("off" if not sc.rebalancing.enabled else rows["Rebalancing"])
    assert rows["Riders"].startswith(f"wait at most {sc.engine.max_wait_s / 60:g} min")

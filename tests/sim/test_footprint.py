"""Memory estimate of a scenario before anything is built: a run that cannot fit is refused with the estimate."""

from __future__ import annotations

from pathlib import Path

import pytest

from robotaxi.cli import main
from robotaxi.errors import ScenarioError
from robotaxi.network import grid_city
from robotaxi.sim import Scenario, run_scenario
from robotaxi.sim.footprint import available_memory, check_footprint, estimate_footprint, table_bytes

SCENARIO = """
name = "big-fleet"
seed = 1
[network]
path = "helsinki"
[demand]
kind = "synthetic"
n_requests = 500
date = "2026-11-18"
[time]
start = "07:00"
end = "08:00"
[fleet]
vehicles = {vehicles}
"""


def _scenario(tmp_path: Path, vehicles: int) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(SCENARIO.format(vehicles=vehicles), encoding="utf-8")
    return p


def test_estimate_adds_up_its_parts(tmp_path: Path) -> None:
    sc = Scenario.from_file(_scenario(tmp_path, 10_000_000))
    net = grid_city(10, 10)  # 100 nodes
    fp = estimate_footprint(sc, net)
    assert fp.nodes == 100
    assert fp.requests == 500
    assert fp.table == table_bytes(100) == 2 * 8 * 100 * 100
    assert fp.fleet >= 10_000_000 * 1_060  # measured: about 1,060 bytes per vehicle over a run
    assert fp.total == fp.base + fp.network + fp.table + fp.fleet + fp.demand
    assert table_bytes(30_000) == 0  # above the router's table limit, rows are computed on demand
    # A profile with road classes adds the major-road seconds: 2 more bytes per node pair.
    assert table_bytes(100, road_classes=True) == 2 * 10 * 100 * 100


def test_a_fleet_that_does_not_fit_is_refused_with_the_estimate(tmp_path: Path) -> None:
    sc = Scenario.from_file(_scenario(tmp_path, 10_000_000))
    with pytest.raises(
        ScenarioError, match=r"fleet.vehicles = 10,000,000 needs about 15\.3 GB .* 2\.0 GB is available"
    ):
        check_footprint(sc, available=2_000_000_000)
    fp = check_footprint(sc, available=100_000_000_000, network=grid_city(3, 3))  # 100 GB: fits
    assert fp.vehicles == 10_000_000


def test_a_table_that_does_not_fit_is_refused(tmp_path: Path) -> None:
    sc = Scenario.from_file(_scenario(tmp_path, 10))
    net = grid_city(100, 100)  # 10,000 nodes: 1.2 GB of table to build
    with pytest.raises(ScenarioError, match=r"routing table 1\.2 GB for 10,000 nodes"):
        check_footprint(sc, available=1_000_000_000, network=net)


def test_run_scenario_refuses_before_building_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A fleet of 10**13 vehicles exceeds any machine: refused at once, one line, exit 1, nothing written."""
    path = _scenario(tmp_path, 10**13)
    with pytest.raises(ScenarioError, match="needs about"):
        run_scenario(Scenario.from_file(path), write=False)
    out = tmp_path / "out"
    assert main(["simulate", str(path), "-q", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "fleet.vehicles = 10,000,000,000,000 needs about" in err
    assert not out.exists()


def test_available_memory_is_read() -> None:
    avail = available_memory()
    assert avail is not None
    assert avail > 0

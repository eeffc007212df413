"""Writing a run: the output folder is replaced only when it holds a previous run, never the user's own files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robotaxi.dispatch import make_policy
from robotaxi.errors import SimulationError
from robotaxi.fleet import Fleet, Operator
from robotaxi.network import RoadNetwork, Router
from robotaxi.sim import SimParams, SimResult, Simulator, compute_kpis, write_outputs

from .helpers import requests_on


@pytest.fixture(scope="module")
def small_run(grid3: RoadNetwork) -> SimResult:
    """One car at node 0 on the 3x3 grid city, one request from node 2 to node 8."""
    fleet = Fleet.build((Operator("acme", 1, start_nodes=(0,)),), grid3, np.random.default_rng(0))
    reqs = requests_on(grid3, [10], [2], [8])
    return Simulator(Router(grid3), fleet, reqs, make_policy("immediate"), SimParams(end_s=600)).run()


def test_a_previous_run_is_replaced(tmp_path: Path, small_run: SimResult, grid3: RoadNetwork) -> None:
    out = tmp_path / "run"
    kpis = compute_kpis(small_run)
    write_outputs(small_run, grid3, out, kpis)
    (out / "report.html").write_text("stale", encoding="utf-8")
    write_outputs(small_run, grid3, out, kpis)
    assert sorted(p.name for p in out.iterdir()) == [
        "kpis.json",
        "legs.parquet",
        "requests.parquet",
        "vehicle_events.parquet",
    ]


def test_a_folder_with_other_files_is_never_deleted(tmp_path: Path, small_run: SimResult, grid3: RoadNetwork) -> None:
    out = tmp_path / "notes"
    out.mkdir()
    (out / "thesis.txt").write_text("precious", encoding="utf-8")
    with pytest.raises(SimulationError, match=r"not simulation outputs \(thesis.txt\)"):
        write_outputs(small_run, grid3, out, compute_kpis(small_run))
    assert (out / "thesis.txt").read_text(encoding="utf-8") == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"]  # no temporary folder left behind


def test_the_working_directory_is_never_the_output(
    tmp_path: Path, small_run: SimResult, grid3: RoadNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for folder in (Path(), Path(".."), Path("")):
        with pytest.raises(SimulationError, match="working directory"):
            write_outputs(small_run, grid3, folder, compute_kpis(small_run))
    assert list(tmp_path.iterdir()) == []

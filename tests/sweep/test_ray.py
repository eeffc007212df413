"""The same sweep on Ray (a local instance of 2 CPUs) gives the same KPI table as the local backend.

Ray is a declared test dependency (the ``test`` extra): without it these tests fail, they never skip.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import ray

from robotaxi.cli import main
from robotaxi.sweep import LocalBackend, SweepSpec, ray_backend, run_sweep

from .test_run import Hooks

pytestmark = pytest.mark.integration

TIMINGS = ["wall_s", "simulate_s"]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


def test_ray_and_local_backends_give_identical_kpi_tables(city: Path, local_ray: None) -> None:
    spec = SweepSpec.from_file(city / "sweep.toml")
    hooks = Hooks()
    outcome = run_sweep(spec, ray_backend(), output=city / "ray", hooks=hooks)
    assert outcome.ran == 8
    assert not outcome.failed
    assert hooks.started_with == (8, 0)
    assert len(hooks.stages) == 3  # the routing table and two demand draws, built once and put in the store
    run_sweep(spec, LocalBackend(2), output=city / "local", hooks=Hooks())
    by_ray = pq.read_table(city / "ray" / "sweep.parquet")
    local = pq.read_table(city / "local" / "sweep.parquet")
    assert by_ray.num_rows == 8
    assert by_ray.drop(TIMINGS).equals(local.drop(TIMINGS))
    for run in spec.runs:
        a = (city / "ray" / "runs" / run.name / "kpis.json").read_text()
        assert a == (city / "local" / "runs" / run.name / "kpis.json").read_text()
    assert ray.is_initialized()  # an instance the caller started is left running


def test_ray_failure_and_resume(city: Path, local_ray: None) -> None:
    text = (city / "sweep.toml").read_text().replace("[3, 6]", "[3, 1_000_000_000]")
    (city / "sweep.toml").write_text(text)
    spec = SweepSpec.from_file(city / "sweep.toml")
    first = run_sweep(spec, ray_backend(), output=city / "out", hooks=Hooks())
    assert [r.status for r in first.records] == ["ok"] * 4 + ["failed"] * 4
    assert all("needs about" in (r.error or "") for r in first.failed)
    (city / "sweep.toml").write_text(text.replace("1_000_000_000", "6"))
    hooks = Hooks()
    again = run_sweep(SweepSpec.from_file(city / "sweep.toml"), ray_backend(), output=city / "out", hooks=hooks)
    assert (again.ran, again.skipped) == (4, 4)
    assert not again.failed


def test_cli_ray_flag(city: Path, local_ray: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # The Ray instance was started in another working directory: a relative output folder still means ours.
    monkeypatch.chdir(city)
    assert main(["sweep", "sweep.toml", "--ray", "-q", "-o", "viaray"]) == 0
    assert pq.read_table(city / "viaray" / "sweep.parquet").num_rows == 8
    assert len(list((city / "viaray" / "runs").glob("*/kpis.json"))) == 8

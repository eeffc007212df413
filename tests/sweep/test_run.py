"""Running a small sweep on a grid city: the table, each run's folder, sharing, failures and resume."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from robotaxi.cli import main
from robotaxi.sim import Scenario, run_scenario
from robotaxi.sweep import LocalBackend, RunRecord, SweepSpec, run_sweep

pytestmark = pytest.mark.integration


class Hooks:
    """Records what a sweep reports."""

    def __init__(self) -> None:
        self.stages: list[str] = []
        self.started_with: tuple[int, int] | None = None
        self.records: list[RunRecord] = []

    def stage(self, message: str) -> None:
        self.stages.append(message)

    def started(self, total: int, skipped: int) -> None:
        self.started_with = (total, skipped)

    def finished(self, record: RunRecord) -> None:
        self.records.append(record)


def _sweep(city: Path, out: str = "out") -> tuple[SweepSpec, Hooks, Path]:
    spec = SweepSpec.from_file(city / "sweep.toml")
    hooks = Hooks()
    folder = city / out
    outcome = run_sweep(spec, LocalBackend(2), output=folder, hooks=hooks)
    assert outcome.folder == folder
    return spec, hooks, folder


def test_local_sweep_writes_table_runs_and_report(city: Path) -> None:
    spec, hooks, folder = _sweep(city)
    assert hooks.started_with == (8, 0)
    # Built once each: one routing table, one demand draw per seed.
    assert hooks.stages == [
        f"network and routing table: {city / 'grid.npz'}",
        "demand: synthetic, seed 1",
        "demand: synthetic, seed 2",
    ]
    assert sorted(r.index for r in hooks.records) == list(range(8))
    table = pq.read_table(folder / "sweep.parquet").to_pylist()
    assert [row["run"] for row in table] == [r.name for r in spec.runs]
    assert all(row["status"] == "ok" and row["error"] is None for row in table)
    assert [(row["fleet.vehicles"], row["dispatch.policy"], row["seed"]) for row in table][:3] == [
        (3, "batch", 1),
        (3, "batch", 2),
        (3, "immediate", 1),
    ]
    for row in table:
        assert row["vehicles"] == row["fleet.vehicles"]
        assert row["policy"] == row["dispatch.policy"]
        assert row["requests"] == row["served"] + row["rejected"] + row["cancelled"] > 50
        assert row["vehicle_km_total"] > 0
        assert row["wall_s"] > row["simulate_s"] > 0
        assert len(row["served_pct_by_hour"]) == 24
    # Twice the fleet serves more, per policy and seed.
    for small, big in zip(table[:4], table[4:], strict=True):
        assert big["served_pct"] >= small["served_pct"]
    run = folder / "runs" / spec.runs[5].name
    assert sorted(p.name for p in run.iterdir()) == [
        "kpis.json",
        "legs.parquet",
        "requests.parquet",
        "run.json",
        "scenario.toml",
        "vehicle_events.parquet",
    ]
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "ok"
    assert record["kpis"] == json.loads((run / "kpis.json").read_text())
    assert record["overrides"] == [["fleet.vehicles", 6], ["dispatch.policy", "batch"], ["seed", 2]]
    html = (folder / "sweep.html").read_text()
    assert html.count("data:image/png;base64,") == 2
    assert "http" not in html
    assert (folder / "sweep.toml").read_text() == (city / "sweep.toml").read_text()


def test_a_run_in_a_sweep_equals_the_same_scenario_run_alone(city: Path, tmp_path: Path) -> None:
    """Shared inputs (routing table and demand built once, forked) change nothing: same KPIs byte for byte."""
    spec, _, folder = _sweep(city)
    run = spec.runs[6]
    (city / "alone.toml").write_text((folder / "runs" / run.name / "scenario.toml").read_text())
    alone = run_scenario(Scenario.from_file(city / "alone.toml"), output=tmp_path / "alone", report=False)
    assert (tmp_path / "alone" / "kpis.json").read_text() == (folder / "runs" / run.name / "kpis.json").read_text()
    assert alone.kpis.vehicles == 6


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(city: Path) -> None:
    # A billion vehicles passes the parser but is refused when the run starts (it cannot fit in memory).
    text = (city / "sweep.toml").read_text().replace("[3, 6]", "[3, 1_000_000_000]")
    (city / "sweep.toml").write_text(text)
    spec, _, folder = _sweep(city)
    table = pq.read_table(folder / "sweep.parquet").to_pylist()
    failed = [row for row in table if row["status"] == "failed"]
    assert [row["fleet.vehicles"] for row in failed] == [1_000_000_000] * 4
    assert all("fleet.vehicles = 1,000,000,000 needs about" in row["error"] for row in failed)
    assert all(row["served_pct"] is None for row in failed)
    assert [row["status"] for row in table[:4]] == ["ok"] * 4
    record = json.loads((folder / "runs" / spec.runs[4].name / "run.json").read_text())
    assert record["status"] == "failed"
    assert "needs about" in record["error"]
    assert "Failed runs" in (folder / "sweep.html").read_text()


def test_resume_skips_finished_runs_and_retries_failed_ones(city: Path) -> None:
    spec, _, folder = _sweep(city)
    runs = folder / "runs"
    mtimes = {r.name: (runs / r.name / "kpis.json").stat().st_mtime_ns for r in spec.runs}
    # An interrupted sweep: run 2 never wrote its marker (its outputs may be there or not), run 5 had failed.
    (runs / spec.runs[2].name / "run.json").unlink()
    marker = runs / spec.runs[5].name / "run.json"
    failed = json.loads(marker.read_text()) | {"status": "failed", "kpis": None, "error": "boom"}
    marker.write_text(json.dumps(failed))
    before = pq.read_table(folder / "sweep.parquet").drop(["wall_s", "simulate_s"])
    hooks = Hooks()
    outcome = run_sweep(spec, LocalBackend(2), output=folder, hooks=hooks)
    assert hooks.started_with == (8, 6)
    assert sorted(r.index for r in hooks.records) == [2, 5]
    assert (outcome.ran, outcome.skipped) == (2, 6)
    for r in spec.runs:
        changed = (runs / r.name / "kpis.json").stat().st_mtime_ns != mtimes[r.name]
        assert changed == (r.index in (2, 5))
    after = pq.read_table(folder / "sweep.parquet").drop(["wall_s", "simulate_s"])
    assert after.equals(before)


def test_changed_scenario_is_not_taken_for_finished(city: Path) -> None:
    _, _, folder = _sweep(city)
    # Same run names, another base: every run must run again.
    (city / "base.toml").write_text((city / "base.toml").read_text().replace("max_wait_s = 300", "max_wait_s = 200"))
    hooks = Hooks()
    run_sweep(SweepSpec.from_file(city / "sweep.toml"), LocalBackend(2), output=folder, hooks=hooks)
    assert hooks.started_with == (8, 0)


def test_sweep_refuses_a_folder_that_is_not_a_sweep(city: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (city / "out").mkdir()
    (city / "out" / "notes.txt").write_text("mine")
    monkeypatch.chdir(city)
    assert main(["sweep", "sweep.toml", "-q"]) == 1
    assert (city / "out" / "notes.txt").read_text() == "mine"
    assert not (city / "out" / "runs").exists()


def test_cli_sweep_dry_run_and_failure_exit_code(
    city: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(city)
    assert main(["sweep", "sweep.toml", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "007_vehicles=6_policy=immediate_seed=2" in out
    assert "8 runs" in out
    assert not (city / "out").exists()
    (city / "sweep.toml").write_text((city / "sweep.toml").read_text().replace("[3, 6]", "[3, 1_000_000_000]"))
    assert main(["sweep", "sweep.toml", "-q", "--workers", "1"]) == 1
    captured = capsys.readouterr()
    assert "4 of 8 runs failed" in captured.err
    assert "sweep.parquet" in captured.out
    (city / "bad.toml").write_text('scenario = "base.toml"\n[grid]\n"fleet.vehicle" = [3]\n')
    assert main(["sweep", "bad.toml"]) == 1
    assert "fleet.vehicle: unknown key" in capsys.readouterr().err

"""``robotaxi demand inspect`` and ``robotaxi demand build`` on small files (the CLI runs in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robotaxi.cli import main
from robotaxi.demand import Requests


@pytest.fixture
def counts(tmp_path: Path) -> Path:
    p = tmp_path / "counts.csv"
    p.write_text("dow,t_15min,puzone,dozone,n_trips\n2,32,1,2,5200\n2,72,2,1,2600\n3,1,1,2,99\n")
    return p


@pytest.mark.integration
def test_inspect_odcounts_with_plot(
    counts: Path, grid4_zones: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # grid4 is not a file the CLI can load, so save the same grid as a network cache first.
    from robotaxi.network import grid_city, save_network

    net = save_network(grid_city(4, 4), tmp_path / "grid4.npz")
    png = tmp_path / "profile.png"
    code = main(["demand", "inspect", str(counts), "-n", str(net), "--zones", str(grid4_zones),
                 "--set", "n_days=52", "--plot", str(png)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "rows read: 3" in out
    assert "skipped: 1 (other_weekday: 1)" in out
    assert "requests per hour" in out
    assert png.stat().st_size > 1000
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.integration
def test_build_then_inspect_requests(
    counts: Path, grid4_zones: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from robotaxi.network import grid_city, save_network

    net = save_network(grid_city(4, 4), tmp_path / "grid4.npz")
    out = tmp_path / "req.parquet"
    code = main(["demand", "build", str(counts), "-n", str(net), "--zones", str(grid4_zones), "--weekday", "2",
                 "--set", "n_days=52", "--seed", "3", "--out", str(out), "--json"])  # fmt: skip
    assert code == 0
    facts = json.loads(capsys.readouterr().out)
    r = Requests.from_parquet(out)
    assert len(r) == facts["requests"] > 100
    assert main(["demand", "inspect", str(out), "-n", str(net), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["requests"] == len(r)
    assert again["per_hour"] == facts["per_hour"]


@pytest.mark.integration
def test_synthetic_on_helsinki(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "h.parquet"
    assert main(["demand", "build", "synthetic", "--set", "n_requests=500", "--out", str(out)]) == 0
    assert len(Requests.from_parquet(out)) == 500
    assert "500 requests on Helsinki" in capsys.readouterr().out


@pytest.mark.integration
def test_scenario_toml(counts: Path, grid4_zones: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from robotaxi.network import grid_city, save_network

    net = save_network(grid_city(4, 4), tmp_path / "grid4.npz")
    scen = tmp_path / "scenario.toml"
    scen.write_text(f'[demand]\nkind = "odcounts"\npath = "counts.csv"\nzones = "{grid4_zones}"\nn_days = 52\n')
    assert main(["demand", "inspect", str(scen), "-n", str(net), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["report"]["rows_read"] == 3


@pytest.mark.integration
def test_errors_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.csv"
    junk.write_text("a,b\n1,2\n")
    assert main(["demand", "inspect", str(junk)]) == 1
    assert "cannot tell what kind" in capsys.readouterr().err
    assert main(["demand", "inspect", str(tmp_path / "nope.csv")]) == 1
    assert main(["demand", "inspect", "synthetic", "--set", "colour=1"]) == 1
    assert "demand.colour" in capsys.readouterr().err
    assert main(["demand", "build", "synthetic", "--column", "oops", "--out", str(tmp_path / "x.parquet")]) == 1


@pytest.mark.integration
def test_scenario_toml_with_command_line_paths_relative_to_the_working_folder(
    counts: Path, grid4_zones: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--rejects next to a scenario in another folder lands where the user typed it, not beside the scenario."""
    from robotaxi.network import grid_city, save_network

    net = save_network(grid_city(4, 4), tmp_path / "grid4.npz")
    scen_dir = tmp_path / "scenarios"
    scen_dir.mkdir()
    scen = scen_dir / "s.toml"
    scen.write_text(f'[demand]\nkind = "odcounts"\npath = "{counts}"\nn_days = 52\n')
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    zones_copy = work / "zones.geojson"
    zones_copy.write_text(grid4_zones.read_text())
    code = main(["demand", "inspect", str(scen), "-n", str(net), "--zones", "zones.geojson",
                 "--rejects", "rejects.csv", "--json"])  # fmt: skip
    assert code == 0
    assert (work / "rejects.csv").is_file()
    assert not (scen_dir / "rejects.csv").exists()

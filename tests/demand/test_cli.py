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


_MAPPING = ["-c", "time=t", "-c", "o_lon=ox", "-c", "o_lat=oy", "-c", "d_lon=dx", "-c", "d_lat=dy"]


@pytest.mark.parametrize("where", ["start", "after_the_sniff_window"])
def test_binary_junk_as_csv_is_one_clean_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str) -> None:
    """Binary data given as CSV: one error line, bytes escaped, no "Exception ignored" traceback on stderr."""
    junk = bytes(range(256)) * 8
    p = tmp_path / "junk.csv"
    if where == "start":
        p.write_bytes(junk)
        argv = ["demand", "inspect", str(p)]
    else:
        rows = "".join(f"2024-01-01 08:00:{i % 60:02d},24.94,60.17,24.95,60.18\n" for i in range(5000))
        p.write_bytes(b"t,ox,oy,dx,dy\n" + rows.encode() + junk.replace(b"\x00", b"") + b"\n")
        argv = ["demand", "inspect", str(p), *_MAPPING]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Exception ignored" not in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert err.isprintable() or err.rstrip("\n").isprintable()
    assert str(p) in err
    assert "not a CSV text file" in err


def test_build_with_every_row_rejected_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """All rows rejected: exit 1 with the reject summary and no file, unless --allow-empty."""
    src = tmp_path / "far.csv"
    src.write_text("t,ox,oy,dx,dy\n2024-01-01 08:00:00,10,10,10.01,10.01\n2024-01-01 09:00:00,11,10,11,10.01\n")
    out = tmp_path / "req.parquet"
    assert main(["demand", "build", str(src), *_MAPPING, "--out", str(out)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "no requests to write" in err
    assert "outside_area: 2" in err
    assert "--allow-empty" in err
    assert not out.exists()
    assert main(["demand", "build", str(src), *_MAPPING, "--out", str(out), "--allow-empty"]) == 0
    assert len(Requests.from_parquet(out)) == 0


def test_rejected_rows_reported_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The examples go to stdout with the summary, not a second time as WARNING lines on stderr."""
    import logging

    src = tmp_path / "some_far.csv"
    src.write_text(
        "t,ox,oy,dx,dy\n2024-01-01 08:00:00,10,10,10.01,10.01\n2024-01-01 08:05:00,24.94,60.17,24.95,60.18\n"
    )
    assert main(["demand", "inspect", str(src), *_MAPPING]) == 0
    captured = capsys.readouterr()
    assert "outside_area" in captured.out
    assert "WARNING" not in captured.err
    assert "outside_area" not in captured.err
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_odcount_summary_labels_rows_and_requests(
    counts: Path, grid4_zones: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """OD counts: accepted count rows and sampled requests are labelled as what they count."""
    from robotaxi.network import grid_city, save_network

    net = save_network(grid_city(4, 4), tmp_path / "grid4.npz")
    assert main(["demand", "inspect", str(counts), "-n", str(net), "--zones", str(grid4_zones),
                 "--set", "n_days=52"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "count rows read: 3" in out
    assert "count rows accepted: 2" in out
    assert "(sampled from the trip counts of the accepted count rows)" in out


def test_help_keeps_square_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    """Help text is not rich markup: "[demand]" stays in `demand inspect --help`."""
    assert main(["demand", "inspect", "--help"]) == 0
    assert "with a [demand] table" in " ".join(capsys.readouterr().out.split())


def test_hive_requests_load_without_a_mapping(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An NREL HIVE request file (request_id, o_lat, o_lon, d_lat, d_lon, departure_time, passengers) needs no -c."""
    from ..conftest import shared_file

    src = shared_file("data/denver_hive/denver_demo_requests.csv")
    net = shared_file("data/denver_hive/downtown_denver_network.json")
    assert main(["demand", "inspect", str(src), "-n", str(net), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["report"]["rows_read"] == 2500
    assert facts["requests"] > 2000
    # A scenario's [demand] table with kind = "csv" and no columns takes the layout from the header too.
    scen = tmp_path / "s.toml"
    scen.write_text(f'[demand]\nkind = "csv"\npath = "{src}"\n')
    assert main(["demand", "inspect", str(scen), "-n", str(net), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["requests"] == facts["requests"]


def test_unknown_layout_without_mapping_names_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "odd.csv"
    src.write_text("when,x1,y1,x2,y2\n2024-01-01 08:00:00,24.94,60.17,24.95,60.18\n")
    scen = tmp_path / "s.toml"
    scen.write_text(f'[demand]\nkind = "csv"\npath = "{src}"\n')
    assert main(["demand", "inspect", str(scen)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "needs a column mapping" in err
    assert "known layout: hive (departure_time, request_id" in err


def test_help_lists_the_mapping_fields(capsys: pytest.CaptureFixture[str]) -> None:
    import dataclasses

    from robotaxi.cli.demand import MAPPING_FIELDS
    from robotaxi.demand import ColumnMapping

    assert tuple(f.name for f in dataclasses.fields(ColumnMapping)) == MAPPING_FIELDS
    assert main(["demand", "build", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "FIELD is one of: " + ", ".join(MAPPING_FIELDS) in out

"""``robotaxi network calibrate --trips`` on a slice of the real 2018 TLC trips (Manhattan network and zones)."""

from __future__ import annotations

from pathlib import Path

import pytest

from robotaxi.cli import main
from robotaxi.network import SpeedProfile

from ..conftest import shared_file

NETWORK = "data/nyc_manhattan_hive/manhattan_network.json"
ZONES = "data/nyc_tlc_taxi_zones/taxi_zones.geojson"


def _rows(src: Path, rows: int) -> list[str]:
    """The header and the first ``rows`` trips of a TLC month."""
    with src.open(encoding="utf-8") as f:
        return [next(f) for _ in range(rows + 1)]


@pytest.fixture(scope="module")
def trip_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file: 3,000 January trips to fit on and 1,000 February trips to hold out."""
    folder = tmp_path_factory.mktemp("tlc")
    base = "data/nyc_tlc_trips/yellow_tripdata_sample_2018-{:02d}.csv"
    january, february = _rows(shared_file(base.format(1)), 3_000), _rows(shared_file(base.format(2)), 1_000)
    (folder / "yellow_2018-01-02_slice.csv").write_text("".join(january + february[1:]), encoding="utf-8")
    return folder


@pytest.mark.integration
@pytest.mark.slow
def test_calibrate_on_real_trips(tmp_path: Path, trip_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, report, plot = tmp_path / "profile.toml", tmp_path / "fit.txt", tmp_path / "fit.png"
    argv = [
        "network", "calibrate", str(shared_file(NETWORK)),
        "--trips", str(trip_folder), "--zones", str(shared_file(ZONES)), "--holdout-months", "2",
        "--draws", "2", "--out", str(out), "--report", str(report), "--plot", str(plot),
        "--compare", str(Path(__file__).resolve().parents[2] / "examples" / "manhattan_speeds.toml"),
    ]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    profile = SpeedProfile.from_file(out)
    assert profile.major_factors is not None
    assert len(profile.factors) == 24
    # Manhattan taxis: far slower than the OSM limits by day, a minute or two lost per trip.
    assert 1.8 < profile.factors[12] < 4.5
    assert 20.0 < profile.overhead_s < 200.0
    # One factor per zone seen in the fit, written with the zones file relative to the profile's folder.
    assert len(profile.zone_factors) > 30
    assert Path(str(profile.zones_file)).resolve() == shared_file(ZONES).resolve()
    assert "zones_file = " in out.read_text()
    assert "zone factors g (zone: g (trip ends in the fit))" in text
    assert out.read_text().startswith("# Travel-time profile for manhattan_network, fitted by")
    for part in ("fitted months (all but 2)", "held-out months 2 (out of sample)", "manhattan_speeds.toml on the"):
        assert part in text
    assert "not_business_day" in text
    assert "by meter distance" in text
    assert "route length / meter distance" in text
    assert report.read_text(encoding="utf-8") in text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.integration
def test_calibrate_refuses_bad_arguments(tmp_path: Path, trip_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["network", "calibrate", str(shared_file(NETWORK)), "--zones", str(shared_file(ZONES))]
    out = ["--out", str(tmp_path / "p.toml")]
    assert main([*base, *out]) == 1
    assert "give either --trips" in capsys.readouterr().err
    assert main([*base, *out, "--trips", str(trip_folder), "--speeds", "x.csv"]) == 1
    assert "not both or neither" in capsys.readouterr().err
    assert main([*base, *out, "--trips", str(tmp_path / "nothing")]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    assert main([*base, *out, "--trips", str(tmp_path)]) == 1
    assert "holds no .csv" in capsys.readouterr().err
    assert main([*base, *out, "--trips", str(trip_folder), "--holdout-months", "x"]) == 1
    assert "--holdout-months" in capsys.readouterr().err
    assert main([*base, *out, "--trips", str(trip_folder), "--zone-prior", "-1"]) == 1
    assert "--zone-prior must be a number of trips >= 0" in capsys.readouterr().err
    bad_profile = tmp_path / "bad.toml"
    bad_profile.write_text("factors = [1.0]\nmajor = [1.0]\n")
    assert main([*base, *out, "--trips", str(trip_folder), "--compare", str(bad_profile)]) == 1
    assert "unknown key 'major'" in capsys.readouterr().err
    assert not (tmp_path / "p.toml").exists()


def test_the_committed_manhattan_profile_has_classes_and_an_overhead() -> None:
    """``examples/manhattan_tlc_profile.toml`` is format 3 (classes, overhead, zones) and says how it was made
    (docs/network.md has the fit)."""
    path = Path(__file__).resolve().parents[2] / "examples" / "manhattan_tlc_profile.toml"
    profile = SpeedProfile.from_file(path, "America/New_York")
    assert profile.major_factors is not None
    assert len(profile.factors) == 24
    assert 40.0 < profile.overhead_s < 100.0
    # Per zone (format 3): Midtown (161, 230) slower than the profile's average, Upper Manhattan (166) faster.
    g = dict(profile.zone_factors)
    assert g[161] > 1.3
    assert g[230] > 1.3
    assert g[166] < 0.8
    assert profile.zones_file is not None
    assert Path(profile.zones_file).name == "taxi_zones.geojson"
    # Midday on local streets is about three times the free-flow time, the small hours barely over it.
    assert profile.factors[11] > 2.5
    assert profile.factors[4] < 1.6
    assert "Regenerate with:\n#   robotaxi network calibrate" in path.read_text(encoding="utf-8")

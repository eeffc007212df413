"""Time-of-day factors fitted to observed zone-to-zone speeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robotaxi.cli import main
from robotaxi.errors import NetworkError
from robotaxi.network import Router, SpeedProfile, grid_city, load_network
from robotaxi.network.calibrate import calibrate_profile, zone_nodes

from ..conftest import shared_file


def _square(lon: float, lat: float, half: float = 0.0003) -> list[list[list[float]]]:
    return [[[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half], [lon - half, lat + half],
             [lon - half, lat - half]]]  # fmt: skip


def _zones(path: Path, centres: dict[int, tuple[float, float]]) -> Path:
    feats = [
        {
            "type": "Feature",
            "properties": {"LocationID": zid},
            "geometry": {"type": "Polygon", "coordinates": _square(*c)},
        }
        for zid, c in centres.items()
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def test_grid_calibration_recovers_the_observed_slowdown(tmp_path: Path) -> None:
    # 3x3 grid: 200 m blocks at 10 m/s. Zone 1 around node 0, zone 2 around node 8: 800 m, 80 s free flow.
    net = grid_city(3, 3)
    zones = _zones(tmp_path / "z.geojson", {1: (net.lon[0], net.lat[0]), 2: (net.lon[8], net.lat[8])})
    assert zone_nodes(net, zones) == {1: 0, 2: 8}
    speeds = tmp_path / "speeds.csv"
    # Hour 0: observed 5 m/s (0.005 km/s) -> factor 2; hour 8: 10 m/s -> factor 1; hour 17: 4 m/s -> 2.5.
    # Same-zone rows are ignored.
    speeds.write_text(
        "puzone,dozone,min,speed_mean\n1,2,0,0.005\n2,1,0,0.005\n1,2,480,0.010\n1,2,1020,0.004\n1,1,480,0.001\n"
    )
    profile, diag = calibrate_profile(Router(net), speeds, zones, slots=24, min_distance_m=500)
    assert profile.factors[0] == pytest.approx(2.0)
    assert profile.factors[8] == pytest.approx(1.0)
    assert profile.factors[17] == pytest.approx(2.5)
    # Slots without data copy the nearest slot with data (circularly): hour 12 is nearest to 8, hour 22 to 0.
    assert profile.factors[12] == pytest.approx(1.0)
    assert profile.factors[22] == pytest.approx(2.0)
    assert diag["pairs_used"] == 4
    r = Router(net, profile=profile)
    assert int(r.times(0, 8, depart_s=17 * 3600)) == 200


def test_calibration_bad_input(tmp_path: Path) -> None:
    net = grid_city(3, 3)
    zones = _zones(tmp_path / "z.geojson", {1: (net.lon[0], net.lat[0]), 2: (net.lon[8], net.lat[8])})
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(NetworkError, match="missing columns puzone"):
        calibrate_profile(Router(net), bad, zones)
    short = tmp_path / "short.csv"
    short.write_text("puzone,dozone,min,speed_mean\n1,2,0,0.005\n")
    with pytest.raises(NetworkError, match="no zone pair of at least 1000 m"):
        calibrate_profile(Router(net), short, zones)
    far = _zones(tmp_path / "far.geojson", {7: (0.0, 0.0)})
    with pytest.raises(NetworkError, match="no zone lies within"):
        zone_nodes(net, far)


@pytest.mark.integration
@pytest.mark.slow
def test_manhattan_calibration_cli(tmp_path: Path) -> None:
    out = tmp_path / "profile.toml"
    argv = [
        "network", "calibrate", str(shared_file("data/nyc_manhattan_hive/manhattan_network.json")),
        "--speeds", str(shared_file("data/nyc_manhattan_pyhailing/speeds.csv")),
        "--zones", str(shared_file("data/nyc_tlc_taxi_zones/taxi_zones.geojson")),
        "--out", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    profile = SpeedProfile.from_file(out)
    assert len(profile.factors) == 96
    # Observed Manhattan taxi speeds (~20 km/h) are about half the OSM free-flow speeds (~42 km/h).
    assert all(1.7 < f < 2.7 for f in profile.factors)
    # The committed example profile is what the command produces.
    committed = SpeedProfile.from_file(Path(__file__).resolve().parents[2] / "examples" / "manhattan_speeds.toml")
    assert committed == profile
    net = load_network(shared_file("data/nyc_manhattan_hive/manhattan_network.json"))
    assert len(zone_nodes(net, shared_file("data/nyc_tlc_taxi_zones/taxi_zones.geojson"))) >= 61


def _projected_copy(src: Path, dst: Path, *, named_crs: bool) -> Path:
    """``src`` with its coordinates in UTM zone 35N kilometres (the layout of pyhailing's taxizones.geojson)."""
    from pyproj import Transformer

    to_km = Transformer.from_crs("EPSG:4326", "+proj=utm +zone=35 +datum=WGS84 +units=km", always_xy=True)
    data = json.loads(src.read_text())
    for f in data["features"]:
        ring = f["geometry"]["coordinates"][0]
        f["geometry"]["coordinates"][0] = [list(to_km.transform(x, y)) for x, y in ring]
        f["properties"] = {"zone_id": str(f["properties"]["LocationID"]), "zone_name": "z"}
    if named_crs:
        data["crs"] = {"type": "name", "properties": {"name": "+proj=utm +zone=35 +datum=WGS84 +units=km"}}
    dst.write_text(json.dumps(data))
    return dst


def test_projected_zones_with_their_crs(tmp_path: Path) -> None:
    """Zones in projected kilometres map to the same nodes, given the CRS by option or by the file's crs member."""
    net = grid_city(3, 3)  # near Helsinki: UTM zone 35N
    wgs = _zones(tmp_path / "z.geojson", {1: (net.lon[0], net.lat[0]), 2: (net.lon[8], net.lat[8])})
    km = _projected_copy(wgs, tmp_path / "km.geojson", named_crs=False)
    with pytest.raises(NetworkError, match=r"feature 0 has no 'LocationID' property .*zone_id, zone_name"):
        zone_nodes(net, km)
    with pytest.raises(NetworkError, match=r"coordinates are projected .*give --zones-crs"):
        zone_nodes(net, km, id_field="zone_id")
    utm = "+proj=utm +zone=35 +datum=WGS84 +units=km"
    assert zone_nodes(net, km, id_field="zone_id", crs=utm) == {1: 0, 2: 8}
    named = _projected_copy(wgs, tmp_path / "named.geojson", named_crs=True)
    assert zone_nodes(net, named, id_field="zone_id") == {1: 0, 2: 8}
    with pytest.raises(NetworkError, match="unknown zones CRS 'EPSG:0'"):
        zone_nodes(net, km, id_field="zone_id", crs="EPSG:0")


@pytest.mark.integration
def test_calibrate_with_the_projected_pyhailing_zones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "profile.toml"
    argv = [
        "network", "calibrate", str(shared_file("data/nyc_manhattan_hive/manhattan_network.json")),
        "--speeds", str(shared_file("data/nyc_manhattan_pyhailing/speeds.csv")),
        "--zones", str(shared_file("data/nyc_manhattan_pyhailing/taxizones.geojson")),
        "--out", str(out),
    ]  # fmt: skip
    assert main(argv) == 1
    assert "--zone-id-property" in capsys.readouterr().err
    assert main([*argv, "--zone-id-property", "zone_id"]) == 1
    assert "--zones-crs" in capsys.readouterr().err
    utm_km = "+proj=utm +zone=18 +datum=WGS84 +units=km"
    assert main([*argv, "--zone-id-property", "zone_id", "--zones-crs", utm_km]) == 0
    assert len(SpeedProfile.from_file(out).factors) == 96

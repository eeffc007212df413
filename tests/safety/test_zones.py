"""Miles per disengagement by zone: every mile and every event counted once, flags only where significant."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robotaxi.cli import main
from robotaxi.network import Router, grid_city
from robotaxi.safety.runs import RunData, RunInfo, write_events
from robotaxi.safety.zones import zone_safety
from tests.safety.test_runs import MILE, _events, _write_run

WEST_EDGE_LON = 10.0035  # 250 m east of the origin: the west zone holds the edges of the first two columns


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return _write_run(tmp_path / "run")


def _edge_zone(router: Router) -> np.ndarray:
    net = router.network
    mid = (net.lon[net.tail] + net.lon[net.head]) / 2
    return np.where(mid < WEST_EDGE_LON, 1, 2).astype(np.int64)


def test_miles_and_events_are_shared_between_zones(run: Path) -> None:
    data, ev = _events(run, mpd=2.0, seed=5)
    router = Router(grid_city(5, 5))
    lines = zone_safety(data, ev, router, _edge_zone(router), threshold_mpd=1.0)
    assert {z.zone for z in lines} == {1, 2}
    assert sum(z.mpd.miles for z in lines) == pytest.approx(data.length_m.sum() / MILE)
    assert sum(z.mpd.disengagements for z in lines) == len(ev.records)
    west = next(z for z in lines if z.zone == 1)
    # Every leg's 200 m blocks, counted on the route the router gives it.
    edge_zone = _edge_zone(router)
    expected = 0.0
    for a, b, length in zip(data.from_node, data.to_node, data.length_m, strict=True):
        edges = router.path_edges(router.path(int(a), int(b)))
        expected += length * np.mean(edge_zone[edges] == 1)
    assert west.mpd.miles == pytest.approx(expected / MILE)
    assert 0 < west.mpd.miles < sum(z.mpd.miles for z in lines)
    for z in lines:
        assert z.flagged == (z.mpd.high < 1.0)


def test_flags_follow_the_threshold(run: Path) -> None:
    data, ev = _events(run, mpd=0.5, seed=2)  # ~160 events over ~80 miles
    router = Router(grid_city(5, 5))
    edge_zone = _edge_zone(router)
    assert all(z.flagged for z in zone_safety(data, ev, router, edge_zone, threshold_mpd=2.0))
    assert not any(z.flagged for z in zone_safety(data, ev, router, edge_zone, threshold_mpd=0.1))
    with pytest.raises(ValueError, match="threshold_mpd: must be > 0"):
        zone_safety(data, ev, router, edge_zone, threshold_mpd=0)
    with pytest.raises(ValueError, match="edge_zone: expected one zone per edge"):
        zone_safety(data, ev, router, edge_zone[:3], threshold_mpd=1.0)


@pytest.mark.integration
def test_cli(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    zones = tmp_path / "zones.geojson"

    def box(zid: int, lon0: float, lon1: float) -> dict[str, object]:
        ring = [[lon0, 49.99], [lon1, 49.99], [lon1, 50.02], [lon0, 50.02], [lon0, 49.99]]
        return {
            "type": "Feature",
            "properties": {"LocationID": zid},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }

    zones.write_text(
        json.dumps(
            {"type": "FeatureCollection", "features": [box(1, 9.99, WEST_EDGE_LON), box(2, WEST_EDGE_LON, 10.03)]}
        )
    )
    args = ["safety", "zones", str(run), "--zones", str(zones), "--threshold-mpd", "5"]
    assert main(args) == 1
    assert "no safety_events.parquet" in capsys.readouterr().err
    data, ev = _events(run, mpd=0.5, seed=2)
    write_events(run, ev)
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["flagged"] == {"acme": [1, 2]}
    assert sum(z["disengagements"] for z in out["zones"]) == len(ev.records)
    assert RunData.read(RunInfo.from_folder(run)).autonomous_operators() == ["acme"]
    assert data.vehicles.size == 3

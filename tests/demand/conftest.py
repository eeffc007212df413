"""Fixtures for the demand tests: tiny files written by the tests, and the real shared Manhattan data.

The small fixtures sit on ``grid_city(4, 4)`` (16 nodes, 200 m blocks, south-west corner at lon 10, lat 50), split
into two square zones: zone 1 is the western half (columns 0-1), zone 2 the eastern half (columns 2-3).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robotaxi.demand import Requests, manhattan_weekday
from robotaxi.network import RoadNetwork, grid_city, load_network
from tests.conftest import shared_file

TRIPS_CSV = "data/nyc_manhattan_pyhailing/trips.csv"
ZONES_GEOJSON = "data/nyc_tlc_taxi_zones/taxi_zones.geojson"
MANHATTAN_JSON = "data/nyc_manhattan_hive/manhattan_network.json"


@pytest.fixture(scope="session")
def grid4() -> RoadNetwork:
    """A 4x4 grid city (see the module notes)."""
    return grid_city(4, 4)


def _square(lon0: float, lat0: float, lon1: float, lat1: float) -> list[list[list[float]]]:
    return [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]]


@pytest.fixture(scope="session")
def grid4_zones(tmp_path_factory: pytest.TempPathFactory, grid4: RoadNetwork) -> Path:
    """GeoJSON with zone 1 (west half of grid4) and zone 2 (east half), plus zone 3 far away (no nodes)."""
    lon_mid = (grid4.lon[1] + grid4.lon[2]) / 2
    lo_lon, lo_lat, hi_lon, hi_lat = grid4.bbox
    pad = 0.0005
    feats = [
        (1, _square(lo_lon - pad, lo_lat - pad, lon_mid, hi_lat + pad)),
        (2, _square(lon_mid, lo_lat - pad, hi_lon + pad, hi_lat + pad)),
        (3, _square(20.0, 60.0, 20.01, 60.01)),
    ]
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"LocationID": zid, "zone": f"z{zid}"},
                "geometry": {"type": "Polygon", "coordinates": c},
            }
            for zid, c in feats
        ],
    }
    p = tmp_path_factory.mktemp("zones") / "grid4_zones.geojson"
    p.write_text(json.dumps(doc))
    return p


@pytest.fixture(scope="session")
def manhattan() -> RoadNetwork:
    """The real 4,197-node Manhattan network (OSMnx JSON from NREL HIVE)."""
    return load_network(shared_file(MANHATTAN_JSON))


@pytest.fixture(scope="session")
def manhattan_wednesday(manhattan: RoadNetwork) -> Requests:
    """The flagship Manhattan Wednesday, seed 7."""
    return manhattan_weekday(manhattan, shared_file(TRIPS_CSV), shared_file(ZONES_GEOJSON), weekday=2, seed=7)

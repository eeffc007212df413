"""Zone polygons (GeoJSON and shapefile) and the node-in-zone sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robotaxi.demand import ZoneNodes, Zones
from robotaxi.errors import DemandError
from robotaxi.network import RoadNetwork, grid_city
from tests.conftest import shared_file

from .conftest import ZONES_GEOJSON

_GRID = grid_city(4, 4)


@pytest.mark.integration
def test_tlc_zones_geojson_and_shapefile_agree(manhattan: RoadNetwork) -> None:
    gj = Zones.from_file(shared_file(ZONES_GEOJSON))
    shp = Zones.from_file(shared_file("data/nyc_tlc_taxi_zones/taxi_zones.shp"))
    # 263 polygons, 260 ids: 56 and 103 appear twice and are merged.
    assert len(gj) == len(shp) == 260
    assert np.array_equal(gj.ids, shp.ids)
    a = ZoneNodes.build(gj, manhattan)
    b = ZoneNodes.build(shp, manhattan)
    assert int((a.counts > 0).sum()) == int((b.counts > 0).sum()) == 63
    # Same zones, but 75 network nodes fall inside a shapefile polygon (EPSG:2263, reprojected here) and outside
    # every polygon of the derived GeoJSON (counts after the 200 m fill for node-less zones).
    assert a.nodes.size == 4_122
    assert b.nodes.size == 4_197
    assert np.abs(a.counts - b.counts).max() <= 6


def test_not_a_zone_file(tmp_path: Path) -> None:
    p = tmp_path / "z.geojson"
    p.write_text("{not json")
    with pytest.raises(DemandError, match="not a GeoJSON"):
        Zones.from_file(p)
    p.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"LocationID": 1}, '
                 '"geometry": {"type": "Polygon", "coordinates": [[[500000, 4e6], [500100, 4e6], [500100, 4.1e6], '
                 '[500000, 4e6]]]}}]}')  # fmt: skip
    with pytest.raises(DemandError, match="not WGS84"):
        Zones.from_file(p)


@settings(max_examples=40, deadline=None)
@given(
    o=st.lists(st.sampled_from([1, 2, 3, 99]), min_size=1, max_size=30),
    d=st.lists(st.sampled_from([1, 2, 3, 99]), min_size=30, max_size=30),
    seed=st.integers(0, 2**32 - 1),
)
def test_sampled_nodes_lie_in_their_zones(o: list[int], d: list[int], seed: int, grid4_zones_static: Path) -> None:
    zn = ZoneNodes.build(Zones.from_file(grid4_zones_static), _GRID)
    oz, dz = np.array(o), np.array(d[: len(o)])
    on, dn, code = zn.sample_pairs(oz, dz, np.random.default_rng(seed))
    ok = code == 0
    assert np.all(ok == np.isin(oz, [1, 2]) & np.isin(dz, [1, 2]))
    zone_of = {int(n): int(z) for z in (1, 2) for n in zn.nodes[zn.indptr[z - 1] : zn.indptr[z]]}
    assert all(zone_of[int(n)] == z for n, z in zip(on[ok], oz[ok], strict=True))
    assert all(zone_of[int(n)] == z for n, z in zip(dn[ok], dz[ok], strict=True))
    assert np.all(on[ok] != dn[ok])
    assert np.all(on[~ok] == -1)


@pytest.fixture(scope="module")
def grid4_zones_static(grid4_zones: Path) -> Path:
    return grid4_zones


def test_a_zone_file_is_read_once_while_unchanged(tmp_path: Path, grid4_zones: Path) -> None:
    import json
    import os

    p = tmp_path / "z.geojson"
    doc = json.loads(grid4_zones.read_text())
    p.write_text(json.dumps(doc))
    first = Zones.from_file(p)
    assert Zones.from_file(p) is first  # the demand, its forecast draw and rebalancing share one read
    with pytest.raises(ValueError, match="read-only"):
        first.ids[0] = 99
    # Changed on disk: read again (ids 1, 2, 3 become 1, 2).
    doc["features"] = doc["features"][:2]
    p.write_text(json.dumps(doc))
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    again = Zones.from_file(p)
    assert again is not first
    assert again.ids.tolist() == [1, 2]

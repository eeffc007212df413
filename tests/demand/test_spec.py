"""The [demand] table: validation naming the bad key, and load_demand for each kind."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import numpy as np
import pytest

from robotaxi.demand import DemandSpec, ODCountsSource, SyntheticSource, build_demand, load_demand
from robotaxi.errors import DemandError
from robotaxi.network import RoadNetwork, grid_city


def test_toml_odcounts(tmp_path: Path, grid4: RoadNetwork, grid4_zones: Path) -> None:
    (tmp_path / "c.csv").write_text("dow,t_15min,puzone,dozone,n_trips\n2,4,1,2,5200\n")
    doc = tomllib.loads(
        f"""
        [demand]
        kind = "odcounts"
        path = "c.csv"
        zones = "{grid4_zones}"
        date = 2018-06-13
        n_days = 52
        """
    )
    spec = DemandSpec.from_mapping(doc["demand"], base_dir=tmp_path)
    assert spec.path == tmp_path / "c.csv"
    src = spec.source()
    assert isinstance(src, ODCountsSource)
    assert src.date == dt.date(2018, 6, 13)
    assert src.day_of_week == 2
    r = load_demand(spec, grid4, seed=1)
    assert 50 < len(r) < 150
    assert r.day_start == dt.datetime(2018, 6, 13)
    assert r.network == grid4.name


def test_mapping_synthetic_and_seed(grid4: RoadNetwork) -> None:
    spec = {"kind": "synthetic", "n_requests": 40, "date": "2024-05-01", "weights": "uniform"}
    a = load_demand(spec, grid4, seed=3)
    b = load_demand(spec, grid4, seed=3)
    assert len(a) == 40
    assert a.to_arrow().equals(b.to_arrow())
    assert isinstance(DemandSpec.from_mapping(spec).source(), SyntheticSource)


def test_requests_kind_roundtrip(tmp_path: Path, grid4: RoadNetwork) -> None:
    res = build_demand({"kind": "synthetic", "n_requests": 25}, grid4, seed=0)
    out = res.requests.to_parquet(tmp_path / "r.parquet")
    again = load_demand({"kind": "requests", "path": str(out)}, grid4)
    assert again.to_arrow().equals(res.requests.to_arrow())
    with pytest.raises(DemandError, match="network"):
        load_demand({"kind": "requests", "path": str(out)}, grid_city(2, 3))


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({}, "demand.kind"),
        ({"kind": "nope"}, "demand.kind"),
        ({"kind": "odcounts", "zones": "z.geojson"}, "demand.path"),
        ({"kind": "odcounts", "path": "c.csv"}, "demand.zones"),
        ({"kind": "odcounts", "path": "c.csv", "zones": "z", "weekday": 8}, "weekday"),
        ({"kind": "odcounts", "path": "c.csv", "zones": "z", "date": "13/06/2018"}, "demand.date"),
        ({"kind": "odcounts", "path": "c.csv", "zones": "z", "colour": "red"}, "demand.colour"),
        ({"kind": "odcounts", "path": "c.csv", "zones": "z", "columns": {"wday": "x"}}, "demand.columns.wday"),
        ({"kind": "synthetic"}, "n_requests"),
        ({"kind": "synthetic", "n_requests": 3, "zones": "z"}, "zones"),
        ({"kind": "requests"}, "demand.path"),
        ({"kind": "synthetic", "n_requests": 3, "path": 5}, "demand.path"),
    ],
)
def test_invalid_tables_name_the_key(table: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        DemandSpec.from_mapping(table)


def test_spec_is_immutable(grid4: RoadNetwork) -> None:
    spec = DemandSpec(kind="synthetic", options={"n_requests": 5})
    with pytest.raises(TypeError):
        spec.options["n_requests"] = 6  # type: ignore[index]
    assert len(load_demand(spec.replace(options={"n_requests": 6}), grid4, np.random.default_rng(0))) == 6


def test_file_options_resolve_against_the_scenario_folder(tmp_path: Path) -> None:
    table = {
        "kind": "tlc",
        "path": "trips.csv",
        "service_area": "area.geojson",
    }
    src = DemandSpec.from_mapping(table, base_dir=tmp_path).source()
    assert src.path == tmp_path / "trips.csv"  # type: ignore[attr-defined]
    assert src.service_area == tmp_path / "area.geojson"  # type: ignore[attr-defined]
    synth = DemandSpec.from_mapping(
        {"kind": "synthetic", "n_requests": 1, "osm_path": "city.osm.pbf"}, base_dir=tmp_path
    ).source()
    assert synth.osm_path == tmp_path / "city.osm.pbf"  # type: ignore[attr-defined]
    absolute = DemandSpec.from_mapping({**table, "service_area": "/data/a.geojson"}, base_dir=tmp_path).source()
    assert absolute.service_area == Path("/data/a.geojson")  # type: ignore[attr-defined]


def test_requests_file_with_negative_nodes_is_refused(tmp_path: Path, grid4: RoadNetwork) -> None:
    from robotaxi.demand import Requests

    r = Requests.build(
        request_id=[0], time_s=[0], o_lon=[0.0], o_lat=[0.0], d_lon=[0.0], d_lat=[0.0], o_node=[-1], d_node=[3],
        network=grid4.name,
    )  # fmt: skip
    out = r.to_parquet(tmp_path / "r.parquet")
    with pytest.raises(DemandError, match="node indices"):
        load_demand({"kind": "requests", "path": str(out)}, grid4)


def test_requests_with_a_repeated_id_are_refused() -> None:
    from robotaxi.demand import Requests

    def build(ids: list[int]) -> Requests:
        zero = [0.0] * 3
        return Requests.build(
            request_id=ids, time_s=[0, 1, 2], o_lon=zero, o_lat=zero, d_lon=zero, d_lat=zero, o_node=[0, 1, 2],
            d_node=[3, 3, 3],
        )  # fmt: skip

    assert sorted(build([5, 9, 7]).request_id.tolist()) == [5, 7, 9]
    with pytest.raises(ValueError, match="request_id must be unique"):
        build([5, 9, 5])

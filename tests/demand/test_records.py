"""Generic CSV/Parquet through a column mapping, every rejection reason, rejects file, and the HIVE 20k file."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest

from robotaxi.demand import HIVE_COLUMNS, ColumnMapping, LoadReport, TableSource, load_demand
from robotaxi.errors import DemandError
from robotaxi.network import RoadNetwork
from tests.conftest import shared_file


def _pt(net: RoadNetwork, node: int) -> str:
    return f"{net.lat[node]:.7f},{net.lon[node]:.7f}"


def test_every_rejection_reason(tmp_path: Path, grid4: RoadNetwork) -> None:
    """One line per reason on grid4 (lat,lon pairs of nodes), written in the HIVE layout plus a drop-off time."""
    g = grid4
    header = "request_id,o_lat,o_lon,d_lat,d_lon,departure_time,arrival_time,passengers"
    rows = [
        f"1,{_pt(g, 0)},{_pt(g, 15)},2020-01-01 08:00:00,2020-01-01 08:10:00,1",  # line 2: good
        f"2,,{g.lon[0]},{_pt(g, 15)},2020-01-01 08:00:00,2020-01-01 08:10:00,1",  # 3: missing o_lat
        f"3,{_pt(g, 0)},{_pt(g, 15)},yesterday,2020-01-01 08:10:00,1",  # 4: unparsable time
        f"4,{_pt(g, 0)},{_pt(g, 15)},2020-01-01 08:00:00,2020-01-01 07:10:00,1",  # 5: drop-off before pickup
        f"5,{_pt(g, 0)},0.0,0.0,2020-01-01 08:00:00,2020-01-01 08:10:00,1",  # 6: outside the area
        f"6,{_pt(g, 5)},{_pt(g, 5)},2020-01-01 08:00:00,2020-01-01 08:10:00,1",  # 7: zero distance
        f"1,{_pt(g, 3)},{_pt(g, 12)},2020-01-01 09:00:00,2020-01-01 09:10:00,1",  # 8: duplicate id 1
        f"7,{_pt(g, 0)},{_pt(g, 15)},2020-01-01 08:00:00,2020-01-01 08:10:00,42",  # 9: 42 passengers
        "8,1,2",  # 10: too few fields
        f"9,{_pt(g, 1)},{_pt(g, 14)},2020-01-01 10:00:00,2020-01-01 10:10:00,2",  # 11: good
    ]
    p = tmp_path / "trips.csv"
    p.write_text(header + "\n" + "\n".join(rows) + "\n")
    mapping = ColumnMapping(
        request_id="request_id", time="departure_time", dropoff_time="arrival_time",
        o_lon="o_lon", o_lat="o_lat", d_lon="d_lon", d_lat="d_lat", passengers="passengers",
    )  # fmt: skip
    rejects = tmp_path / "out" / "rejects.csv"
    res = TableSource(path=p, columns=mapping, rejects=rejects).load(grid4, np.random.default_rng(0))
    rep = res.report
    assert rep.rows_read == 10
    assert rep.accepted == 2
    assert res.requests.request_id.tolist() == [1, 9]
    assert res.requests.passengers.tolist() == [1, 2]
    assert rep.rejected == {
        "missing_field": 1,
        "unparsable_field": 2,
        "dropoff_before_pickup": 1,
        "outside_area": 1,
        "zero_distance": 1,
        "duplicate_id": 1,
        "invalid_value": 1,
    }
    by_line = {e.line: e.reason.label for e in rep.examples}
    assert by_line == {
        3: "missing_field",
        4: "unparsable_field",
        5: "dropoff_before_pickup",
        6: "outside_area",
        7: "zero_distance",
        8: "duplicate_id",
        9: "invalid_value",
        10: "unparsable_field",
    }
    table = pacsv.read_csv(rejects)
    assert table.num_rows == 8
    assert sorted(table.column("line").to_pylist()) == [3, 4, 5, 6, 7, 8, 9, 10]
    summary = rep.summary_lines()
    assert "rejected: 8" in summary[3]
    assert sum("e.g. trips.csv:" in line for line in summary) == 8


def test_service_area_polygon(tmp_path: Path, grid4: RoadNetwork) -> None:
    g = grid4
    lon_mid = float(g.lon[1] + g.lon[2]) / 2
    area = tmp_path / "area.geojson"
    poly = [[[9.0, 49.0], [lon_mid, 49.0], [lon_mid, 51.0], [9.0, 51.0], [9.0, 49.0]]]
    feature = {"type": "Feature", "properties": {"id": 1}, "geometry": {"type": "Polygon", "coordinates": poly}}
    area.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    p = tmp_path / "t.csv"
    p.write_text(
        "request_id,o_lat,o_lon,d_lat,d_lon,departure_time,passengers\n"
        f"1,{_pt(g, 0)},{_pt(g, 4)},2020-01-01 08:00:00,1\n"
        f"2,{_pt(g, 0)},{_pt(g, 15)},2020-01-01 08:00:00,1\n"
    )
    rep = TableSource(path=p, columns=HIVE_COLUMNS, service_area=area).load(g, np.random.default_rng(0)).report
    assert rep.accepted == 1
    assert rep.rejected == {"outside_area": 1}


def test_seconds_time_unit_and_parquet(tmp_path: Path, grid4: RoadNetwork) -> None:
    g = grid4
    p = tmp_path / "t.csv"
    p.write_text(f"id,t,olon,olat,dlon,dlat\n7,08:00:30,{g.lon[0]},{g.lat[0]},{g.lon[9]},{g.lat[9]}\n")
    table = pacsv.read_csv(p)
    pq_path = tmp_path / "t.parquet"
    import pyarrow.parquet as pq

    pq.write_table(table, pq_path)
    cols = {"request_id": "id", "time": "t", "o_lon": "olon", "o_lat": "olat", "d_lon": "dlon", "d_lat": "dlat"}
    spec = {"kind": "parquet", "path": str(pq_path), "columns": cols, "time_unit": "seconds", "date": "2020-02-03"}
    r = load_demand(spec, g)
    assert r.time_s.tolist() == [8 * 3600 + 30]
    assert r.day_start == dt.datetime(2020, 2, 3)
    r2 = load_demand({**spec, "kind": "csv", "path": str(p)}, g)
    assert r2.to_arrow().equals(r.to_arrow())


def test_missing_mapped_column(tmp_path: Path, grid4: RoadNetwork) -> None:
    p = tmp_path / "t.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(DemandError, match=r"no column .*departure_time"):
        TableSource(path=p, columns=HIVE_COLUMNS).load(grid4, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"time": "t", "o_lon": "x"}, "o_lon"),
        ({"time": "t", "o_zone": "z"}, "o_zone"),
        ({"time": "t"}, "columns"),
        ({"time": "t", "o_zone": "a", "d_zone": "b", "o_lon": "1", "o_lat": "2", "d_lon": "3", "d_lat": "4"}, "either"),
        ({"time": ""}, "time"),
    ],
)
def test_mapping_validation(kw: dict[str, str], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ColumnMapping(**kw)


def test_report_invariant() -> None:
    with pytest.raises(ValueError, match="rows_read"):
        LoadReport(source="x", rows_read=5, accepted=3, rejected={"missing_field": 1})


@pytest.mark.integration
def test_hive_20k_manhattan(manhattan: RoadNetwork, tmp_path: Path) -> None:
    """The HIVE 20k file loads with a mapping alone (the TOML [demand] table of docs/demand.md)."""
    spec = {
        "kind": "csv",
        "path": str(shared_file("data/nyc_manhattan_hive/nyc_20k.csv")),
        "columns": {
            "request_id": "request_id", "time": "departure_time", "o_lon": "o_lon", "o_lat": "o_lat",
            "d_lon": "d_lon", "d_lat": "d_lat", "passengers": "passengers",
        },
        "rejects": str(tmp_path / "rejects.csv"),
    }  # fmt: skip
    from robotaxi.demand import build_demand

    res = build_demand(spec, manhattan)
    rep, r = res.report, res.requests
    assert rep.rows_read == 19_979
    # Real figures (max_snap_m 250): 1,812 rows have an end more than 250 m from the Manhattan network (Brooklyn,
    # Queens, New Jersey, the airports) and 179 have both ends on the same node; 17,988 requests remain.
    assert rep.rejected == {"outside_area": 1_812, "zero_distance": 179}
    assert rep.accepted == len(r) == 17_988
    assert r.day_start == dt.datetime(2014, 12, 21)
    assert r.time_s.max() < 86400
    # The 21:00 hour holds the sample's peak (SOURCES.md: 3,102 rows in that hour before validation).
    assert int(r.per_hour().argmax()) == 21
    assert pacsv.read_csv(tmp_path / "rejects.csv").num_rows == 1_991


def test_rejects_file_keeps_the_fields_of_every_check(tmp_path: Path, grid4: RoadNetwork) -> None:
    """A file whose first rejections come from the end-of-file checks still shows the rows' fields."""
    g = grid4
    p = tmp_path / "t.csv"
    p.write_text(
        "request_id,o_lat,o_lon,d_lat,d_lon,departure_time,passengers\n"
        f"5,{_pt(g, 0)},{_pt(g, 15)},2020-01-01 08:00:00,1\n"
        "6,1\n"
        f"5,{_pt(g, 3)},{_pt(g, 12)},2020-01-01 09:00:00,1\n"
    )
    rejects = tmp_path / "rejects.csv"
    rep = TableSource(path=p, columns=HIVE_COLUMNS, rejects=rejects).load(g, np.random.default_rng(0)).report
    assert rep.rejected == {"unparsable_field": 1, "duplicate_id": 1}
    table = pacsv.read_csv(rejects).to_pylist()
    assert [r["line"] for r in table] == [3, 4]
    assert "'6,1'" in table[0]["detail"]  # the malformed line itself is in the rejects file
    dup = table[1]
    assert dup["reason"] == "duplicate_id"
    assert dup["request_id"] == 5
    assert "line 2" in dup["detail"]


def test_rejects_file_of_a_clean_run_replaces_an_old_one(tmp_path: Path, grid4: RoadNetwork) -> None:
    g = grid4
    p = tmp_path / "t.csv"
    p.write_text(
        "request_id,o_lat,o_lon,d_lat,d_lon,departure_time,passengers\n"
        f"1,{_pt(g, 0)},{_pt(g, 15)},2020-01-01 08:00:00,1\n"
    )
    rejects = tmp_path / "rejects.csv"
    rejects.write_text("file,line,reason,detail\nold.csv,9,missing_field,from last week\n")
    TableSource(path=p, columns=HIVE_COLUMNS, rejects=rejects).load(g, np.random.default_rng(0))
    assert pacsv.read_csv(rejects).num_rows == 0


def test_zone_based_records_every_zone_reason(tmp_path: Path, grid4: RoadNetwork, grid4_zones: Path) -> None:
    """Zone-based rows: unknown zone id, a zone with no node, a recorded zero distance, outside the service area."""
    lon_mid = float(grid4.lon[1] + grid4.lon[2]) / 2
    area = tmp_path / "west.geojson"
    poly = [[[9.0, 49.0], [lon_mid, 49.0], [lon_mid, 51.0], [9.0, 51.0], [9.0, 49.0]]]
    feature = {"type": "Feature", "properties": {"id": 1}, "geometry": {"type": "Polygon", "coordinates": poly}}
    area.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    p = tmp_path / "z.csv"
    p.write_text(
        "t,pu,do,dist\n"
        "2018-06-13 08:00:00,1,1,1.5\n"  # line 2: fine (west to west)
        "2018-06-13 08:00:00,1,264,1.5\n"  # line 3: unknown zone 264
        "2018-06-13 08:00:00,3,1,1.5\n"  # line 4: zone 3 has no node of the network
        "2018-06-13 08:00:00,1,1,0\n"  # line 5: recorded distance 0
        "2018-06-13 08:00:00,1,2,1.5\n"  # line 6: drop-off in the east, outside the service area
    )
    cols = ColumnMapping(time="t", o_zone="pu", d_zone="do", trip_distance="dist")
    src = TableSource(path=p, columns=cols, zones=grid4_zones, service_area=area)
    res = src.load(grid4, np.random.default_rng(0))
    rep = res.report
    assert rep.accepted == len(res.requests) == 1
    assert {e.line: e.reason.label for e in rep.examples} == {
        3: "unknown_zone",
        4: "outside_area",
        5: "zero_distance",
        6: "outside_area",
    }


def test_negative_seconds_are_invalid(tmp_path: Path, grid4: RoadNetwork) -> None:
    """Without a date nothing else would stop a request 5 s before the day starts."""
    g = grid4
    p = tmp_path / "t.csv"
    p.write_text(
        f"id,t,olon,olat,dlon,dlat\n1,-5,{g.lon[0]},{g.lat[0]},{g.lon[9]},{g.lat[9]}\n"
        f"2,30,{g.lon[0]},{g.lat[0]},{g.lon[9]},{g.lat[9]}\n"
    )
    cols = ColumnMapping(request_id="id", time="t", o_lon="olon", o_lat="olat", d_lon="dlon", d_lat="dlat")
    res = TableSource(path=p, columns=cols, time_unit="seconds").load(g, np.random.default_rng(0))
    assert res.requests.time_s.tolist() == [30]
    assert res.report.rejected == {"invalid_value": 1}
    assert res.report.examples[0].line == 2

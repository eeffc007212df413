"""NYC TLC readers: every column variant, coordinate- and zone-based years, CSV and Parquet, service day."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from robotaxi.demand import TLC_COLUMN_VARIANTS, TLCSource, detect_tlc_columns
from robotaxi.errors import DemandError
from robotaxi.network import RoadNetwork

#: Header layouts of the official files, coordinate-based years (pickup time, drop-off time, o lon/lat, d lon/lat,
#: passengers, fare). The 2014 yellow CSVs really have a space after every comma in the header.
COORD_HEADERS = {
    "yellow_2009": ["Trip_Pickup_DateTime", "Trip_Dropoff_DateTime", "Start_Lon", "Start_Lat", "End_Lon", "End_Lat",
                    "Passenger_Count", "Fare_Amt"],
    "yellow_2010_2013": ["pickup_datetime", "dropoff_datetime", "pickup_longitude", "pickup_latitude",
                         "dropoff_longitude", "dropoff_latitude", "passenger_count", "fare_amount"],
    "yellow_2014": [" pickup_datetime", " dropoff_datetime", " pickup_longitude", " pickup_latitude",
                    " dropoff_longitude", " dropoff_latitude", " passenger_count", " fare_amount"],
    "yellow_2015_2016": ["tpep_pickup_datetime", "tpep_dropoff_datetime", "pickup_longitude", "pickup_latitude",
                         "dropoff_longitude", "dropoff_latitude", "passenger_count", "fare_amount"],
    "green_2013_2016": ["lpep_pickup_datetime", "Lpep_dropoff_datetime", "Pickup_longitude", "Pickup_latitude",
                        "Dropoff_longitude", "Dropoff_latitude", "Passenger_count", "Fare_amount"],
}  # fmt: skip

#: Zone-based years: pickup time, drop-off time, PU zone, DO zone.
ZONE_HEADERS = {
    "yellow_2017": ["tpep_pickup_datetime", "tpep_dropoff_datetime", "PULocationID", "DOLocationID"],
    "green_2017": ["lpep_pickup_datetime", "lpep_dropoff_datetime", "PULocationID", "DOLocationID"],
    "fhv_2018": ["pickup_datetime", "dropOff_datetime", "PUlocationID", "DOlocationID"],
    "fhvhv_2019": ["request_datetime", "dropoff_datetime", "PULocationID", "DOLocationID"],
    # The Great Expectations samples of 2018 yellow trips (shared/data/nyc_tlc_trips).
    "ge_sample_2018": ["pickup_datetime", "dropoff_datetime", "pickup_location_id", "dropoff_location_id"],
}


def _coord_rows(net: RoadNetwork) -> list[list[str]]:
    """Three trips on grid4: node 0 -> 15, node 3 -> 12, node 5 -> 6 (all on 2018-06-13)."""
    rows = []
    for k, (o, d) in enumerate(((0, 15), (3, 12), (5, 6))):
        rows.append([
            f"2018-06-13 0{k}:10:00", f"2018-06-13 0{k}:30:00",
            f"{net.lon[o]:.7f}", f"{net.lat[o]:.7f}", f"{net.lon[d]:.7f}", f"{net.lat[d]:.7f}", "1", "7.5",
        ])  # fmt: skip
    return rows


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.write_text(",".join(header) + "\n" + "".join(",".join(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("variant", sorted(COORD_HEADERS))
def test_coordinate_variants(variant: str, tmp_path: Path, grid4: RoadNetwork) -> None:
    p = _csv(tmp_path / f"{variant}.csv", COORD_HEADERS[variant], _coord_rows(grid4))
    res = TLCSource(path=p).load(grid4, np.random.default_rng(0))
    r = res.requests
    assert len(r) == 3
    assert r.o_node.tolist() == [0, 3, 5]
    assert r.d_node.tolist() == [15, 12, 6]
    assert r.time_s.tolist() == [600, 4200, 7800]
    assert r.fare_cents.tolist() == [750, 750, 750]
    assert r.day_start == dt.datetime(2018, 6, 13)


@pytest.mark.parametrize("variant", sorted(ZONE_HEADERS))
def test_zone_variants(variant: str, tmp_path: Path, grid4: RoadNetwork, grid4_zones: Path) -> None:
    rows = [
        ["2018-06-13 08:00:00", "2018-06-13 08:20:00", "1", "2"],
        ["2018-06-13 09:00:00", "2018-06-13 09:05:00", "2", "2"],
    ]
    p = _csv(tmp_path / f"{variant}.csv", ZONE_HEADERS[variant], rows)
    r = TLCSource(path=p, zones=grid4_zones).load(grid4, np.random.default_rng(0)).requests
    assert len(r) == 2
    west = set(np.argsort(grid4.lon, kind="stable")[:8].tolist())
    assert int(r.o_node[0]) in west
    assert int(r.d_node[0]) not in west
    assert int(r.o_node[1]) not in west
    assert r.o_node[1] != r.d_node[1]
    assert np.array_equal(r.o_lon, grid4.lon[r.o_node])


def test_trip_facts_follow_the_requests(tmp_path: Path, grid4: RoadNetwork, grid4_zones: Path) -> None:
    """Drop-off times, distances and zones come back in the requests' order (by time), for the calibration."""
    header = ["pickup_datetime", "dropoff_datetime", "trip_distance", "pickup_location_id", "dropoff_location_id"]
    rows = [
        ["2018-06-13 09:00:00", "2018-06-13 09:05:00", "0.8", "2", "2"],
        ["2018-06-13 08:00:00", "2018-06-13 08:20:30", "2.5", "1", "2"],
        ["2018-06-13 10:00:00", "2018-06-13 10:07:00", "", "2", "1"],
        ["2018-06-13 11:00:00", "2018-06-13 11:07:00", "0", "2", "1"],  # zero distance: rejected
    ]
    p = _csv(tmp_path / "ge.csv", header, rows)
    res = TLCSource(path=p, zones=grid4_zones).load(grid4, np.random.default_rng(0))
    f = res.trips
    assert f is not None
    r = res.requests
    assert r.time_s.tolist() == [8 * 3600, 9 * 3600, 10 * 3600]
    assert (f.dropoff_s - r.time_s).tolist() == [1230, 300, 420]
    assert f.trip_distance[:2].tolist() == [2.5, 0.8]
    assert np.isnan(f.trip_distance[2])
    assert f.o_zone.tolist() == [1, 2, 2]
    assert f.d_zone.tolist() == [2, 2, 1]
    # A coordinate file has no zones: -1.
    c = _csv(tmp_path / "c.csv", COORD_HEADERS["yellow_2015_2016"], _coord_rows(grid4))
    fc = TLCSource(path=c).load(grid4, np.random.default_rng(0)).trips
    assert fc is not None
    assert fc.o_zone.tolist() == [-1, -1, -1]
    assert (fc.dropoff_s - np.array([600, 4200, 7800])).tolist() == [1200, 1200, 1200]


def test_variant_table_covers_headers() -> None:
    for header in [*COORD_HEADERS.values(), *ZONE_HEADERS.values()]:
        m = detect_tlc_columns(header)
        assert m.time.strip().lower() in TLC_COLUMN_VARIANTS["time"]
        assert m.dropoff_time is not None


def test_hvfhv_prefers_request_time() -> None:
    m = detect_tlc_columns(["hvfhs_license_num", "request_datetime", "pickup_datetime", "dropoff_datetime",
                            "PULocationID", "DOLocationID", "trip_miles", "base_passenger_fare"])  # fmt: skip
    assert m.time == "request_datetime"
    assert m.fare == "base_passenger_fare"
    assert m.trip_distance == "trip_miles"


def test_not_a_tlc_file(tmp_path: Path, grid4: RoadNetwork) -> None:
    p = _csv(tmp_path / "x.csv", ["a", "b"], [["1", "2"]])
    with pytest.raises(DemandError, match="not a TLC trip record file"):
        TLCSource(path=p).load(grid4, np.random.default_rng(0))
    p2 = _csv(tmp_path / "y.csv", ["tpep_pickup_datetime", "fare_amount"], [["2018-01-01 00:00:00", "1"]])
    with pytest.raises(DemandError, match="PULocationID"):
        TLCSource(path=p2).load(grid4, np.random.default_rng(0))
    garbage = tmp_path / "z.parquet"
    garbage.write_bytes(b"this is not parquet at all")
    with pytest.raises(DemandError, match="not a readable PARQUET"):
        TLCSource(path=garbage).load(grid4, np.random.default_rng(0))
    zone_file = _csv(tmp_path / "w.csv", ZONE_HEADERS["yellow_2017"], [["2018-06-13 08:00:00"] * 2 + ["1", "2"]])
    with pytest.raises(DemandError, match="zone polygons"):
        TLCSource(path=zone_file).load(grid4, np.random.default_rng(0))


def _parquet_month(path: Path, n: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2018-06-01T00:00:00", "s")
    pu = start + rng.integers(0, 30 * 86400, n).astype("timedelta64[s]")
    table = pa.table({
        "VendorID": pa.array(np.ones(n, np.int64)),
        "tpep_pickup_datetime": pa.array(pu.astype("datetime64[us]")),
        "tpep_dropoff_datetime": pa.array((pu + 600).astype("datetime64[us]")),
        "passenger_count": pa.array(rng.integers(0, 4, n).astype(np.float64)),
        "trip_distance": pa.array(rng.uniform(0.1, 5, n)),
        "PULocationID": pa.array(rng.choice([1, 2], n).astype(np.int32)),
        "DOLocationID": pa.array(rng.choice([1, 2], n).astype(np.int32)),
        "fare_amount": pa.array(rng.uniform(3, 30, n)),
    })  # fmt: skip
    pq.write_table(table, path, row_group_size=5000)
    return path


def test_parquet_month_streams_one_day(tmp_path: Path, grid4: RoadNetwork, grid4_zones: Path) -> None:
    p = _parquet_month(tmp_path / "month.parquet", 30_000, 1)
    src = TLCSource(path=p, zones=grid4_zones, date=dt.date(2018, 6, 13), batch_rows=4096)
    res = src.load(grid4, np.random.default_rng(0))
    rep = res.report
    assert rep.rows_read == 30_000
    assert 800 < rep.accepted < 1200  # a 30th of the month
    assert rep.skipped["outside_day"] == 30_000 - rep.accepted - rep.n_rejected
    assert rep.defaulted["passengers"] > 0  # passenger_count 0 -> 1, counted
    assert res.requests.passengers.min() >= 1
    assert res.requests.time_s.min() >= 0
    assert res.requests.time_s.max() < 86400
    # Same seed and batch size: same requests.
    again = src.load(grid4, np.random.default_rng(0)).requests
    assert again.to_arrow().equals(res.requests.to_arrow())

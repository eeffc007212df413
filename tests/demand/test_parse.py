"""Cell converters for demand files: every cell is judged on its own, integers are exact, zoned times are local."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from robotaxi.demand import HIVE_COLUMNS, ColumnMapping, TableSource
from robotaxi.demand import _parse as parse
from robotaxi.network import RoadNetwork

#: Time cells of every kind the readers meet: ISO 8601 with and without seconds or fractions, the US layouts of
#: the old TLC files, a zone suffix (never accepted), garbage, blanks.
TIME_CELLS = [
    "2018-06-13 08:00:00",
    "2018-06-13T08:00:00",
    "2018-06-13 08:00:00.5",
    "2018-06-13T08:00:01.123456",
    "2018-06-13 08:00",
    "2018-06-13",
    "06/13/2018 08:00:00",
    "06/13/2018 08:00:02 PM",
    "06/13/2018 08:00",
    "06/13/2018 08:00:00.750",
    "2018-06-13T08:00:00Z",
    "yesterday",
    "2018-13-45 08:00:00",
    "",
    "  ",
]


@settings(max_examples=60, deadline=None)
@given(cells=st.lists(st.sampled_from(TIME_CELLS), min_size=1, max_size=12))
def test_time_verdict_does_not_depend_on_the_batch(cells: list[str]) -> None:
    """A cell parses to the same second, or fails for the same reason, alone or in any batch."""
    together = parse.to_epoch_seconds(pa.array(cells))
    alone = [parse.to_epoch_seconds(pa.array([c])) for c in cells]
    assert together[1].tolist() == [int(a[1][0]) for a in alone]
    assert together[0].tolist() == [int(a[0][0]) for a in alone]


def test_fractional_seconds_are_truncated_even_next_to_a_bad_cell() -> None:
    t0 = int(dt.datetime(2018, 6, 13, 8, 0).timestamp() - dt.datetime(1970, 1, 1).timestamp())
    vals, code = parse.to_epoch_seconds(pa.array(["2018-06-13 08:00:00.9", "06/13/2018 08:00:01.5", "bad"]))
    assert code.tolist() == [0, 0, 2]
    assert vals[:2].tolist() == [t0, t0 + 1]


def test_zoned_timestamps_are_read_as_the_wall_clock_of_their_zone() -> None:
    # 12:00 UTC is 08:00 in New York (EDT) on 2018-06-13.
    utc_noon = int((dt.datetime(2018, 6, 13, 12) - dt.datetime(1970, 1, 1)).total_seconds())
    col = pa.array([utc_noon * 10**6], pa.timestamp("us", tz="America/New_York"))
    vals, code = parse.to_epoch_seconds(col)
    assert code.tolist() == [0]
    assert vals.tolist() == [utc_noon - 4 * 3600]


def test_integers_are_exact_beyond_2_53() -> None:
    big = 2**53
    for col in (pa.array([str(big), str(big + 1), " 7 "]), pa.array([big, big + 1, 7], pa.int64())):
        vals, code = parse.to_int(col)
        assert code.tolist() == [0, 0, 0]
        assert vals.tolist() == [big, big + 1, 7]
    vals, code = parse.to_int(pa.array([f"{big + 1}.0", "2.5", "1e30", "x", "3.0"]))
    assert code.tolist() == [0, 2, 2, 2, 0]
    assert vals.tolist() == [big + 1, 0, 0, 0, 3]
    vals, code = parse.to_int(pa.array([2**64 - 1, 1], pa.uint64()))
    assert code.tolist() == [2, 0]


def test_big_request_ids_are_neither_changed_nor_duplicates(tmp_path: Path, grid4: RoadNetwork) -> None:
    """Snowflake-style ids (> 2**53) differing in the last digit are two requests, in CSV and Parquet alike."""
    g = grid4
    ids = [1_234_567_890_123_456_789, 1_234_567_890_123_456_788]
    table = pa.table({
        "request_id": pa.array(ids, pa.int64()),
        "o_lat": [g.lat[0]] * 2, "o_lon": [g.lon[0]] * 2, "d_lat": [g.lat[15]] * 2, "d_lon": [g.lon[15]] * 2,
        "departure_time": ["2020-01-01 08:00:00", "2020-01-01 08:00:00"], "passengers": [1, 1],
    })  # fmt: skip
    pq_path = tmp_path / "r.parquet"
    pq.write_table(table, pq_path)
    csv_path = tmp_path / "r.csv"
    import pyarrow.csv as pacsv

    pacsv.write_csv(table, csv_path)
    for p in (csv_path, pq_path):
        res = TableSource(path=p, columns=HIVE_COLUMNS).load(g, np.random.default_rng(0))
        assert res.report.rejected == {}
        assert sorted(res.requests.request_id.tolist()) == sorted(ids)


def test_zoned_parquet_times_pick_the_local_service_day(tmp_path: Path, grid4: RoadNetwork) -> None:
    """A trip at 23:30 New York time on 13 June is 03:30 UTC on the 14th: it belongs to the 13th."""
    g = grid4
    local = [dt.datetime(2018, 6, 13, 23, 30), dt.datetime(2018, 6, 14, 0, 30)]
    utc = [t + dt.timedelta(hours=4) for t in local]
    table = pa.table({
        "t": pa.array(utc, pa.timestamp("s")).cast(pa.timestamp("s", tz="America/New_York")),
        "olon": [g.lon[0]] * 2, "olat": [g.lat[0]] * 2, "dlon": [g.lon[15]] * 2, "dlat": [g.lat[15]] * 2,
    })  # fmt: skip
    p = tmp_path / "zoned.parquet"
    pq.write_table(table, p)
    cols = ColumnMapping(time="t", o_lon="olon", o_lat="olat", d_lon="dlon", d_lat="dlat")
    res = TableSource(path=p, columns=cols, date=dt.date(2018, 6, 13)).load(g, np.random.default_rng(0))
    assert res.requests.time_s.tolist() == [23 * 3600 + 1800]
    assert res.report.skipped == {"outside_day": 1}

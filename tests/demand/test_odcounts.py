"""Origin-destination counts: Poisson sampling, zone placement, rejects, and the real Manhattan weekday."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest

from robotaxi.demand import ODCountsColumns, ODCountsSource, Requests, ZoneNodes, Zones, business_days
from robotaxi.errors import DemandError
from robotaxi.network import RoadNetwork
from tests.conftest import shared_file

from .conftest import TRIPS_CSV


def _write(path: Path, rows: list[str], header: str = "dow,t_15min,puzone,dozone,n_trips") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _source(counts: Path, zones: Path, **kw: object) -> ODCountsSource:
    return ODCountsSource(path=counts, zones=zones, **kw)  # type: ignore[arg-type]


def test_business_days_2018() -> None:
    # 2018: Mondays lose 7 federal holidays, Tue/Wed/Thu one each (Christmas, July 4th, Thanksgiving).
    assert [business_days(2018, d) for d in range(5)] == [46, 51, 51, 51, 52]


def test_poisson_total_within_bounds(tmp_path: Path, grid4: RoadNetwork, grid4_zones: Path) -> None:
    # 40 slots x 2 cells, each 520 trips over 52 days: expected 10 per cell, 800 per day.
    rows = [f"2,{s},1,2,520" for s in range(40)] + [f"2,{s},2,1,520" for s in range(40)]
    src = _source(_write(tmp_path / "c.csv", rows), grid4_zones, weekday=2, n_days=52)
    totals = [len(src.load(grid4, np.random.default_rng(seed)).requests) for seed in range(20)]
    mean = float(np.mean(totals))
    # The mean of 20 Poisson(800) draws has sd sqrt(800 / 20) = 6.3: 5 sd is 32.
    assert abs(mean - 800) < 32
    assert 0 < np.std(totals) < 60


def test_scale_multiplies_the_rate(tmp_path: Path, grid4: RoadNetwork, grid4_zones: Path) -> None:
    # The same 800-a-day table at scale 0.25: Poisson(200) a day, the mean of 20 days has sd 3.2.
    rows = [f"2,{s},1,2,520" for s in range(40)] + [f"2,{s},2,1,520" for s in range(40)]
    src = _source(_write(tmp_path / "c.csv", rows), grid4_zones, weekday=2, n_days=52, scale=0.25)
    totals = [len(src.load(grid4, np.random.default_rng(seed)).requests) for seed in range(20)]
    assert abs(float(np.mean(totals)) - 200) < 16


def test_default_divisor_is_the_business_days(tmp_path: Path, grid4: RoadNetwork, grid4_zones: Path) -> None:
    # 51 Wednesdays of 2018 were business days: 51 x 500 trips in a cell is 500 a day.
    src = _source(_write(tmp_path / "c.csv", ["2,1,1,2,25500"]), grid4_zones, weekday=2)
    assert src.divisor == 51
    totals = [len(src.load(grid4, np.random.default_rng(seed)).requests) for seed in range(10)]
    assert abs(float(np.mean(totals)) - 500) < 36  # sd of the mean of 10 Poisson(500): 7.1


def test_times_inside_slot_and_nodes_inside_zones(tmp_path: Path, grid4: RoadNetwork, grid4_zones: Path) -> None:
    src = _source(_write(tmp_path / "c.csv", ["2,5,1,2,5200", "1,5,1,2,99"]), grid4_zones, weekday=2, n_days=52)
    res = src.load(grid4, np.random.default_rng(1))
    r = res.requests
    assert len(r) > 50
    assert r.time_s.min() >= 5 * 900
    assert r.time_s.max() < 6 * 900
    cols = grid4.lon.argsort(kind="stable")  # west nodes have the smaller longitudes
    west = set(cols[:8].tolist())
    assert set(r.o_node.tolist()) <= west
    assert not set(r.d_node.tolist()) & west
    assert np.array_equal(r.request_id, np.arange(len(r)))
    assert res.report.skipped == {"other_weekday": 1}
    assert res.report.accepted == 1
    assert res.report.rows_read == 2


def test_same_zone_trips_never_zero_length(tmp_path: Path, grid4: RoadNetwork, grid4_zones: Path) -> None:
    src = _source(_write(tmp_path / "c.csv", ["0,0,1,1,52000"]), grid4_zones, weekday=0, n_days=52)
    r = src.load(grid4, np.random.default_rng(2)).requests
    assert len(r) > 800
    assert np.all(r.o_node != r.d_node)


def test_determinism(tmp_path: Path, grid4: RoadNetwork, grid4_zones: Path) -> None:
    src = _source(_write(tmp_path / "c.csv", ["2,1,1,2,900", "2,60,2,1,400"]), grid4_zones, n_days=10)
    a = src.load(grid4, np.random.default_rng(5)).requests
    b = src.load(grid4, np.random.default_rng(5)).requests
    c = src.load(grid4, np.random.default_rng(6)).requests
    assert a.to_arrow().equals(b.to_arrow())
    assert not a.to_arrow().equals(c.to_arrow())


def test_rejects_every_reason(tmp_path: Path, grid4: RoadNetwork, grid4_zones: Path) -> None:
    rows = [
        "2,1,1,2,52",  # line 2: fine
        "2,1,1,99,52",  # line 3: unknown zone 99
        "2,1,3,2,52",  # line 4: zone 3 has no node: outside the network area
        "2,x,1,2,52",  # line 5: unparsable slot
        "2,1,,2,52",  # line 6: missing origin zone
        "2,96,1,2,52",  # line 7: slot out of range
        "2,1,1,2,-4",  # line 8: negative count
        "2,1,1,2",  # line 9: too few fields
    ]
    rejects = tmp_path / "rejects.csv"
    src = _source(_write(tmp_path / "c.csv", rows), grid4_zones, n_days=52, rejects=rejects)
    rep = src.load(grid4, np.random.default_rng(0)).report
    assert rep.rows_read == 8
    assert rep.accepted == 1
    assert rep.rejected == {
        "missing_field": 1,
        "unparsable_field": 2,
        "unknown_zone": 1,
        "outside_area": 1,
        "invalid_value": 2,
    }
    lines = {e.line: e.reason.label for e in rep.examples}
    assert lines[3] == "unknown_zone"
    assert lines[4] == "outside_area"
    assert lines[5] == "unparsable_field"
    assert lines[6] == "missing_field"
    assert lines[7] == "invalid_value"
    assert lines[8] == "invalid_value"
    table = pacsv.read_csv(rejects)
    assert table.num_rows == 7
    assert set(table.column("reason").to_pylist()) == set(rep.rejected)


def test_zero_distance_single_node_zone(tmp_path: Path, grid4: RoadNetwork) -> None:
    # A zone around node 0 only: a trip from it to itself cannot have two distinct nodes.
    lon, lat = float(grid4.lon[0]), float(grid4.lat[0])
    zones = Zones.from_features(
        [7],
        [__import__("shapely").box(lon - 0.0001, lat - 0.0001, lon + 0.0001, lat + 0.0001)],
        ["corner"],
    )
    zn = ZoneNodes.build(zones, grid4, buffer_m=0)
    assert zn.counts.tolist() == [1]
    assert zn.pair_codes(np.array([7]), np.array([7])).tolist() == [6]  # RejectReason.ZERO_DISTANCE


def test_not_a_count_table(tmp_path: Path, grid4: RoadNetwork, grid4_zones: Path) -> None:
    bad = _write(tmp_path / "c.csv", ["1,2,3"], header="a,b,c")
    with pytest.raises(DemandError, match="not an origin-destination count table"):
        _source(bad, grid4_zones).load(grid4, np.random.default_rng(0))
    with pytest.raises(DemandError, match="not found"):
        _source(tmp_path / "missing.csv", grid4_zones).load(grid4, np.random.default_rng(0))


def test_custom_columns_and_date(tmp_path: Path, grid4: RoadNetwork, grid4_zones: Path) -> None:
    p = _write(tmp_path / "c.csv", ["4,3,1,2,100"], header="day,slot,o,d,n")
    cols = ODCountsColumns(weekday="day", slot="slot", origin_zone="o", destination_zone="d", count="n")
    src = _source(p, grid4_zones, columns=cols, date=dt.date(2018, 6, 15), n_days=1, slot_minutes=60)
    r = src.load(grid4, np.random.default_rng(0)).requests
    assert r.day_start == dt.datetime(2018, 6, 15)
    assert src.day_of_week == 4
    assert np.all((r.time_s >= 3 * 3600) & (r.time_s < 4 * 3600))


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"weekday": 7}, "weekday"),
        ({"weekday": 1, "date": dt.date(2018, 6, 13)}, "date"),
        ({"n_days": 0}, "n_days"),
        ({"slot_minutes": 7}, "slot_minutes"),
        ({"scale": 0.0}, "scale"),
    ],
)
def test_invalid_parameters(kw: dict[str, object], field: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=field):
        ODCountsSource(path=tmp_path / "a.csv", zones=tmp_path / "z.geojson", **kw)  # type: ignore[arg-type]


@pytest.mark.integration
def test_manhattan_wednesday_matches_counts(manhattan_wednesday: Requests, manhattan: RoadNetwork) -> None:
    table = pacsv.read_csv(shared_file(TRIPS_CSV))
    dow = table.column("dow").to_numpy()
    n = table.column("n_trips").to_numpy()
    expected = n[dow == 2].sum() / business_days(2018, 2)
    assert 440_000 < expected < 450_000
    assert abs(len(manhattan_wednesday) - expected) / expected < 0.01
    assert manhattan.n_nodes == 4197
    r = manhattan_wednesday
    assert r.o_node.max() < 4197
    assert r.d_node.max() < 4197
    assert np.all(r.o_node != r.d_node)
    # Hourly shape: the evening peak (18:00) is the busiest hour and 04:00 the quietest.
    per_hour = r.per_hour()
    assert int(per_hour.argmax()) == 18
    assert int(per_hour.argmin()) == 4
    slot = table.column("t_15min").to_numpy()
    exp_hour = np.bincount(slot[dow == 2] // 4, weights=n[dow == 2], minlength=24) / business_days(2018, 2)
    assert np.all(np.abs(per_hour - exp_hour) < 0.02 * exp_hour + 200)


def test_rejects_file_shows_the_row_after_a_malformed_line(
    tmp_path: Path, grid4: RoadNetwork, grid4_zones: Path
) -> None:
    """The malformed line is logged first; the zone row after it must still show its fields in the rejects file."""
    rejects = tmp_path / "rejects.csv"
    counts = _write(tmp_path / "c.csv", ["2,1", "2,1,1,99,52"])
    _source(counts, grid4_zones, n_days=52, rejects=rejects).load(grid4, np.random.default_rng(0))
    rows = pacsv.read_csv(rejects).to_pylist()
    assert [(r["line"], r["reason"]) for r in rows] == [(2, "unparsable_field"), (3, "unknown_zone")]
    assert (rows[1]["dow"], rows[1]["t_15min"], rows[1]["puzone"], rows[1]["dozone"], rows[1]["n_trips"]) == (
        2, 1, 1, 99, 52,
    )  # fmt: skip


@pytest.mark.slow
def test_bad_cell_past_the_first_block_is_one_rejected_row(
    tmp_path: Path, grid4: RoadNetwork, grid4_zones: Path
) -> None:
    """A bad cell far into the file (past the 16 MB block that fixes CSV column types) is a rejected row."""
    good = "2,1,1,2,52"
    rows = [good] * 1_700_000 + ["2,1,1,2,lots"]
    rep = _source(_write(tmp_path / "c.csv", rows), grid4_zones, n_days=52).load(grid4, np.random.default_rng(0))
    assert rep.report.rejected == {"unparsable_field": 1}
    assert rep.report.examples[0].line == 1_700_002


def test_parquet_count_table_numbers_rows(tmp_path: Path, grid4: RoadNetwork, grid4_zones: Path) -> None:
    import pyarrow.parquet as pq

    p = tmp_path / "c.parquet"
    pq.write_table(pacsv.read_csv(_write(tmp_path / "c.csv", ["2,1,1,2,52", "2,1,1,99,52"])), p)
    rep = _source(p, grid4_zones, n_days=52).load(grid4, np.random.default_rng(0)).report
    (e,) = rep.examples
    assert (e.line, e.locator, e.reason.label) == (1, "row", "unknown_zone")

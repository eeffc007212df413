"""Fleet start positions from a file: recognised layouts, and every bad input named by file, column and line."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from robotaxi.errors import FleetError
from robotaxi.fleet.positions import read_positions
from robotaxi.network import grid_city

from ..conftest import shared_file


def _write(tmp_path: Path, text: str, name: str = "fleet.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_hive_layout_loads_without_a_mapping() -> None:
    pos = read_positions(shared_file("data/nyc_manhattan_hive/nyc_200.csv"))
    assert len(pos) == 200
    assert pos.vehicle_id is not None
    assert pos.vehicle_id[:2] == ("v0", "v1")
    assert pos.lat[0] == pytest.approx(40.79847427)
    assert pos.lon[0] == pytest.approx(-73.94350998)
    assert pos.operator is None
    assert pos.capacity is None
    assert pos.line[:2].tolist() == [2, 3]


def test_parquet_with_operator_and_capacity(tmp_path: Path) -> None:
    p = tmp_path / "f.parquet"
    pq.write_table(
        pa.table(
            {
                "Longitude": [10.0, 10.001, 10.002],
                "Latitude": [50.0, 50.0, 50.001],
                "Provider": ["a", "b", "a"],
                "seats": [4, 6, 2],
            }
        ),
        p,
    )
    pos = read_positions(p)
    a = pos.for_operator("a")
    assert a.lon.tolist() == [10.0, 10.002]
    assert a.capacity is not None
    assert a.capacity.tolist() == [4, 2]
    assert a.line.tolist() == [1, 3]
    with pytest.raises(FleetError, match=r"line 2 names operator 'b', but the scenario's only operator is 'a'"):
        pos.for_operator("a", only=True)
    with pytest.raises(FleetError, match=r"no vehicle of operator 'c' \(operators in the file: a, b\)"):
        pos.for_operator("c")


def test_snap_to_the_network_and_refuse_vehicles_off_the_map(tmp_path: Path) -> None:
    net = grid_city(3, 3)  # origin (10, 50), 200 m blocks
    p = _write(tmp_path, f"lon,lat\n{net.lon[4]},{net.lat[4]}\n{net.lon[8] + 1e-5},{net.lat[8]}\n")
    assert read_positions(p).snap(net, 100).tolist() == [4, 8]
    far = _write(tmp_path, f"lon,lat\n{net.lon[4]},{net.lat[4]}\n11.0,50.0\n", "far.csv")
    with pytest.raises(FleetError, match=r"far.csv: 1 of 2 vehicles are off the .* line 3 at lon=11.000000"):
        read_positions(far).snap(net, 100)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"not a readable CSV file|no vehicles"),
        ("lon,lat\n", r"no vehicles \(the table has no rows\)"),
        ("lng,height\n1,2\n", r"no lat column \(columns: lng, height\)"),
        ("x,y\n10.0,abc\n", r"line 2: column 'y' is 'abc', not a number"),
        ("lon,lat\n10,50\n10,\n", r"line 3: column 'lat' is None, not a number"),
        ("lon,lat\n10,50\n10,95\n", r"line 3: lon=10, lat=95 is not a position"),
        ("lat,lon\n-173.9,40.7\n", r"line 2: lon=40.7, lat=-173.9 is not a position.*look swapped"),
        ("lon,lat\n10,50\n200,50\n", r"line 3: lon=200, lat=50 is not a position"),
        ("id,lon,lat\na,10,50\nb,10,50\na,10,50\n", r"line 4: vehicle id 'a' repeats line 2"),
        ("id,lon,lat\na,10,50\n,10,50\n", r"line 3: column 'id' is empty"),
        ("lon,lat,capacity\n10,50,4\n10,50,0\n", r"line 3: column 'capacity' is 0; a capacity is a whole number >= 1"),
        ("lon,lat,capacity\n10,50,2.5\n", r"line 2: column 'capacity' is 2.5"),
    ],
)
def test_bad_files_name_the_column_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(FleetError, match=message):
        read_positions(_write(tmp_path, text))


def test_swapped_coordinates_get_a_hint(tmp_path: Path) -> None:
    with pytest.raises(FleetError) as e:
        read_positions(_write(tmp_path, "lon,lat\n40.7,-173.9\n"))
    assert e.value.hint is not None
    assert "swapped" in e.value.hint


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match="fleet positions file not found"):
        read_positions(tmp_path / "nope.csv")
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"lon,lat\n\x00\x01\x02")
    with pytest.raises(FleetError, match=r"junk.csv: binary data"):
        read_positions(junk)


def test_spaces_around_names_and_values_are_ignored(tmp_path: Path) -> None:
    pos = read_positions(_write(tmp_path, " lon , lat \n 10.5 , 50 \n"))
    assert pos.lon.tolist() == [10.5]
    assert pos.lat.tolist() == [50.0]


def test_swapped_columns_that_miss_the_map_get_a_hint(tmp_path: Path) -> None:
    net = grid_city(3, 3)
    p = _write(tmp_path, f"lon,lat\n{net.lat[4]},{net.lon[4]}\n")  # lat in the lon column and the other way round
    with pytest.raises(FleetError) as e:
        read_positions(p).snap(net, 100)
    assert e.value.hint is not None
    assert "swapped" in e.value.hint

"""Offline events over a run folder's legs, and the DMV reports of a run.

The fixture is a tiny run folder written by hand: a 5 x 5 grid city (200 m blocks at 36 km/h), three vehicles of
the operator "acme" on 2019-11-30 (the last day of the DMV's 2019 reporting year), vehicle 0 driving corner to
corner in the morning with a rider on board from 3600 s to 4600 s, vehicle 1 driving around midnight (so its legs
fall in the 2019 and the 2020 periods), and vehicle 2 never moving.
"""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from robotaxi.cli import main
from robotaxi.errors import SafetyError
from robotaxi.network import Router, grid_city, save_network
from robotaxi.safety import DisengagementRates, SafetyProfile
from robotaxi.safety.dmv import DISENGAGEMENT_COLUMNS
from robotaxi.safety.report import build_report, render_html, write_report
from robotaxi.safety.runs import (
    EVENTS_FILE,
    TRIP_NAMESPACE,
    RunData,
    RunInfo,
    SafetyEvents,
    read_events,
    simulate_disengagements,
    write_events,
)
from robotaxi.sim.ledger_export import TRIP_NAMESPACE as SIM_TRIP_NAMESPACE
from robotaxi.sim.outputs import check_output_folder

MILE = 1609.344


FLEET = '[fleet]\noperator = "acme"\nkind = "autonomous"\nvehicles = 3\n'
#: The marketplace's layout: vehicles 0 and 1 driverless AVs of "acme", vehicle 2 a human driver of "cabs".
OPERATORS = (
    '[[operators]]\nname = "acme"\nkind = "autonomous"\nvehicles = 2\nsafety_driver = false\n'
    '[[operators]]\nname = "cabs"\nkind = "human_driven"\nvehicles = 1\n'
)


def _write_run(folder: Path, *, lengths_scale: float = 1.0, operators: str = FLEET) -> Path:
    folder.mkdir(parents=True)
    net = grid_city(5, 5)
    save_network(net, folder.parent / "grid.npz")
    (folder / "scenario.toml").write_text(
        'name = "tiny"\nseed = 1\n'
        f'[network]\npath = "{folder.parent / "grid.npz"}"\n'
        '[demand]\nkind = "synthetic"\ndate = "2019-11-30"\n'
        '[time]\ntimezone = "America/Los_Angeles"\n' + operators
    )
    rows = []
    for k in range(60):  # vehicle 0: corner to corner and back, 1,600 m in 160 s
        a, b = (0, 24) if k % 2 == 0 else (24, 0)
        rows.append((0, a, b, 3600 + 200 * k, 3760 + 200 * k, 1, 1600))
    for k in range(40):  # vehicle 1: along the bottom row, 800 m in 80 s, across midnight
        a, b = (0, 4) if k % 2 == 0 else (4, 0)
        rows.append((1, a, b, 84_000 + 100 * k, 84_080 + 100 * k, 0, 800))
    cols = list(zip(*rows, strict=True))
    pq.write_table(
        pa.table(
            {
                "vehicle_id": pa.array(cols[0], pa.int32()),
                "from_node": pa.array(cols[1], pa.int32()),
                "to_node": pa.array(cols[2], pa.int32()),
                "start_s": pa.array(cols[3], pa.int64()),
                "end_s": pa.array(cols[4], pa.int64()),
                "load": pa.array(cols[5], pa.int16()),
                "kind": pa.array(["dropoff"] * len(rows)),
                "length_m": pa.array([int(x * lengths_scale) for x in cols[6]], pa.int32()),
            }
        ),
        folder / "legs.parquet",
    )
    providers = ["acme", "acme", "cabs"] if operators == OPERATORS else ["acme"] * 3
    pq.write_table(
        pa.table({"provider": providers, "vehicle_id": pa.array([0, 1, 2], pa.int32())}),
        folder / "vehicle_events.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "request_id": pa.array([7, 8], pa.int64()),
                "vehicle": pa.array([0, None], pa.int32()),
                "board_s": pa.array([3600, None], pa.int64()),
                "dropoff_s": pa.array([4600, None], pa.int64()),
            }
        ),
        folder / "requests.parquet",
    )
    return folder


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return _write_run(tmp_path / "run")


def _events(run: Path, mpd: float = 2.0, seed: int = 5) -> tuple[RunData, SafetyEvents]:
    data = RunData.read(RunInfo.from_folder(run))
    router = Router(grid_city(5, 5))
    profiles = {"acme": SafetyProfile("acme", DisengagementRates(mpd), permit_number="AVT042")}
    return data, simulate_disengagements(data, router, profiles, np.random.default_rng(seed))


def test_trip_ids_match_the_ledger() -> None:
    assert TRIP_NAMESPACE == SIM_TRIP_NAMESPACE


def test_events_lie_on_the_legs_driven(run: Path) -> None:
    data, ev = _events(run)
    n = len(ev.records)
    total_miles = data.length_m.sum() / MILE
    assert 10 < n < 60  # ~ 80 miles / 2
    assert list(ev.time_s) == sorted(ev.time_s)
    for i, r in enumerate(ev.records):
        leg = int(ev.leg[i])
        assert data.start_s[leg] <= ev.time_s[i] <= data.end_s[leg]
        assert 0 <= ev.offset_m[i] <= data.length_m[leg]
        assert int(data.leg_vehicle[leg]) == int(ev.vehicle[i])
        assert r.vin == data.vin(int(ev.vehicle[i]))
        assert r.permit_number == "AVT042"
        assert r.location_type.value == "street"
        assert r.road_class == "residential~speed"
        assert 10.0 <= (r.lon or 0) <= 10.02
        assert 50.0 <= (r.lat or 0) <= 50.01
        rider = 3600 <= ev.time_s[i] < 4600 and ev.vehicle[i] == 0
        assert r.trip_id == (str(uuid.uuid5(TRIP_NAMESPACE, "tiny/1/7")) if rider else None)
        assert r.date.isoformat() == ("2019-11-30" if ev.time_s[i] < 86_400 else "2019-12-01")
    assert total_miles == pytest.approx((60 * 1600 + 40 * 800) / MILE)


def test_same_seed_same_events_and_file_round_trip(run: Path) -> None:
    _, a = _events(run, seed=9)
    _, b = _events(run, seed=9)
    assert a.records == b.records
    write_events(run, a)
    back = read_events(run)
    assert back is not None
    assert back.records == a.records
    assert np.array_equal(back.leg, a.leg)
    assert np.array_equal(back.time_s, a.time_s)
    check_output_folder(run)  # a later `robotaxi simulate` may still replace the folder


def test_report_columns_and_mileage(run: Path) -> None:
    data, ev = _events(run)
    write_events(run, ev)
    rep = build_report(data, read_events(run))
    assert sorted(rep.csv_files) == [
        "dmv_disengagements_2019.csv",
        "dmv_disengagements_2020.csv",
        "dmv_mileage_2019.csv",
        "dmv_mileage_2020.csv",
    ]
    total_rows = 0
    for year in (2019, 2020):
        rows = list(csv.reader(io.StringIO(rep.csv_files[f"dmv_disengagements_{year}.csv"])))
        assert tuple(rows[0]) == DISENGAGEMENT_COLUMNS
        total_rows += len(rows) - 1
        for row in rows[1:]:
            assert row[0] == "acme"
            assert row[1] == "AVT042"
            assert row[4:6] == ["No", "Yes"]
            assert row[6] in ("AV System", "Test Driver")
            assert row[7] == "Street"
    assert total_rows == len(ev.records)
    m19 = list(csv.reader(io.StringIO(rep.csv_files["dmv_mileage_2019.csv"])))
    months = ["DEC 2018"] + [
        f"{m} 2019" for m in ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV"]
    ]
    assert m19[0] == [
        "Manufacturer",
        "Permit Number",
        "VIN NUMBER",
        "Annual Total of Disengagements",
        *months,
        "ANNUAL TOTAL",
    ]
    assert [r[2] for r in m19[1:]] == [data.vin(v) for v in (0, 1, 2)]
    m20 = list(csv.reader(io.StringIO(rep.csv_files["dmv_mileage_2020.csv"])))
    assert m20[0][4] == "DEC 2019"
    total = sum(float(r[-1]) for r in m19[1:] + m20[1:])
    assert total == pytest.approx(data.length_m.sum() / MILE, abs=0.2)
    assert float(m19[3][-1]) == 0.0
    assert float(m20[3][-1]) == 0.0
    assert sum(int(r[3]) for r in m19[1:] + m20[1:]) == len(ev.records)
    (acme,) = rep.operators
    assert acme.mpd.disengagements == len(ev.records)
    assert acme.mpd.contains(2.0)
    assert "Garwood" in render_html(rep)
    assert sum(rep.by_hour) == len(ev.records)
    assert rep.by_hour == [int(np.sum((ev.time_s // 3600) % 24 == h)) for h in range(24)]


def test_report_without_events_still_gives_the_mileage(run: Path, tmp_path: Path) -> None:
    data = RunData.read(RunInfo.from_folder(run))
    rep = build_report(data, read_events(run))
    assert not rep.has_events_file
    assert rep.operators[0].mpd.disengagements == 0
    written = write_report(rep, tmp_path / "out")
    assert {p.name for p in written} >= {"safety_report.html", "dmv_mileage_2019.csv"}
    assert "zero disengagements are reported" in (tmp_path / "out" / "safety_report.html").read_text()
    rows = list(csv.reader(io.StringIO(rep.csv_files["dmv_disengagements_2019.csv"])))
    assert len(rows) == 1


def test_an_event_whose_vin_has_no_mileage_row_is_an_error(run: Path) -> None:
    data, ev = _events(run)
    write_events(run, ev)
    table = pq.read_table(run / EVENTS_FILE)
    vins = table.column("vin").to_pylist()
    vins[0] = "0RTXXXXXXXS999999"
    pq.write_table(table.set_column(table.schema.get_field_index("vin"), "vin", pa.array(vins)), run / EVENTS_FILE)
    with pytest.raises(SafetyError, match=r"row 0 .*has no mileage row"):
        build_report(data, read_events(run))


def test_an_event_outside_the_runs_periods_is_an_error(run: Path) -> None:
    data, ev = _events(run)
    write_events(run, ev)
    table = pq.read_table(run / EVENTS_FILE)
    days = table.column("date").to_pylist()
    days[0] = days[0].replace(year=2017)
    pq.write_table(table.set_column(table.schema.get_field_index("date"), "date", pa.array(days)), run / EVENTS_FILE)
    with pytest.raises(SafetyError, match=r"row 0 .*date 2017-.* is outside the run's reporting period"):
        build_report(data, read_events(run))


def test_bad_event_rows_name_the_row(run: Path) -> None:
    _, ev = _events(run)
    write_events(run, ev)
    table = pq.read_table(run / EVENTS_FILE)
    who = table.column("initiator").to_pylist()
    who[1] = "autopilot"
    pq.write_table(
        table.set_column(table.schema.get_field_index("initiator"), "initiator", pa.array(who)), run / EVENTS_FILE
    )
    with pytest.raises(SafetyError, match="row 1: initiator: unknown value 'autopilot'"):
        read_events(run)


def test_negative_leg_miles_are_an_error(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "neg", lengths_scale=-1.0)
    with pytest.raises(SafetyError, match="row 0: negative miles"):
        RunData.read(RunInfo.from_folder(run))


def test_operator_without_profile_is_an_error(run: Path) -> None:
    data = RunData.read(RunInfo.from_folder(run))
    with pytest.raises(SafetyError, match="no safety profile for autonomous operator"):
        simulate_disengagements(data, Router(grid_city(5, 5)), {}, np.random.default_rng(0))


@pytest.mark.integration
def test_cli_simulate_report_and_ledger(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["safety", "report", str(run)]) == 0
    assert "zero events reported" in capsys.readouterr().out
    ledger = tmp_path / "events.db"
    args = ["safety", "simulate", str(run), "-m", "2", "--seed", "3", "--permit", "AVT9", "--ledger", str(ledger)]
    assert main(args) == 0
    out = capsys.readouterr().out
    n = len((read_events(run) or pytest.fail("no events")).records)
    assert f"{n} disengagement(s)" in out
    assert f"appended {n}, already there 0" in out
    assert main(args) == 0  # the same seed: the same events, all already in the ledger
    assert f"appended 0, already there {n}" in capsys.readouterr().out
    assert main(["safety", "report", str(run)]) == 0
    page = (run / "safety" / "safety_report.html").read_text()
    assert 'alt="map of the disengagements" src="data:image/png;base64,' in page
    assert main(["safety", "report", str(run), "--no-map", "-o", str(tmp_path / "nomap")]) == 0
    assert "map of the disengagements" not in (tmp_path / "nomap" / "safety_report.html").read_text()
    text = (run / "safety" / "dmv_disengagements_2019.csv").read_text()
    assert text.count("AVT9") + (run / "safety" / "dmv_disengagements_2020.csv").read_text().count("AVT9") == n
    assert main(["safety", "simulate", str(run)]) == 1
    assert "exactly one of --miles-per-disengagement and --profiles" in capsys.readouterr().err
    assert main(["safety", "simulate", str(run), "-m", "-3"]) == 1
    assert "miles_per_disengagement: must be a number > 0" in capsys.readouterr().err


@pytest.mark.integration
def test_marketplace_operators(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _write_run(tmp_path / "market", operators=OPERATORS)
    data = RunData.read(RunInfo.from_folder(run))
    assert data.autonomous_operators() == ["acme"]
    assert data.info.safety_driver == {"acme": False}
    assert main(["safety", "simulate", str(run), "-m", "2", "--seed", "4"]) == 0
    events = read_events(run)
    assert events is not None
    assert events.records
    assert all(not r.driver_present and r.can_operate_without_driver for r in events.records)
    assert {r.initiator.value for r in events.records} <= {"av_system", "remote_operator"}
    assert main(["safety", "report", str(run), "--no-map"]) == 0
    rows = (run / "safety" / "dmv_mileage_2019.csv").read_text().splitlines()
    assert len(rows) == 3  # the header and acme's two vehicles; the human driver is not in the AV report
    assert main(["safety", "simulate", str(run), "-m", "2", "--driver"]) == 0
    assert all(r.driver_present for r in (read_events(run) or pytest.fail("no events")).records)

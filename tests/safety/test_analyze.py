"""Reading published DMV files in each layout, rejecting bad rows by line, and miles per disengagement.

No real DMV file is stored here; the files below are written in the published layouts as ``docs/safety.md``
describes them (header cells with line breaks and hints in parentheses, as the DMV's spreadsheet exports have).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robotaxi.cli import main
from robotaxi.errors import SafetyError
from robotaxi.safety import Initiator, LocationType, miles_per_disengagement
from robotaxi.safety.analyze import Layout, analyse, manufacturer_key, read_dmv_file

D2018_HEADER = (
    '"Manufacturer","Permit Number","DATE","VIN NUMBER",'
    '"VEHICLE IS CAPABLE OF OPERATING WITHOUT A DRIVER\n(Yes or No)","DRIVER PRESENT\n(Yes or No)",'
    '"DISENGAGEMENT INITIATED BY\n(AV System, Test Driver, Remote Operator, or Passenger)",'
    '"DISENGAGEMENT\nLOCATION\n(Interstate, Freeway, Highway, Rural Road, Street, or Parking Facility)",'
    '"DESCRIPTION OF FACTS CAUSING DISENGAGEMENT"\n'
)  # ends on physical line 6
D2018_ROWS = [
    "Waymo LLC,AVT003,12/03/2018,1M8GDM9AXKP042788,No,Yes,Test Driver,Street,Unwanted maneuver of the vehicle\n",
    "WAYMO LLC,AVT003,2019-05-06,1M8GDM9AXKP042788,NO,YES,test driver,STREET,Perception discrepancy \u2013 cyclist\n",
    "Waymo LLC,AVT003,11/30/2019,2C3CDXCT5EH100001,No,Yes,AV System,Freeway,Hardware fault\n",
    "Waymo LLC,AVT003,11/02/2019,2C3CDXCT5EH100001,No,Yes,Autopilot,Street,Unknown initiator\n",
    "Cruise LLC,AVT011,06/15/2019,1G1FZ6S09K4100002,No,Yes,Safety Driver,Parking Lot,Planned test\n",
    "Cruise LLC,AVT011,12/02/2019,1G1FZ6S09K4100002,No,Yes,AV System,Street,After the period\n",
    "Cruise LLC,AVT011,06/16/2019,1G1FZ6S09K4100999,No,Maybe,AV System,Street,Bad driver flag\n",
]
MONTHS_2019 = ["DEC 2018"] + [
    f"{m} 2019" for m in ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV"]
]
M2018_HEADER = (
    "Manufacturer,Permit Number,VIN NUMBER,Annual Total of Disengagements," + ",".join(MONTHS_2019) + ",ANNUAL TOTAL\n"
)


def _m2018_row(mfr: str, vin: str, count: str, months: list[str], total: str) -> str:
    return f'{mfr},AVT003,{vin},{count},{",".join(months)},"{total}"\n'


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    d18 = tmp_path / "2019-disengagements.csv"
    d18.write_text(D2018_HEADER + "".join(D2018_ROWS), encoding="cp1252")
    m18 = tmp_path / "2019-mileage.csv"
    m18.write_text(
        M2018_HEADER
        + _m2018_row("Waymo LLC", "1M8GDM9AXKP042788", "2", ['"1,000.5"', "", "500"] + ["100"] * 9, "2,400.5")
        + _m2018_row("Waymo LLC", "2C3CDXCT5EH100001", "1", ["50"] * 12, "600")
        + _m2018_row("Cruise LLC", "1G1FZ6S09K4100002", "1", ["10"] * 12, "999")
        + _m2018_row("Cruise LLC", "1G1FZ6S09K4100003", "0", ["-5"] + ["10"] * 11, "105")
    )
    d15 = tmp_path / "2016-disengagements.csv"
    d15.write_text(
        "Manufacturer,Date,Location,Type,Cause\n"
        "Google Auto LLC,Dec-15,Highway,Manual,Software discrepancy\n"
        "Google Auto LLC,1/5/2016,Street,Automatic,Perception discrepancy\n"
        "Google Auto LLC,2/5/2016,Street,Automatic\n"
        "Google Auto LLC,2/31/2016,Street,Manual,Impossible date\n"
    )
    m15 = tmp_path / "2016-mileage.csv"
    m15.write_text(
        'Manufacturer,Month,Autonomous Miles\nGoogle Auto LLC,Dec-15,1200\nGoogle Auto LLC,Jan-16,"1,800"\n'
        "Google Auto LLC,Feb-16,lots\n"
    )
    noyear = tmp_path / "mileage-no-year.csv"
    noyear.write_text(
        "Manufacturer,Permit Number,VIN,DEC,JAN,FEB,MAR,APR,MAY,JUN,JUL,AUG,SEP,OCT,NOV,TOTAL\n"
        "Zoox Inc,AVT020,5YJ3E1EA7KF000001," + ",".join(["10"] * 12) + ",120\n"
    )
    return {"d18": d18, "m18": m18, "d15": d15, "m15": m15, "noyear": noyear}


def test_2018_disengagement_layout(files: dict[str, Path]) -> None:
    f = read_dmv_file(files["d18"], year=2019)
    assert f.layout is Layout.DISENGAGEMENTS_2018
    assert len(f.disengagements) == 4
    first = f.disengagements[0]
    assert first.operator == "Waymo LLC"
    assert first.permit_number == "AVT003"
    assert first.vin == "1M8GDM9AXKP042788"
    assert first.initiator is Initiator.TEST_DRIVER
    assert first.location_type is LocationType.STREET
    assert first.driver_present
    assert not first.can_operate_without_driver
    assert f.disengagements[3].location_type is LocationType.PARKING_FACILITY  # "Parking Lot"
    assert f.disengagements[3].initiator is Initiator.TEST_DRIVER  # "Safety Driver"
    assert f.disengagements[1].description == "Perception discrepancy \u2013 cyclist"  # cp1252 en dash
    # The header spans physical lines 1-6, so the rows are lines 7-13.
    assert f.rejected == [
        (10, "initiator: unknown value 'Autopilot'"),
        (12, "date: 2019-12-02 is outside the reporting period 2019 (Dec 2018 - Nov 2019)"),
        (13, "driver present: expected Yes or No, got 'Maybe'"),
    ]


def test_2018_mileage_layout(files: dict[str, Path]) -> None:
    f = read_dmv_file(files["m18"])
    assert f.layout is Layout.MILEAGE_2018
    assert [(m.vin, m.year, m.miles, m.disengagements) for m in f.mileage] == [
        ("1M8GDM9AXKP042788", 2019, 2400.5, 2),
        ("2C3CDXCT5EH100001", 2019, 600.0, 1),
        ("1G1FZ6S09K4100002", 2019, 120.0, 1),
    ]
    assert f.rejected == [(5, "DEC miles: negative or infinite miles '-5'")]
    assert f.warnings["annual totals that differ from the sum of the months (the months are used)"] == 1


def test_2015_2017_layouts(files: dict[str, Path]) -> None:
    d = read_dmv_file(files["d15"])
    assert d.layout is Layout.DISENGAGEMENTS_2015
    assert [(r.date.isoformat(), r.initiator, r.location_type, r.period.year) for r in d.disengagements] == [
        ("2015-12-01", Initiator.TEST_DRIVER, LocationType.HIGHWAY, 2016),
        ("2016-01-05", Initiator.AV_SYSTEM, LocationType.STREET, 2016),
        ("2016-02-05", Initiator.AV_SYSTEM, LocationType.STREET, 2016),
    ]
    assert d.disengagements[0].vin is None
    assert d.disengagements[2].description == "(no description given)"
    assert d.rejected == [(5, "date: cannot read the date '2/31/2016'")]
    assert d.warnings["dates given as a month only (read as its first day)"] == 1
    m = read_dmv_file(files["m15"])
    assert m.layout is Layout.MILEAGE_2015
    assert [(r.year, r.miles) for r in m.mileage] == [(2016, 1200.0), (2016, 1800.0)]
    assert m.rejected == [(4, "miles: expected miles, got 'lots'")]


def test_month_columns_without_a_year_need_one(files: dict[str, Path]) -> None:
    with pytest.raises(SafetyError, match="month columns carry no year"):
        read_dmv_file(files["noyear"])
    f = read_dmv_file(files["noyear"], year=2020)
    assert f.mileage[0].year == 2020
    assert f.mileage[0].miles == 120.0


def test_unknown_layout_and_unreadable_files(tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(SafetyError, match="no header row of a known DMV layout"):
        read_dmv_file(f)
    with pytest.raises(SafetyError, match="cannot read"):
        read_dmv_file(tmp_path / "missing.csv")


def test_manufacturer_names_are_matched() -> None:
    assert manufacturer_key("Waymo LLC") == manufacturer_key("WAYMO LLC") == manufacturer_key("Waymo")
    assert manufacturer_key("Pony.ai, Inc.") == manufacturer_key("Pony AI") == "ponyai"


def test_miles_per_disengagement_by_manufacturer_and_year(files: dict[str, Path]) -> None:
    read = [read_dmv_file(files[k], year=y) for k, y in (("d18", 2019), ("m18", 2019), ("d15", None), ("m15", None))]
    lines, warnings = analyse(read)
    by = {(x.manufacturer, x.year): x for x in lines}
    waymo = by[("Waymo LLC", 2019)]
    assert waymo.disengagements == 3
    assert waymo.miles == pytest.approx(3000.5)
    assert waymo.vehicles == 2
    assert waymo.mpd == miles_per_disengagement(3000.5, 3)
    cruise = by[("Cruise LLC", 2019)]
    assert cruise.disengagements == 1
    assert cruise.miles == 120.0
    google = by[("Google Auto LLC", 2016)]
    assert google.disengagements == 3
    assert google.miles == 3000.0
    assert google.vehicles is None
    assert google.mpd is not None
    assert google.mpd.estimate == 1000.0
    assert warnings == {}


def test_vin_without_mileage_row_is_a_counted_warning(files: dict[str, Path], tmp_path: Path) -> None:
    d = tmp_path / "one.csv"
    d.write_text(
        D2018_HEADER
        + "Cruise LLC,AVT011,06/15/2019,1G1FZ6S09K4177777,No,Yes,AV System,Street,x\n"
        + "Cruise LLC,AVT011,06/16/2019,1G1FZ6S09K4100002,No,Yes,AV System,Street,y\n"
    )
    _, warnings = analyse([read_dmv_file(d), read_dmv_file(files["m18"])])
    assert warnings["disengagements whose VIN has no mileage row (2019 report)"] == 1
    assert warnings["manufacturer-years whose mileage file states another disengagement count"] == 1


@pytest.mark.integration
def test_cli(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["safety", "analyze", str(files["d18"]), str(files["m18"]), "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["files"][0]["layout"] == "disengagements-2018+"
    assert [r["line"] for r in out["files"][0]["rejected"]] == [10, 13]  # no --year: no period to check
    waymo = next(r for r in out["results"] if r["manufacturer"] == "Waymo LLC")
    assert waymo["disengagements"] == 3
    assert waymo["ci_low"] < waymo["miles_per_disengagement"] < waymo["ci_high"]
    assert "line 10: rejected: initiator: unknown value 'Autopilot'" in captured.err.replace("\n", " ")
    args = ["safety", "analyze", str(files["d18"]), str(files["m18"]), "--year", "2019", "--strict"]
    assert main(args) == 1
    assert "4 row(s) rejected" in capsys.readouterr().err


def test_bad_values_in_the_2015_2017_layouts_are_rejected_by_line(tmp_path: Path) -> None:
    """The issue's bad input in the older layouts: an unknown initiator or location, negative miles; each row is
    rejected with its physical line and the reason, the others are read."""
    d = tmp_path / "2017-disengagements.csv"
    d.write_text(
        "Company,Date,Road Type,Initiated By,Cause\n"
        "Delphi,3/1/2017,Street,Automatic,ok\n"
        "Delphi,3/2/2017,Street,Autopilot,unknown initiator\n"
        "Delphi,3/3/2017,Moon,Manual,unknown location\n"
    )
    f = read_dmv_file(d)
    assert f.layout is Layout.DISENGAGEMENTS_2015
    assert len(f.disengagements) == 1
    assert [line for line, _ in f.rejected] == [3, 4]
    assert "initiator: unknown value 'Autopilot'" in f.rejected[0][1]
    assert "Moon" in f.rejected[1][1]
    m = tmp_path / "2017-mileage.csv"
    m.write_text("Company,Month,Miles\nDelphi,Mar-17,100\nDelphi,Apr-17,-3\n")
    g = read_dmv_file(m)
    assert [(r.year, r.miles) for r in g.mileage] == [(2017, 100.0)]
    assert g.rejected == [(3, "miles: negative or infinite miles '-3'")]

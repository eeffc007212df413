"""``[operators.safety]`` in scenario files: every bad setting is an error naming the operator and the key before
the run; a small marketplace on the embedded Helsinki network writes its events, KPIs and report section, and the
same seed writes the same bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from robotaxi.errors import ScenarioError
from robotaxi.safety.runs import EFFECT_SCHEMA, EVENT_SCHEMA, RunData, RunInfo, read_events
from robotaxi.sim import Scenario, run_scenario

HEAD = """
name = "m"
seed = 3
[network]
path = "helsinki"
[demand]
kind = "synthetic"
n_requests = 4000
date = "2026-11-18"
[time]
start = "07:00"
end = "08:00"
timezone = "Europe/Helsinki"
"""
DRIVERLESS = """
[[operators]]
name = "av"
vehicles = 15
safety_driver = false
[operators.safety]
miles_per_disengagement = 8
on_disengagement = "stop"
recovery_s = 900
permit_number = "SIM-AV01"
"""
WITH_DRIVER = """
[[operators]]
name = "sd"
vehicles = 15
safety_driver = true
[operators.safety]
miles_per_disengagement = 8
delay_s = 45
[operators.safety.by_location]
freeway = 50
"""
DRIVERS = """
[[operators]]
name = "drivers"
kind = "human_driven"
acceptance = 0.9
response_s = [2, 10]
[[operators.shifts]]
hours = "06:00-14:00"
drivers = 10
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_safety_settings_parse(tmp_path: Path) -> None:
    sc = Scenario.from_file(write(tmp_path, HEAD + DRIVERLESS + WITH_DRIVER + DRIVERS))
    av, sd, drivers = sc.operators
    assert av.safety is not None
    assert sd.safety is not None
    assert drivers.safety is None
    assert (av.safety.action, av.safety.wait_s) == ("stop", 900)
    assert (sd.safety.action, sd.safety.wait_s) == ("continue", 45)
    assert av.safety.profile.permit_number == "SIM-AV01"
    assert av.safety.profile.driver_present is False
    assert av.safety.profile.can_operate_without_driver is True
    assert sd.safety.profile.driver_present is True
    assert sd.safety.profile.can_operate_without_driver is False
    # Defaults: a driverless operator waits for a remote operator (300 s), a safety driver goes on after 60 s.
    bare = DRIVERLESS.replace('on_disengagement = "stop"\nrecovery_s = 900\n', "")
    (op,) = Scenario.from_file(write(tmp_path, HEAD + bare)).operators
    assert op.safety is not None
    assert (op.safety.action, op.safety.wait_s) == ("remote", 300)


W = r"operators\[0\] 'av': safety"
S = r"operators\[0\] 'sd': safety"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (DRIVERLESS + "colour = 1\n", W + r"\.colour: unknown key"),
        (DRIVERLESS.replace("miles_per_disengagement = 8\n", ""), W + r"\.miles_per_disengagement: missing"),
        (DRIVERLESS.replace("= 8\n", "= -8\n"), W + r"\.miles_per_disengagement: must be a number > 0"),
        (DRIVERLESS.replace("= 8\n", "= true\n"), W + r"\.miles_per_disengagement: must be a number > 0"),
        (DRIVERLESS.replace('"stop"', '"pray"'), W + r"\.on_disengagement: expected one of continue, remote, stop"),
        (DRIVERLESS.replace('"stop"', '"continue"').replace("recovery_s = 900\n", ""), W + r'.*"continue" needs'),
        (
            WITH_DRIVER.replace("delay_s = 45", 'on_disengagement = "stop"'),
            S + r"\.on_disengagement: 'stop' is for driverless",
        ),
        (DRIVERLESS.replace("recovery_s = 900", "recovery_s = 0"), W + r"\.recovery_s: must be within 1\.\.86400"),
        (DRIVERLESS.replace("recovery_s = 900", "recovery_s = 9.5"), W + r"\.recovery_s: expected whole seconds"),
        (DRIVERLESS + "delay_s = 30\n", W + r'\.delay_s: not for on_disengagement = "stop"'),
        (WITH_DRIVER.replace("delay_s = 45", "delay_s = -1"), S + r"\.delay_s: must be within 0\.\.86400"),
        (WITH_DRIVER.replace("delay_s = 45", "recovery_s = 45"), S + r"\.recovery_s: only for on_disengagement"),
        (WITH_DRIVER.replace("freeway = 50", "moon = 50"), S + r"\.by_location.*moon"),
        (WITH_DRIVER.replace("freeway = 50", "freeway = 0"), S + r"\.by_location\.freeway: must be a number > 0"),
        (DRIVERLESS + "can_operate_without_driver = false\n", W + r"\.can_operate_without_driver: false, but"),
        (DRIVERLESS + "hour_factors = [1, 2]\n", W + r".*hour_factors: expected 24 values"),
        (DRIVERLESS + "[operators.safety.initiators]\ntest_driver = 1\n", W + r".*initiators\.test_driver: no driver"),
        (DRIVERLESS + "[operators.safety.initiators]\nghost = 1\n", W + r".*initiators.*ghost"),
        (DRIVERLESS.split("[operators.safety]", maxsplit=1)[0] + "safety = 5\n", W + r": expected a table"),
        (
            DRIVERS + "[operators.safety]\nmiles_per_disengagement = 5\n",
            r"operators\[0\] 'drivers': safety: not for a human-driven pool",
        ),
    ],
)
def test_bad_safety_settings_name_the_operator_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        Scenario.from_file(write(tmp_path, HEAD + text))


def test_a_run_without_a_calendar_date_is_refused_before_it_starts(tmp_path: Path) -> None:
    sc = Scenario.from_file(write(tmp_path, HEAD.replace('date = "2026-11-18"\n', "") + DRIVERLESS))
    with pytest.raises(ScenarioError, match=r"operators\[0\] 'av': safety: .*calendar date"):
        run_scenario(sc, output=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_marketplace_with_safety_writes_its_events_and_the_same_seed_repeats_them(tmp_path: Path) -> None:
    sc = Scenario.from_file(write(tmp_path, HEAD + DRIVERLESS + WITH_DRIVER + DRIVERS))
    a = run_scenario(sc, output=tmp_path / "a")
    b = run_scenario(sc, output=tmp_path / "b", report=False)
    assert a.folder is not None
    assert b.folder is not None
    for name in ("safety_events.parquet", "safety_kpis.json", "requests.parquet", "legs.parquet"):
        assert (a.folder / name).read_bytes() == (b.folder / name).read_bytes(), name
    table = pq.read_table(a.folder / "safety_events.parquet")
    assert table.schema.names == [*EVENT_SCHEMA.names, *EFFECT_SCHEMA.names]
    rows = table.to_pylist()
    assert {r["operator"] for r in rows} == {"av", "sd"}
    assert {r["action"] for r in rows if r["operator"] == "av"} == {"stop"}
    assert {r["delay_s"] for r in rows if r["operator"] == "sd"} == {45}
    kpis = json.loads((a.folder / "safety_kpis.json").read_text(encoding="utf-8"))
    assert set(kpis) == {"av", "sd"}
    assert kpis["av"]["disengagements"] + kpis["sd"]["disengagements"] == len(rows)
    assert kpis["av"]["riders_redispatched"] == sum(r["riders_redispatched"] for r in rows)
    assert kpis["av"]["riders_got_out"] == sum(r["riders_got_out"] for r in rows)
    # The offline report reads the run as it reads offline events: DMV files, the VINs of every vehicle.
    events = read_events(a.folder)
    assert events is not None
    assert len(events.records) == len(rows)
    from robotaxi.safety.report import build_report

    rep = build_report(RunData.read(RunInfo.from_folder(a.folder)), events)
    assert {o.operator: o.mpd.disengagements for o in rep.operators} == {
        "av": kpis["av"]["disengagements"],
        "sd": kpis["sd"]["disengagements"],
    }
    assert {o.operator: o.configured_mpd for o in rep.operators} == {"av": 8.0, "sd": 8.0}
    # The run's report has the safety section: the KPIs with labels and units, and the map.
    page = (a.folder / "report.html").read_text(encoding="utf-8")
    section = page[page.index("<h2>Safety: disengagements</h2>") :]
    assert "Miles per disengagement (95 % interval)" in section
    assert "Rider delay (rider-minutes: on board, or waiting after getting out)" in section
    assert "stop (stops until recovered, riders re-dispatched)" in section
    assert "Riders on board who got out and rode on (re-dispatched)" in section
    assert '<img alt="map of disengagements" src="data:image/png;base64,' in section

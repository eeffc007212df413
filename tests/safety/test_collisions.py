"""The compiled California OL 316 collision table loads whole: 250 records, corrections counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robotaxi.cli import main
from robotaxi.errors import SafetyError
from robotaxi.safety import Damage, Fault, Motion
from robotaxi.safety.collisions import COLUMNS, load_collisions, summarise
from tests.conftest import shared_file

TABLE = "data/ca_av_collisions/AutonomousD.csv"


@pytest.mark.integration
def test_loads_250_records() -> None:
    loaded = load_collisions(shared_file(TABLE))
    assert len(loaded.records) == 250
    first = loaded.records[0]
    assert first.operator == "Cruise"
    assert first.autonomous_mode
    assert first.av_motion is Motion.STOPPED
    assert first.date.isoformat() == "2018-05-13"
    assert first.time is not None
    assert first.time.isoformat() == "00:15:00"
    assert first.fault is Fault.OTHER
    assert first.collision_type == "sideswipe"
    assert first.injuries is None
    assert sum(loaded.corrections.values()) == 4
    assert sum(r.damage is Damage.MAJOR for r in loaded.records) == 4  # 2 "major" + 2 "significant"
    s = summarise(loaded.records)
    assert s.by_company["Cruise"]["total"] == 128
    assert s.by_company["Waymo"]["total"] == 79
    assert sum(c["total"] for c in s.by_company.values()) == 250
    assert s.by_mode_fault["autonomous"]["av"] == 4
    assert sum(s.by_mode_fault["autonomous"].values()) == 149  # rows have autonomous mode engaged


@pytest.mark.integration
def test_cli_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["safety", "collisions", str(shared_file(TABLE)), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["collisions"] == 250
    assert out["first"] == "2015-02-26"
    assert out["last"] == "2020-02-14"
    assert out["by_company"]["Zoox"]["total"] == 20


def test_bad_rows_are_listed_with_their_lines(tmp_path: Path) -> None:
    good = "5/13/18,Somewhere,Cruise,Bolt,1,0:15,Clear,Dry,Daylight,No,stopped,,moving,minor,x,,rear-end,non av"
    bad = "13/45/18,Somewhere,Cruise,Bolt,2,0:15,Clear,Dry,Daylight,No,stopped,,moving,minor,x,,rear-end,non av"
    f = tmp_path / "c.csv"
    f.write_text(",".join(f'"{c}"' for c in COLUMNS) + "\n" + good + "\n" + bad + "\n")
    with pytest.raises(SafetyError, match=r"1 invalid row\(s\): line 3: Date: expected m/d/yy"):
        load_collisions(f)
    f.write_text("Date,Company\n5/13/18,Cruise\n")
    with pytest.raises(SafetyError, match="missing column"):
        load_collisions(f)

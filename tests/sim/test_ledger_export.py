"""``robotaxi simulate --ledger``: every completed trip lands in the verifiable ledger, with true UTC times."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from robotaxi.cli import main
from robotaxi.errors import ScenarioError
from robotaxi.ledger import Ledger, audit
from robotaxi.sim import Scenario, run_scenario
from robotaxi.sim.ledger_export import epoch_ms, export_to_ledger, trip_records

from ..conftest import shared_file

pytestmark = pytest.mark.integration

SCENARIO = """
name = "denver-ledger"
seed = 5
[network]
path = "{network}"
[demand]
kind = "synthetic"
n_requests = 2000
{date}
[time]
start = "07:00"
end = "09:00"
timezone = "America/Denver"
[fleet]
vehicles = 20
"""


def _scenario(tmp_path: Path, *, date: str = 'date = "2026-03-11"') -> Scenario:
    text = SCENARIO.format(network=shared_file("data/denver_hive/downtown_denver_network.json"), date=date)
    (tmp_path / "s.toml").write_text(text, encoding="utf-8")
    return Scenario.from_file(tmp_path / "s.toml")


def test_epoch_ms_uses_the_time_zone_and_daylight_saving() -> None:
    # 2018-11-04 in New York: clocks go back from 02:00 EDT (UTC-4) to 01:00 EST (UTC-5).
    day = dt.datetime(2018, 11, 4)
    ms = epoch_ms(day, np.array([0, 4 * 3600], dtype=np.int64), "America/New_York")
    assert ms[0] == int(dt.datetime(2018, 11, 4, 4, tzinfo=dt.UTC).timestamp() * 1000)
    assert ms[1] == int(dt.datetime(2018, 11, 4, 9, tzinfo=dt.UTC).timestamp() * 1000)
    # A plain day: one vectorised offset.
    plain = epoch_ms(dt.datetime(2018, 11, 14), np.array([0, 3600, 86_399], dtype=np.int64), "America/New_York")
    np.testing.assert_array_equal(np.diff(plain), [3_600_000, 82_799_000])


def test_every_served_trip_is_recorded_and_verifiable(tmp_path: Path) -> None:
    sc = _scenario(tmp_path)
    out = run_scenario(sc, write=False)
    served = int(out.result.served.sum())
    assert served > 100
    exported = export_to_ledger(out.result, out.network, tmp_path / "trips.db", scenario=sc.name, seed=sc.seed,
                                timezone=sc.timezone)  # fmt: skip
    assert (exported.first_index, exported.count, exported.size) == (0, served, served)
    report = audit(tmp_path / "trips.db")
    assert report.ok, report
    with Ledger.open(tmp_path / "trips.db") as ledger:
        entries = [json.loads(ledger.entry(i)) for i in range(ledger.size)]
    assert {e["request_id"] for e in entries} == {
        str(r) for r in out.result.requests.request_id[out.result.served].tolist()
    }
    midnight = dt.datetime(2026, 3, 11, tzinfo=ZoneInfo("America/Denver"))
    first = entries[0]
    i = int(np.flatnonzero(out.result.requests.request_id == int(first["request_id"]))[0])
    board = int(out.result.outcomes.board_s[i])
    assert first["start_time_ms"] == int((midnight + dt.timedelta(seconds=board)).timestamp() * 1000)
    assert all(e["end_time_ms"] >= e["start_time_ms"] for e in entries)
    assert all(e["fare_cents"] is None for e in entries)  # synthetic demand is not priced: null, not 0
    assert all(e["distance_m"] > 0 for e in entries)


def test_same_run_gives_the_same_ledger(tmp_path: Path) -> None:
    sc = _scenario(tmp_path)
    roots = []
    for name in ("a.db", "b.db"):
        out = run_scenario(sc, write=False)
        export_to_ledger(out.result, out.network, tmp_path / name, scenario=sc.name, seed=sc.seed,
                         key_path=tmp_path / "shared.key")  # fmt: skip
        with Ledger.open(tmp_path / name) as ledger:
            roots.append(ledger.root())
    assert roots[0] == roots[1]


def test_demand_without_a_date_is_refused(tmp_path: Path) -> None:
    sc = _scenario(tmp_path, date="")
    out = run_scenario(sc, write=False)
    with pytest.raises(ScenarioError, match=r"needs calendar times.*\[demand\]"):
        trip_records(out.result, out.network, scenario=sc.name, seed=sc.seed)
    assert not (tmp_path / "trips.db").exists()


@pytest.mark.slow
def test_cli_simulate_with_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _scenario(tmp_path)
    db = tmp_path / "trips.db"
    assert main(["simulate", str(tmp_path / "s.toml"), "-q", "-o", str(tmp_path / "out"), "--ledger", str(db)]) == 0
    assert "trips appended" in capsys.readouterr().out
    vkey = tmp_path / "trips.db.key.vkey"
    assert vkey.is_file()
    assert main(["ledger", "audit", str(db), "--key", str(vkey)]) == 0
    bundle = tmp_path / "b.json"
    assert main(["ledger", "prove", "--index", "3", "--log", str(db), "--out", str(bundle)]) == 0
    assert main(["ledger", "verify", str(bundle), "--key", str(vkey)]) == 0
    # A second run appends and extends the same log.
    assert main(["simulate", str(tmp_path / "s.toml"), "-q", "-o", str(tmp_path / "out2"), "--ledger", str(db)]) == 0
    with Ledger.open(db) as ledger:
        assert len(ledger.checkpoints()) == 2

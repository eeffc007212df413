"""Re-running `simulate --ledger` on the same ledger (after a crash between append and checkpoint, say) appends
nothing twice and says how many trips it skipped (issue 11, item 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from robotaxi.cli import main
from robotaxi.ledger import Ledger, audit

from ..conftest import shared_file

SCENARIO = """
name = "denver-rerun"
seed = 5
[network]
path = "{network}"
[demand]
kind = "synthetic"
n_requests = 300
date = "2026-03-11"
[time]
start = "07:00"
end = "08:00"
timezone = "America/Denver"
[fleet]
vehicles = 10
"""


@pytest.mark.integration
@pytest.mark.slow
def test_rerun_records_each_trip_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scen = tmp_path / "s.toml"
    scen.write_text(SCENARIO.format(network=shared_file("data/denver_hive/downtown_denver_network.json")))
    db = tmp_path / "trips.db"
    assert main(["simulate", str(scen), "-q", "-o", str(tmp_path / "o1"), "--ledger", str(db)]) == 0
    with Ledger.open(db) as led:
        size = led.size
    assert size > 0
    assert f"ledger: {size:,} trips appended" in capsys.readouterr().out
    assert main(["simulate", str(scen), "-q", "-o", str(tmp_path / "o2"), "--ledger", str(db)]) == 0
    assert f"ledger: 0 trips appended to {db}, {size:,} already recorded and skipped" in capsys.readouterr().out
    with Ledger.open(db) as led:
        assert led.size == size
        assert len(led.checkpoints()) == 2
    assert audit(db).ok

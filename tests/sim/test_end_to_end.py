"""End to end on real networks (small fleets, short windows) and through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from robotaxi.cli import main
from robotaxi.sim import Scenario, run_scenario

from ..conftest import shared_file

pytestmark = pytest.mark.integration

DENVER = """
name = "denver-test"
seed = 3
[network]
path = "{network}"
[demand]
kind = "synthetic"
n_requests = 3000
[time]
start = "07:00"
end = "10:00"
[fleet]
vehicles = 25
[dispatch]
policy = "{policy}"
max_wait_s = 420
"""


@pytest.mark.parametrize("policy", ["batch", "immediate"])
def test_denver_morning(tmp_path: Path, policy: str) -> None:
    network = shared_file("data/denver_hive/downtown_denver_network.json")
    text = DENVER.format(network=network, policy=policy)
    (tmp_path / "s.toml").write_text(text, encoding="utf-8")
    sc = Scenario.from_file(tmp_path / "s.toml")
    out = run_scenario(sc, output=tmp_path / "out")
    k = out.kpis
    assert k.requests == k.served + k.rejected + k.cancelled
    assert k.requests > 100
    assert 0 < k.served_pct <= 100
    assert k.wait_p95_s is not None
    assert k.wait_p95_s <= 420
    folder = tmp_path / "out"
    assert sorted(p.name for p in folder.iterdir()) == [
        "kpis.json",
        "legs.parquet",
        "report.html",
        "requests.parquet",
        "scenario.toml",
        "vehicle_events.parquet",
    ]
    req = pq.read_table(folder / "requests.parquet")
    assert req.num_rows == k.requests
    assert set(req.column("outcome").to_pylist()) <= {"served", "rejected", "cancelled"}
    ev = pq.read_table(folder / "vehicle_events.parquet")
    assert "trip_start" in ev.column("event_type").to_pylist()
    assert json.loads((folder / "kpis.json").read_text())["policy"] == policy
    html = (folder / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 6  # hourly, wait/occupancy, waits, km by hour, states, map
    assert "http" not in html.replace("http-equiv", "")  # self-contained: nothing fetched


def test_cli_default_helsinki_short_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    scenario = tmp_path / "h.toml"
    scenario.write_text(
        'name = "h"\n[network]\npath = "helsinki"\n[demand]\nkind = "synthetic"\nn_requests = 4000\n'
        '[time]\nstart = "08:00"\nend = "09:30"\n[fleet]\nvehicles = 20\n',
        encoding="utf-8",
    )
    assert main(["simulate", str(scenario), "-q", "-o", "res"]) == 0
    assert (tmp_path / "res" / "report.html").is_file()


def test_cli_bad_input_exits_non_zero_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "b"\n[network]\npath = "helsinki"\n[demand]\nkind = "synthetic"\nn_requests = 10\n'
        "[fleet]\nvehicles = 0\n",
        encoding="utf-8",
    )
    assert main(["simulate", str(bad), "-q"]) == 1
    empty = tmp_path / "empty.toml"
    empty.write_text(
        'name = "e"\n[network]\npath = "helsinki"\n[demand]\nkind = "synthetic"\nn_requests = 10\n'
        '[time]\nstart = "03:00"\nend = "03:01"\n[fleet]\nvehicles = 2\n',
        encoding="utf-8",
    )
    assert main(["simulate", str(empty), "-q"]) == 1
    assert main(["simulate", str(tmp_path / "nope.toml"), "-q"]) == 1
    assert not (tmp_path / "out").exists()
    # An output folder holding the user's own files is refused up front, and left as it was.
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me", encoding="utf-8")
    good = tmp_path / "good.toml"
    good.write_text(empty.read_text(encoding="utf-8").replace('"03:01"', '"09:00"'), encoding="utf-8")
    assert main(["simulate", str(good), "-q", "-o", "notes"]) == 1
    assert [p.name for p in (tmp_path / "notes").iterdir()] == ["todo.txt"]


@pytest.mark.slow
def test_same_seed_gives_byte_identical_kpis(tmp_path: Path) -> None:
    """kpis.json holds no wall-clock time: two runs of one scenario and seed write the same bytes."""
    from robotaxi.sim import DEFAULT_SCENARIO_TOML

    text = DEFAULT_SCENARIO_TOML.replace('start = "00:00"', 'start = "07:00"').replace('end = "24:00"', 'end = "08:00"')
    text += '\n[rebalancing]\nenabled = true\nzones = "grid"\n'
    sc = Scenario.from_toml(text, base_dir=tmp_path, source=None)
    run_scenario(sc, output=tmp_path / "a")
    run_scenario(sc, output=tmp_path / "b")
    a, b = (tmp_path / "a" / "kpis.json").read_bytes(), (tmp_path / "b" / "kpis.json").read_bytes()
    assert a == b
    assert b"wall" not in a

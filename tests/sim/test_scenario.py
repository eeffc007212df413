"""Scenario files: validation names the key or the file; the embedded default and the examples parse."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from robotaxi.errors import ScenarioError
from robotaxi.sim import DEFAULT_SCENARIO_TOML, Scenario
from robotaxi.sim.scenario import parse_clock

REPO = Path(__file__).resolve().parents[2]

MINIMAL = """
name = "t"
[network]
path = "helsinki"
[demand]
kind = "synthetic"
n_requests = 10
[fleet]
vehicles = 3
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_minimal_scenario_gets_defaults(tmp_path: Path) -> None:
    sc = Scenario.from_file(write(tmp_path, MINIMAL))
    assert sc.policy == "batch"
    assert sc.policy_params.batch_seconds == 30
    assert sc.engine.max_wait_s == 600
    assert (sc.sim.start_s, sc.sim.end_s) == (0, 86_400)
    assert sc.fleet is not None
    assert sc.fleet.vehicles == 3
    assert sc.output == Path("out/t")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[sim]\nspeed = 3\n", "sim.speed: unknown key"),
        ("colour = 'red'\n", "colour: unknown key"),
        ("[dispatch]\npolicy = 'fastest'\n", "dispatch.policy"),
        ("[dispatch]\nbatch_seconds = '30'\n", "dispatch.batch_seconds: expected int"),
        ("[dispatch]\nmax_wait_s = true\n", "dispatch.max_wait_s: expected int"),
        ("[time]\nstart = '10:00'\nend = '09:00'\n", "time.end"),
        ("[time]\nstart = 'noon'\n", "time.start"),
        ("[dispatch]\nmax_wait_s = -5\n", r"dispatch\.max_wait_s: must be >= 1"),
        ("[dispatch]\nbatch_seconds = 0\n", r"dispatch\.batch_seconds: must be >= 1"),
        ("[dispatch]\ncandidates = 0\n", r"dispatch\.candidates: must be >= 1"),
        ("[sim]\npickup_dwell_s = -1\n", r"sim\.pickup_dwell_s: must be >= 0"),
        ("[rebalancing]\nunassigned_targets = 1\n", r"rebalancing\.unassigned_targets: expected bool"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        Scenario.from_file(write(tmp_path, MINIMAL + extra))


def test_unassigned_targets_reach_the_rebalancer(tmp_path: Path) -> None:
    """``[rebalancing] unassigned_targets`` is off unless set, and the pooled example turns it on."""
    sc = Scenario.from_file(write(tmp_path, MINIMAL + "[rebalancing]\nenabled = true\n"))
    assert sc.rebalancing.unassigned_targets is False
    on = Scenario.from_file(write(tmp_path, MINIMAL + "[rebalancing]\nenabled = true\nunassigned_targets = true\n"))
    assert on.rebalancing.unassigned_targets is True
    assert Scenario.from_file(REPO / "examples" / "manhattan_pooled.toml").rebalancing.unassigned_targets is True


def test_negative_seed_is_a_scenario_error(tmp_path: Path) -> None:
    # NumPy's SeedSequence raises a bare ValueError (a traceback from the CLI) on a negative seed.
    with pytest.raises(ScenarioError, match="seed: must be >= 0"):
        Scenario.from_file(write(tmp_path, MINIMAL.replace('name = "t"', 'name = "t"\nseed = -1')))


def test_zero_fleet_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"fleet\.vehicles: a fleet needs at least one vehicle"):
        Scenario.from_file(write(tmp_path, MINIMAL.replace("vehicles = 3", "vehicles = 0")))
    with pytest.raises(ScenarioError, match=r"network.path: file not found: nowhere.json"):
        Scenario.from_file(write(tmp_path, MINIMAL.replace('"helsinki"', '"nowhere.json"')))
    with pytest.raises(ScenarioError, match="scenario file not found"):
        Scenario.from_file(tmp_path / "missing.toml")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        Scenario.from_file(write(tmp_path, "name = "))
    with pytest.raises(ScenarioError, match=r"demand\.kind"):
        Scenario.from_file(write(tmp_path, MINIMAL.replace('"synthetic"', '"crystal_ball"')))


def test_clock_parsing() -> None:
    assert parse_clock("07:30", "x") == 27_000
    assert parse_clock("24:00", "x") == 86_400
    assert parse_clock(3600, "x") == 3600
    with pytest.raises(ValueError, match="x"):
        parse_clock("7h", "x")
    for typo in ("07:99", "07:30:60", "-1:30", "07:-5"):
        with pytest.raises(ValueError, match="expected HH:MM"):
            parse_clock(typo, "x")


def test_embedded_default_matches_the_example() -> None:
    assert tomllib.loads(DEFAULT_SCENARIO_TOML) == tomllib.loads(
        (REPO / "examples" / "helsinki.toml").read_text(encoding="utf-8")
    )
    assert Scenario.default().network == "helsinki"


@pytest.mark.integration
def test_flagship_scenario_resolves_shared_data() -> None:
    sc = Scenario.from_file(REPO / "examples" / "manhattan_weekday.toml")
    assert sc.fleet is not None
    assert sc.fleet.vehicles == 8000
    assert sc.policy_params.batch_seconds == 30
    assert sc.engine.max_wait_s == 600
    assert Path(sc.network).is_file()
    assert sc.demand.path is not None
    assert sc.demand.path.is_file()
    assert sc.speed_profile is not None

"""Sweep files: the runs they expand to, and the errors that stop them before anything runs."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest

from robotaxi.errors import ScenarioError
from robotaxi.sweep import SweepSpec, apply_override, dump_toml

REPO = Path(__file__).resolve().parents[2]


def _spec(city: Path, extra: str, *, grid: bool = True) -> SweepSpec:
    head = 'scenario = "base.toml"\n'
    body = '[grid]\n"fleet.vehicles" = [3, 6]\n' if grid else ""
    (city / "s.toml").write_text(head + extra + "\n" + body, encoding="utf-8")
    return SweepSpec.from_file(city / "s.toml")


def test_grid_is_every_combination_in_file_order(city: Path) -> None:
    spec = SweepSpec.from_file(city / "sweep.toml")
    assert [r.name for r in spec.runs] == [
        "000_vehicles=3_policy=batch_seed=1",
        "001_vehicles=3_policy=batch_seed=2",
        "002_vehicles=3_policy=immediate_seed=1",
        "003_vehicles=3_policy=immediate_seed=2",
        "004_vehicles=6_policy=batch_seed=1",
        "005_vehicles=6_policy=batch_seed=2",
        "006_vehicles=6_policy=immediate_seed=1",
        "007_vehicles=6_policy=immediate_seed=2",
    ]
    assert spec.varied == ("fleet.vehicles", "dispatch.policy", "seed")
    last = spec.runs[-1].scenario
    assert last.fleet is not None
    assert (last.fleet.vehicles, last.policy, last.seed) == (6, "immediate", 2)
    assert spec.output == Path("out")
    assert spec.workers == 2
    assert not spec.run_reports
    assert len({r.key for r in spec.runs}) == 8


def test_listed_runs_times_grid_and_set(city: Path) -> None:
    spec = _spec(
        city,
        '[set]\n"dispatch.max_wait_s" = 240\n'
        '[[runs]]\ndispatch.policy = "immediate"\n'
        '[[runs]]\n"dispatch.policy" = "batch"\n"dispatch.batch_seconds" = 10\n',
    )
    assert len(spec.runs) == 4
    assert [r.scenario.policy for r in spec.runs] == ["immediate", "immediate", "batch", "batch"]
    assert [r.scenario.policy_params.batch_seconds for r in spec.runs][2:] == [10, 10]
    assert all(r.scenario.engine.max_wait_s == 240 for r in spec.runs)
    assert spec.runs[2].overrides == (
        ("dispatch.max_wait_s", 240),
        ("dispatch.policy", "batch"),
        ("dispatch.batch_seconds", 10),
        ("fleet.vehicles", 3),
    )
    # The base document is untouched by the runs' overrides.
    assert tomllib.loads((city / "base.toml").read_text())["dispatch"] == {"policy": "batch", "max_wait_s": 300}


def test_a_key_missing_from_the_base_can_be_set(city: Path) -> None:
    spec = _spec(city, '[set]\n"rebalancing.enabled" = true\n"rebalancing.zones" = "grid"\n')
    assert all(r.scenario.rebalancing.enabled for r in spec.runs)


def test_inline_base_scenario(city: Path) -> None:
    text = (city / "base.toml").read_text().replace("[", "[scenario.").replace('name = "grid"', "")
    text = text.replace("seed = 1", "")
    (city / "s.toml").write_text(f'[scenario]\nseed = 4\n{text}\n[grid]\n"fleet.vehicles" = [3, 6]\n')
    spec = SweepSpec.from_file(city / "s.toml")
    assert [r.scenario.seed for r in spec.runs] == [4, 4]
    assert spec.base_source is None


@pytest.mark.parametrize(
    ("extra", "grid", "message"),
    [
        ('[grid]\n"fleet.vehicle" = [3]', False, "fleet.vehicle: unknown key"),
        ('[grid]\n"fleet.vehicles" = ["3"]', False, "fleet.vehicles: expected int, got str '3'"),
        ('[grid]\n"fleet.vehicles" = [3, true]', False, "fleet.vehicles: expected int, got bool True"),
        ('[grid]\n"dispatch.policy" = ["batch", "greedy"]', False, "dispatch.policy: expected one of"),
        ('[grid]\n"dispatch.max_wait_s" = [0]', False, "dispatch.max_wait_s: must be >= 1"),
        ('[grid]\n"seed.x" = [1]', False, "seed.x: seed is a value (1), not a table"),
        ('[grid]\n"rebalancing.nope" = [1]', False, "rebalancing.nope: unknown key"),
        ('[grid]\n"demand.n_requests" = ["many"]', False, "n_requests must be an int"),
        ('[grid]\n"fleet.vehicles" = []', False, "grid.fleet.vehicles: expected a non-empty array"),
        ('[grid]\n"fleet.vehicles" = 3', False, "grid.fleet.vehicles: expected a non-empty array"),
        ('[grid]\n"fleet.vehicles" = [3, 3]', False, "grid.fleet.vehicles: the value 3 is listed twice"),
        ('[grid]\n"a..b" = [1]', False, "is not a dotted path"),
        ('[set]\noutput = "elsewhere"', True, "set.output: set by the sweep"),
        ('[set]\n"fleet.vehicles" = 3', True, "fleet.vehicles: given in [set] and in [grid]"),
        ('[[runs]]\n"fleet.vehicles" = 3', True, "fleet.vehicles: given in [grid] and in [[runs]] entry 0"),
        ("[[runs]]\nseed = 1\n[[runs]]\nseed = 1", False, "runs 0 and 1 are the same scenario"),
        ("workers = 0", True, "workers: expected an integer >= 1"),
        ('run_reports = "yes"', True, "run_reports: expected true or false"),
        ("colour = 1", True, "colour: unknown key"),
        ("runs = 3", False, "runs: expected an array of tables"),
    ],
)
def test_bad_sweep_files_name_the_key(city: Path, extra: str, grid: bool, message: str) -> None:
    with pytest.raises(ScenarioError, match=r"s\.toml") as info:
        _spec(city, extra, grid=grid)
    assert message in str(info.value)


def test_errors_name_the_run_and_count_the_others(city: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        _spec(city, '[grid]\n"fleet.vehicles" = [0, -1, 3]', grid=False)
    msg = str(info.value)
    assert "run 000_vehicles=0: scenario: fleet.vehicles: a fleet needs at least one vehicle, got 0" in msg
    assert "(and 1 more runs with errors)" in msg


def test_missing_files(city: Path) -> None:
    with pytest.raises(ScenarioError, match="sweep file not found"):
        SweepSpec.from_file(city / "none.toml")
    (city / "s.toml").write_text('scenario = "none.toml"\n')
    with pytest.raises(ScenarioError, match=r"scenario: file not found: none\.toml"):
        SweepSpec.from_file(city / "s.toml")
    (city / "s.toml").write_text("[grid]\nseed = [1]\n")
    with pytest.raises(ScenarioError, match="scenario: missing"):
        SweepSpec.from_file(city / "s.toml")
    (city / "s.toml").write_text("scenario = \n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        SweepSpec.from_file(city / "s.toml")


def test_apply_override_walks_tables_and_arrays() -> None:
    doc = {"operators": [{"name": "a", "vehicles": 1}, {"name": "b", "vehicles": 2}], "seed": 3}
    apply_override(doc, "operators.1.vehicles", 20)
    apply_override(doc, "dispatch.policy", "pool")
    assert doc == {
        "operators": [{"name": "a", "vehicles": 1}, {"name": "b", "vehicles": 20}],
        "seed": 3,
        "dispatch": {"policy": "pool"},
    }
    with pytest.raises(ValueError, match=r"operators.2.vehicles: 'operators.2' needs an index 0..1"):
        apply_override(doc, "operators.2.vehicles", 1)
    with pytest.raises(ValueError, match=r"operators\.x: 'operators\.x' needs an index"):
        apply_override(doc, "operators.x", 1)
    with pytest.raises(ValueError, match=r"seed.a.b: seed is a value \(3\), not a table"):
        apply_override(doc, "seed.a.b", 1)


def test_dump_toml_round_trips() -> None:
    doc = {
        "name": 'a "quoted" name\twith tab and é',
        "seed": 7,
        "x": 1.5,
        "flag": False,
        "day": dt.date(2018, 11, 14),
        "list": [1, 2, 3],
        "odd key": {"a.b": 1},
        "network": {"path": "p.json", "nested": {"deep": [0.1, "s"]}},
        "operators": [{"name": "a", "area": {"zones": [1, 2]}}, {"name": "b"}],
    }
    assert tomllib.loads(dump_toml(doc, "a header\nof two lines")) == doc
    for example in ("manhattan_weekday.toml", "manhattan_pooled.toml", "helsinki.toml"):
        real = tomllib.loads((REPO / "examples" / example).read_text())
        assert tomllib.loads(dump_toml(real)) == real


@pytest.mark.integration
def test_manhattan_fleet_sizing_example_is_28_valid_runs() -> None:
    spec = SweepSpec.from_file(REPO / "examples" / "manhattan_fleet_sizing.toml")
    assert len(spec.runs) == 28
    assert spec.base_source == REPO / "examples" / "manhattan_weekday.toml"
    combos = {(r.scenario.n_vehicles, r.scenario.policy, r.scenario.seed) for r in spec.runs}
    assert combos == {
        (v, p, s) for v in range(4000, 10_001, 1000) for p in ("batch", "immediate") for s in (2018, 2019)
    }
    # Everything but the overridden keys is the flagship's.
    assert all(r.scenario.rebalancing.enabled and r.scenario.engine.max_wait_s == 600 for r in spec.runs)


@pytest.mark.integration
def test_overrides_reach_into_arrays_of_operators(tmp_path: Path) -> None:
    """The marketplace scenario's [[operators]]: an integer part picks the operator; its errors name it."""
    base = REPO / "examples" / "manhattan_marketplace.toml"
    (tmp_path / "s.toml").write_text(
        f'scenario = "{base}"\n[grid]\n"operators.0.vehicles" = [100, 200]\n"operators.1.vehicles" = [50, 60]\n'
    )
    spec = SweepSpec.from_file(tmp_path / "s.toml")
    assert [r.name for r in spec.runs][:2] == [
        "000_operators0.vehicles=100_operators1.vehicles=50",
        "001_operators0.vehicles=100_operators1.vehicles=60",
    ]
    last = spec.runs[-1].scenario
    assert [op.vehicles for op in last.operators][:2] == [200, 60]
    (tmp_path / "s.toml").write_text(f'scenario = "{base}"\n[grid]\n"operators.1.vehicles" = [0]\n')
    with pytest.raises(ScenarioError, match=r"operators\[1\] 'island-av': vehicles: an operator needs"):
        SweepSpec.from_file(tmp_path / "s.toml")
    (tmp_path / "s.toml").write_text(f'scenario = "{base}"\n[grid]\n"operators.9.vehicles" = [1]\n')
    with pytest.raises(ScenarioError, match=r"'operators.9' needs an index 0..2"):
        SweepSpec.from_file(tmp_path / "s.toml")

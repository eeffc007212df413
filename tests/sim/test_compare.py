"""``robotaxi compare``: runs side by side from their outputs; ``robotaxi simulate --set`` for the variant runs."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from robotaxi.cli import main
from robotaxi.cli.simulate import _load
from robotaxi.dispatch import make_policy
from robotaxi.errors import ScenarioError
from robotaxi.fleet import Fleet, Operator
from robotaxi.network import RoadNetwork, Router
from robotaxi.sim import SimParams, Simulator, compute_kpis, write_outputs

from .helpers import requests_on


def _run(grid3: RoadNetwork, folder: Path, cars: int) -> Path:
    """A rider every 50 s for an hour on the 3x3 grid city, served by ``cars`` cars."""
    fleet = Fleet.build((Operator("acme", cars, start_nodes=(0, 8)[:cars]),), grid3, np.random.default_rng(0))
    times = list(range(0, 3600, 50))
    reqs = requests_on(
        grid3, times, [2 if i % 2 else 6 for i in range(len(times))], [8 if i % 2 else 0 for i in range(len(times))]
    )
    res = Simulator(Router(grid3), fleet, reqs, make_policy("immediate"), SimParams(end_s=7200)).run()
    write_outputs(res, grid3, folder, compute_kpis(res))
    return folder


@pytest.fixture(scope="module")
def two_runs(grid3: RoadNetwork, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("runs")
    return _run(grid3, base / "one_car", 1), _run(grid3, base / "two_cars", 2)


def test_two_runs_side_by_side(two_runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one, two = two_runs
    out = tmp_path / "c.html"
    assert main(["compare", str(one), str(two), "--label", "one car", "--label", "two cars", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    k1 = json.loads((one / "kpis.json").read_text())
    k2 = json.loads((two / "kpis.json").read_text())
    assert k1["served_pct"] < k2["served_pct"]
    assert f"one car: served {k1['served_pct']:.2f} %" in printed
    assert f"two cars: served {k2['served_pct']:.2f} %" in printed
    page = out.read_text()
    assert page.count("data:image/png;base64,") == 3  # served %, mean wait, fleet busy % by hour
    assert "<th>one car</th><th>two cars</th>" in page
    assert f"<td>{k1['served_pct']:.1f} %</td><td>{k2['served_pct']:.1f} %</td>" in page
    assert f"one car: served %</th><td>{k1['served_pct_by_hour'][0]:.1f}</td>" in page


def test_wrong_inputs_are_named(
    two_runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, two = two_runs
    out = tmp_path / "c.html"
    assert main(["compare", str(one), "-o", str(out)]) == 2
    assert "at least two run folders" in capsys.readouterr().err
    assert main(["compare", str(one), str(one), "-o", str(out)]) == 2
    assert "given twice" in capsys.readouterr().err
    assert main(["compare", str(one), str(two), "--label", "a", "-o", str(out)]) == 2
    assert "1 labels for 2 runs" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["compare", str(one), str(empty), "-o", str(out)]) == 1
    assert "no kpis.json" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "kpis.json").write_text('{"requests": 3, "served_pct": 50.0}')
    assert main(["compare", str(one), str(broken), "-o", str(out)]) == 1
    assert "lacks served_pct_by_hour, wait_mean_s_by_hour" in capsys.readouterr().err
    assert not out.exists()


def test_set_changes_the_scenario_before_it_is_checked() -> None:
    sc, text = _load(None, ["fleet.vehicles=7", "dispatch.policy=immediate", "rebalancing.enabled=false"])
    assert sc.n_vehicles == 7
    assert sc.policy == "immediate"
    assert text is not None
    assert text.startswith("# The embedded scenario, changed on the command line:\n")
    assert "#   fleet.vehicles = 7" in text
    doc = tomllib.loads(text)  # the run folder's scenario.toml says what ran
    assert (doc["fleet"]["vehicles"], doc["dispatch"]["policy"], doc["rebalancing"]["enabled"]) == (
        7,
        "immediate",
        False,
    )
    assert _load(None, [])[1] is None  # unchanged: the scenario's own text is written
    with pytest.raises(ScenarioError, match=r"fleet\.vehicles: expected int, got str 'seven'"):
        _load(None, ["fleet.vehicles=seven"])
    with pytest.raises(ScenarioError, match=r"fleet\.bogus: unknown key"):
        _load(None, ["fleet.bogus=1"])
    with pytest.raises(ScenarioError, match="expected PATH=VALUE"):
        _load(None, ["fleet.vehicles"])


def test_simulate_passes_the_changed_scenario_and_its_text_to_the_run(
    grid3: RoadNetwork, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`robotaxi simulate --set ... --policy ...`: the run gets the changed scenario and writes, as its
    scenario.toml, the text of the scenario as run (the policy given with --policy included)."""
    import robotaxi.cli.simulate as cli_simulate
    from robotaxi.sim import RunOutput

    fleet = Fleet.build((Operator("acme", 1, start_nodes=(0,)),), grid3, np.random.default_rng(0))
    res = Simulator(
        Router(grid3), fleet, requests_on(grid3, [10], [2], [8]), make_policy("immediate"), SimParams(end_s=600)
    ).run()
    seen: dict[str, object] = {}

    def fake_run(scenario: object, **kwargs: object) -> RunOutput:
        seen["scenario"], seen["text"] = scenario, kwargs.get("scenario_text")
        return RunOutput(result=res, kpis=compute_kpis(res), folder=None, network=grid3, timings_s={})

    monkeypatch.setattr(cli_simulate, "run_scenario", fake_run)
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", "-q", "--set", "fleet.vehicles=7", "--policy", "immediate"]) == 0
    sc = seen["scenario"]
    assert (sc.n_vehicles, sc.policy) == (7, "immediate")  # type: ignore[attr-defined]
    doc = tomllib.loads(str(seen["text"]))
    assert (doc["fleet"]["vehicles"], doc["dispatch"]["policy"]) == (7, "immediate")
    assert main(["simulate", "-q"]) == 0
    assert seen["text"] is None  # nothing changed: the scenario's own text is written
    assert main(["simulate", "-q", "--policy", "teleport"]) == 1

"""``[operators.safety_policy]``: an autonomous operator leaves the zones where a previous run found it
disengaging significantly too often; requests there go to the other operators. Every bad setting is an error
naming the operator and the key, before the run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robotaxi.errors import RobotaxiError, ScenarioError
from robotaxi.sim import Scenario, run_scenario

HEAD = """
name = "m"
seed = 5
[network]
path = "helsinki"
[demand]
kind = "synthetic"
n_requests = 5000
date = "2026-11-18"
[time]
start = "07:00"
end = "08:00"
timezone = "Europe/Helsinki"
"""
AV = """
[[operators]]
name = "av"
vehicles = 20
safety_driver = true
[operators.safety]
miles_per_disengagement = MPD
"""
OTHER = """
[[operators]]
name = "other"
vehicles = 20
"""
# Four quadrants around central Helsinki (zone ids 1-4); the embedded extract lies within them.
LON = (24.90, 24.94, 24.98)
LAT = (60.14, 60.17, 60.20)


def zones_file(folder: Path) -> None:
    feats = []
    for i in range(2):
        for j in range(2):
            a, b, c, d = LON[j], LAT[i], LON[j + 1], LAT[i + 1]
            feats.append({"type": "Feature", "properties": {"LocationID": 2 * i + j + 1}, "geometry": {
                "type": "Polygon", "coordinates": [[[a, b], [c, b], [c, d], [a, d], [a, b]]]}})  # fmt: skip
    (folder / "zones.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}), "utf-8")


def write(folder: Path, text: str, name: str = "s.toml") -> Path:
    zones_file(folder)
    p = folder / name
    p.write_text(text, encoding="utf-8")
    return p


def policy(run: Path, threshold: float = 1000) -> str:
    return f'[operators.safety_policy]\nprevious_run = "{run}"\nthreshold_mpd = {threshold}\nzones = "zones.geojson"\n'


@pytest.fixture(scope="module")
def first_pass(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An operator that disengages every 2 miles everywhere (every zone it drives much in is flagged)."""
    folder = tmp_path_factory.mktemp("first")
    out = run_scenario(Scenario.from_file(write(folder, HEAD + AV.replace("MPD", "2") + OTHER)), report=False,
                       output=folder / "run")  # fmt: skip
    assert out.folder is not None
    return out.folder


def _threshold_flagging_one_zone(first_pass: Path, folder: Path) -> float:
    """Just above the smallest upper interval bound of the zones: exactly the zone most significantly worse."""
    from robotaxi.network import Router, load_network
    from robotaxi.safety.policy import SafetyPolicy, unsafe_zones

    zones_file(folder)
    lines = unsafe_zones(
        "av", SafetyPolicy(first_pass, 1e9, folder / "zones.geojson"), Router(load_network("helsinki"))
    )
    highs = sorted(z.mpd.high for z in lines.lines if z.zone >= 0)
    assert len(highs) >= 2
    assert highs[0] < highs[1]
    return (highs[0] + highs[1]) / 2


def test_flagged_zones_leave_the_area_and_their_requests_go_to_the_others(first_pass: Path, tmp_path: Path) -> None:
    threshold = _threshold_flagging_one_zone(first_pass, tmp_path)
    text = HEAD + AV.replace("MPD", "2") + policy(first_pass, threshold) + OTHER
    out = run_scenario(Scenario.from_file(write(tmp_path, text)), output=tmp_path / "run")
    assert out.folder is not None
    doc = json.loads((out.folder / "safety_policy.json").read_text(encoding="utf-8"))
    flagged = doc["av"]["flagged"]
    assert len(flagged) == 1
    lines = {z["zone"]: z for z in doc["av"]["zones"]}
    assert all(lines[z]["flagged"] and lines[z]["ci_high"] < threshold for z in flagged)
    assert all(z["zone"] in flagged for z in doc["av"]["zones"] if z["flagged"] and z["zone"] >= 0)
    res = out.result
    area = res.fleet.operators[0].area
    assert area is not None
    assert doc["av"]["nodes_taken_out"] == int((~area.mask).sum()) > 0
    # No request the robotaxis served starts or ends in a zone they left; the other operator serves there.
    served_by = res.fleet.operator[np.maximum(res.outcomes.vehicle, 0)]
    av = res.served & (served_by == 0)
    other = res.served & (served_by == 1)
    r = res.requests
    assert area.mask[r.o_node[av]].all()
    assert area.mask[r.d_node[av]].all()
    assert (~area.mask[r.o_node[other]]).sum() > 0
    # The area limits where riders get in and out, not where the vehicles drive (the router knows no no-go zones):
    # the robotaxis still cross the zone they left, but drive fewer miles there than in the first pass.
    from robotaxi.network import Router, load_network
    from robotaxi.safety.policy import SafetyPolicy, unsafe_zones

    router = Router(load_network("helsinki"))
    zones_path = tmp_path / "zones.geojson"
    before = {z.zone: z.mpd.miles for z in unsafe_zones("av", SafetyPolicy(first_pass, 1.0, zones_path), router).lines}
    after = {z.zone: z.mpd.miles for z in unsafe_zones("av", SafetyPolicy(out.folder, 1.0, zones_path), router).lines}
    assert after.get(flagged[0], 0.0) < 0.5 * before[flagged[0]]
    page = (out.folder / "report.html").read_text(encoding="utf-8")
    assert "Safety policy (av)" in page
    assert "taken out" in page


def test_a_threshold_nothing_is_significantly_below_changes_nothing(first_pass: Path, tmp_path: Path) -> None:
    text = HEAD + AV.replace("MPD", "2") + policy(first_pass, 0.001) + OTHER
    out = run_scenario(Scenario.from_file(write(tmp_path, text)), output=tmp_path / "run", report=False)
    assert out.folder is not None
    doc = json.loads((out.folder / "safety_policy.json").read_text(encoding="utf-8"))
    assert doc["av"]["flagged"] == []
    assert doc["av"]["nodes_taken_out"] == 0
    assert out.result.fleet.operators[0].area is None or out.result.fleet.operators[0].area.mask.all()


W = r"operators\[0\] 'av': safety_policy"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[operators.safety_policy]\nthreshold_mpd = 5\n", W + r"\.previous_run: missing"),
        (
            '[operators.safety_policy]\nprevious_run = "nowhere"\nthreshold_mpd = 5\n',
            W + r"\.previous_run: file not found",
        ),
        ("RUN\nthreshold_mpd = -5\n", W + r"\.threshold_mpd: must be a number of miles > 0"),
        ("RUN\nthreshold_mpd = true\n", W + r"\.threshold_mpd: must be a number of miles > 0"),
        ("RUN\nthreshold_mpd = 5\ncolour = 1\n", W + r"\.colour: unknown key"),
        ("RUN\nthreshold_mpd = 5\nzones = 3\n", W + r"\.zones: expected the path"),
        ("RUN\n", W + r"\.threshold_mpd: missing"),
        ("RUN\nthreshold_mpd = 5\n", W + r"\.zones: needed \(the scenario's \[demand\] has no zones file\)"),
    ],
)
def test_bad_policies_name_the_operator_and_key(first_pass: Path, tmp_path: Path, extra: str, message: str) -> None:
    text = (
        HEAD
        + AV.replace("MPD", "2")
        + extra.replace("RUN", f'[operators.safety_policy]\nprevious_run = "{first_pass}"')
    )
    with pytest.raises(ScenarioError, match=message):
        Scenario.from_file(write(tmp_path, text + OTHER))


def test_a_policy_that_leaves_no_node_is_refused(first_pass: Path, tmp_path: Path) -> None:
    """At 2 miles per disengagement every zone is significantly below 1,000: nothing would be left."""
    sc = Scenario.from_file(write(tmp_path, HEAD + AV.replace("MPD", "2") + policy(first_pass) + OTHER))
    with pytest.raises(ScenarioError, match=W + r": 4 zone\(s\) taken out \(1, 2, 3, 4\).*leaves no node in the area"):
        run_scenario(sc, output=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_run_without_events_or_without_the_operator_is_refused(first_pass: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ScenarioError, match=W + r"\.previous_run: .* has no safety_events\.parquet"):
        Scenario.from_file(write(tmp_path, HEAD + AV.replace("MPD", "2") + policy(empty) + OTHER))
    text = HEAD + AV.replace("MPD", "2").replace('"av"', '"newcomer"') + policy(first_pass) + OTHER
    sc = Scenario.from_file(write(tmp_path, text))
    with pytest.raises(RobotaxiError, match=r"operator 'newcomer': safety_policy\.previous_run .* no vehicle"):
        run_scenario(sc, output=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    drivers = '[[operators]]\nname = "d"\nkind = "human_driven"\n[[operators.shifts]]\nhours = "06:00-14:00"\n'
    drivers += "drivers = 3\n" + policy(first_pass)
    with pytest.raises(ScenarioError, match=r"operators\[0\] 'd': safety_policy: not for a human-driven pool"):
        Scenario.from_file(write(tmp_path, HEAD + drivers))

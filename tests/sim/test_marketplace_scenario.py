"""``[[operators]]`` and ``[marketplace]`` in scenario files: every bad input is an error naming the operator and
the key, before the run starts; a small marketplace on the embedded Helsinki network runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robotaxi.errors import ScenarioError
from robotaxi.sim import Scenario, run_scenario

REPO = Path(__file__).resolve().parents[2]

HEAD = """
name = "m"
seed = 3
[network]
path = "helsinki"
[demand]
kind = "synthetic"
n_requests = 6000
[time]
start = "07:00"
end = "08:00"
timezone = "Europe/Helsinki"
"""

# A square around central Helsinki (the embedded extract), and one far out at sea.
CENTRE = [[24.93, 60.16], [24.95, 60.16], [24.95, 60.17], [24.93, 60.17], [24.93, 60.16]]
AT_SEA = [[25.50, 59.60], [25.60, 59.60], [25.60, 59.70], [25.50, 59.70], [25.50, 59.60]]
BOWTIE = [[24.92, 60.15], [24.96, 60.18], [24.96, 60.15], [24.92, 60.18], [24.92, 60.15]]

AV = """
[[operators]]
name = "av"
vehicles = 10
area = "area.geojson"
hours = "06:00-22:00"
depot = [24.94, 60.165]
"""
DRIVERS = """
[[operators]]
name = "drivers"
kind = "human_driven"
acceptance = 0.8
response_s = [2, 10]
offer_timeout_s = 12
[[operators.shifts]]
hours = "06:00-14:00"
drivers = 15
"""


def write(tmp_path: Path, text: str, polygon: list[list[float]] = CENTRE) -> Path:
    geo = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": {
        "type": "Polygon", "coordinates": [polygon]}}]}  # fmt: skip
    (tmp_path / "area.geojson").write_text(json.dumps(geo), encoding="utf-8")
    p = tmp_path / "s.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_operators_parse(tmp_path: Path) -> None:
    sc = Scenario.from_file(write(tmp_path, HEAD + AV + DRIVERS))
    assert sc.fleet is None
    assert [o.name for o in sc.operators] == ["av", "drivers"]
    assert sc.n_vehicles == 25
    assert sc.operators[0].hours.start_s == 6 * 3600
    assert sc.operators[1].human
    assert sc.operators[1].response_s == (2, 10)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (AV.replace('hours = "06:00-22:00"', 'hours = "25:00-26:00"'), r"operators\[0\] 'av': hours: .*out of range"),
        (AV.replace("vehicles = 10", "vehicles = 0"), r"operators\[0\] 'av': vehicles: .*at least one"),
        (AV + AV, r"operators\[1\] 'av': name: 'av' is already the name of operators\[0\]"),
        (AV + "[operators.costs]\nper_km_cents = -5\n", r"operator 'av'.*per_km_cents"),
        (AV + "[operators.fares]\nbase_cents = -1\n", r"operator 'av'.*base_cents"),
        (AV.replace("capacity", "x") + "capacity = 0\n", r"operators\[0\] 'av': capacity: must be >= 1"),
        (AV + "colour = 'red'\n", r"operators\[0\] 'av': colour: unknown key"),
        (AV + "area_zones = [1]\n", r"operators\[0\] 'av': area: give either"),
        (AV.replace("depot = [24.94, 60.165]", "depot = [360, 60]"), r"operators\[0\] 'av': depot: expected \[lon"),
        (DRIVERS.replace("acceptance = 0.8", "acceptance = 1.5"), r"operators\[0\] 'drivers': acceptance"),
        (DRIVERS.replace("[2, 10]", "[10, 2]"), r"operators\[0\] 'drivers': response_s"),
        (DRIVERS.replace("drivers = 15", "drivers = 0"), r"operators\[0\] 'drivers': shifts\[0\]: drivers"),
        (
            DRIVERS.replace("offer_timeout_s = 12", 'offer_timeout_s = 12\nhours = "06:00-14:00"'),
            r"operators\[0\] 'drivers': hours: not for a human-driven pool",
        ),
        (AV + "[fleet]\nvehicles = 3\n", r"fleet: .*either one \[fleet\] table or \[\[operators\]\]"),
        (AV + DRIVERS + "[dispatch]\npolicy = 'pool'\n", r"dispatch.policy: 'pool' pools riders"),
        (AV + "[marketplace]\npolicy = 'autonomous_first'\n[dispatch]\npolicy = 'immediate'\n", r"set dispatch"),
        (AV + "[marketplace]\npolicy = 'random'\n", r"marketplace.policy: expected one of"),
        (AV + "[marketplace]\nmax_share = 0\n", r"marketplace.max_share"),
        (AV.replace('area = "area.geojson"', "area_zones = [4, 999]"), r"operators\[0\] 'av': area_zones_file"),
    ],
)
def test_bad_operators_name_the_operator_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        Scenario.from_file(write(tmp_path, HEAD + text))


def test_a_self_intersecting_area_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(
        ScenarioError, match=r"operators\[0\] 'av': area: feature 0 is not a valid polygon \(Self-inter"
    ):
        Scenario.from_file(write(tmp_path, HEAD + AV, polygon=BOWTIE))


def test_unknown_zone_ids_are_refused(tmp_path: Path) -> None:
    zones = REPO.parent / "shared/data/nyc_tlc_taxi_zones/taxi_zones.geojson"
    text = AV.replace('area = "area.geojson"', f'area_zones = [4, 999]\narea_zones_file = "{zones}"')
    with pytest.raises(ScenarioError, match=r"operators\[0\] 'av': area_zones: zone 999 is not in"):
        Scenario.from_file(write(tmp_path, HEAD + text))


def test_an_area_without_a_node_stops_the_run_before_anything_is_written(tmp_path: Path) -> None:
    sc = Scenario.from_file(write(tmp_path, HEAD + AV + DRIVERS, polygon=AT_SEA))
    out = tmp_path / "out"
    with pytest.raises(ScenarioError, match=r"operators\[0\] 'av': area: the area contains no node"):
        run_scenario(sc, output=out)
    assert not out.exists()


def test_cheapest_needs_every_operator_s_fares(tmp_path: Path) -> None:
    sc = Scenario.from_file(write(tmp_path, HEAD + AV + DRIVERS + "[marketplace]\npolicy = 'cheapest'\n"))
    with pytest.raises(ScenarioError, match="give every \\[\\[operators\\]\\] table a fares table"):
        run_scenario(sc, write=False)


def test_a_small_marketplace_runs_end_to_end(tmp_path: Path) -> None:
    fares = "[operators.fares]\nbase_cents = 200\nper_km_cents = 100\n"
    text = HEAD + AV + fares + DRIVERS + fares.replace("200", "300") + "[marketplace]\npolicy = 'cheapest'\n"
    out = run_scenario(Scenario.from_file(write(tmp_path, text)), output=tmp_path / "out")
    res = out.result
    op = res.operator
    assert set(op[op >= 0].tolist()) == {0, 1}  # both operators served
    assert res.declines is not None
    assert int(res.declines.sum()) > 0
    # Outputs: the serving operator of every request, per-operator KPIs, the report's operators section.
    import pyarrow.parquet as pq

    assert out.folder is not None
    table = pq.read_table(out.folder / "requests.parquet").to_pydict()
    served = [o == "served" for o in table["outcome"]]
    assert all((op is not None) == s for op, s in zip(table["operator"], served, strict=True))
    assert {op for op in table["operator"] if op} == {"av", "drivers"}
    assert sum(table["declines"]) == int(res.declines.sum())
    legs = pq.read_table(out.folder / "legs.parquet").to_pydict()
    assert set(legs["operator"]) == {"av", "drivers"}
    by = out.kpis.by_operator
    assert by["av"]["trips"] + by["drivers"]["trips"] == out.kpis.served
    assert sum(by["drivers"]["trips_by_hour"]) == by["drivers"]["trips"]
    assert by["drivers"]["offers"] >= by["drivers"]["offers_declined"] > 0
    assert "offers" not in by["av"]
    page = (out.folder / "report.html").read_text(encoding="utf-8")
    assert "<h2>Operators</h2>" in page
    assert "Why requests went unserved" in page

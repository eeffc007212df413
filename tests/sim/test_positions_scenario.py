"""``placement = "file"``: an operator's vehicles start where its positions file puts them (issue 11, item 16)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robotaxi.errors import FleetError, ScenarioError
from robotaxi.network import load_network
from robotaxi.sim import Scenario
from robotaxi.sim.operators import build_operators

from .test_marketplace_scenario import CENTRE, HEAD, write

FILE_AV = """
[[operators]]
name = "av"
placement = "file"
positions = "fleet.csv"
area = "area.geojson"
"""


@pytest.fixture(scope="module")
def helsinki_nodes() -> tuple[np.ndarray, np.ndarray]:
    net = load_network(None)
    inside = (net.lon > CENTRE[0][0]) & (net.lon < CENTRE[1][0]) & (net.lat > CENTRE[0][1]) & (net.lat < CENTRE[2][1])
    idx = np.flatnonzero(inside)[:5]
    return net.lon[idx], net.lat[idx]


def _fleet_csv(tmp_path: Path, lon: np.ndarray, lat: np.ndarray, extra: str = "") -> None:
    rows = "".join(f"v{i},{x},{y}{extra}\n" for i, (x, y) in enumerate(zip(lon, lat, strict=True)))
    (tmp_path / "fleet.csv").write_text("vehicle_id,lon,lat" + (",capacity" if extra else "") + "\n" + rows)


def test_vehicles_start_at_their_file_positions(tmp_path: Path, helsinki_nodes: tuple[np.ndarray, np.ndarray]) -> None:
    lon, lat = helsinki_nodes
    _fleet_csv(tmp_path, lon, lat)
    sc = Scenario.from_file(write(tmp_path, HEAD + FILE_AV))
    (spec,) = sc.operators
    assert spec.vehicles == 5  # from the file's rows
    net = load_network(None)
    (op,) = build_operators(sc.operators, net)
    assert list(op.start_nodes) == net.nearest(lon, lat)[0].tolist()


@pytest.mark.parametrize(
    ("extra_toml", "extra_csv", "message"),
    [
        ("vehicles = 7\n", "", r"operators\[0\] 'av': vehicles: 7 differs from the 5 vehicles in .*fleet.csv"),
        ("capacity = 4\n", ",6", r"operators\[0\] 'av': positions: .*line 2 gives capacity 6, the operator's"),
    ],
)
def test_file_and_table_must_agree(
    tmp_path: Path, helsinki_nodes: tuple[np.ndarray, np.ndarray], extra_toml: str, extra_csv: str, message: str
) -> None:
    lon, lat = helsinki_nodes
    _fleet_csv(tmp_path, lon, lat, extra_csv)
    with pytest.raises(ScenarioError, match=message):
        Scenario.from_file(write(tmp_path, HEAD + FILE_AV + extra_toml))


def test_bad_positions_are_named(tmp_path: Path) -> None:
    (tmp_path / "fleet.csv").write_text("lon,lat\n24.94,60.165\n24.94,abc\n")
    with pytest.raises(ScenarioError, match=r"operators\[0\] 'av': positions: .*line 3: column 'lat' is 'abc'"):
        Scenario.from_file(write(tmp_path, HEAD + FILE_AV))
    with pytest.raises(ScenarioError, match=r"positions: placement = \"file\" needs a positions file"):
        Scenario.from_file(write(tmp_path, HEAD + FILE_AV.replace('positions = "fleet.csv"\n', "")))
    with pytest.raises(ScenarioError, match=r"positions: only with placement = \"file\""):
        Scenario.from_file(write(tmp_path, HEAD + FILE_AV.replace('"file"', '"uniform"')))
    fleet = HEAD + '[fleet]\nvehicles = 3\nplacement = "file"\n'
    with pytest.raises(ScenarioError, match=r"fleet.placement: \"file\" takes a positions file in an \[\["):
        Scenario.from_file(write(tmp_path, fleet))


def test_a_vehicle_outside_the_area_is_refused(tmp_path: Path, helsinki_nodes: tuple[np.ndarray, np.ndarray]) -> None:
    lon, lat = helsinki_nodes
    net = load_network(None)
    far = (net.lon < CENTRE[0][0] - 0.002) | (net.lon > CENTRE[1][0] + 0.002)
    far |= (net.lat < CENTRE[0][1] - 0.002) | (net.lat > CENTRE[2][1] + 0.002)
    outside = np.flatnonzero(far)[0]
    _fleet_csv(tmp_path, np.r_[lon, net.lon[outside]], np.r_[lat, net.lat[outside]])
    sc = Scenario.from_file(write(tmp_path, HEAD + FILE_AV))
    with pytest.raises(FleetError, match=r"positions: .*fleet.csv line 7: the vehicle at .* starts outside the"):
        build_operators(sc.operators, net)

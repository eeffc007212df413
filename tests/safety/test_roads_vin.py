"""OSM road classes to DMV location types, speed-inferred classes, and simulated VINs."""

from __future__ import annotations

import numpy as np
import pytest

from robotaxi.network import RoadNetwork
from robotaxi.safety import LocationType, location_type, road_class_from_speed, simulated_vin
from robotaxi.safety.roads import edge_road_classes
from robotaxi.safety.vin import is_valid_check_digit, vehicle_index_of_vin


@pytest.mark.parametrize(
    ("highway", "kwargs", "expected"),
    [
        ("motorway", {"ref": "I 280"}, LocationType.INTERSTATE),
        ("motorway_link", {"ref": "US 101;I-80"}, LocationType.INTERSTATE),
        ("motorway", {"ref": "CA 1"}, LocationType.FREEWAY),
        ("motorway", {}, LocationType.FREEWAY),
        ("trunk", {}, LocationType.HIGHWAY),
        ("primary", {}, LocationType.STREET),
        ("residential", {"rural": True}, LocationType.RURAL_ROAD),
        ("track", {}, LocationType.RURAL_ROAD),
        ("service", {"service": "parking_aisle"}, LocationType.PARKING_FACILITY),
        ("service", {"service": "alley"}, LocationType.STREET),
        ("motorway~speed", {}, LocationType.FREEWAY),
    ],
)
def test_osm_to_dmv_location(highway: str, kwargs: dict[str, object], expected: LocationType) -> None:
    assert location_type(highway, **kwargs) is expected  # type: ignore[arg-type]


def test_unknown_class_is_an_error() -> None:
    with pytest.raises(ValueError, match="'footway' is not a drivable OSM highway class"):
        location_type("footway")


def test_classes_inferred_from_speed() -> None:
    assert road_class_from_speed(80) == "motorway~speed"
    assert road_class_from_speed(60) == "trunk~speed"
    assert road_class_from_speed(40) == "residential~speed"
    net = RoadNetwork.from_edges(
        name="mixed",
        node_id=[1, 2, 3],
        lon=[0.0, 0.01, 0.02],
        lat=[0.0, 0.0, 0.0],
        tail=[0, 1, 1, 2],
        head=[1, 0, 2, 1],
        length_m=[1000, 1000, 1000, 1000],
        speed_kmh=[100, 100, 40, 40],
    )
    classes = edge_road_classes(net)
    assert sorted(set(classes.tolist())) == ["motorway~speed", "residential~speed"]
    with pytest.raises(ValueError, match="one class per edge"):
        edge_road_classes(net, np.array(["primary"]))


def test_simulated_vins() -> None:
    assert is_valid_check_digit("1M8GDM9AXKP042788")  # the worked example of 49 CFR 565 check digits
    assert not is_valid_check_digit("1M8GDM9A1KP042788")
    vin = simulated_vin("acme", 42, 2019)
    assert len(vin) == 17
    assert vin.startswith("0RT")
    assert vin[9] == "K"
    assert is_valid_check_digit(vin)
    assert not set(vin) & set("IOQ")
    assert vehicle_index_of_vin(vin) == 42
    assert simulated_vin("acme", 42, 2019) == vin != simulated_vin("other", 42, 2019)
    with pytest.raises(ValueError, match="index"):
        simulated_vin("acme", -1, 2019)
    with pytest.raises(ValueError, match="not a simulated VIN"):
        vehicle_index_of_vin("1M8GDM9AXKP042788")

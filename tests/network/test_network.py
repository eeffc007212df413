"""Loading (OSMnx JSON, GraphML, OSM PBF/XML), SCC pruning, snapping, caching, and bad input."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robotaxi.errors import NetworkError, OffNetworkError
from robotaxi.network import (
    RoadNetwork,
    Router,
    grid_city,
    load_network,
    load_network_cache,
    load_pbf,
    save_network,
)
from robotaxi.network.osm import parse_maxspeed, way_direction

from ..conftest import shared_file

OSM_HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="robotaxi-tests">\n'


def _osm_xml(
    path: Path, nodes: dict[int, tuple[float, float]], ways: list[tuple[int, list[int], dict[str, str]]]
) -> Path:
    """Write a tiny OSM XML file (libosmium reads .osm like .pbf)."""
    lines = [OSM_HEADER]
    for nid, (lon, lat) in nodes.items():
        lines.append(f'  <node id="{nid}" version="1" lat="{lat}" lon="{lon}"/>\n')
    for wid, refs, tags in ways:
        lines.append(f'  <way id="{wid}" version="1">\n')
        lines.extend(f'    <nd ref="{r}"/>\n' for r in refs)
        lines.extend(f'    <tag k="{k}" v="{v}"/>\n' for k, v in tags.items())
        lines.append("  </way>\n")
    lines.append("</osm>\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


# A little town: a two-way main street 1-2-3-4 (a bend at 2 that is not an intersection), a one-way loop back
# 4-5-1, a side street 3-6 that is a dead end (pruned: two-way, so it stays), a footway 6-7 (not drivable),
# and a reversible street 7-8 (dropped).
TOWN_NODES = {
    1: (24.9400, 60.1700),
    2: (24.9410, 60.1701),
    3: (24.9420, 60.1700),
    4: (24.9430, 60.1700),
    5: (24.9415, 60.1690),
    6: (24.9420, 60.1710),
    7: (24.9425, 60.1715),
    8: (24.9430, 60.1720),
}
TOWN_WAYS = [
    (10, [1, 2, 3, 4], {"highway": "residential", "maxspeed": "30"}),
    (11, [4, 5, 1], {"highway": "tertiary", "oneway": "yes"}),
    (12, [3, 6], {"highway": "residential", "maxspeed": "20 mph"}),
    (13, [6, 7], {"highway": "footway"}),
    (14, [7, 8], {"highway": "residential", "oneway": "reversible"}),
]


def test_osm_loader_splits_at_intersections_and_handles_oneway(tmp_path: Path) -> None:
    net = load_pbf(_osm_xml(tmp_path / "town.osm", TOWN_NODES, TOWN_WAYS))
    ids = net.node_id.tolist()
    # Node 2 is a bend inside one way, node 5 too: graph nodes are 1, 3, 4, 6.
    assert sorted(ids) == [1, 3, 4, 6]
    pairs = {(ids[u], ids[v]) for u, v in zip(net.tail.tolist(), net.head.tolist(), strict=True)}
    assert pairs == {(1, 3), (3, 1), (3, 4), (4, 3), (4, 1), (3, 6), (6, 3)}
    e = net.edge_index(ids.index(3), ids.index(6))
    assert net.speed_kmh[e] == pytest.approx(20 * 1.609344, rel=1e-5)
    e13 = net.edge_index(ids.index(1), ids.index(3))
    # 1 -> 2 -> 3 follows the geometry: longer than the straight line 1 -> 3 (~111 m).
    assert 112 <= net.length_m[e13] <= 116
    assert net.travel_time_s[e13] == round(net.length_m[e13] / (30 / 3.6))


def test_way_with_a_missing_node_is_split_not_bridged(tmp_path: Path) -> None:
    # Way 1-2-3-4-5 where node 3 lies outside the (clipped) extract: the pieces 1-2 and 4-5 must stay apart.
    # Bridging the gap would make one 4-node street; split, they are two 2-node components and one is pruned.
    nodes = {k: v for k, v in TOWN_NODES.items() if k in (1, 2, 4, 5)}
    net = load_pbf(_osm_xml(tmp_path / "clipped.osm", nodes, [(20, [1, 2, 3, 4, 5], {"highway": "residential"})]))
    assert net.n_nodes == 2
    assert net.prune.components_dropped == 1
    assert sorted(net.node_id.tolist()) in ([1, 2], [4, 5])


def test_osm_without_drivable_roads_is_an_error(tmp_path: Path) -> None:
    p = _osm_xml(tmp_path / "paths.osm", {1: (24.94, 60.17), 2: (24.95, 60.17)}, [(1, [1, 2], {"highway": "footway"})])
    with pytest.raises(NetworkError, match=r"paths\.osm: no drivable roads"):
        load_pbf(p)


def test_corrupt_pbf_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "broken.osm.pbf"
    p.write_bytes(b"\x00\x00\x00\x0dthis is not a protobuf file at all" * 10)
    with pytest.raises(NetworkError, match=r"broken\.osm\.pbf"):
        load_network(p)


@pytest.mark.parametrize(
    ("value", "highway", "expected"),
    [
        ("50", "primary", 50.0),
        ("30 mph", "residential", 30 * 1.609344),
        ("FI:urban", "primary", 50.0),
        ("DE:zone30", "residential", 30.0),
        ("none", "motorway", 100.0),
        ("40;60", "secondary", 40.0),
        (None, "residential", 30.0),
        ("fast", "living_street", 10.0),
    ],
)
def test_parse_maxspeed(value: str | None, highway: str, expected: float) -> None:
    assert parse_maxspeed(value, highway) == pytest.approx(expected)


def test_way_direction_rules() -> None:
    assert way_direction({"highway": "residential"}) == 0
    assert way_direction({"highway": "residential", "oneway": "yes"}) == 1
    assert way_direction({"highway": "residential", "oneway": "-1"}) == -1
    assert way_direction({"highway": "primary", "junction": "roundabout"}) == 1
    assert way_direction({"highway": "motorway"}) == 1
    assert way_direction({"highway": "motorway", "oneway": "no"}) == 0
    assert way_direction({"highway": "residential", "oneway": "reversible"}) is None


@pytest.mark.integration
def test_helsinki_default_loads_a_real_city() -> None:
    net = load_network(None)
    assert net.name == "Helsinki"
    assert 700 <= net.n_nodes <= 900
    lo_lon, lo_lat, hi_lon, hi_lat = net.bbox
    assert 24.9 < lo_lon < hi_lon < 25.0
    assert 60.1 < lo_lat < hi_lat < 60.2
    assert net.prune.nodes_dropped > 0  # the extract's clipped edges leave fragments
    assert net.crs == "EPSG:32635"


@pytest.mark.integration
def test_manhattan_and_denver_json() -> None:
    man = load_network(shared_file("data/nyc_manhattan_hive/manhattan_network.json"))
    assert man.n_nodes == 4197
    assert man.prune.edges_before == 7534
    assert man.prune.parallel_edges_merged == 5  # OSMnx multigraph: keep the fastest of parallel links
    assert man.n_edges == 7529
    den = load_network(shared_file("data/denver_hive/downtown_denver_network.json"))
    assert den.n_nodes == 308
    assert den.n_edges == 541


@pytest.mark.integration
def test_graphml_equals_json(tmp_path: Path) -> None:
    src = shared_file("data/denver_hive/downtown_denver_network.json")
    den = load_network(src)
    g = nx.MultiDiGraph()
    for i in range(den.n_nodes):
        g.add_node(int(den.node_id[i]), x=float(den.lon[i]), y=float(den.lat[i]))
    for u, v, length, tt, sp in zip(
        den.tail.tolist(),
        den.head.tolist(),
        den.length_m.tolist(),
        den.travel_time_s.tolist(),
        den.speed_kmh.tolist(),
        strict=True,
    ):
        g.add_edge(int(den.node_id[u]), int(den.node_id[v]), length=length, travel_time=tt, speed_kph=sp)
    path = tmp_path / "denver.graphml"
    nx.write_graphml(g, path)
    loaded = load_network(path)
    np.testing.assert_array_equal(loaded.node_id, den.node_id)
    np.testing.assert_array_equal(loaded.head, den.head)
    np.testing.assert_array_equal(loaded.travel_time_s, den.travel_time_s)


def test_scc_pruning_drops_unreachable_parts() -> None:
    # 0 <-> 1 <-> 2 strongly connected, 2 -> 3 one-way dead end, 4 isolated with a self-loop.
    net = RoadNetwork.from_edges(
        name="t",
        node_id=[10, 11, 12, 13, 14],
        lon=[0.0, 0.001, 0.002, 0.003, 0.004],
        lat=[0.0] * 5,
        tail=[0, 1, 1, 2, 2, 4],
        head=[1, 0, 2, 1, 3, 4],
        length_m=[100] * 6,
        speed_kmh=[36] * 6,
    )
    assert net.node_id.tolist() == [10, 11, 12]
    assert net.prune.nodes_dropped == 2
    assert net.prune.self_loops_dropped == 1
    assert net.prune.edges_dropped == 1
    assert net.prune.components_dropped == 2


def test_graph_with_no_edges_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "empty.json"
    p.write_text('{"directed": true, "nodes": [{"id": 1, "x": 0.0, "y": 0.0}], "links": []}')
    with pytest.raises(NetworkError, match=r"empty\.json: the graph has no edges"):
        load_network(p)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.json", "{not json", "not valid JSON"),
        ("list.json", "[1, 2, 3]", "not a node-link graph"),
        ("noxy.json", '{"nodes": [{"id": 1}], "links": []}', "no numeric x/y"),
        ("bad.graphml", "<graphml><oops", "not a readable GraphML"),
        ("bad.npz", "not a zip", "not a robotaxi network cache"),
    ],
)
def test_malformed_files(tmp_path: Path, name: str, content: str, message: str) -> None:
    p = tmp_path / name
    p.write_text(content)
    with pytest.raises(NetworkError, match=message):
        load_network(p)


def test_missing_and_unknown_files(tmp_path: Path) -> None:
    with pytest.raises(NetworkError, match="not found"):
        load_network(tmp_path / "nowhere.osm.pbf")
    (tmp_path / "roads.txt").write_text("x")
    with pytest.raises(NetworkError, match=r"roads\.txt: unknown network format"):
        load_network(tmp_path / "roads.txt")


def test_snap_exact_nodes_and_nearby_points() -> None:
    net = grid_city(5, 5)
    np.testing.assert_array_equal(net.snap(net.lon, net.lat), np.arange(25))
    # 30 m east of node 12 still snaps to it; a point between nodes snaps to the nearer one.
    x, y = net.x[12] + 30.0, net.y[12]
    from robotaxi.network.projection import LocalProjection

    lon, lat = LocalProjection(net.crs).inverse(np.array([x]), np.array([y]))
    assert net.snap(lon, lat).tolist() == [12]


def test_points_where_the_projection_is_singular_are_off_the_network() -> None:
    """Regression (found by schemathesis through the live API): lon -80 / 100, lat 0 are valid degrees 90 degrees from
    a grid at lon 10, where its transverse Mercator projects to infinity; they are off the network, not a crash."""
    net = grid_city(3, 3)
    idx, dist = net.nearest([-80.0, 100.0, 10.0], [0.0, 1.0, 50.0])
    assert np.isinf(dist[:2]).all()
    assert dist[2] < 1.0
    assert idx[2] == 0
    with pytest.raises(OffNetworkError):
        net.snap([-80.0], [0.0])


def test_snap_off_map_is_an_error() -> None:
    net = grid_city(3, 3)
    with pytest.raises(OffNetworkError, match=r"1 of 2 points are off.*point 1") as info:
        net.snap([net.lon[0], 11.0], [net.lat[0], 50.0], max_distance_m=500)
    assert "limit 500 m" in str(info.value)
    with pytest.raises(OffNetworkError):
        net.snap([np.nan], [50.0])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(-300, 300), st.floats(-300, 300)), min_size=1, max_size=20))
def test_snap_returns_the_nearest_node(offsets: list[tuple[float, float]]) -> None:
    net = grid_city(4, 4)
    from robotaxi.network.projection import LocalProjection

    base_x, base_y = net.x[5], net.y[5]
    xs = np.array([base_x + dx for dx, _ in offsets])
    ys = np.array([base_y + dy for _, dy in offsets])
    lon, lat = LocalProjection(net.crs).inverse(xs, ys)
    idx, dist = net.nearest(lon, lat)
    brute = np.hypot(net.x[None, :] - xs[:, None], net.y[None, :] - ys[:, None])
    np.testing.assert_allclose(dist, brute.min(axis=1), atol=1e-3)
    np.testing.assert_allclose(brute[np.arange(len(offsets)), idx], brute.min(axis=1), atol=1e-3)


@pytest.mark.integration
def test_cache_round_trip_is_identical(tmp_path: Path) -> None:
    net = load_network(None)
    p = save_network(net, tmp_path / "helsinki.npz")
    back = load_network_cache(p)
    for name in ("node_id", "lon", "lat", "x", "y", "indptr", "head", "length_m", "speed_kmh", "travel_time_s"):
        a, b = getattr(net, name), getattr(back, name)
        assert a.dtype == b.dtype, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert back.summary() == net.summary()
    assert Router(back).times(0, 100) == Router(net).times(0, 100)


@pytest.mark.integration
def test_transparent_cache_dir(tmp_path: Path) -> None:
    src = shared_file("data/denver_hive/downtown_denver_network.json")
    first = load_network(src, cache_dir=tmp_path)
    cached = list(tmp_path.glob("*.npz"))
    assert len(cached) == 1
    second = load_network(src, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.head, second.head)
    assert second.summary() == first.summary()

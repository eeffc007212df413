"""Routing equals networkx Dijkstra on the real networks; invariants hold (property tests)."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robotaxi.errors import NetworkError
from robotaxi.network import RoadNetwork, Router, SpeedProfile, grid_city, load_network

from ..conftest import shared_file


@pytest.fixture(scope="module")
def manhattan() -> RoadNetwork:
    return load_network(shared_file("data/nyc_manhattan_hive/manhattan_network.json"))


@pytest.fixture(scope="module")
def helsinki() -> RoadNetwork:
    return load_network(None)


@pytest.fixture(scope="module")
def manhattan_router(manhattan: RoadNetwork) -> Router:
    return Router(manhattan)


@pytest.fixture(scope="module")
def helsinki_router(helsinki: RoadNetwork) -> Router:
    return Router(helsinki, workers=1)


def _nx_graph(net: RoadNetwork) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(range(net.n_nodes))
    for u, v, t, length in zip(
        net.tail.tolist(), net.head.tolist(), net.travel_time_s.tolist(), net.length_m.tolist(), strict=True
    ):
        g.add_edge(u, v, time=t, length=length)
    return g


def _check_against_networkx(net: RoadNetwork, router: Router, n_pairs: int, seed: int) -> None:
    g = _nx_graph(net)
    rng = np.random.default_rng(seed)
    origins = rng.integers(0, net.n_nodes, n_pairs)
    dests = rng.integers(0, net.n_nodes, n_pairs)
    times = router.times(origins, dests)
    dists = router.distances(origins, dests)
    for o, d, t, dist in zip(origins.tolist(), dests.tolist(), times.tolist(), dists.tolist(), strict=True):
        expected = nx.dijkstra_path_length(g, o, d, weight="time")
        assert t == expected, (o, d)
        path = router.path(o, d)
        assert path[0] == o
        assert path[-1] == d
        edges = [g.edges[u, v] for u, v in zip(path[:-1].tolist(), path[1:].tolist(), strict=True)]
        assert sum(e["time"] for e in edges) == t
        assert sum(e["length"] for e in edges) == dist


@pytest.mark.integration
def test_manhattan_matches_networkx(manhattan: RoadNetwork, manhattan_router: Router) -> None:
    assert manhattan.n_nodes == 4197
    _check_against_networkx(manhattan, manhattan_router, 300, seed=1)


@pytest.mark.integration
def test_helsinki_matches_networkx(helsinki: RoadNetwork, helsinki_router: Router) -> None:
    _check_against_networkx(helsinki, helsinki_router, 300, seed=2)


@pytest.mark.integration
def test_on_demand_rows_equal_full_table(helsinki: RoadNetwork, helsinki_router: Router) -> None:
    lazy = Router(helsinki, table_max_nodes=0, cache_rows=8)
    assert not lazy.has_table
    rng = np.random.default_rng(3)
    o = rng.integers(0, helsinki.n_nodes, 2000)
    d = rng.integers(0, helsinki.n_nodes, 2000)
    np.testing.assert_array_equal(lazy.times(o, d), helsinki_router.times(o, d))
    np.testing.assert_array_equal(lazy.distances(o, d), helsinki_router.distances(o, d))
    np.testing.assert_array_equal(lazy.path(int(o[0]), int(d[0])), helsinki_router.path(int(o[0]), int(d[0])))
    assert len(lazy._rows) <= 8


@pytest.mark.integration
def test_parallel_table_equals_serial(manhattan: RoadNetwork, manhattan_router: Router) -> None:
    serial = Router(manhattan, workers=1)
    rng = np.random.default_rng(4)
    o = rng.integers(0, manhattan.n_nodes, 50_000)
    d = rng.integers(0, manhattan.n_nodes, 50_000)
    np.testing.assert_array_equal(serial.times(o, d), manhattan_router.times(o, d))
    np.testing.assert_array_equal(serial.distances(o, d), manhattan_router.distances(o, d))
    np.testing.assert_array_equal(serial.path(10, 4000), manhattan_router.path(10, 4000))


@pytest.mark.integration
@settings(max_examples=200, deadline=None)
@given(a=st.integers(0, 4196), b=st.integers(0, 4196), c=st.integers(0, 4196))
def test_manhattan_metric_properties(manhattan_router: Router, a: int, b: int, c: int) -> None:
    t = manhattan_router.times
    assert int(t(a, a)) == 0
    assert int(manhattan_router.distances(a, a)) == 0
    assert int(t(a, c)) <= int(t(a, b)) + int(t(b, c))
    if a != b:
        assert int(t(a, b)) > 0


@pytest.mark.integration
def test_every_node_reachable_both_ways(helsinki: RoadNetwork, helsinki_router: Router) -> None:
    # The full table exists only if every pair is reachable (the router raises otherwise).
    n = helsinki.n_nodes
    m = helsinki_router.many_to_many(np.arange(n), np.arange(n))
    assert m.shape == (n, n)
    assert np.all(np.diag(m) == 0)
    assert np.all(m[~np.eye(n, dtype=bool)] > 0)


def test_many_to_many_shape_and_values() -> None:
    net = grid_city(4, 5)
    r = Router(net)
    m = r.many_to_many([0, 19], [0, 4, 19])
    np.testing.assert_array_equal(m, [[0, 80, 140], [140, 60, 0]])
    np.testing.assert_array_equal(r.one_to_many(0, [1, 5, 6]), [20, 20, 40])


def test_speed_profile_scales_times_at_departure() -> None:
    net = grid_city(3, 3)
    factors = [1.0] * 24
    factors[8] = 1.5  # 08:00-09:00 rush hour
    r = Router(net, profile=SpeedProfile(tuple(factors)))
    assert int(r.times(0, 8)) == 80  # no departure time: free flow
    assert int(r.times(0, 8, depart_s=7 * 3600 + 59 * 60)) == 80
    assert int(r.times(0, 8, depart_s=8 * 3600)) == 120
    assert int(r.times(0, 8, depart_s=8 * 3600 + 86_400)) == 120  # the next day too
    np.testing.assert_array_equal(r.times([0, 0], [8, 8], depart_s=[3600, 8 * 3600 + 5]), [80, 120])
    # Paths do not change with the factor; distances are unaffected.
    assert int(r.distances(0, 8)) == 800


def test_speed_profile_validation() -> None:
    with pytest.raises(ValueError, match="24"):
        SpeedProfile((1.0, 2.0))
    with pytest.raises(ValueError, match="plausible"):
        SpeedProfile(tuple([1.0] * 23 + [0.0]))
    assert SpeedProfile(tuple([1.0] * 96)).slot_seconds == 900


def test_path_edges_are_the_edges_between_consecutive_nodes() -> None:
    net = grid_city(6, 5)
    r = Router(net)
    rng = np.random.default_rng(3)
    for o, d in rng.integers(0, net.n_nodes, size=(40, 2)).tolist():
        path = r.path(o, d)
        edges = r.path_edges(path)
        assert edges.tolist() == [net.edge_index(int(u), int(v)) for u, v in itertools.pairwise(path)]
        assert int(net.travel_time_s[edges].sum()) == int(r.times(o, d))
    assert r.path_edges([7]).size == 0
    with pytest.raises(NetworkError, match="no edge from node 0 to node 7"):
        r.path_edges([0, 1, 0, 7])


def test_bad_node_indices_are_errors() -> None:
    r = Router(grid_city(2, 2))
    with pytest.raises(NetworkError, match="node index 4"):
        r.times(0, 4)
    with pytest.raises(NetworkError, match="node index -1"):
        r.path(-1, 0)
    with pytest.raises(NetworkError, match="integer"):
        r.times(np.array([0.5]), 1)

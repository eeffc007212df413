"""Property: the vectorised path walk gives routes as fast and as short as the router's, along real edges."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from robotaxi.dashboard.replay_data import path_slots
from robotaxi.network import RoadNetwork, Router, load_network

HELSINKI = load_network(None)
ROUTER = Router(HELSINKI, workers=1)


def _nodes(net: RoadNetwork, origin: int, slots: np.ndarray) -> list[int]:
    nodes = [origin]
    for s in slots.tolist():
        nodes.append(int(net.head[net.indptr[nodes[-1]] + s]))
    return nodes


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, HELSINKI.n_nodes - 1), st.integers(0, HELSINKI.n_nodes - 1)), max_size=30))
def test_walked_paths_match_the_router(pairs: list[tuple[int, int]]) -> None:
    o = np.array([p[0] for p in pairs], dtype=np.int32)
    d = np.array([p[1] for p in pairs], dtype=np.int32)
    lengths, slots = path_slots(HELSINKI, ROUTER, o, d)
    assert lengths.size == len(pairs)
    assert slots.size == int(lengths.sum(dtype=np.int64))
    offset = 0
    for (a, b), n in zip(pairs, lengths.tolist(), strict=True):
        nodes = _nodes(HELSINKI, a, slots[offset : offset + n])
        offset += n
        assert nodes[0] == a
        assert nodes[-1] == b
        assert (a == b) == (n == 0)
        edges = ROUTER.path_edges(np.asarray(nodes))
        assert int(HELSINKI.travel_time_s[edges].sum()) == int(ROUTER.times(a, b))
        assert int(HELSINKI.length_m[edges].sum()) == int(ROUTER.distances(a, b))

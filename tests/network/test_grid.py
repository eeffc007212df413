"""The grid city: hand-checkable sizes and travel times."""

from __future__ import annotations

import numpy as np

from robotaxi.network import RoadNetwork, Router


def test_grid_sizes_and_block_times(grid3: RoadNetwork) -> None:
    assert grid3.n_nodes == 9
    assert grid3.n_edges == 24  # 12 two-way blocks
    assert set(grid3.travel_time_s.tolist()) == {20}
    assert set(grid3.length_m.tolist()) == {200}
    router = Router(grid3)
    # Corner to corner is four blocks.
    assert int(router.times(0, 8)) == 80
    assert int(router.distances(0, 8)) == 800
    assert router.path(0, 8).size == 5
    np.testing.assert_array_equal(router.times(np.arange(9), np.arange(9)), np.zeros(9))

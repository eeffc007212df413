"""Small fixtures for simulator tests."""

from __future__ import annotations

import numpy as np

from robotaxi.demand import Requests
from robotaxi.network import RoadNetwork


def requests_on(net: RoadNetwork, time_s: list[int], o: list[int], d: list[int], **kw: object) -> Requests:
    """Requests between node indices of ``net`` (coordinates taken from the nodes)."""
    o_a, d_a = np.asarray(o), np.asarray(d)
    return Requests.build(
        request_id=np.arange(len(time_s)) + 100,
        time_s=time_s,
        o_lon=net.lon[o_a],
        o_lat=net.lat[o_a],
        d_lon=net.lon[d_a],
        d_lat=net.lat[d_a],
        o_node=o_a,
        d_node=d_a,
        network=net.name,
        **kw,  # type: ignore[arg-type]
    )


def random_requests(net: RoadNetwork, n: int, horizon_s: int, seed: int) -> Requests:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, horizon_s, n))
    o = rng.integers(0, net.n_nodes, n)
    d = (o + rng.integers(1, net.n_nodes, n)) % net.n_nodes
    return requests_on(net, t.tolist(), o.tolist(), d.tolist())

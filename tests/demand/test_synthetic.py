"""Synthetic gravity demand: counts, profile, distance decay, OSM weights, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from robotaxi.demand import MANHATTAN_HOURLY_PROFILE, SyntheticSource, synthetic_demand
from robotaxi.demand.synthetic import osm_node_weights
from robotaxi.errors import DemandError
from robotaxi.network import RoadNetwork, grid_city, helsinki_pbf, load_network


@pytest.fixture(scope="module")
def helsinki() -> RoadNetwork:
    return load_network(None)


def test_exact_count_sorted_and_valid(grid4: RoadNetwork) -> None:
    r = synthetic_demand(grid4, 500, seed=1)
    assert len(r) == 500
    assert np.all(np.diff(r.time_s) >= 0)
    assert r.time_s.min() >= 0
    assert r.time_s.max() < 86400
    assert np.all(r.o_node != r.d_node)
    assert np.array_equal(r.o_lon, grid4.lon[r.o_node])


def test_rate_gives_poisson_total(grid4: RoadNetwork) -> None:
    totals = [len(synthetic_demand(grid4, rate_per_hour=50, seed=s)) for s in range(10)]
    # Poisson(1200): the mean of 10 has sd 11.
    assert abs(np.mean(totals) - 1200) < 55


def test_profile_follows_manhattan() -> None:
    net = grid_city(6, 6)
    r = synthetic_demand(net, 60_000, seed=2)
    share = r.per_hour() / len(r)
    prof = np.asarray(MANHATTAN_HOURLY_PROFILE) / sum(MANHATTAN_HOURLY_PROFILE)
    assert np.all(np.abs(share - prof) < 0.004)


def test_distance_decay_shortens_trips() -> None:
    net = grid_city(12, 12)

    def mean_len(decay: float) -> float:
        r = synthetic_demand(net, 4000, seed=3, decay_m=decay)
        return float(np.mean(np.hypot(net.x[r.o_node] - net.x[r.d_node], net.y[r.o_node] - net.y[r.d_node])))

    assert mean_len(300.0) < 0.7 * mean_len(20_000.0)


def test_min_trip_respected(grid4: RoadNetwork) -> None:
    r = SyntheticSource(n_requests=2000, min_trip_m=450).load(grid4, np.random.default_rng(0)).requests
    d = np.hypot(grid4.x[r.o_node] - grid4.x[r.d_node], grid4.y[r.o_node] - grid4.y[r.d_node])
    assert d.min() >= 450


def test_determinism(grid4: RoadNetwork) -> None:
    a = synthetic_demand(grid4, 300, seed=9).to_arrow()
    assert a.equals(synthetic_demand(grid4, 300, seed=9).to_arrow())
    assert not a.equals(synthetic_demand(grid4, 300, seed=10).to_arrow())


def test_osm_weights_from_helsinki_pbf(helsinki: RoadNetwork) -> None:
    w = osm_node_weights(helsinki, helsinki_pbf())
    assert w.shape == (helsinki.n_nodes,)
    assert w.min() >= 1
    assert w.sum() > helsinki.n_nodes + 500  # the extract has ~2,000 buildings, amenities and shops
    src = SyntheticSource(n_requests=10)
    assert np.array_equal(src.node_weights(helsinki), w)  # "auto" picks the network's own PBF
    assert np.all(SyntheticSource(n_requests=10, weights="uniform").node_weights(helsinki) == 1)


def test_osm_weights_shape_origins(helsinki: RoadNetwork) -> None:
    r = synthetic_demand(helsinki, 30_000, seed=4)
    w = osm_node_weights(helsinki, helsinki_pbf())
    heavy = w >= np.quantile(w, 0.9)
    share = np.isin(r.o_node, np.flatnonzero(heavy)).mean()
    assert share > 1.5 * heavy.mean()


def test_osm_required_but_unknown(grid4: RoadNetwork) -> None:
    with pytest.raises(DemandError, match="PBF"):
        SyntheticSource(n_requests=1, weights="osm").load(grid4, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({}, "n_requests"),
        ({"n_requests": 1, "rate_per_hour": 1.0}, "n_requests"),
        ({"n_requests": -1}, "n_requests"),
        ({"rate_per_hour": -1.0}, "rate_per_hour"),
        ({"n_requests": 1, "weights": "magic"}, "weights"),
        ({"n_requests": 1, "decay_m": 0.0}, "decay_m"),
        ({"n_requests": 1, "hourly_profile": (1.0,) * 23}, "hourly_profile"),
    ],
)
def test_invalid_parameters(kw: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SyntheticSource(**kw)  # type: ignore[arg-type]


@pytest.mark.integration
def test_profile_is_the_one_the_counts_file_gives() -> None:
    """The cited derivation of MANHATTAN_HOURLY_PROFILE (docs/demand.md) reproduces it."""
    import pyarrow.csv as pacsv

    from tests.conftest import shared_file

    from .conftest import TRIPS_CSV

    t = pacsv.read_csv(
        shared_file(TRIPS_CSV), convert_options=pacsv.ConvertOptions(include_columns=["t_15min", "n_trips"])
    )
    h = np.bincount(t.column("t_15min").to_numpy() // 4, weights=t.column("n_trips").to_numpy(), minlength=24)
    assert int(h.sum()) == 110_932_862
    assert np.allclose(h / h.sum(), MANHATTAN_HOURLY_PROFILE, atol=1e-5)

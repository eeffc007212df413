"""Fitting road-class factors and a per-leg overhead to trip durations (``robotaxi.network.tripfit``).

The synthetic city: an 8x8 grid of 200 m blocks at 36 km/h (20 s a block) whose row 3 and column 4 are an arterial
at 72 km/h (10 s a block, a major road), cut into sixteen zones of 2x2 nodes. Trips between random zones at
random hours are driven between random nodes of their zones (as the demand sampler places them) and take exactly
``f_local[h] * L + f_major[h] * M + overhead`` seconds under a known profile, times lognormal noise, with a few
outliers (meter left running); the fit sees only the zones, the hours and the durations.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from robotaxi.demand.observed import ObservedTrips, trip_table
from robotaxi.demand.zones import ZoneNodes, Zones
from robotaxi.errors import NetworkError
from robotaxi.network import RoadNetwork, Router, SpeedProfile
from robotaxi.network.tripfit import (
    TripTable,
    evaluate,
    fit_profile,
    month_split,
    report_text,
    simulate,
    weighted_median,
)

ROWS = COLS = 8
BLOCK_M = 200.0
TRUE_LOCAL = tuple(1.2 + 1.6 * math.sin(math.pi * h / 23) ** 2 for h in range(24))  # 1.2 at night, 2.8 midday
TRUE_MAJOR = tuple(1.0 + 0.5 * math.sin(math.pi * h / 23) for h in range(24))  # 1.0 .. 1.5
TRUE_OVERHEAD = 60.0


def arterial_grid() -> RoadNetwork:
    """The 8x8 grid with a 72 km/h arterial on row 3 and column 4 (see the module notes)."""
    lon0, lat0 = 10.0, 50.0
    r, c = np.divmod(np.arange(ROWS * COLS), COLS)
    lat = lat0 + r * BLOCK_M / 111_320.0
    lon = lon0 + c * BLOCK_M / (111_320.0 * math.cos(math.radians(lat0)))
    idx = np.arange(ROWS * COLS).reshape(ROWS, COLS)
    east = np.column_stack((idx[:, :-1].ravel(), idx[:, 1:].ravel()))
    north = np.column_stack((idx[:-1, :].ravel(), idx[1:, :].ravel()))
    one_way = np.vstack((east, north))
    both = np.vstack((one_way, one_way[:, ::-1]))
    rt, ct = np.divmod(both[:, 0], COLS)
    rh, ch = np.divmod(both[:, 1], COLS)
    arterial = ((rt == 3) & (rh == 3)) | ((ct == 4) & (ch == 4))
    return RoadNetwork.from_edges(
        name="arterial grid",
        node_id=np.arange(ROWS * COLS),
        lon=lon,
        lat=lat,
        tail=both[:, 0],
        head=both[:, 1],
        length_m=np.full(both.shape[0], BLOCK_M),
        speed_kmh=np.where(arterial, 72.0, 36.0),
    )


def block_zones(net: RoadNetwork, path: Path) -> Path:
    """Sixteen zones of 2x2 nodes, numbered 1..16 row by row from the south-west."""
    pad = 0.001
    xs = [net.lon[0] - pad, *((net.lon[c] + net.lon[c + 1]) / 2 for c in (1, 3, 5)), net.lon[COLS - 1] + pad]
    ys = [net.lat[0] - pad, *((net.lat[r * COLS] + net.lat[(r + 1) * COLS]) / 2 for r in (1, 3, 5))]
    ys.append(net.lat[(ROWS - 1) * COLS] + pad)
    feats = []
    for i in range(4):
        for j in range(4):
            a, b, c, d = xs[j], ys[i], xs[j + 1], ys[i + 1]
            feats.append(
                {
                    "type": "Feature",
                    "properties": {"LocationID": 4 * i + j + 1},
                    "geometry": {"type": "Polygon", "coordinates": [[[a, b], [c, b], [c, d], [a, d], [a, b]]]},
                }
            )
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def class_router(net: RoadNetwork) -> Router:
    return Router(net, profile=SpeedProfile((1.0,), major_factors=(1.0,)))


def synthetic_trips(
    router: Router,
    zones: Path,
    n: int,
    *,
    seed: int,
    noise: float = 0.05,
    outliers: float = 0.03,
    zone_g: dict[int, float] | None = None,
) -> ObservedTrips:
    """Trips driven under the true profile between sampler-placed nodes (see the module notes); with ``zone_g``
    a trip from zone a to zone b drives ``sqrt(g_a * g_b)`` times as long (zones not listed: 1)."""
    rng = np.random.default_rng(seed)
    zn = ZoneNodes.build(Zones.from_file(zones), router.network)
    oz = rng.integers(1, 17, n)
    dz = rng.integers(1, 17, n)
    o, d, bad = zn.sample_pairs(oz, dz, rng)
    assert not bad.any()
    tod = rng.integers(0, 86_400, n)
    truth = SpeedProfile(TRUE_LOCAL, major_factors=TRUE_MAJOR, overhead_s=TRUE_OVERHEAD)
    h = tod // 3600
    free = router.times(o, d).astype(np.float64)
    major = router.major_times(o, d).astype(np.float64)
    fl, fm = np.asarray(truth.factors)[h], np.asarray(TRUE_MAJOR)[h]
    g = np.ones(17)
    for z, v in (zone_g or {}).items():
        g[z] = v
    drive = (fl * (free - major) + fm * major) * np.sqrt(g[oz] * g[dz])
    duration = (drive + TRUE_OVERHEAD) * np.exp(rng.normal(0.0, noise, n))
    wild = rng.random(n) < outliers
    duration[wild] *= rng.uniform(2.5, 4.0, int(wild.sum()))
    months = rng.integers(1, 13, n)
    dates = np.array([np.datetime64(f"2018-{m:02d}-10") for m in months.tolist()])
    return ObservedTrips(
        tod_s=tod.astype(np.int64),
        date=dates,
        duration_s=duration,
        meter_m=router.distances(o, d).astype(np.float64),
        o_zone=oz.astype(np.int64),
        d_zone=dz.astype(np.int64),
    )


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> tuple[Router, Path]:
    net = arterial_grid()
    zones = block_zones(net, tmp_path_factory.mktemp("tripfit") / "zones.geojson")
    return class_router(net), zones


@pytest.fixture(scope="module")
def table(city: tuple[Router, Path]) -> TripTable:
    router, zones = city
    return trip_table(router, synthetic_trips(router, zones, 12_000, seed=3), zones, draws=4, seed=4)


def test_the_arterial_is_the_major_road_class(city: tuple[Router, Path]) -> None:
    router, _ = city
    net = router.network
    assert int(net.major_edges(45.0).sum()) == 2 * (2 * (COLS - 1))  # row 3 and column 4, both directions
    # Along row 3 from node 24 to node 31: 7 arterial blocks of 10 s, all on the major road.
    assert int(router.times(24, 31)) == 70
    assert int(router.major_times(24, 31)) == 70
    # Node 0 -> node 7 along row 0: 7 local blocks (140 s) beat the detour over the arterial (60 + 70 + 60 s).
    assert int(router.times(0, 7)) == 140
    assert int(router.major_times(0, 7)) == 0
    # Node 0 -> node 31 (row 3, column 7): 3 local blocks north, then 7 arterial blocks east: 60 + 70 s.
    assert int(router.times(0, 31)) == 130
    assert int(router.major_times(0, 31)) == 70


@pytest.mark.slow
def test_fit_recovers_known_factors_and_overhead(table: TripTable) -> None:
    fit = fit_profile(table)
    p = fit.profile
    assert p.major_factors is not None
    assert p.overhead_s == pytest.approx(TRUE_OVERHEAD, abs=5.0)
    # The robust regression (step 1), about 500 trips an hour with 5 % noise, 3 % outliers and random placement.
    local_err = np.abs(np.asarray(fit.robust_local) / np.asarray(TRUE_LOCAL) - 1)
    major_err = np.abs(np.asarray(fit.robust_major) / np.asarray(TRUE_MAJOR) - 1)
    assert float(np.median(local_err)) < 0.04
    assert float(local_err.max()) < 0.08
    assert float(np.median(major_err)) < 0.07
    assert float(major_err.max()) < 0.15
    # Median matching (step 2) moves both classes of an hour by one multiplier, by little when the model is right
    # (the median of ~500 skewed durations is itself uncertain by a few per cent).
    assert max(abs(s - 1) for s in fit.hour_scale) < 0.1
    final_err = np.abs(np.asarray(p.factors) / np.asarray(TRUE_LOCAL) - 1)
    assert float(np.median(final_err)) < 0.05
    assert fit.filled_hours == ()


@pytest.mark.slow
def test_robust_loss_resists_the_outliers(city: tuple[Router, Path]) -> None:
    router, zones = city
    dirty = trip_table(router, synthetic_trips(router, zones, 12_000, seed=3, outliers=0.12), zones, draws=1, seed=4)
    robust = fit_profile(dirty, loss="soft_l1").robust_local
    plain = fit_profile(dirty, loss="linear").robust_local
    err_robust = float(np.median(np.abs(np.asarray(robust) / np.asarray(TRUE_LOCAL) - 1)))
    err_plain = float(np.median(np.abs(np.asarray(plain) / np.asarray(TRUE_LOCAL) - 1)))
    # Before median matching: 12 % of trips 2.5-4 times too long pull least squares up, soft-L1 much less.
    assert err_robust < 0.07
    assert err_plain > 2 * err_robust


@pytest.mark.slow
def test_out_of_sample_error_is_small_when_the_model_is_right(table: TripTable) -> None:
    fit_mask, test_mask = month_split(table.month, [3, 6, 9, 12])
    fit = fit_profile(table, fit_mask)
    held = evaluate(fit.profile, table, test_mask, name="held out")
    assert held.trips == int(test_mask.sum())
    # About 165 held-out trips an hour: their medians are uncertain by ~6 %, so the worst of 24 hours is looser.
    assert float(np.median([abs(r.signed_error) for r in held.by_hour])) < 0.05
    assert held.worst_hour < 0.15
    assert abs(held.overall.signed_error) < 0.03
    assert held.route_ratio == pytest.approx(1.0)  # the synthetic meter reads the route itself
    text = report_text([held])
    assert "== held out" in text
    assert "by pickup hour" in text
    assert "by meter distance" in text


@pytest.mark.slow
def test_hours_without_enough_trips_copy_the_nearest_hour(city: tuple[Router, Path]) -> None:
    router, zones = city
    obs = synthetic_trips(router, zones, 3_000, seed=5)
    keep = (obs.tod_s // 3600) != 4
    sparse = ObservedTrips(
        tod_s=obs.tod_s[keep],
        date=obs.date[keep],
        duration_s=obs.duration_s[keep],
        meter_m=obs.meter_m[keep],
        o_zone=obs.o_zone[keep],
        d_zone=obs.d_zone[keep],
    )
    fit = fit_profile(trip_table(router, sparse, zones, draws=2, seed=1))
    assert fit.filled_hours == (4,)
    assert fit.profile.factors[4] in (fit.profile.factors[3], fit.profile.factors[5])


def test_month_split() -> None:
    months = np.array([1, 2, 3, 3, 4, 12])
    fit, test = month_split(months, [3, 12])
    assert test.tolist() == [False, False, True, True, False, True]
    assert np.array_equal(fit, ~test)
    with pytest.raises(NetworkError, match="holdout month 5 has no trip"):
        month_split(months, [5])
    with pytest.raises(NetworkError, match=r"must be 1\.\.12, got 13"):
        month_split(months, [13])
    with pytest.raises(NetworkError, match="nothing is left to fit on"):
        month_split(months, [1, 2, 3, 4, 12])


def test_evaluate_by_hand() -> None:
    # Four trips of one zone pair at 08:xx, one draw each: simulated = 1.1 x observed exactly.
    n = 24
    obs = np.full(n, 600.0)
    tab = TripTable(
        tod_s=np.full(n, 8 * 3600 + 60, dtype=np.int64),
        duration_s=obs,
        meter_m=np.full(n, 1500.0),
        month=np.ones(n, dtype=np.int64),
        pair=np.zeros(n, dtype=np.int64),
        cell_pair=np.full(n, 10_002, dtype=np.int64),
        pair_local_s=np.array([300.0]),
        pair_major_s=np.array([0.0]),
        draw_local_s=np.full((1, n), 300.0),
        draw_major_s=np.zeros((1, n)),
        draw_route_m=np.full((1, n), 1650.0),
    )
    prof = SpeedProfile((2.0,), overhead_s=60.0)  # 2 x 300 + 60 = 660 s = 1.1 x 600
    assert np.all(simulate(prof, tab) == 660)
    ev = evaluate(prof, tab)
    assert ev.by_hour[0].label == "08"
    assert ev.by_hour[0].signed_error == pytest.approx(0.1)
    assert ev.overall.trip_abs_error == pytest.approx(0.1)
    assert [r.label for r in ev.by_distance] == ["1-2 km"]
    assert (ev.cells, ev.cell_trips) == (1, 24)
    assert ev.cell_error == pytest.approx(0.1)
    assert ev.route_ratio == pytest.approx(1.1)
    # Fewer than 20 trips in the cell: no cell counts.
    few = evaluate(prof, tab, np.arange(n) < 19)
    assert few.cells == 0
    assert math.isnan(few.cell_error)


def test_weighted_median() -> None:
    assert weighted_median(np.array([0.3, 0.1, 0.2]), np.array([1.0, 1.0, 1.0])) == 0.2
    assert weighted_median(np.array([0.3, 0.1, 0.2]), np.array([10.0, 1.0, 1.0])) == 0.3


def test_fit_refuses_nothing_to_fit(table: TripTable) -> None:
    with pytest.raises(NetworkError, match="no trip to fit on"):
        fit_profile(table, np.zeros(len(table), dtype=bool))
    with pytest.raises(NetworkError, match="no hour has 30 trips"):
        fit_profile(table, np.arange(len(table)) < 10)

"""Zone factors in a speed profile (format 3): the file, how the router applies them, and how the trip fit finds them.

The city is the arterial grid of ``test_tripfit`` cut into its sixteen 2x2-node zones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robotaxi.demand.observed import trip_table
from robotaxi.demand.zones import ZoneNodes, Zones
from robotaxi.errors import NetworkError
from robotaxi.network import Router, SpeedProfile
from robotaxi.network.tripfit import evaluate, fit_profile, month_split, simulate

from .test_profile_classes import LOCAL, MAJOR
from .test_tripfit import TRUE_OVERHEAD, arterial_grid, block_zones, class_router, synthetic_trips

NET = arterial_grid()
G = {1: 0.64, 6: 1.44, 16: 2.25}  # sqrt: 0.8, 1.2, 1.5


@pytest.fixture(scope="module")
def zones(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return block_zones(NET, tmp_path_factory.mktemp("zones") / "zones.geojson")


def zone_profile(zones: Path) -> SpeedProfile:
    return SpeedProfile(
        LOCAL, major_factors=MAJOR, overhead_s=45.0, zone_factors=tuple(G.items()), zones_file=str(zones)
    )


def node_zone(zones: Path) -> np.ndarray:
    zn = ZoneNodes.build(Zones.from_file(zones), NET)
    out = np.zeros(NET.n_nodes, dtype=np.int64)
    for k, z in enumerate(zn.zones.ids.tolist()):
        out[zn.nodes[zn.indptr[k] : zn.indptr[k + 1]]] = z
    return out


def test_round_trip_and_relative_zones_file(tmp_path: Path, zones: Path) -> None:
    prof = zone_profile(zones)
    sub = tmp_path / "profiles" / "deep"
    sub.mkdir(parents=True)
    text = prof.to_toml("a comment", base_dir=sub)
    # The zones file is written relative to the profile's folder, and found from there (or from its parents).
    line = next(x for x in text.splitlines() if x.startswith("zones_file = "))
    assert line.split('"')[1] == str(Path(*[".."] * 2, *zones.resolve().relative_to(tmp_path.parent).parts)) or (
        not Path(line.split('"')[1]).is_absolute()
    )
    (sub / "p.toml").write_text(text, encoding="utf-8")
    back = SpeedProfile.from_file(sub / "p.toml")
    assert back.zone_factors == prof.zone_factors
    assert Path(str(back.zones_file)).resolve() == zones.resolve()
    assert back == SpeedProfile(LOCAL, major_factors=MAJOR, overhead_s=45.0, zone_factors=prof.zone_factors,
                                zones_file=back.zones_file)  # fmt: skip
    assert back.has_zones
    assert not SpeedProfile(LOCAL).has_zones
    # Looked up from the profile's folder, then its parents: a path relative to an ancestor works too.
    rel = zones.relative_to(tmp_path.parent)
    (sub / "q.toml").write_text(f'factors = [1.5]\nzones_file = "{rel}"\n[zone_factors]\n"6" = 1.2\n')
    assert Path(str(SpeedProfile.from_file(sub / "q.toml").zones_file)).resolve() == zones.resolve()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('factors = [1.0]\n[zone_factors]\n"6" = 1.2\n', "zone_factors need zones_file"),
        ('factors = [1.0]\nzones_file = "ZONES"\n[zone_factors]\n"six" = 1.2\n', "'six' is not an integer zone id"),
        ('factors = [1.0]\nzones_file = "ZONES"\n[zone_factors]\n"6" = "fast"\n', "zone 6 must be a number"),
        ('factors = [1.0]\nzones_file = "ZONES"\n[zone_factors]\n"6" = 12.0\n', r"zone 6 = 12.0 is outside .*0.1..10"),
        ('factors = [1.0]\nzones_file = "ZONES"\n[zone_factors]\n"6" = 0.05\n', "zone 6 = 0.05 is outside"),
        ('factors = [1.0]\nzones_file = "nowhere.geojson"\n[zone_factors]\n"6" = 1.2\n', "zones_file not found"),
        ('factors = [1.0]\nzones_file = 3\n', "zones_file must be a non-empty string"),
        ('factors = [1.0]\nzones_file = "ZONES"\nzone_factors = [1.2]\n', "zone_factors must be a table"),
    ],
)  # fmt: skip
def test_bad_zone_profiles_name_the_field(tmp_path: Path, zones: Path, text: str, message: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text.replace("ZONES", str(zones)), encoding="utf-8")
    with pytest.raises(NetworkError, match=message) as e:
        SpeedProfile.from_file(p)
    assert str(p) in str(e.value)


def test_bad_zone_factors_in_code(zones: Path) -> None:
    with pytest.raises(ValueError, match="zone 6 is given twice"):
        SpeedProfile((1.0,), zone_factors=((6, 1.2), (6, 1.3)), zones_file=str(zones))
    with pytest.raises(ValueError, match="need zones_file"):
        SpeedProfile((1.0,), zone_factors=((6, 1.2),))
    with pytest.raises(ValueError, match="must be an integer"):
        SpeedProfile((1.0,), zone_factors=(("6", 1.2),), zones_file=str(zones))  # type: ignore[arg-type]
    # A zone id that the zones file does not have is found when the router is built, and named.
    with pytest.raises(NetworkError, match=r"zone 99 is not in .*zones.geojson"):
        Router(NET, profile=SpeedProfile((1.0,), zone_factors=((99, 1.2),), zones_file=str(zones)))


def test_leg_time_is_scaled_by_both_ends_zones(zones: Path) -> None:
    router = Router(NET, profile=zone_profile(zones))
    plain = Router(NET, profile=SpeedProfile(LOCAL, major_factors=MAJOR, overhead_s=45.0))
    zone = node_zone(zones)
    g = np.ones(17)
    for z, v in G.items():
        g[z] = v
    o = np.repeat(np.arange(NET.n_nodes), NET.n_nodes)
    d = np.tile(np.arange(NET.n_nodes), NET.n_nodes)
    t = 11 * 3600
    drive = plain.times(o, d, t).astype(np.float64) - np.where(o != d, 45, 0)
    # Without zone factors the driving time is rint(fl * L + fm * M); with them rint of that times sqrt(g_a g_b).
    free = plain.times(o, d).astype(np.float64)
    major = plain.major_times(o, d).astype(np.float64)
    exact = LOCAL[11] * free + (MAJOR[11] - LOCAL[11]) * major
    assert np.array_equal(np.rint(exact), drive)
    expected = np.rint(exact * np.sqrt(g[zone[o]]) * np.sqrt(g[zone[d]])) + np.where(o != d, 45, 0)
    assert np.array_equal(router.times(o, d, t), expected)
    # A leg inside zone 16 takes g = 2.25 times its driving time; zones not listed are unchanged; free flow
    # (no departure time) ignores every factor.
    assert np.array_equal(router.times(o, d), plain.times(o, d))
    same = (zone[o] == zone[d]) & (o != d)
    z16 = same & (zone[o] == 16)
    assert np.allclose(router.times(o[z16], d[z16], t) - 45, np.rint(2.25 * exact[z16]))
    other = same & ~np.isin(zone[o], list(G))
    assert np.array_equal(router.times(o[other], d[other], t), plain.times(o[other], d[other], t))


@settings(max_examples=60, deadline=None)
@given(o=st.integers(0, NET.n_nodes - 1), d=st.integers(0, NET.n_nodes - 1), t=st.integers(0, 3 * 86_400))
def test_every_query_agrees_with_zone_factors(o: int, d: int, t: int) -> None:
    router, rows = _ROUTERS
    expected = int(router.times(o, d, t))
    assert router.time1(o, d, t) == expected
    assert int(router.times_at(np.array([o]), np.array([d]), t)[0]) == expected
    assert int(rows.times(o, d, t)) == expected
    assert rows.time1(o, d, t) == expected
    assert int(rows.times_at(np.array([o]), np.array([d]), t)[0]) == expected
    # Without classes too (the zone scale on the one-factor path).
    assert _PLAIN_ZONES.time1(o, d, t) == int(_PLAIN_ZONES.times(o, d, t))
    assert int(_PLAIN_ZONES.times_at(np.array([o]), np.array([d]), t)[0]) == int(_PLAIN_ZONES.times(o, d, t))
    # Re-routing shares the driving time along the route and pays the overhead at the destination.
    node, at = router.divert(o, d, t, t + expected // 2)
    if d not in (o, node):
        assert at <= t + expected - 45


def _build() -> tuple[Router, Router]:
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="zones-"))
    zf = block_zones(NET, folder / "zones.geojson")
    prof = zone_profile(zf)
    return Router(NET, profile=prof), Router(NET, profile=prof, table_max_nodes=10)


_ROUTERS = _build()
_PLAIN_ZONES = Router(
    NET,
    profile=SpeedProfile(LOCAL, zone_factors=tuple(G.items()), zones_file=str(_ROUTERS[0].profile.zones_file)),
)


@pytest.mark.slow
def test_fit_recovers_zone_factors_and_generalises(zones: Path) -> None:
    router = class_router(NET)
    truth = {1: 0.7, 6: 1.3, 11: 1.6, 16: 0.8}
    obs = synthetic_trips(router, zones, 12_000, seed=11, zone_g=truth)
    tab = trip_table(router, obs, zones, draws=4, seed=12)
    assert tab.o_zone is not None
    assert tab.d_zone is not None
    fit_mask, test_mask = month_split(tab.month, [3, 6, 9, 12])
    zoned = fit_profile(tab, fit_mask, zone_prior=10.0, zones_file=str(zones))
    plain = fit_profile(tab, fit_mask)
    g = dict(zoned.profile.zone_factors)
    assert set(g) == set(range(1, 17))
    assert zoned.profile.zones_file == str(zones)
    # Zone factors are found up to a common multiple (which the hourly factors absorb): compare them relative to
    # the zones without a true factor.
    base = float(np.exp(np.median([np.log(g[z]) for z in g if z not in truth])))
    for z, true in truth.items():
        assert g[z] / base == pytest.approx(true, rel=0.08), z
    assert max(abs(g[z] / base - 1) for z in g if z not in truth) < 0.08
    assert zoned.profile.overhead_s == pytest.approx(TRUE_OVERHEAD, abs=10.0)
    assert dict(zoned.zone_trips)[6] > 500
    # Out of sample, trips that start in a zone of its own speed: the zone model's median is close to the observed
    # one, the model without zones misses by about sqrt(g) (the hourly factors absorb the average zone).
    held_zoned = evaluate(zoned.profile, tab, test_mask)
    held_plain = evaluate(plain.profile, tab, test_mask)
    sim_zoned, sim_plain = simulate(zoned.profile, tab), simulate(plain.profile, tab)
    for z, true in truth.items():
        k = test_mask & (tab.o_zone == z)
        med = float(np.median(tab.duration_s[k]))
        assert abs(float(np.median(sim_zoned[:, k])) / med - 1) < 0.06, z
        if abs(np.sqrt(true) - 1) > 0.15:
            assert abs(float(np.median(sim_plain[:, k])) / med - 1) > 0.1, z
    assert held_zoned.overall.trip_abs_error < held_plain.overall.trip_abs_error
    assert held_zoned.worst_hour < 0.15
    # simulate() applies the written profile exactly as the router does.
    prof = zoned.profile
    sim = simulate(prof, tab)
    assert sim.shape == tab.draw_local_s.shape
    scale = np.sqrt([g.get(int(z), 1.0) for z in tab.o_zone]) * np.sqrt([g.get(int(z), 1.0) for z in tab.d_zone])
    slot = tab.tod_s * 24 // 86_400
    fl, fm = np.asarray(prof.factors)[slot], np.asarray(prof.major_factors)[slot]
    total = tab.draw_local_s + tab.draw_major_s
    expected = np.rint((fl * total + (fm - fl) * tab.draw_major_s) * scale) + prof.overhead_whole_s
    assert np.array_equal(sim, expected)


def test_zone_fit_refuses_bad_arguments(zones: Path) -> None:
    router = class_router(NET)
    tab = trip_table(router, synthetic_trips(router, zones, 300, seed=1), zones, draws=1, seed=1)
    with pytest.raises(NetworkError, match="zone_prior must be a positive number"):
        fit_profile(tab, zone_prior=-1.0, zones_file=str(zones))
    with pytest.raises(NetworkError, match="need the zones file"):
        fit_profile(tab, zone_prior=10.0)


@settings(max_examples=40, deadline=None)
@given(
    dest=st.lists(st.integers(0, NET.n_nodes - 1), min_size=0, max_size=6),
    orig=st.lists(st.integers(0, NET.n_nodes - 1), min_size=0, max_size=9),
    t=st.integers(0, 3 * 86_400),
    spread=st.integers(0, 4 * 3600),
)
def test_times_to_is_times_transposed(dest: list[int], orig: list[int], t: int, spread: int) -> None:
    """``times_to`` (the pickup-by-vehicle layout, read from the transposed table) gives exactly ``times`` on
    every router kind: full table or rows on demand, with road classes and zone factors, one-factor zones, free
    flow; departure None, one time, or one per origin."""
    d, o = np.asarray(dest, np.int64), np.asarray(orig, np.int64)
    per_origin = t + (np.arange(o.size) * spread) % (spread + 1)
    for router in (*_ROUTERS, _PLAIN_ZONES):
        for dep in (None, t, per_origin):
            want = router.times(o[None, :], d[:, None], None if dep is None else np.asarray(dep)[..., None].T)
            got = router.times_to(d, o, dep)
            assert got.shape == (d.size, o.size)
            assert np.array_equal(got, want)


def test_times_to_rejects_bad_input() -> None:
    router = _ROUTERS[0]
    with pytest.raises(NetworkError, match="node index"):
        router.times_to([0, NET.n_nodes], [1])
    with pytest.raises(NetworkError, match="flat"):
        router.times_to([[0]], [1])
    with pytest.raises(NetworkError, match="2 departure times for 3 origins"):
        router.times_to([0], [1, 2, 3], [0, 1])


def test_table_to_is_the_free_flow_table_transposed() -> None:
    router, rows = _ROUTERS
    everyone = np.arange(NET.n_nodes)
    to = router.table_to()
    assert to is not None
    assert np.array_equal(to, router.times(everyone[:, None], everyone[None, :]).T)
    assert router.table_to() is to  # made once
    with pytest.raises(ValueError, match="read-only"):
        to[0, 1] = 0
    assert rows.table_to() is None  # rows on demand: no full table

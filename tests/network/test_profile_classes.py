"""Speed profiles with road classes and a per-leg overhead: the file format and how the router applies them.

The city is the arterial grid of ``test_tripfit`` (8x8 nodes, 200 m blocks at 36 km/h = 20 s, row 3 and column 4
at 72 km/h = 10 s, the major roads).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robotaxi.errors import NetworkError
from robotaxi.network import Router, SpeedProfile

from .test_tripfit import arterial_grid

LOCAL = tuple(1.0 + h / 10 for h in range(24))  # 1.0 at 00h .. 3.3 at 23h
MAJOR = tuple(1.0 + h / 20 for h in range(24))  # 1.0 .. 2.15
PROFILE = SpeedProfile(LOCAL, major_factors=MAJOR, overhead_s=45.0)
NET = arterial_grid()
ROUTER = Router(NET, profile=PROFILE)
ROWS_ROUTER = Router(NET, profile=PROFILE, table_max_nodes=10)  # on-demand rows, no table


def test_round_trip(tmp_path: Path) -> None:
    p = tmp_path / "profile.toml"
    p.write_text(PROFILE.to_toml("fitted by a test\nsecond line"), encoding="utf-8")
    back = SpeedProfile.from_file(p)
    assert back == PROFILE
    assert back.has_classes
    assert back.overhead_whole_s == 45
    assert p.read_text().startswith("# fitted by a test\n# second line\n")
    # Written again, byte for byte the same.
    assert back.to_toml("fitted by a test\nsecond line") == p.read_text()
    # Format 1 (factors only) still reads, and writes as before.
    old = tmp_path / "old.toml"
    old.write_text("factors = [2.0]\n")
    assert SpeedProfile.from_file(old) == SpeedProfile((2.0,))
    assert SpeedProfile((2.0,)).to_toml() == "factors = [\n    2.000,\n]\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("factors = [1.0]\noverhead = 30\n", "unknown key 'overhead' in the speed profile"),
        ("overhead_s = 30\n", r"no `factors = \[...\]`"),
        ("factors = [1.0]\noverhead_s = -5\n", "overhead_s = -5.0 must be 0..1800"),
        ("factors = [1.0]\noverhead_s = 'long'\n", "overhead_s must be a number"),
        ("factors = [1.0]\noverhead_s = true\n", "overhead_s must be a number"),
        ("factors = [1.0, 2.0]\nmajor_factors = [1.0, 1.0]\n", "factors needs 1, 24"),
        ("factors = [1.0]\nmajor_factors = [1.0, 2.0]\n", "major_factors needs 1, 24"),
        ("factors = [1.0]\nmajor_factors = [" + ", ".join(["1.0"] * 24) + "]\n",
         "major_factors has 24 slots but factors has 1"),
        ("factors = [1.0]\nmajor_factors = [50.0]\n", r"major_factors\[0\] = 50.0 is outside"),
        ("factors = [1.0]\nmajor_factors = 'fast'\n", "major_factors must be a list of numbers"),
        ("factors = [1.0]\nmajor_min_speed_kmh = 0\n", "major_min_speed_kmh = 0.0 must be > 0"),
        ("factors = [1.0\n", "not valid TOML"),
    ],
)  # fmt: skip
def test_bad_profile_files_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(NetworkError, match=message) as e:
        SpeedProfile.from_file(p)
    assert str(p) in str(e.value)


def test_missing_and_binary_profile_files(tmp_path: Path) -> None:
    with pytest.raises(NetworkError, match="speed profile file not found"):
        SpeedProfile.from_file(tmp_path / "nope.toml")
    b = tmp_path / "b.toml"
    b.write_bytes(b"\xff\xfe\x00factors")
    with pytest.raises(NetworkError, match="not a text"):
        SpeedProfile.from_file(b)
    with pytest.raises(NetworkError, match="is a folder"):
        SpeedProfile.from_file(tmp_path)


def test_leg_time_is_class_factors_plus_overhead() -> None:
    # Node 0 -> node 31: 3 local blocks (60 s) north, then 7 arterial blocks (70 s) east.
    assert int(ROUTER.times(0, 31)) == 130
    assert int(ROUTER.major_times(0, 31)) == 70
    nine = 9 * 3600  # local factor 1.9, major 1.45
    assert int(ROUTER.times(0, 31, nine)) == round(1.9 * 60 + 1.45 * 70) + 45
    assert ROUTER.time1(0, 31, nine) == round(1.9 * 60 + 1.45 * 70) + 45
    assert int(ROUTER.times_at(np.array([0]), np.array([31]), nine)[0]) == round(1.9 * 60 + 1.45 * 70) + 45
    # No overhead for staying put; free flow (no departure) has neither factors nor overhead.
    assert int(ROUTER.times(5, 5, nine)) == 0
    assert ROUTER.time1(5, 5, nine) == 0
    assert int(ROUTER.times(0, 31)) == 130


def test_route_is_the_free_flow_one_whatever_the_hour() -> None:
    # At 23h local streets are 3.3x, the arterial 2.15x: the route stays the free-flow fastest one.
    path = ROUTER.path(0, 31)
    edges = ROUTER.path_edges(path)
    major = NET.major_edges(45.0)[edges]
    assert int(NET.travel_time_s[edges][major].sum()) == 70
    assert int(ROUTER.times(0, 31, 23 * 3600)) == round(3.3 * 60 + 2.15 * 70) + 45


@settings(max_examples=60, deadline=None)
@given(
    o=st.integers(0, NET.n_nodes - 1),
    d=st.integers(0, NET.n_nodes - 1),
    t=st.integers(0, 3 * 86_400),
)
def test_every_query_agrees(o: int, d: int, t: int) -> None:
    expected = int(ROUTER.times(o, d, t))
    assert ROUTER.time1(o, d, t) == expected
    assert int(ROUTER.times_at(np.array([o]), np.array([d]), t)[0]) == expected
    assert int(ROWS_ROUTER.times(o, d, t)) == expected  # table and on-demand rows agree
    assert ROWS_ROUTER.time1(o, d, t) == expected
    # The major-road seconds are those of the edges along the path.
    edges = ROUTER.path_edges(ROUTER.path(o, d))
    on_major = NET.major_edges(45.0)[edges]
    assert int(ROUTER.major_times(o, d)) == int(NET.travel_time_s[edges][on_major].sum())
    assert int(ROWS_ROUTER.major_times(o, d)) == int(ROUTER.major_times(o, d))


@settings(max_examples=40, deadline=None)
@given(o=st.integers(0, NET.n_nodes - 1), d=st.integers(0, NET.n_nodes - 1), frac=st.floats(0.0, 1.2))
def test_divert_pays_the_overhead_on_arrival(o: int, d: int, frac: float) -> None:
    t0 = 9 * 3600
    total = ROUTER.time1(o, d, t0)
    node, at = ROUTER.divert(o, d, t0, t0 + int(frac * total))
    if frac >= 1.0 or o == d:
        assert (node, at) == (d, t0 + total)
        return
    assert t0 <= at <= t0 + total
    if node != d:
        # An intermediate node is reached within the driving time: the overhead is only paid at the destination.
        assert at <= t0 + total - 45
    path = ROUTER.path(o, d).tolist()
    assert node in path


def test_a_profile_without_classes_changes_nothing() -> None:
    plain = Router(NET, profile=SpeedProfile(LOCAL))
    o = np.arange(NET.n_nodes)
    d = o[::-1].copy()
    t = 10 * 3600
    assert np.array_equal(plain.times(o, d, t), np.rint(plain.times(o, d) * LOCAL[10]).astype(np.int32))
    with pytest.raises(NetworkError, match="need a router built with a speed profile that has road classes"):
        plain.major_times(o, d)
    # Overhead without classes: every leg between two nodes gets it.
    over = Router(NET, profile=SpeedProfile(LOCAL, overhead_s=30.0))
    assert np.array_equal(over.times(o, d, t), plain.times(o, d, t) + np.where(o != d, 30, 0))

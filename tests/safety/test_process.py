"""The Poisson disengagement process: seeded, rate recovered within its exact interval, rates by road and hour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robotaxi.errors import SafetyError
from robotaxi.safety import (
    DisengagementProcess,
    DisengagementRates,
    Initiator,
    LocationType,
    SafetyProfile,
    SafetyProfiles,
    miles_per_disengagement,
)

STREET = LocationType.STREET


def _legs(n: int, seed: int) -> np.ndarray:
    """Leg lengths in miles like a city fleet's: mostly 0.2-3 miles."""
    return np.random.default_rng(seed).gamma(2.0, 0.6, n)


def test_rate_recovery_over_a_long_run() -> None:
    # 1.5 million miles at 5,000 miles per disengagement: about 300 events.
    legs = _legs(1_000_000, 1)
    proc = DisengagementProcess(DisengagementRates(5_000))
    stretch, offset = proc.draw_many(
        legs, np.full(legs.size, "street"), np.zeros(legs.size, int), np.random.default_rng(7)
    )
    m = miles_per_disengagement(float(legs.sum()), int(stretch.size))
    assert 200 < stretch.size < 400
    assert m.contains(5_000.0), m
    assert np.all(offset >= 0)
    assert np.all(offset <= legs[stretch])


def test_leg_by_leg_draws_recover_the_rate_too() -> None:
    # One fixed seed (any seed's interval misses with probability <= 5 %; the coverage test below checks that).
    legs = _legs(50_000, 2)
    proc = DisengagementProcess(DisengagementRates(250))
    rng = np.random.default_rng(0)
    n = 0
    for miles in legs:
        offs = proc.draw(float(miles), STREET, 8, rng)
        assert np.all(np.diff(offs) >= 0)
        assert np.all((offs >= 0) & (offs <= miles))
        n += offs.size
    assert miles_per_disengagement(float(legs.sum()), n).contains(250.0)


def test_intervals_cover_the_configured_rate_about_95_percent_of_the_time() -> None:
    legs = _legs(2_000, 4)  # ~2,400 miles at 100 mi/disengagement: ~24 events per run
    proc = DisengagementProcess(DisengagementRates(100))
    locs, hours = np.full(legs.size, "street"), np.zeros(legs.size, int)
    covered = 0
    runs = 400
    for seed in range(runs):
        stretch, _ = proc.draw_many(legs, locs, hours, np.random.default_rng(seed))
        covered += miles_per_disengagement(float(legs.sum()), int(stretch.size)).contains(100.0)
    # The exact interval is conservative: coverage >= 95 %, and not far above it at ~24 events.
    assert 0.93 <= covered / runs <= 0.995


def test_same_seed_same_events() -> None:
    legs = _legs(10_000, 5)
    proc = DisengagementProcess(DisengagementRates(300))
    args = (legs, np.full(legs.size, "street"), np.zeros(legs.size, int))
    a = proc.draw_many(*args, np.random.default_rng(11))
    b = proc.draw_many(*args, np.random.default_rng(11))
    assert np.array_equal(a[0], b[0])
    assert np.array_equal(a[1], b[1])


def test_rates_by_location_and_hour() -> None:
    rates = DisengagementRates(1_000, {LocationType.FREEWAY: 10_000}, tuple([0.0] * 6 + [1.0] * 18))
    proc = DisengagementProcess(rates)
    n = 200_000
    miles = np.full(n, 1.0)
    locs = np.where(np.arange(n) % 2 == 0, "street", "freeway")
    hours = np.arange(n) % 24
    stretch, _ = proc.draw_many(miles, locs, hours, np.random.default_rng(5))
    assert not np.any(hours[stretch] < 6)  # a zero factor means no events in those hours
    driven = miles[hours >= 6]
    street_miles = driven[locs[hours >= 6] == "street"].sum()
    freeway_miles = driven[locs[hours >= 6] == "freeway"].sum()
    on_street = int(np.sum(locs[stretch] == "street"))
    on_freeway = int(np.sum(locs[stretch] == "freeway"))
    assert miles_per_disengagement(float(street_miles), on_street).contains(1_000.0)
    assert miles_per_disengagement(float(freeway_miles), on_freeway).contains(10_000.0)
    assert rates.max_per_mile() == pytest.approx(1 / 1_000)
    assert rates.per_mile(LocationType.FREEWAY, 3) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"miles_per_disengagement": 0}, "miles_per_disengagement: must be a number > 0"),
        ({"miles_per_disengagement": 10, "by_location": {"moon": 5}}, "by_location: unknown value 'moon'"),
        ({"miles_per_disengagement": 10, "hour_factors": (1.0, 2.0)}, "hour_factors: expected 24 values"),
        ({"miles_per_disengagement": 10, "hour_factors": (1.0,) * 23 + (-1.0,)}, r"hour_factors\[23\]"),
    ],
)
def test_bad_rates(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DisengagementRates(**kwargs)  # type: ignore[arg-type]


def test_negative_leg_miles_are_refused() -> None:
    proc = DisengagementProcess(DisengagementRates(10))
    with pytest.raises(ValueError, match="leg_miles: must be a finite number >= 0"):
        proc.draw(-1.0, STREET, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="miles: every stretch"):
        proc.draw_many(np.array([1.0, -2.0]), np.array(["street"] * 2), np.zeros(2, int), np.random.default_rng(0))


def test_profiles_default_initiators_follow_the_driver() -> None:
    rates = DisengagementRates(1_000)
    with_driver = SafetyProfile("a", rates)
    driverless = SafetyProfile("b", rates, driver_present=False, can_operate_without_driver=True)
    assert set(with_driver.initiators or {}) == {Initiator.AV_SYSTEM, Initiator.TEST_DRIVER}
    assert set(driverless.initiators or {}) == {Initiator.AV_SYSTEM, Initiator.REMOTE_OPERATOR}
    with pytest.raises(ValueError, match=r"initiators\.test_driver: no driver is present"):
        SafetyProfile("c", rates, driver_present=False, initiators={Initiator.TEST_DRIVER: 1.0})


def test_profiles_file(tmp_path: Path) -> None:
    f = tmp_path / "safety.toml"
    f.write_text(
        "[operators.acme]\n"
        "miles_per_disengagement = 5000\n"
        'permit_number = "AVT123"\n'
        "driver_present = false\n"
        "can_operate_without_driver = true\n"
        "[operators.acme.by_location]\nfreeway = 20000\n"
        "[operators.acme.initiators]\nav_system = 3\nremote_operator = 1\n"
    )
    p = SafetyProfiles.from_file(f).profiles["acme"]
    assert p.permit_number == "AVT123"
    assert p.rates.by_location[LocationType.FREEWAY] == 20_000
    assert (p.initiators or {})[Initiator.AV_SYSTEM] == pytest.approx(0.75)
    f.write_text("[operators.acme]\nmiles_per_disengagment = 5000\n")
    with pytest.raises(SafetyError, match=r"operators\.acme: unknown key"):
        SafetyProfiles.from_file(f)
    f.write_text('[operators.acme]\nmiles_per_disengagement = 5000\ninitiators = {"pilot" = 1}\n')
    with pytest.raises(SafetyError, match="initiators: unknown value 'pilot'"):
        SafetyProfiles.from_file(f)


def test_example_profiles_match_the_marketplace_example() -> None:
    import tomllib

    examples = Path(__file__).resolve().parents[2] / "examples"
    profiles = SafetyProfiles.from_file(examples / "manhattan_marketplace_safety.toml").profiles
    scenario = tomllib.loads((examples / "manhattan_marketplace.toml").read_text())
    autonomous = {op["name"] for op in scenario["operators"] if op.get("kind") == "autonomous"}
    assert set(profiles) == autonomous
    for name, p in profiles.items():
        spec = next(op for op in scenario["operators"] if op["name"] == name)
        assert p.driver_present == spec.get("safety_driver", False)

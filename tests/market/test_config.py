"""TOML tables -> market parameters: a full example, defaults, and every bad input naming operator and field."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from robotaxi.errors import MarketConfigError, ScenarioError
from robotaxi.fleet import OperatorKind
from robotaxi.market import (
    Commission,
    CostModel,
    FareSchedule,
    Pricing,
    operator_terms,
    parse_choice,
    parse_commission,
    parse_costs,
    parse_fares,
    parse_pricing,
    parse_surge,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "marketplace.md"

PRICING = """
[pricing]
currency = "USD"

[pricing.commission]
rate = 0.2
fixed_cents = 25

[pricing.surge]
interval_s = 300
min = 1.0
max = 2.5
threshold = 1.0
sensitivity = 0.4
smoothing = 0.3
step = 0.1
zones = "grid"
cell_m = 1500

[pricing.choice]
constant = 2.5
fare_per_dollar = -0.08
wait_per_minute = -0.15
seed = 11

[pricing.fares]
base_cents = 250
per_km_cents = 110
per_minute_cents = 30
minimum_cents = 700
pooled_discount = 0.25

[pricing.costs]
per_km_cents = 18
per_vehicle_hour_cents = 600
"""


def test_a_full_pricing_table() -> None:
    p = parse_pricing(tomllib.loads(PRICING)["pricing"])
    assert p.currency == "USD"
    assert p.commission == Commission(rate_bp=2000, fixed_cents=25)
    assert p.surge is not None
    assert (p.surge.params.min_bp, p.surge.params.max_bp, p.surge.params.step_bp) == (10_000, 25_000, 1_000)
    assert (p.surge.params.sensitivity, p.surge.params.smoothing, p.surge.zones, p.surge.cell_m) == (
        0.4,
        0.3,
        "grid",
        1500.0,
    )
    assert p.choice is not None
    assert (p.choice.model.constant, p.choice.model.fare_per_dollar, p.choice.seed) == (2.5, -0.08, 11)
    assert p.fares == FareSchedule(250, 110, 30, 700, 2500)
    assert p.costs == CostModel(per_km_cents=18, per_vehicle_hour_cents=600)


def test_whole_floats_are_whole_cents() -> None:
    # A caller that read every number as a float (35.0) still gives whole cents; 2.5 is refused below.
    assert parse_fares({"per_km_cents": 35.0}).per_km_cents == 35
    assert parse_costs({"per_vehicle_hour_cents": 900.0}).per_vehicle_hour_cents == 900


def test_defaults_and_switches() -> None:
    assert parse_pricing({}) == Pricing()
    assert parse_surge({"enabled": False}) is None
    assert parse_choice({"enabled": False}) is None
    assert parse_fares({}) == FareSchedule()


def test_operator_terms_take_their_own_tables_or_the_platforms() -> None:
    pricing = parse_pricing(tomllib.loads(PRICING)["pricing"])
    own = operator_terms(
        "waymo",
        OperatorKind.AUTONOMOUS,
        pricing,
        fares={"base_cents": 300, "per_km_cents": 150},
        costs={"remote_assistance_per_hour_cents": 200},
        commission={"rate": 0.15},
    )
    assert own.fares == FareSchedule(base_cents=300, per_km_cents=150)
    assert own.costs == CostModel(remote_assistance_per_hour_cents=200)
    assert own.commission == Commission(rate_bp=1500)
    default = operator_terms("drivers", OperatorKind.HUMAN_DRIVEN, pricing)
    assert default.fares == pricing.fares
    assert default.costs == pricing.costs
    assert default.commission is None
    with pytest.raises(MarketConfigError, match=r"operator 'x': operators\.fares: missing"):
        operator_terms("x", OperatorKind.AUTONOMOUS, Pricing())


def test_the_documented_example_parses() -> None:
    """Every ```toml block of docs/marketplace.md that has a [pricing] table is valid."""
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    tables = [tomllib.loads(b) for b in blocks if "[pricing" in b]
    assert tables
    for t in tables:
        parse_pricing(t["pricing"])


BAD_FARES: list[tuple[dict[str, Any], str]] = [
    ({"per_km_cents": -5}, r"operator 'waymo': operators\.fares\.per_km_cents: must be >= 0, got -5"),
    ({"base_cents": 2.5}, r"operators\.fares\.base_cents: expected whole cents"),
    ({"minimum_cents": True}, r"operators\.fares\.minimum_cents: expected whole cents"),
    ({"per_minute_cents": "30"}, r"operators\.fares\.per_minute_cents: expected whole cents"),
    ({"per_km_cents": 10**8}, r"operators\.fares\.per_km_cents: must be <="),
    ({"pooled_discount": 1.0}, r"operators\.fares\.pooled_discount: must be in \[0, 1\)"),
    ({"pooled_discount": -0.1}, r"operators\.fares\.pooled_discount: must be in \[0, 1\]"),
    ({"pooled_discount": float("nan")}, r"operators\.fares\.pooled_discount: expected a number"),
    ({"per_mile_cents": 100}, r"operators\.fares\.per_mile_cents: unknown key"),
]


@pytest.mark.parametrize(("table", "message"), BAD_FARES)
def test_bad_fares_name_the_operator_and_the_field(table: dict[str, Any], message: str) -> None:
    with pytest.raises(MarketConfigError, match=message) as err:
        parse_fares(table, operator="waymo", where="operators.fares")
    assert str(err.value).startswith("operator 'waymo': ")
    # A scenario loader catching ValueError or ScenarioError catches it.
    assert isinstance(err.value, ValueError)
    assert isinstance(err.value, ScenarioError)


@pytest.mark.parametrize(
    ("table", "kind", "message"),
    [
        ({"per_km_cents": -1}, OperatorKind.AUTONOMOUS, r"costs\.per_km_cents: must be >= 0"),
        ({"driver_share": 0.8}, OperatorKind.AUTONOMOUS, r"costs\.driver_share: only human-driver pools"),
        (
            {"remote_assistance_per_hour_cents": 100},
            OperatorKind.HUMAN_DRIVEN,
            r"costs\.remote_assistance_per_hour_cents: only autonomous",
        ),
        (
            {"safety_driver_per_hour_cents": 100},
            OperatorKind.HUMAN_DRIVEN,
            r"costs\.safety_driver_per_hour_cents: only autonomous",
        ),
        ({"driver_share": 1.2}, OperatorKind.HUMAN_DRIVEN, r"costs\.driver_share: must be in \[0, 1\]"),
        ({"fuel": 1}, None, r"costs\.fuel: unknown key"),
    ],
)
def test_bad_costs_name_the_operator_and_the_field(
    table: dict[str, Any], kind: OperatorKind | None, message: str
) -> None:
    with pytest.raises(MarketConfigError, match=f"operator 'lyft': {message}"):
        parse_costs(table, operator="lyft", kind=kind)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"currency": "usd"}, r"pricing\.currency: expected an ISO 4217 code"),
        ({"currency": 840}, r"pricing\.currency"),
        ({"commission": {"rate": 1.5}}, r"pricing\.commission\.rate: must be in \[0, 1\]"),
        ({"commission": {"fixed_cents": -10}}, r"pricing\.commission\.fixed_cents: must be >= 0"),
        ({"commission": 0.2}, r"pricing\.commission: expected a table"),
        ({"surge": {"min": 2.0, "max": 1.5}}, r"pricing\.surge\.max: must be >= min"),
        ({"surge": {"min": 0}}, r"pricing\.surge\.min: must be in \(0, 10\]"),
        ({"surge": {"max": 11}}, r"pricing\.surge\.max: must be in \(0, 10\]"),
        ({"surge": {"smoothing": 0}}, r"pricing\.surge\.smoothing: must be in \(0, 1\]"),
        ({"surge": {"smoothing": 1.1}}, r"pricing\.surge\.smoothing"),
        ({"surge": {"sensitivity": -0.5}}, r"pricing\.surge\.sensitivity: must be in \[0, inf\)"),
        ({"surge": {"step": 0.00001}}, r"pricing\.surge\.step: must be at least 0.0001"),
        ({"surge": {"interval_s": 0}}, r"pricing\.surge\.interval_s: must be >= 1"),
        ({"surge": {"interval_s": 30.0}}, r"pricing\.surge\.interval_s: expected an integer"),
        ({"surge": {"zones": "hexagons"}}, r"pricing\.surge\.zones: expected one of auto, demand, grid"),
        ({"surge": {"cell_m": 0}}, r"pricing\.surge\.cell_m"),
        ({"surge": {"enabled": "yes"}}, r"pricing\.surge\.enabled: expected true or false"),
        ({"surge": {"cap": 3}}, r"pricing\.surge\.cap: unknown key"),
        ({"choice": {"fare_per_dollar": 0.1}}, r"pricing\.choice\.fare_per_dollar: must be in \[-inf, 0\]"),
        ({"choice": {"wait_per_minute": 1}}, r"pricing\.choice\.wait_per_minute"),
        ({"choice": {"constant": "high"}}, r"pricing\.choice\.constant: expected a number"),
        ({"choice": {"seed": -1}}, r"pricing\.choice\.seed: must be >= 0"),
        ({"fares": {"minimum_cents": -700}}, r"pricing\.fares\.minimum_cents: must be >= 0"),
        ({"costs": {"per_vehicle_hour_cents": 1.5}}, r"pricing\.costs\.per_vehicle_hour_cents: expected whole cents"),
        ({"tax": 0.08}, r"pricing\.tax: unknown key"),
    ],
)
def test_bad_pricing_names_the_field(table: dict[str, Any], message: str) -> None:
    with pytest.raises(MarketConfigError, match=message):
        parse_pricing(table)


def test_bad_commission_for_an_operator() -> None:
    with pytest.raises(MarketConfigError, match=r"operator 'zoox': commission\.rate"):
        parse_commission({"rate": -0.1}, operator="zoox")
    with pytest.raises(MarketConfigError, match=r"operator 'zoox': operators\.costs: expected a table"):
        operator_terms("zoox", OperatorKind.AUTONOMOUS, Pricing(fares=FareSchedule()), costs=[1, 2])  # type: ignore[arg-type]

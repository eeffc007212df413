"""TOML tables -> validated market parameters, with errors that name the operator and the field.

A scenario loader passes each table as parsed by ``tomllib`` (see ``docs/marketplace.md`` for the keys):

* :func:`parse_pricing` - the platform's ``[pricing]`` table: currency, ``[pricing.commission]``,
  ``[pricing.surge]``, ``[pricing.choice]``, and the default ``[pricing.fares]`` / ``[pricing.costs]`` of operators
  that declare none (with today's single ``[fleet]``, these are that fleet's);
* :func:`parse_fares`, :func:`parse_costs`, :func:`parse_commission` - one operator's ``fares``, ``costs`` and
  ``commission`` tables;
* :func:`operator_terms` - an operator's complete :class:`~robotaxi.market.OperatorTerms` from its own tables and
  the platform's defaults.

Every table is checked completely before anything is built: unknown keys, wrong types (``true`` is not a number,
``2.5`` is not whole cents, ``35.0`` is), negative money, fractions outside their range, surge bounds out of order.
Each problem raises :class:`~robotaxi.errors.MarketConfigError` (a ``ScenarioError`` and a ``ValueError``) whose
message starts with the operator (when there is one) and the dotted field, e.g. ``operator 'waymo':
fares.per_km_cents: must be >= 0, got -5``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import MarketConfigError
from ..fleet import OperatorKind
from ._money import BP, MAX_CENTS, MAX_SURGE_BP
from .choice import RiderChoice
from .commission import Commission
from .costs import CostModel
from .fares import MAX_RATE_CENTS, FareSchedule
from .surge import SurgeParams
from .trips import OperatorTerms

FARE_KEYS = ("base_cents", "per_km_cents", "per_minute_cents", "minimum_cents", "pooled_discount")
COST_KEYS = (
    "per_km_cents",
    "per_vehicle_hour_cents",
    "remote_assistance_per_hour_cents",
    "safety_driver_per_hour_cents",
    "driver_share",
)
COMMISSION_KEYS = ("rate", "fixed_cents")
SURGE_KEYS = ("enabled", "interval_s", "min", "max", "threshold", "sensitivity", "smoothing", "step", "zones", "cell_m")
CHOICE_KEYS = ("enabled", "constant", "fare_per_dollar", "wait_per_minute", "seed")
PRICING_KEYS = ("currency", "commission", "surge", "choice", "fares", "costs")
SURGE_ZONINGS = ("auto", "demand", "grid")

#: Cost keys that only make sense for one kind of operator.
_AV_ONLY = ("remote_assistance_per_hour_cents", "safety_driver_per_hour_cents")
_HUMAN_ONLY = ("driver_share",)


@dataclass(frozen=True, slots=True)
class SurgeSettings:
    """``[pricing.surge]``: the rule and the zones it is computed over (``zones``, ``cell_m`` as in
    ``[rebalancing]``: the demand's zone polygons, or a grid of ``cell_m`` metres)."""

    params: SurgeParams
    zones: str = "auto"
    cell_m: float = 1000.0


@dataclass(frozen=True, slots=True)
class ChoiceSettings:
    """``[pricing.choice]``: the logit and the seed of the riders' draws."""

    model: RiderChoice
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Pricing:
    """The platform's ``[pricing]`` table, validated.

    Attributes
    ----------
    currency : str
        ISO 4217 code of every amount (``"USD"``).
    commission : Commission
        Default commission for operators without their own.
    surge : SurgeSettings or None
        None: no surge (every multiplier 1.0).
    choice : ChoiceSettings or None
        None: riders accept every quote.
    fares : FareSchedule or None
        Default fares for operators without their own ``fares`` table.
    costs : CostModel
        Default costs for operators without their own ``costs`` table.
    """

    currency: str = "USD"
    commission: Commission = field(default_factory=Commission)
    surge: SurgeSettings | None = None
    choice: ChoiceSettings | None = None
    fares: FareSchedule | None = None
    costs: CostModel = field(default_factory=CostModel)


class _Table:
    """One TOML table being read, with the prefix its errors carry."""

    def __init__(self, table: Any, where: str, operator: str | None) -> None:
        self.operator = operator
        self.who = f"operator {operator!r}: " if operator is not None else ""
        self.where = where
        if not isinstance(table, Mapping):
            raise self.error("", f"expected a table, got {type(table).__name__} {table!r}")
        self.table = table

    def error(self, key: str, why: str) -> MarketConfigError:
        name = f"{self.where}.{key}" if key else self.where
        return MarketConfigError(f"{self.who}{name}: {why}")

    def check_keys(self, known: tuple[str, ...]) -> None:
        for key in self.table:
            if key not in known:
                raise self.error(key, f"unknown key (known keys here: {', '.join(known)})")

    def cents(self, key: str, default: int = 0, upper: int = MAX_CENTS) -> int:
        v = self.table.get(key, default)
        if isinstance(v, float) and v.is_integer():
            v = int(v)  # 35.0 is whole cents (a caller may have read every number as a float); 2.5 is not
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(key, f"expected whole cents (an integer), got {type(v).__name__} {v!r}")
        if v < 0:
            raise self.error(key, f"must be >= 0, got {v}")
        if v > upper:
            raise self.error(key, f"must be <= {upper}, got {v}")
        return v

    def number(self, key: str, default: float, *, lo: float, hi: float = math.inf, lo_open: bool = False) -> float:
        v = self.table.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise self.error(key, f"expected a number, got {type(v).__name__} {v!r}")
        if v < lo or (lo_open and v == lo) or v > hi:
            left = "(" if lo_open else "["
            right = "]" if math.isfinite(hi) else ")"
            raise self.error(key, f"must be in {left}{lo:g}, {hi:g}{right}, got {v!r}")
        return float(v)

    def fraction_bp(self, key: str, *, upper_open: bool = False) -> int:
        v = self.number(key, 0.0, lo=0.0, hi=1.0)
        if upper_open and v >= 1.0:
            raise self.error(key, f"must be in [0, 1), got {v!r}")
        return round(v * BP)

    def integer(self, key: str, default: int, *, lo: int) -> int:
        v = self.table.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(key, f"expected an integer, got {type(v).__name__} {v!r}")
        if v < lo:
            raise self.error(key, f"must be >= {lo}, got {v}")
        return v

    def flag(self, key: str, default: bool) -> bool:
        v = self.table.get(key, default)
        if not isinstance(v, bool):
            raise self.error(key, f"expected true or false, got {v!r}")
        return v

    def sub(self, key: str) -> _Table | None:
        if key not in self.table:
            return None
        return _Table(self.table[key], f"{self.where}.{key}", self.operator)


def parse_fares(table: Mapping[str, Any], *, operator: str | None = None, where: str = "fares") -> FareSchedule:
    """An operator's fare table (keys :data:`FARE_KEYS`; money in whole cents, ``pooled_discount`` in ``[0, 1)``).

    Raises
    ------
    MarketConfigError
        Naming the operator and the field.
    """
    t = _Table(table, where, operator)
    t.check_keys(FARE_KEYS)
    return FareSchedule(
        base_cents=t.cents("base_cents", upper=MAX_RATE_CENTS),
        per_km_cents=t.cents("per_km_cents", upper=MAX_RATE_CENTS),
        per_minute_cents=t.cents("per_minute_cents", upper=MAX_RATE_CENTS),
        minimum_cents=t.cents("minimum_cents", upper=MAX_RATE_CENTS),
        pooled_discount_bp=t.fraction_bp("pooled_discount", upper_open=True),
    )


def parse_costs(
    table: Mapping[str, Any],
    *,
    operator: str | None = None,
    kind: OperatorKind | None = None,
    where: str = "costs",
) -> CostModel:
    """An operator's cost table (keys :data:`COST_KEYS`; ``driver_share`` in ``[0, 1]``).

    With ``kind`` given, a key that does not apply to it is an error (remote assistance or a safety driver for a
    human-driver pool, a drivers' share for an autonomous operator).

    Raises
    ------
    MarketConfigError
        Naming the operator and the field.
    """
    t = _Table(table, where, operator)
    t.check_keys(COST_KEYS)
    if kind is OperatorKind.HUMAN_DRIVEN:
        for key in _AV_ONLY:
            if key in t.table:
                raise t.error(key, "only autonomous operators have this cost (this one is human_driven)")
    if kind is OperatorKind.AUTONOMOUS:
        for key in _HUMAN_ONLY:
            if key in t.table:
                raise t.error(key, "only human-driver pools pay drivers a share (this operator is autonomous)")
    return CostModel(
        per_km_cents=t.cents("per_km_cents"),
        per_vehicle_hour_cents=t.cents("per_vehicle_hour_cents"),
        remote_assistance_per_hour_cents=t.cents("remote_assistance_per_hour_cents"),
        safety_driver_per_hour_cents=t.cents("safety_driver_per_hour_cents"),
        driver_share_bp=t.fraction_bp("driver_share"),
    )


def parse_commission(table: Mapping[str, Any], *, operator: str | None = None, where: str = "commission") -> Commission:
    """A commission table: ``rate`` (share of the fare, ``[0, 1]``) and ``fixed_cents`` per trip.

    Raises
    ------
    MarketConfigError
        Naming the operator and the field.
    """
    t = _Table(table, where, operator)
    t.check_keys(COMMISSION_KEYS)
    return Commission(rate_bp=t.fraction_bp("rate"), fixed_cents=t.cents("fixed_cents"))


def parse_surge(table: Mapping[str, Any], *, where: str = "pricing.surge") -> SurgeSettings | None:
    """``[pricing.surge]`` (keys :data:`SURGE_KEYS`); None when ``enabled = false``.

    Raises
    ------
    MarketConfigError
        Naming the field.
    """
    t = _Table(table, where, None)
    t.check_keys(SURGE_KEYS)
    enabled = t.flag("enabled", True)
    d = SurgeParams()
    lo = t.number("min", d.min_bp / BP, lo=0.0, hi=MAX_SURGE_BP / BP, lo_open=True)
    hi = t.number("max", d.max_bp / BP, lo=0.0, hi=MAX_SURGE_BP / BP, lo_open=True)
    if hi < lo:
        raise t.error("max", f"must be >= min ({lo:g}), got {hi:g}")
    step = t.number("step", d.step_bp / BP, lo=0.0, hi=1.0, lo_open=True)
    if round(step * BP) < 1:
        raise t.error("step", f"must be at least 0.0001, got {step!r}")
    zones = t.table.get("zones", "auto")
    if zones not in SURGE_ZONINGS:
        raise t.error("zones", f"expected one of {', '.join(SURGE_ZONINGS)}, got {zones!r}")
    params = SurgeParams(
        interval_s=t.integer("interval_s", d.interval_s, lo=1),
        min_bp=round(lo * BP),
        max_bp=round(hi * BP),
        threshold=t.number("threshold", d.threshold, lo=0.0),
        sensitivity=t.number("sensitivity", d.sensitivity, lo=0.0),
        smoothing=t.number("smoothing", d.smoothing, lo=0.0, hi=1.0, lo_open=True),
        step_bp=round(step * BP),
    )
    cell_m = t.number("cell_m", 1000.0, lo=0.0, lo_open=True)
    return SurgeSettings(params, zones=str(zones), cell_m=cell_m) if enabled else None


def parse_choice(table: Mapping[str, Any], *, where: str = "pricing.choice") -> ChoiceSettings | None:
    """``[pricing.choice]`` (keys :data:`CHOICE_KEYS`); None when ``enabled = false``.

    Raises
    ------
    MarketConfigError
        Naming the field (a positive fare or wait coefficient is refused).
    """
    t = _Table(table, where, None)
    t.check_keys(CHOICE_KEYS)
    enabled = t.flag("enabled", True)
    d = RiderChoice()
    model = RiderChoice(
        constant=t.number("constant", d.constant, lo=-math.inf),
        fare_per_dollar=t.number("fare_per_dollar", d.fare_per_dollar, lo=-math.inf, hi=0.0),
        wait_per_minute=t.number("wait_per_minute", d.wait_per_minute, lo=-math.inf, hi=0.0),
    )
    seed = t.integer("seed", 0, lo=0)
    return ChoiceSettings(model, seed=seed) if enabled else None


def parse_pricing(table: Mapping[str, Any], *, where: str = "pricing") -> Pricing:
    """The platform's ``[pricing]`` table (keys :data:`PRICING_KEYS` and its sub-tables).

    Raises
    ------
    MarketConfigError
        Naming the field.
    """
    t = _Table(table, where, None)
    t.check_keys(PRICING_KEYS)
    currency = t.table.get("currency", "USD")
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isascii() and currency.isupper()):
        raise t.error("currency", f'expected an ISO 4217 code such as "USD", got {currency!r}')
    subs = {key: t.sub(key) for key in ("commission", "surge", "choice", "fares", "costs")}
    commission, surge, choice, fares, costs = (
        parse_commission(s.table, where=s.where) if (s := subs["commission"]) else Commission(),
        parse_surge(s.table, where=s.where) if (s := subs["surge"]) else None,
        parse_choice(s.table, where=s.where) if (s := subs["choice"]) else None,
        parse_fares(s.table, where=s.where) if (s := subs["fares"]) else None,
        parse_costs(s.table, where=s.where) if (s := subs["costs"]) else CostModel(),
    )
    return Pricing(currency=currency, commission=commission, surge=surge, choice=choice, fares=fares, costs=costs)


def operator_terms(
    name: str,
    kind: OperatorKind,
    pricing: Pricing,
    *,
    fares: Mapping[str, Any] | None = None,
    costs: Mapping[str, Any] | None = None,
    commission: Mapping[str, Any] | None = None,
    where: str = "operators",
) -> OperatorTerms:
    """An operator's terms: its own ``fares`` / ``costs`` / ``commission`` tables where given, else the platform's.

    Raises
    ------
    MarketConfigError
        If a table is invalid, or the operator has no fares and ``[pricing]`` has no default ``fares``.
    """
    if fares is not None:
        schedule = parse_fares(fares, operator=name, where=f"{where}.fares")
    elif pricing.fares is not None:
        schedule = pricing.fares
    else:
        raise MarketConfigError(
            f"operator {name!r}: {where}.fares: missing, and [pricing] has no default fares table",
            hint="give the operator a fares table or add [pricing.fares]",
        )
    model = parse_costs(costs, operator=name, kind=kind, where=f"{where}.costs") if costs is not None else pricing.costs
    take = parse_commission(commission, operator=name, where=f"{where}.commission") if commission is not None else None
    return OperatorTerms(name=name, kind=kind, fares=schedule, costs=model, commission=take)

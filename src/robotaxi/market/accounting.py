"""Per-operator accounts of a run: trips, revenue, cost, margin, productivity, and the reconciliation check.

Inputs are the priced trips (:class:`~robotaxi.market.PricedTrips`) and, per operator, what its vehicles did
(:class:`OperatorActivity`: vehicle-seconds in service and busy, metres driven and driven empty). Definitions:

* **rider payments**: the sum of the fares of the operator's trips; **commission**: the platform's part;
  **revenue**: the operator's part (payments minus commission);
* **cost**: the operator's :class:`~robotaxi.market.CostModel` over its totals; **margin** = revenue - cost,
  ``margin_pct`` = margin / revenue;
* **revenue per vehicle-hour**: revenue over vehicle-hours in service; **utilisation**: busy (reserved, stopped,
  on trip) over in-service time; **empty-km share**: km driven with nobody on board (to pickups and repositioning)
  over all km; **trip share**: the operator's trips over the platform's;
* **driver earnings** (human-driver pools): the drivers' share of revenue, and per driver-hour in service.

Every amount is an integer number of cents (Python ints, no overflow). :func:`reconcile` checks, per operator and
for the platform, that revenue plus commission equals rider payments to the cent, and that the operators' totals
add up to the platform's; :func:`account` always calls it and raises :class:`~robotaxi.errors.ReconciliationError`
when anything differs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import MarketError, ReconciliationError
from ..fleet import OperatorKind
from .costs import COST_TERMS
from .trips import OperatorTerms, PricedTrips


@dataclass(frozen=True, slots=True)
class OperatorActivity:
    """What one operator's vehicles did over the run.

    Parameters
    ----------
    vehicles : int
        Vehicles (or human drivers) of the operator.
    service_s : int
        Vehicle-seconds in service (any MDS state but ``non_operational`` and ``removed``).
    busy_s : int
        Vehicle-seconds reserved, stopped or on trip (part of ``service_s``).
    driven_m : int
        Metres driven, riders on board or not.
    empty_m : int
        Metres driven with nobody on board (to pickups and repositioning; part of ``driven_m``).
    """

    vehicles: int
    service_s: int
    busy_s: int
    driven_m: int
    empty_m: int

    def __post_init__(self) -> None:
        for name in ("vehicles", "service_s", "busy_s", "driven_m", "empty_m"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
                raise ValueError(f"OperatorActivity.{name}: must be a whole number >= 0, got {v!r}")
        if self.busy_s > self.service_s:
            raise ValueError(f"OperatorActivity: busy_s {self.busy_s} exceeds service_s {self.service_s}")
        if self.empty_m > self.driven_m:
            raise ValueError(f"OperatorActivity: empty_m {self.empty_m} exceeds driven_m {self.driven_m}")


@dataclass(frozen=True, slots=True)
class OperatorAccount:
    """One operator's money and productivity (cents, hours, percent; None where nothing was there to divide)."""

    name: str
    kind: str
    vehicles: int
    trips: int
    trip_share_pct: float | None
    rider_payments_cents: int
    commission_cents: int
    revenue_cents: int
    cost_cents: int
    cost_terms_cents: dict[str, int]
    margin_cents: int
    margin_pct: float | None
    mean_fare_cents: int | None
    surged_trips_pct: float | None
    pooled_trips_pct: float | None
    vehicle_hours: float
    revenue_per_vehicle_hour_cents: int | None
    utilisation_pct: float | None
    km_driven: float
    empty_km_share_pct: float | None
    driver_earnings_cents: int | None
    driver_earnings_per_hour_cents: int | None
    trips_by_hour: list[int]
    revenue_by_hour_cents: list[int]


@dataclass(frozen=True, slots=True)
class MarketAccounts:
    """The platform's accounts: one :class:`OperatorAccount` per operator and the platform totals."""

    currency: str
    trips: int
    rider_payments_cents: int
    commission_cents: int
    operator_revenue_cents: int
    operators: tuple[OperatorAccount, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return asdict(self)

    def to_json(self) -> str:
        """Indented JSON with a final newline (stable key order)."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def operator(self, name: str) -> OperatorAccount:
        """The account of operator ``name``."""
        for acc in self.operators:
            if acc.name == name:
                return acc
        raise KeyError(name)


def _ratio(num: float, den: float, scale: float = 100.0, digits: int = 2) -> float | None:
    return round(scale * num / den, digits) if den else None


def _per_hour(cents: int, seconds: int) -> int | None:
    return (2 * cents * 3600 + seconds) // (2 * seconds) if seconds else None


def _operator_account(
    k: int, term: OperatorTerms, act: OperatorActivity, trips: PricedTrips, n_total: int, n_hours: int
) -> OperatorAccount:
    rows = trips.operator == k
    n = int(rows.sum())
    pay = int(trips.fare_cents[rows].sum(dtype=np.int64))
    commission = int(trips.commission_cents[rows].sum(dtype=np.int64))
    revenue = int(trips.operator_cents[rows].sum(dtype=np.int64))
    terms = term.costs.cost_terms(term.kind, driven_m=act.driven_m, service_s=act.service_s, revenue_cents=revenue)
    cost = sum(terms.values())
    human = term.kind is OperatorKind.HUMAN_DRIVEN
    hour = np.clip(trips.time_s[rows] // 3600, 0, n_hours - 1)
    by_hour = np.bincount(hour, minlength=n_hours)
    rev_hour = np.bincount(hour, weights=trips.operator_cents[rows], minlength=n_hours)
    return OperatorAccount(
        name=term.name,
        kind=term.kind.value,
        vehicles=act.vehicles,
        trips=n,
        trip_share_pct=_ratio(n, n_total),
        rider_payments_cents=pay,
        commission_cents=commission,
        revenue_cents=revenue,
        cost_cents=cost,
        cost_terms_cents=terms,
        margin_cents=revenue - cost,
        margin_pct=_ratio(revenue - cost, revenue),
        mean_fare_cents=(2 * pay + n) // (2 * n) if n else None,
        surged_trips_pct=_ratio(int((trips.surge_bp[rows] > 10_000).sum()), n),
        pooled_trips_pct=_ratio(int(trips.pooled[rows].sum()), n),
        vehicle_hours=round(act.service_s / 3600, 2),
        revenue_per_vehicle_hour_cents=_per_hour(revenue, act.service_s),
        utilisation_pct=_ratio(act.busy_s, act.service_s),
        km_driven=round(act.driven_m / 1000, 1),
        empty_km_share_pct=_ratio(act.empty_m, act.driven_m),
        driver_earnings_cents=terms["drivers"] if human else None,
        driver_earnings_per_hour_cents=_per_hour(terms["drivers"], act.service_s) if human else None,
        trips_by_hour=[int(x) for x in by_hour],
        # Exact: weights are int64 cents summed in float64, far below 2**53 for any run's revenue in one hour.
        revenue_by_hour_cents=[round(float(x)) for x in rev_hour],
    )


def account(
    trips: PricedTrips,
    terms: Sequence[OperatorTerms],
    activity: Sequence[OperatorActivity],
    *,
    currency: str = "USD",
    hours: int = 24,
) -> MarketAccounts:
    """Per-operator accounts of ``trips`` (``trips.operator`` indexes ``terms`` and ``activity``).

    ``hours`` is the length of the by-hour lists (trips after the last hour are counted in it). The accounts are
    reconciled before they are returned.

    Raises
    ------
    MarketError
        If ``terms`` and ``activity`` differ in length, an operator index is out of range or ``hours`` < 1.
    ReconciliationError
        If the money does not add up (see :func:`reconcile`).
    """
    if len(terms) != len(activity):
        raise MarketError(f"accounts: {len(terms)} operators' terms but {len(activity)} activity records")
    if hours < 1:
        raise MarketError(f"accounts: hours must be >= 1, got {hours}")
    n = len(trips)
    if n and (int(trips.operator.max()) >= len(terms) or int(trips.operator.min()) < 0):
        raise MarketError(f"accounts: a trip's operator index is outside 0..{len(terms) - 1}")
    ops = tuple(
        _operator_account(k, t, a, trips, n, hours) for k, (t, a) in enumerate(zip(terms, activity, strict=True))
    )
    accounts = MarketAccounts(
        currency=currency,
        trips=n,
        rider_payments_cents=int(trips.fare_cents.sum(dtype=np.int64)),
        commission_cents=int(trips.commission_cents.sum(dtype=np.int64)),
        operator_revenue_cents=int(trips.operator_cents.sum(dtype=np.int64)),
        operators=ops,
    )
    reconcile(accounts)
    return accounts


def reconcile(accounts: MarketAccounts) -> None:
    """Check that the money adds up to the cent; raise :class:`~robotaxi.errors.ReconciliationError` if not.

    Checked: for every operator, revenue + commission == rider payments, cost == the sum of its terms and margin ==
    revenue - cost; for the platform, operator revenue + commission == rider payments; and the operators' trips,
    payments, commissions and revenues sum to the platform's.
    """
    problems: list[str] = []
    for acc in accounts.operators:
        if acc.revenue_cents + acc.commission_cents != acc.rider_payments_cents:
            problems.append(
                f"operator {acc.name!r}: revenue {acc.revenue_cents} + commission {acc.commission_cents} "
                f"!= rider payments {acc.rider_payments_cents}"
            )
        if sum(acc.cost_terms_cents.get(t, 0) for t in COST_TERMS) != acc.cost_cents:
            problems.append(f"operator {acc.name!r}: cost {acc.cost_cents} != the sum of its terms")
        if acc.revenue_cents - acc.cost_cents != acc.margin_cents:
            problems.append(f"operator {acc.name!r}: margin {acc.margin_cents} != revenue - cost")
    a = accounts
    if a.operator_revenue_cents + a.commission_cents != a.rider_payments_cents:
        problems.append(
            f"platform: operator revenue {a.operator_revenue_cents} + commission {a.commission_cents} "
            f"!= rider payments {a.rider_payments_cents}"
        )
    for field, total in (
        ("trips", a.trips),
        ("rider_payments_cents", a.rider_payments_cents),
        ("commission_cents", a.commission_cents),
        ("revenue_cents", a.operator_revenue_cents),
    ):
        parts = sum(getattr(acc, field) for acc in a.operators)
        if parts != total:
            problems.append(f"platform: operators' {field} sum to {parts}, the platform's total is {total}")
    if problems:
        raise ReconciliationError("the accounts do not reconcile: " + "; ".join(problems))

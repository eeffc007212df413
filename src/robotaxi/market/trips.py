"""Pricing completed trips: fare, surge, commission and the operator's share, per trip, vectorised per operator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import MarketError, ReconciliationError
from ..fleet import OperatorKind
from ._money import BP, I64, int_column
from .commission import Commission
from .costs import CostModel
from .fares import FareSchedule
from .surge import SurgeTable


@dataclass(frozen=True, slots=True)
class OperatorTerms:
    """An operator's commercial terms on the platform.

    Parameters
    ----------
    name : str
    kind : OperatorKind
        Autonomous operator or human-driver pool (decides which cost terms apply).
    fares : FareSchedule
        What its riders pay.
    costs : CostModel
        What its service costs it.
    commission : Commission or None
        The platform's commission on its trips; None takes the platform's default.
    """

    name: str
    kind: OperatorKind
    fares: FareSchedule
    costs: CostModel = field(default_factory=CostModel)
    commission: Commission | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("OperatorTerms.name must not be empty")
        if not isinstance(self.kind, OperatorKind):
            raise ValueError(f"operator {self.name!r}: kind must be an OperatorKind, got {self.kind!r}")


@dataclass(frozen=True, slots=True, eq=False)
class PricedTrips:
    """One row per completed trip, with its money (integer cents).

    Attributes
    ----------
    operator : int64
        Index of the serving operator in the terms / accounts.
    time_s : int64
        Request time (any clock the caller uses; the accounts bin it by hour of ``time_s // 3600``).
    distance_m, duration_s : int64
        The ride that was priced.
    surge_bp : int64
        Surge multiplier applied (10,000 = none).
    pooled : bool
        The rider shared the vehicle (got the pooled discount).
    fare_cents : int64
        What the rider paid.
    commission_cents : int64
        The platform's commission.
    operator_cents : int64
        The operator's revenue: ``fare_cents - commission_cents``, checked row by row on construction.
    """

    operator: I64
    time_s: I64
    distance_m: I64
    duration_s: I64
    surge_bp: I64
    pooled: NDArray[np.bool_]
    fare_cents: I64
    commission_cents: I64
    operator_cents: I64

    def __post_init__(self) -> None:
        n = np.asarray(self.operator).size
        for name in _COLUMNS:
            # Own read-only copies: the caller's arrays are neither kept nor frozen.
            a = np.array(getattr(self, name), dtype=np.bool_ if name == "pooled" else np.int64)
            if a.shape != (n,):
                raise MarketError(f"priced trips: column {name} has shape {a.shape}, expected ({n},)")
            a.setflags(write=False)
            object.__setattr__(self, name, a)
        bad = self.commission_cents + self.operator_cents != self.fare_cents
        if bad.any():
            i = int(np.argmax(bad))
            raise ReconciliationError(
                f"trip row {i}: commission {int(self.commission_cents[i])} + operator "
                f"{int(self.operator_cents[i])} != fare {int(self.fare_cents[i])} cents"
            )

    def __len__(self) -> int:
        return int(self.operator.size)


_COLUMNS = (
    "operator",
    "time_s",
    "distance_m",
    "duration_s",
    "surge_bp",
    "pooled",
    "fare_cents",
    "commission_cents",
    "operator_cents",
)


def price_trips(
    operator: Any,
    distance_m: Any,
    duration_s: Any,
    terms: Sequence[OperatorTerms],
    *,
    default_commission: Commission | None = None,
    time_s: Any = 0,
    zone: Any = -1,
    surge: SurgeTable | None = None,
    pooled: Any = False,
) -> PricedTrips:
    """Price completed trips: each by its operator's fare schedule, the surge of its request time and pickup zone,
    and its operator's commission (or ``default_commission``).

    Parameters
    ----------
    operator : array_like of int
        Operator index per trip, into ``terms``.
    distance_m, duration_s : array_like of int
        Ride distance and time per trip.
    terms : sequence of OperatorTerms
    default_commission : Commission, optional
        For operators whose terms carry none (no commission when both are None).
    time_s, zone : array_like of int
        Request time and pickup zone (-1: none) per trip, for the surge look-up; scalars broadcast.
    surge : SurgeTable, optional
        Published multipliers; no surge when None.
    pooled : array_like of bool
        Riders who shared their vehicle.

    Raises
    ------
    MarketError
        On an operator index outside ``terms``, a negative input or mismatched lengths (nothing is priced then).
    """
    try:
        op = int_column(operator, "operator")
        n = op.size
        dist = int_column(distance_m, "distance_m", n=n)
        dur = int_column(duration_s, "duration_s", n=n)
        t = np.broadcast_to(np.asarray(time_s, dtype=np.int64), (n,)).copy()
        shared = np.broadcast_to(np.asarray(pooled), (n,)).copy()
        if shared.dtype != np.bool_:
            raise ValueError(f"pooled: expected booleans, got dtype {shared.dtype}")
    except ValueError as e:
        raise MarketError(f"price_trips: {e}") from e
    if n and int(op.max()) >= len(terms):
        raise MarketError(f"price_trips: operator index {int(op.max())} but only {len(terms)} operators' terms")
    surge_bp = surge.lookup(t, zone) if surge is not None else np.full(n, BP, dtype=np.int64)
    fare = np.zeros(n, dtype=np.int64)
    commission = np.zeros(n, dtype=np.int64)
    for k, term in enumerate(terms):
        rows = np.flatnonzero(op == k)
        if rows.size == 0:
            continue
        fare[rows] = term.fares.fare_cents(dist[rows], dur[rows], surge_bp=surge_bp[rows], pooled=shared[rows])
        take = term.commission or default_commission or Commission()
        commission[rows] = take.split(fare[rows])[0]
    return PricedTrips(
        operator=op,
        time_s=t,
        distance_m=dist,
        duration_s=dur,
        surge_bp=surge_bp.astype(np.int64),
        pooled=shared,
        fare_cents=fare,
        commission_cents=commission,
        operator_cents=fare - commission,
    )

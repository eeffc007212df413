"""Fare schedules: what a rider pays for a trip, in integer cents.

For one trip of ``d`` metres and ``t`` seconds, with surge multiplier ``s`` (basis points, 10,000 = 1.0x) and a
pooled-rider discount ``p`` (basis points, applied only to riders who shared their vehicle)::

    metered = round(base + per_km * d / 1000 + per_minute * t / 60)            # cents
    fare    = max(minimum, round(metered * s / 10000 * (10000 - p) / 10000))   # cents

* **Surge multiplies the whole metered fare**, base included (as Uber documents for its surge pricing), not only the
  distance and time parts; the rider sees one multiplier on the whole price.
* **The pooled discount applies to the surged fare** of a rider who shared the vehicle at some moment of the ride
  (``robotaxi.sim.kpis.pooled_mask``): a pooled rider pays ``(1 - p)`` of what the same ride alone would cost.
* **The minimum is a floor on what the rider pays**, after surge and discount: no trip is ever cheaper than the
  minimum, pooled or not (the minimum itself is not surged).
* **Rounding**: two roundings, each half up on exact integers (``robotaxi.market._money``): the metered fare to the
  cent, then the surged and discounted fare to the cent. No float touches the amount.

Rates are whole cents (per km, per minute) so that schedules are exact; a fare of "$2.175 per km" is written as
``per_km_cents = 218`` (or the schedule's currency made smaller).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import MarketError
from ._money import BP, I64, MAX_CENTS, MAX_SURGE_BP, div_half_up, int_column

#: Upper bound on the per-km and per-minute rates and on base / minimum fares ($10,000): keeps int64 exact.
MAX_RATE_CENTS = 1_000_000


@dataclass(frozen=True, slots=True)
class FareSchedule:
    """One operator's fares (integer cents; see the module docstring for the formula and rounding).

    Parameters
    ----------
    base_cents : int
        Flag fall, charged once per trip.
    per_km_cents : int
        Per kilometre ridden (the rider's ride distance).
    per_minute_cents : int
        Per minute ridden (boarding to arrival at the dropoff).
    minimum_cents : int
        Least a rider ever pays.
    pooled_discount_bp : int
        Discount for riders who shared their vehicle, in basis points (2,500 = 25 %), in ``[0, 10000)``.
    """

    base_cents: int = 0
    per_km_cents: int = 0
    per_minute_cents: int = 0
    minimum_cents: int = 0
    pooled_discount_bp: int = 0

    def __post_init__(self) -> None:
        for name in ("base_cents", "per_km_cents", "per_minute_cents", "minimum_cents"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name}: expected whole cents, got {value!r}")
            if not 0 <= value <= MAX_RATE_CENTS:
                raise ValueError(f"{name}: must be in 0..{MAX_RATE_CENTS}, got {value}")
        d = self.pooled_discount_bp
        if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d < BP:
            raise ValueError(f"pooled_discount_bp: must be an integer in 0..{BP - 1}, got {d!r}")

    def metered_cents(self, distance_m: Any, duration_s: Any) -> I64:
        """``base + per km + per minute``, rounded half up to the cent (before surge, discount and minimum)."""
        m = int_column(distance_m, "distance_m")
        s = int_column(duration_s, "duration_s", n=m.size)
        # Exact common denominator 3000: per_km * m / 1000 = 3 * per_km * m / 3000, per_min * s / 60 = 50 * ... / 3000.
        num = self.base_cents * 3000 + self.per_km_cents * 3 * m + self.per_minute_cents * 50 * s
        return div_half_up(num, 3000)

    def fare_cents(self, distance_m: Any, duration_s: Any, *, surge_bp: Any = BP, pooled: Any = False) -> I64:
        """What the rider pays for each trip (vectorised; scalars broadcast).

        Parameters
        ----------
        distance_m, duration_s : array_like of int
            Ride distance (metres) and time (seconds), >= 0.
        surge_bp : array_like of int
            Surge multiplier per trip in basis points (10,000 = no surge), >= 0.
        pooled : array_like of bool
            Whether each rider shared the vehicle (gets the pooled discount).

        Raises
        ------
        MarketError
            On a negative or non-integer input, mismatched lengths, a metered fare above $10 million or a surge
            above 10x (the bounds that keep the integer products exact).
        """
        try:
            metered = self.metered_cents(distance_m, duration_s)
            n = metered.size
            surge = int_column(surge_bp, "surge_bp", n=n)
            shared = np.asarray(pooled)
            if shared.dtype != np.bool_:
                raise ValueError(f"pooled: expected booleans, got dtype {shared.dtype}")
            shared = np.broadcast_to(shared, (n,)) if shared.ndim == 0 else shared
            if shared.shape != (n,):
                raise ValueError(f"pooled: expected {n} rows, got shape {shared.shape}")
        except ValueError as e:
            raise MarketError(f"fares: {e}") from e
        if n and (int(metered.max()) > MAX_CENTS or int(surge.max()) > MAX_SURGE_BP):
            raise MarketError("fares: a metered fare above $10 million or a surge above 10x cannot be priced")
        keep = np.where(shared, BP - self.pooled_discount_bp, BP).astype(np.int64)
        fare = div_half_up(metered * surge * keep, BP * BP)
        out: I64 = np.maximum(fare, self.minimum_cents)
        return out

"""The platform's commission on each trip, and the split of the rider's payment.

For a fare ``f`` (cents), a rate ``r`` (basis points) and a fixed part ``c`` (cents)::

    commission = min(f, round(f * r / 10000) + c)      # rounded half up, never more than the fare
    operator   = f - commission

The operator's share is computed as the difference, so ``operator + commission == fare`` holds exactly for every
trip by construction, and the sums over any set of trips add up to the cent as well; the accounts check it anyway
(:func:`robotaxi.market.reconcile`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import MarketError
from ._money import BP, I64, MAX_CENTS, div_half_up, int_column


@dataclass(frozen=True, slots=True)
class Commission:
    """The platform's take per trip: ``rate_bp`` basis points of the fare plus ``fixed_cents``, capped at the fare.

    Parameters
    ----------
    rate_bp : int
        Share of the fare, 0..10,000 basis points (2,000 = 20 %).
    fixed_cents : int
        Fixed amount per trip (>= 0).
    """

    rate_bp: int = 0
    fixed_cents: int = 0

    def __post_init__(self) -> None:
        r, c = self.rate_bp, self.fixed_cents
        if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r <= BP:
            raise ValueError(f"rate_bp: must be an integer in 0..{BP}, got {r!r}")
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= MAX_CENTS:
            raise ValueError(f"fixed_cents: must be whole cents in 0..{MAX_CENTS}, got {c!r}")

    def split(self, fare_cents: Any) -> tuple[I64, I64]:
        """``(commission, operator revenue)`` per trip, both int64 cents, adding up to the fare exactly.

        Raises
        ------
        MarketError
            On a negative, non-integer or larger-than-$10-million fare.
        """
        try:
            fare = int_column(fare_cents, "fare_cents")
        except ValueError as e:
            raise MarketError(f"commission: {e}") from e
        if fare.size and int(fare.max()) > MAX_CENTS:
            raise MarketError("commission: a fare above $10 million cannot be split")
        commission: I64 = np.minimum(fare, div_half_up(fare * self.rate_bp, BP) + self.fixed_cents)
        return commission, fare - commission

"""Rider choice: does a rider accept a quoted fare and pickup ETA?

A binary logit against an outside option (walk, transit, another app) whose utility is normalised to zero
(McFadden, "Conditional logit analysis of qualitative choice behavior", 1974; Train, *Discrete Choice Methods with
Simulation*, 2nd ed. 2009, section 3.1)::

    V = constant + fare_per_dollar * fare_dollars + wait_per_minute * eta_minutes
    P(accept) = 1 / (1 + exp(-V))

``fare_per_dollar`` and ``wait_per_minute`` are the (non-positive) marginal utilities of a dollar and of a
minute of waiting; their ratio ``wait_per_minute / fare_per_dollar`` is the riders' value of waiting time in dollars
per minute. Draws use the caller's ``numpy.random.Generator`` (one uniform per quote, compared with ``P``), so the
same seed gives the same decisions; a refused quote is lost demand and is counted as such by the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import MarketError
from ._money import int_column


@dataclass(frozen=True, slots=True)
class RiderChoice:
    """Logit acceptance of quotes (see the module docstring).

    Parameters
    ----------
    constant : float
        Utility of taking the ride at zero fare and zero wait, against the outside option.
    fare_per_dollar : float
        Utility per dollar of fare (<= 0).
    wait_per_minute : float
        Utility per minute of pickup ETA (<= 0).
    """

    constant: float = 3.0
    fare_per_dollar: float = -0.1
    wait_per_minute: float = -0.2

    def __post_init__(self) -> None:
        for name in ("constant", "fare_per_dollar", "wait_per_minute"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ValueError(f"{name}: expected a finite number, got {v!r}")
        for name in ("fare_per_dollar", "wait_per_minute"):
            if getattr(self, name) > 0:
                raise ValueError(
                    f"{name}: must be <= 0 (a higher fare or a longer wait cannot make a ride more attractive), "
                    f"got {getattr(self, name)!r}"
                )

    def utility(self, fare_cents: Any, eta_s: Any) -> NDArray[np.float64]:
        """``V`` per quote."""
        try:
            fare = int_column(fare_cents, "fare_cents")
            eta = int_column(eta_s, "eta_s", n=fare.size)
        except ValueError as e:
            raise MarketError(f"rider choice: {e}") from e
        v: NDArray[np.float64] = (
            self.constant + self.fare_per_dollar * (fare / 100.0) + self.wait_per_minute * (eta / 60.0)
        )
        return v

    def probability(self, fare_cents: Any, eta_s: Any) -> NDArray[np.float64]:
        """``P(accept)`` per quote, in ``[0, 1]``.

        The logistic is evaluated as ``(1 + tanh(V / 2)) / 2``, which equals ``1 / (1 + exp(-V))`` and never
        overflows for large ``|V|``.
        """
        p: NDArray[np.float64] = 0.5 * (1.0 + np.tanh(0.5 * self.utility(fare_cents, eta_s)))
        return p

    def accept(self, fare_cents: Any, eta_s: Any, rng: np.random.Generator) -> NDArray[np.bool_]:
        """Draw each rider's decision: one uniform per quote from ``rng``, accepted when below ``P``."""
        p = self.probability(fare_cents, eta_s)
        accepted: NDArray[np.bool_] = rng.random(p.size) < p
        return accepted

"""Miles per disengagement and its exact (Garwood) Poisson confidence interval.

With ``k`` disengagements observed over ``M`` miles, the count is Poisson with mean ``M / m`` where ``m`` is the
true miles per disengagement. Garwood's exact central interval for a Poisson mean (Garwood, F. (1936),
"Fiducial limits for the Poisson distribution", Biometrika 28(3/4), 437-442) is::

    lower = chi2.ppf(alpha / 2, 2k) / 2          (0 when k = 0)
    upper = chi2.ppf(1 - alpha / 2, 2k + 2) / 2

and the interval for miles per disengagement is ``[M / upper, M / lower]`` (unbounded above when ``k = 0``).
The estimate itself is ``M / k`` (infinite when ``k = 0``: no disengagement seen yet).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["MilesPerDisengagement", "miles_per_disengagement", "poisson_interval"]


def poisson_interval(count: int, confidence: float = 0.95) -> tuple[float, float]:
    """Garwood's exact two-sided interval for the mean of a Poisson count.

    Raises
    ------
    ValueError
        If ``count`` is negative or not an integer, or ``confidence`` is not in (0, 1).
    """
    from scipy.stats import chi2

    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count: must be an integer >= 0, got {count!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: must lie in (0, 1), got {confidence!r}")
    alpha = 1.0 - confidence
    lower = 0.0 if count == 0 else float(chi2.ppf(alpha / 2, 2 * count)) / 2
    upper = float(chi2.ppf(1 - alpha / 2, 2 * count + 2)) / 2
    return lower, upper


@dataclass(frozen=True, slots=True)
class MilesPerDisengagement:
    """Miles per disengagement with its interval (``inf`` where unbounded)."""

    miles: float
    disengagements: int
    estimate: float
    low: float
    high: float
    confidence: float

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the interval (ends included)."""
        return self.low <= value <= self.high

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-ready: infinite bounds become ``None``."""

        def fin(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return {
            "miles": self.miles,
            "disengagements": self.disengagements,
            "miles_per_disengagement": fin(self.estimate),
            "ci_low": fin(self.low),
            "ci_high": fin(self.high),
            "confidence": self.confidence,
        }


def miles_per_disengagement(miles: float, disengagements: int, confidence: float = 0.95) -> MilesPerDisengagement:
    """Miles per disengagement over ``miles`` driven with ``disengagements`` events, with Garwood's interval.

    Raises
    ------
    ValueError
        On negative or non-finite miles, a negative count, or disengagements with no miles at all.
    """
    if not (isinstance(miles, int | float) and math.isfinite(miles) and miles >= 0):
        raise ValueError(f"miles: must be a finite number >= 0, got {miles!r}")
    lower, upper = poisson_interval(disengagements, confidence)
    if miles == 0 and disengagements > 0:
        raise ValueError(f"miles: {disengagements} disengagement(s) over zero miles")
    estimate = math.inf if disengagements == 0 else miles / disengagements
    low = miles / upper
    high = math.inf if lower == 0 else miles / lower
    return MilesPerDisengagement(float(miles), disengagements, estimate, low, high, confidence)

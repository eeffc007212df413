"""Surge pricing: one multiplier per zone and interval, from how many riders wait for how many free vehicles.

At the start of every interval ``k`` the caller (the engine's clock, or :func:`robotaxi.sim.market` after a run)
gives, per zone ``z``, the open requests ``R`` (riders waiting for a vehicle) and the available vehicles ``V`` (free
or repositioning, in or heading to the zone). Then::

    ratio     r[z]     = R[z] / max(V[z], 1)                                   # no vehicle counts as one
    target    u[z]     = clip(1 + sensitivity * (r[z] - threshold), min, max)
    smoothed  m_k[z]   = smoothing * u[z] + (1 - smoothing) * m_{k-1}[z]       # m_{-1} = clip(1, min, max)
    published q_k[z]   = clip(step * round(m_k[z] / step), min, max)           # basis points, what fares use

The target is a simple linear rule in the ratio of waiting riders to free vehicles, our choice for a transparent
and bounded rule (why a platform should raise prices with that ratio is argued in Castillo, Knoepfle and Weyl,
"Surge Pricing Solves the Wild Goose Chase", EC 2017, and Cachon, Daniels and Lobel, "The Role of Surge Pricing on
a Service Platform with Self-Scheduling Capacity", MSOM 2017). Smoothing is simple exponential smoothing (R. G.
Brown, *Statistical Forecasting for Inventory Control*, 1959): each interval the multiplier moves the fraction
``smoothing`` of the way to its target, so a single busy interval does not make prices jump. Because the target is
clipped to ``[min, max]`` and the smoothed value is a convex combination of values in that range, every multiplier
stays inside the bounds; the published multiplier is rounded to ``step`` for riders and clipped again (a bound that
is not a multiple of ``step`` is kept).

Multipliers are published in integer basis points (10,000 = 1.0x) so that fares stay integer cents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import MarketError
from ._money import BP, I64, MAX_SURGE_BP, int_column


@dataclass(frozen=True, slots=True)
class SurgeParams:
    """Surge rule parameters (see the module docstring).

    Parameters
    ----------
    interval_s : int
        Length of an interval (> 0 s).
    min_bp, max_bp : int
        Bounds of the multiplier in basis points, ``0 < min_bp <= max_bp <= 100000`` (10x).
    threshold : float
        Ratio of open requests to available vehicles at which the multiplier is 1.0 (>= 0).
    sensitivity : float
        Rise of the multiplier per unit of ratio above ``threshold`` (>= 0; 0 switches surge off).
    smoothing : float
        Weight of the newest interval, in ``(0, 1]`` (1 = no smoothing).
    step_bp : int
        Published multipliers are multiples of this (e.g. 1,000 = 0.1x), 1..10,000.
    """

    interval_s: int = 300
    min_bp: int = BP
    max_bp: int = 3 * BP
    threshold: float = 1.0
    sensitivity: float = 0.5
    smoothing: float = 0.5
    step_bp: int = 500

    def __post_init__(self) -> None:
        for name in ("interval_s", "min_bp", "max_bp", "step_bp"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"{name}: expected an integer, got {v!r}")
        if self.interval_s <= 0:
            raise ValueError(f"interval_s: must be > 0, got {self.interval_s}")
        if not 0 < self.min_bp <= self.max_bp <= MAX_SURGE_BP:
            raise ValueError(
                f"min/max: need 0 < min <= max <= {MAX_SURGE_BP // BP}, got min {self.min_bp / BP:g}, "
                f"max {self.max_bp / BP:g}"
            )
        if not 1 <= self.step_bp <= BP:
            raise ValueError(f"step: must be in (0, 1], got {self.step_bp / BP:g}")
        for name, ok in (
            ("threshold", self.threshold >= 0),
            ("sensitivity", self.sensitivity >= 0),
            ("smoothing", 0 < self.smoothing <= 1),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v) or not ok:
                bound = "in (0, 1]" if name == "smoothing" else ">= 0"
                raise ValueError(f"{name}: must be a number {bound}, got {v!r}")

    @property
    def neutral_bp(self) -> int:
        """The multiplier before any interval was seen (1.0 clipped into the bounds)."""
        return min(max(BP, self.min_bp), self.max_bp)


def _counts(a: Any, name: str, n: int) -> I64:
    try:
        return int_column(a, name, n=n)
    except ValueError as e:
        raise MarketError(f"surge: {e}") from e


@dataclass(slots=True)
class SurgePricer:
    """The stateful surge rule: call :meth:`update` at the start of every interval with per-zone counts.

    Parameters
    ----------
    params : SurgeParams
    n_zones : int
        Number of zones (> 0); counts are given per zone, in zone order.
    start_s : int
        Time of the first interval's start (for :meth:`table`); any clock the caller uses.
    """

    params: SurgeParams
    n_zones: int
    start_s: int = 0
    _smoothed: NDArray[np.float64] = field(init=False, repr=False)
    _history: list[I64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.n_zones, bool) or not isinstance(self.n_zones, int) or self.n_zones <= 0:
            raise MarketError(f"surge: n_zones must be a positive integer, got {self.n_zones!r}")
        self._smoothed = np.full(self.n_zones, self.params.neutral_bp / BP)
        self._history = []

    @property
    def intervals(self) -> int:
        """How many intervals have been priced."""
        return len(self._history)

    @property
    def smoothed(self) -> NDArray[np.float64]:
        """The smoothed multipliers ``m_k`` per zone (before rounding to ``step``), as plain multipliers."""
        return self._smoothed.copy()

    @property
    def current_bp(self) -> I64:
        """The published multipliers now (basis points per zone; neutral before the first update)."""
        if not self._history:
            return np.full(self.n_zones, self.params.neutral_bp, dtype=np.int64)
        return self._history[-1].copy()

    def update(self, open_requests: Any, available_vehicles: Any) -> I64:
        """Price the next interval from per-zone counts; return its published multipliers (basis points).

        Raises
        ------
        MarketError
            If a count is negative, not whole, or there is not one per zone (the state is then unchanged).
        """
        r = _counts(open_requests, "open_requests", self.n_zones).astype(np.float64)
        v = _counts(available_vehicles, "available_vehicles", self.n_zones).astype(np.float64)
        p = self.params
        lo, hi = p.min_bp / BP, p.max_bp / BP
        target = np.clip(1.0 + p.sensitivity * (r / np.maximum(v, 1.0) - p.threshold), lo, hi)
        smoothed = p.smoothing * target + (1.0 - p.smoothing) * self._smoothed
        # Float round-off could put a convex combination a hair outside the bounds: clip (no-op in exact maths).
        self._smoothed = np.clip(smoothed, lo, hi)
        steps = np.floor(self._smoothed * BP / p.step_bp + 0.5)  # half up, as money is rounded everywhere
        published = np.clip(steps.astype(np.int64) * p.step_bp, p.min_bp, p.max_bp)
        self._history.append(published)
        return published.copy()

    def table(self) -> SurgeTable:
        """Every interval priced so far, as a look-up table."""
        bp = np.stack(self._history) if self._history else np.empty((0, self.n_zones), dtype=np.int64)
        return SurgeTable(
            start_s=self.start_s, interval_s=self.params.interval_s, bp=bp, neutral_bp=self.params.neutral_bp
        )


@dataclass(frozen=True, slots=True, eq=False)
class SurgeTable:
    """Published multipliers by interval and zone: row ``k`` holds over ``[start + k * interval, start + (k + 1) *
    interval)``.

    Before the first interval, and for trips outside every zone (zone -1), the multiplier is ``neutral_bp``; after
    the last interval the last row holds.
    """

    start_s: int
    interval_s: int
    bp: I64
    neutral_bp: int = BP

    def __post_init__(self) -> None:
        bp = np.asarray(self.bp)
        if bp.ndim != 2 or not np.issubdtype(bp.dtype, np.integer):
            raise MarketError(f"surge table: bp must be a 2-d integer array (intervals x zones), got {bp.shape}")
        if self.interval_s <= 0:
            raise MarketError(f"surge table: interval_s must be > 0, got {self.interval_s}")
        if bp.size and (int(bp.min()) <= 0 or int(bp.max()) > MAX_SURGE_BP):
            raise MarketError("surge table: multipliers must be in (0, 10x]")
        frozen = bp.astype(np.int64)
        frozen.setflags(write=False)
        object.__setattr__(self, "bp", frozen)

    @property
    def n_zones(self) -> int:
        return int(self.bp.shape[1])

    def lookup(self, time_s: Any, zone: Any) -> I64:
        """The multiplier (basis points) for trips requested at ``time_s`` in ``zone`` (-1: no zone)."""
        t = np.asarray(time_s, dtype=np.int64)
        z = np.asarray(zone, dtype=np.int64)
        t, z = np.broadcast_arrays(t, z)
        if z.size and (int(z.min()) < -1 or int(z.max()) >= self.n_zones):
            raise MarketError(f"surge table: zone indices must be -1 or in 0..{self.n_zones - 1}")
        out = np.full(t.shape, self.neutral_bp, dtype=np.int64)
        if self.bp.shape[0] == 0:
            return out
        k = (t - self.start_s) // self.interval_s
        ok = (k >= 0) & (z >= 0)
        row = np.minimum(k[ok], self.bp.shape[0] - 1)
        out[ok] = self.bp[row, z[ok]]
        return out

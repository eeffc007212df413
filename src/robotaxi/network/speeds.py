"""Time-of-day speed factors.

A :class:`SpeedProfile` is a travel-time multiplier per time slot of the day (1, 24 or 96 slots: constant, hourly or
15-minute). How it is applied, everywhere in the platform:

* the free-flow shortest paths and times are computed once;
* a trip departing at time ``t`` takes ``round(free_flow_time * factor(slot(t)))`` seconds, where ``slot(t)`` is the
  slot containing the departure time (``t`` in seconds since midnight, taken modulo one day);
* the route itself does not change with the factor (a uniform multiplier preserves which path is shortest).

This "static scaling at departure" keeps every table look-up one multiplication, and it is the form in which
zone-level congestion is usually calibrated (a ratio of observed to free-flow speed per time of day, e.g. from the
TLC-derived ``speeds.csv``). A later calibration may give per-zone factors; the interface stays the same.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import NetworkError

DAY_S = 86_400
_ALLOWED_SLOTS = (1, 24, 96)


@dataclass(frozen=True, slots=True)
class SpeedProfile:
    """Travel-time multipliers by time of day (1.0 = free flow, 1.5 = trips take 50 % longer)."""

    factors: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        if len(self.factors) not in _ALLOWED_SLOTS:
            raise ValueError(f"SpeedProfile needs 1, 24 (hourly) or 96 (15-minute) factors, got {len(self.factors)}")
        for i, f in enumerate(self.factors):
            if not (np.isfinite(f) and 0.1 <= f <= 20.0):
                raise ValueError(f"SpeedProfile factor {i} = {f!r} is outside the plausible range 0.1..20")

    @property
    def slot_seconds(self) -> int:
        return DAY_S // len(self.factors)

    @property
    def is_free_flow(self) -> bool:
        return all(f == 1.0 for f in self.factors)

    def factor_at(self, t_s: ArrayLike) -> NDArray[np.float64]:
        """The multiplier in force at each time ``t_s`` (seconds since midnight of day 0, any day)."""
        t = np.asarray(t_s, dtype=np.float64)
        slot = (np.floor(t).astype(np.int64) % DAY_S) // self.slot_seconds
        return np.asarray(self.factors, dtype=np.float64)[slot]

    def apply(self, free_flow_s: ArrayLike, depart_s: ArrayLike | None) -> NDArray[np.int32]:
        """Scale free-flow times (integer seconds) by the factor at departure, rounded to whole seconds."""
        base = np.asarray(free_flow_s)
        if depart_s is None or self.is_free_flow:
            return base.astype(np.int32, copy=False)
        scaled = np.rint(base * self.factor_at(depart_s))
        return scaled.astype(np.int32)

    @classmethod
    def from_file(cls, path: str | Path) -> SpeedProfile:
        """Read ``factors = [...]`` from a TOML file."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise NetworkError(f"speed profile file not found: {p}") from e
        except tomllib.TOMLDecodeError as e:
            raise NetworkError(f"{p}: not valid TOML: {e}") from e
        factors = data.get("factors")
        if not isinstance(factors, list) or not all(isinstance(f, int | float) for f in factors):
            raise NetworkError(f"{p}: expected `factors = [numbers...]` with 1, 24 or 96 entries")
        try:
            return cls(tuple(float(f) for f in factors))
        except ValueError as e:
            raise NetworkError(f"{p}: {e}") from e

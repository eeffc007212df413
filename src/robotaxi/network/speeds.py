"""Time-of-day speed factors.

A :class:`SpeedProfile` is a travel-time multiplier per time slot of the day (1, 24 or 96 slots: constant, hourly or
15-minute). How it is applied, everywhere in the platform:

* the free-flow shortest paths and times are computed once;
* a trip departing at time ``t`` takes ``round(free_flow_time * factor(slot(t)))`` seconds, where ``slot(t)`` is the
  slot containing the departure's **local** time of day: ``t`` is in epoch seconds (UTC) and the profile's
  ``timezone`` (IANA name, default UTC) turns it into wall-clock time, daylight saving time included. With the default
  UTC zone, seconds since midnight of 1970-01-01 are simply taken modulo one day;
* the route itself does not change with the factor (a uniform multiplier preserves which path is shortest).

This "static scaling at departure" keeps every table look-up one multiplication, and it is the form in which
zone-level congestion is usually calibrated (a ratio of observed to free-flow speed per time of day, e.g. from the
TLC-derived ``speeds.csv``). A later calibration may give per-zone factors; the interface stays the same.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import NetworkError

DAY_S = 86_400
_ALLOWED_SLOTS = (1, 24, 96)


class LocalClock:
    """Epoch seconds -> local seconds since midnight in one IANA time zone, vectorised.

    The UTC offsets of each year touched are found once (hourly probes, then bisection to the exact second of
    every change) and looked up with ``searchsorted``; the offset interval last used is kept for the common case
    of many queries within one day.
    """

    __slots__ = ("_bounds", "_last", "_offsets", "_utc", "_years", "_zone")

    def __init__(self, timezone: str) -> None:
        try:
            self._zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown IANA time zone {timezone!r}") from e
        self._utc = timezone in ("UTC", "Etc/UTC")
        self._years: tuple[int, int] | None = None
        self._bounds = np.empty(0, np.int64)  # epoch second at which each offset interval starts
        self._offsets = np.zeros(1, np.int64)
        self._last = (1, 0, 0)  # (lo, hi, offset): an interval known to have one offset

    def _offset(self, t: int) -> int:
        off = dt.datetime.fromtimestamp(t, self._zone).utcoffset()
        return int(off.total_seconds()) if off is not None else 0

    def _prepare(self, t_min: int, t_max: int) -> None:
        y0 = dt.datetime.fromtimestamp(t_min, dt.UTC).year - 1
        y1 = dt.datetime.fromtimestamp(t_max, dt.UTC).year + 1
        if self._years is not None and self._years[0] <= y0 and y1 <= self._years[1]:
            return
        lo = int(dt.datetime(y0, 1, 1, tzinfo=dt.UTC).timestamp())
        hi = int(dt.datetime(y1, 12, 31, 23, tzinfo=dt.UTC).timestamp())
        probes = list(range(lo, hi + 1, 3600))
        offs = [self._offset(p) for p in probes]
        bounds, values = [lo], [offs[0]]
        for i in range(1, len(probes)):
            if offs[i] != offs[i - 1]:
                a, b = probes[i - 1], probes[i]  # the change happens in (a, b]
                while b - a > 1:
                    mid = (a + b) // 2
                    a, b = (mid, b) if self._offset(mid) == offs[i - 1] else (a, mid)
                bounds.append(b)
                values.append(offs[i])
        self._bounds = np.asarray(bounds, np.int64)
        self._offsets = np.asarray(values, np.int64)
        self._years = (y0, y1)

    def second_of_day(self, t: int) -> int:
        """:meth:`seconds_of_day` for one whole epoch second."""
        if self._utc:
            return t % DAY_S
        lo, hi, off = self._last
        if lo <= t < hi:
            return (t + off) % DAY_S
        return int(self.seconds_of_day(t))

    def seconds_of_day(self, t_s: ArrayLike) -> NDArray[np.int64]:
        """Local wall-clock seconds since midnight for each epoch second in ``t_s``."""
        t = np.floor(np.asarray(t_s, dtype=np.float64)).astype(np.int64)
        if self._utc or t.size == 0:
            return t % DAY_S
        t_min, t_max = int(t.min()), int(t.max())
        lo, hi, off = self._last
        if not (lo <= t_min and t_max < hi):
            self._prepare(t_min, t_max)
            k = int(np.searchsorted(self._bounds, t_min, side="right")) - 1
            lo = int(self._bounds[k])
            hi = int(self._bounds[k + 1]) if k + 1 < self._bounds.size else 2**62
            off = int(self._offsets[k])
            self._last = (lo, hi, off)
        if lo <= t_min and t_max < hi:
            return (t + off) % DAY_S
        k_all = np.searchsorted(self._bounds, t, side="right") - 1
        return (t + self._offsets[k_all]) % DAY_S


@dataclass(frozen=True, slots=True)
class SpeedProfile:
    """Travel-time multipliers by local time of day (1.0 = free flow, 1.5 = trips take 50 % longer).

    Parameters
    ----------
    factors : tuple of float
        1, 24 or 96 multipliers (constant, hourly, 15-minute slots of the local day).
    timezone : str
        IANA time zone of the service area; departure times given to :meth:`apply` are epoch seconds.
    """

    factors: tuple[float, ...] = (1.0,)
    timezone: str = "UTC"
    _clock: LocalClock = field(init=False, repr=False, compare=False)
    _free: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_clock", LocalClock(self.timezone))
        object.__setattr__(self, "_free", all(f == 1.0 for f in self.factors))
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
        return self._free

    def with_timezone(self, timezone: str) -> SpeedProfile:
        """The same factors read in another time zone."""
        return SpeedProfile(self.factors, timezone)

    def factor_at1(self, t_s: int) -> float:
        """:meth:`factor_at` for one whole epoch second (no array overhead)."""
        return self.factors[self._clock.second_of_day(int(t_s)) * len(self.factors) // DAY_S]

    def factor_at(self, t_s: ArrayLike) -> NDArray[np.float64]:
        """The multiplier in force at each epoch second ``t_s`` (local time of day in :attr:`timezone`)."""
        slot = self._clock.seconds_of_day(t_s) // self.slot_seconds
        return np.asarray(self.factors, dtype=np.float64)[slot]

    def apply(self, free_flow_s: ArrayLike, depart_s: ArrayLike | None) -> NDArray[np.int32]:
        """Scale free-flow times (integer seconds) by the factor at departure, rounded to whole seconds."""
        base = np.asarray(free_flow_s)
        if depart_s is None or self.is_free_flow:
            return base.astype(np.int32, copy=False)
        scaled = np.rint(base * self.factor_at(depart_s))
        return scaled.astype(np.int32)

    @classmethod
    def from_file(cls, path: str | Path, timezone: str = "UTC") -> SpeedProfile:
        """Read ``factors = [...]`` from a TOML file; the factors are for local time in ``timezone``."""
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
            return cls(tuple(float(f) for f in factors), timezone)
        except ValueError as e:
            raise NetworkError(f"{p}: {e}") from e

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
TLC-derived ``speeds.csv``).

Road classes and a per-leg overhead (profile format 2, fitted on trip records by ``robotaxi network calibrate
--trips``): a profile may give ``major_factors`` for **major roads** (edges whose free-flow speed is at least
``major_min_speed_kmh``, 45 km/h by default: with the OSM class defaults that is motorways, trunks, primary and
secondary roads; in Manhattan, where nearly every street is tagged 25 mph, the expressways and 30+ mph drives) while
``factors`` then apply to the local streets, and an ``overhead_s`` added once to every leg between two different
nodes. A leg whose fastest free-flow route spends ``L`` seconds on local streets and ``M`` on major roads takes::

    round(f_local(slot) * L + f_major(slot) * M) + overhead_s

seconds when it departs in ``slot``. The route is still the free-flow fastest one (the router keeps ``L + M`` and
``M`` per node pair); only its duration depends on the time of day. The overhead is the time a trip loses getting
into and out of traffic and finding the kerb; a vehicle re-routed at an intermediate node does not pay it for the
abandoned remainder, since it is paid on arrival (see :meth:`robotaxi.network.Router.divert`).

Zone factors (format 3): ``zone_factors`` give a multiplier ``g`` per zone of ``zones_file`` (TLC taxi zones); a leg
from a node of zone ``a`` to a node of zone ``b`` takes ``round(sqrt(g_a * g_b) * (f_local * L + f_major * M)) +
overhead_s``. The router turns them into one ``sqrt(g)`` per node when it is built (:meth:`SpeedProfile.
node_multipliers`), so a look-up costs two more gathers from a node array.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import NetworkError

if TYPE_CHECKING:
    from .graph import RoadNetwork

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


#: Keys of a speed-profile TOML file (format 2; a file with only ``factors`` is format 1; the ``zone`` keys are
#: format 3).
PROFILE_KEYS = (
    "factors",
    "major_factors",
    "overhead_s",
    "major_min_speed_kmh",
    "zones_file",
    "zones_id_property",
    "zone_factors",
)
#: Default free-flow speed (km/h) from which an edge counts as a major road.
MAJOR_MIN_SPEED_KMH = 45.0
_MAX_OVERHEAD_S = 1800.0


def _check_factors(name: str, factors: tuple[float, ...]) -> None:
    if len(factors) not in _ALLOWED_SLOTS:
        raise ValueError(f"SpeedProfile {name} needs 1, 24 (hourly) or 96 (15-minute) factors, got {len(factors)}")
    for i, f in enumerate(factors):
        if not (np.isfinite(f) and 0.1 <= f <= 20.0):
            raise ValueError(f"SpeedProfile {name}[{i}] = {f!r} is outside the plausible range 0.1..20")


@dataclass(frozen=True, slots=True)
class SpeedProfile:
    """Travel-time multipliers by local time of day (1.0 = free flow, 1.5 = trips take 50 % longer).

    Parameters
    ----------
    factors : tuple of float
        1, 24 or 96 multipliers (constant, hourly, 15-minute slots of the local day): for every road, or for the
        local streets when ``major_factors`` is given.
    timezone : str
        IANA time zone of the service area; departure times given to :meth:`apply` are epoch seconds.
    major_factors : tuple of float or None
        Multipliers for major roads (edges with a free-flow speed of at least ``major_min_speed_kmh``), as many as
        ``factors``.
    overhead_s : float
        Seconds added once to every leg between two different nodes (rounded to whole seconds) when a departure
        time is given: getting into and out of traffic, finding the kerb.
    major_min_speed_kmh : float
        Free-flow speed from which an edge is a major road.
    zone_factors : tuple of (int, float)
        Per zone id, a multiplier ``g`` of the driving time of legs that start or end in the zone: a leg from zone
        ``a`` to zone ``b`` drives ``sqrt(g_a * g_b)`` times the class factors' time (zones not listed: 1.0). The
        router finds each node's zone in ``zones_file`` (see :meth:`node_multipliers`).
    zones_file : str or None
        The zone polygons (GeoJSON or shapefile) the zone ids refer to; required with ``zone_factors``.
    zones_id_property : str or None
        The zone id property of ``zones_file`` (default: the zone reader's detection, e.g. ``LocationID``).
    """

    factors: tuple[float, ...] = (1.0,)
    timezone: str = "UTC"
    major_factors: tuple[float, ...] | None = None
    overhead_s: float = 0.0
    major_min_speed_kmh: float = MAJOR_MIN_SPEED_KMH
    zone_factors: tuple[tuple[int, float], ...] = ()
    zones_file: str | None = None
    zones_id_property: str | None = None
    _clock: LocalClock = field(init=False, repr=False, compare=False)
    _free: bool = field(init=False, repr=False, compare=False)
    _fl: NDArray[np.float64] = field(init=False, repr=False, compare=False)  # factors, as an array
    _fm: NDArray[np.float64] = field(init=False, repr=False, compare=False)  # major factors (or factors)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_clock", LocalClock(self.timezone))
        _check_factors("factors", self.factors)
        if self.major_factors is not None:
            _check_factors("major_factors", self.major_factors)
            if len(self.major_factors) != len(self.factors):
                raise ValueError(
                    f"SpeedProfile major_factors has {len(self.major_factors)} slots but factors has "
                    f"{len(self.factors)}: give both per slot of the same length"
                )
        if not (np.isfinite(self.overhead_s) and 0.0 <= self.overhead_s <= _MAX_OVERHEAD_S):
            raise ValueError(f"SpeedProfile overhead_s = {self.overhead_s!r} must be 0..{_MAX_OVERHEAD_S:.0f} seconds")
        if not (np.isfinite(self.major_min_speed_kmh) and self.major_min_speed_kmh > 0):
            raise ValueError(f"SpeedProfile major_min_speed_kmh = {self.major_min_speed_kmh!r} must be > 0")
        seen: set[int] = set()
        for item in self.zone_factors:
            if not (isinstance(item, tuple) and len(item) == 2):
                raise ValueError(f"SpeedProfile zone_factors must be (zone id, factor) pairs, got {item!r}")
            zone, g = item
            if isinstance(zone, bool) or not isinstance(zone, int | np.integer):
                raise ValueError(f"SpeedProfile zone_factors: zone id {zone!r} must be an integer")
            if zone in seen:
                raise ValueError(f"SpeedProfile zone_factors: zone {zone} is given twice")
            seen.add(int(zone))
            if not (np.isfinite(g) and 0.1 <= g <= 10.0):
                raise ValueError(
                    f"SpeedProfile zone_factors: zone {zone} = {g!r} is outside the plausible range 0.1..10"
                )
        if self.zone_factors and not self.zones_file:
            raise ValueError("SpeedProfile zone_factors need zones_file, the zone polygons their ids refer to")
        free = all(f == 1.0 for f in self.factors) and self.overhead_s == 0.0
        free = free and (self.major_factors is None or all(f == 1.0 for f in self.major_factors))
        free = free and all(g == 1.0 for _, g in self.zone_factors)
        object.__setattr__(self, "_free", free)
        object.__setattr__(self, "_fl", np.asarray(self.factors, dtype=np.float64))
        object.__setattr__(self, "_fm", np.asarray(self.major_factors or self.factors, dtype=np.float64))

    @property
    def slot_seconds(self) -> int:
        return DAY_S // len(self.factors)

    @property
    def is_free_flow(self) -> bool:
        return self._free

    @property
    def has_classes(self) -> bool:
        """True when major roads have factors of their own (the router then keeps per-class route times)."""
        return self.major_factors is not None

    @property
    def has_zones(self) -> bool:
        """True when legs are scaled by the zones of their ends (the router then keeps a multiplier per node)."""
        return bool(self.zone_factors)

    def node_multipliers(self, network: RoadNetwork) -> NDArray[np.float64]:
        """Per node of ``network``, ``sqrt(g)`` of its zone (1.0 outside every listed zone): a leg's driving time is
        multiplied by the product of its two ends' values.

        Nodes are given zones as the demand sampler gives them (:meth:`robotaxi.demand.zones.ZoneNodes.build`).

        Raises
        ------
        NetworkError
            If the zones file cannot be read, or a listed zone is not in it.
        """
        from ..demand.zones import ZoneNodes, Zones  # the zone reader lives with the demand loaders
        from ..errors import DemandError

        out = np.ones(network.n_nodes, dtype=np.float64)
        if not self.zone_factors:
            return out
        try:
            zones = Zones.from_file(str(self.zones_file), id_field=self.zones_id_property)
        except DemandError as e:
            raise NetworkError(f"speed profile zones_file: {e}") from e
        known = set(np.asarray(zones.ids).tolist())
        missing = [z for z, _ in self.zone_factors if z not in known]
        if missing:
            raise NetworkError(f"speed profile zone_factors: zone {missing[0]} is not in {self.zones_file}")
        zn = ZoneNodes.build(zones, network)
        for zone, g in self.zone_factors:
            k = int(zones.index_of(np.array([zone]))[0])
            out[zn.nodes[zn.indptr[k] : zn.indptr[k + 1]]] = np.sqrt(g)
        return out

    @property
    def overhead_whole_s(self) -> int:
        """The per-leg overhead in whole seconds, as legs get it."""
        return round(self.overhead_s)

    def with_timezone(self, timezone: str) -> SpeedProfile:
        """The same factors read in another time zone."""
        return SpeedProfile(
            self.factors,
            timezone,
            self.major_factors,
            self.overhead_s,
            self.major_min_speed_kmh,
            self.zone_factors,
            self.zones_file,
            self.zones_id_property,
        )

    def _slot1(self, t_s: int) -> int:
        return self._clock.second_of_day(int(t_s)) * len(self.factors) // DAY_S

    def factor_at1(self, t_s: int) -> float:
        """:meth:`factor_at` for one whole epoch second (no array overhead)."""
        return self.factors[self._slot1(t_s)]

    def factors_at1(self, t_s: int) -> tuple[float, float]:
        """(local-street factor, major-road factor) in force at one epoch second."""
        k = self._slot1(t_s)
        f = self.factors[k]
        return f, (self.major_factors[k] if self.major_factors is not None else f)

    def factor_at(self, t_s: ArrayLike) -> NDArray[np.float64]:
        """The multiplier in force at each epoch second ``t_s`` (local time of day in :attr:`timezone`)."""
        return self._fl[self._slots(t_s)]

    def major_factor_at(self, t_s: ArrayLike) -> NDArray[np.float64]:
        """The major-road multiplier in force at each epoch second (``factor_at`` without road classes)."""
        return self._fm[self._slots(t_s)]

    def _slots(self, t_s: ArrayLike) -> NDArray[np.int64]:
        """The factor slot in force at each epoch second."""
        out: NDArray[np.int64] = self._clock.seconds_of_day(t_s) // self.slot_seconds
        return out

    def apply(
        self,
        free_flow_s: ArrayLike,
        depart_s: ArrayLike | None,
        major_s: ArrayLike | None = None,
        zone_scale: ArrayLike | None = None,
    ) -> NDArray[np.int32]:
        """Leg times at departure ``depart_s``: free-flow times (integer seconds) scaled and the overhead added.

        ``major_s`` is the part of each free-flow time spent on major roads (needed when :attr:`has_classes`);
        ``zone_scale`` the product of the legs' two ends' :meth:`node_multipliers` (needed when :attr:`has_zones`).
        Without a departure time the free-flow times are returned unchanged.
        """
        base = np.asarray(free_flow_s)
        if depart_s is None or self.is_free_flow:
            return base.astype(np.int32, copy=False)
        if self.major_factors is not None and major_s is None:
            raise ValueError("SpeedProfile.apply: a profile with road classes needs the major-road seconds")
        if self.zone_factors and zone_scale is None:
            raise ValueError("SpeedProfile.apply: a profile with zone factors needs the legs' zone scale")
        # In place, one float64 array for the whole computation (these arrays can be requests x vehicles large);
        # the operations and their order are those of the formula, so the seconds are exactly the same.
        slot = self._slots(depart_s)
        fl = self._fl[slot]
        drive = np.asarray(np.multiply(fl, base, dtype=np.float64))
        if self.major_factors is not None:
            drive += (self._fm[slot] - fl) * np.asarray(major_s)
        if self.zone_factors:
            drive *= np.asarray(zone_scale)
        np.rint(drive, out=drive)
        if self.overhead_s:
            np.add(drive, self.overhead_whole_s, out=drive, where=np.broadcast_to(base > 0, drive.shape))
        out: NDArray[np.int32] = drive.astype(np.int32)
        return out[()] if out.ndim == 0 else out  # one leg: a NumPy scalar, as NumPy's own arithmetic gives

    def apply1(self, free_flow_s: int, depart_s: int, major_s: int = 0, zone_scale: float = 1.0) -> int:
        """:meth:`apply` for one leg (plain ints; ``zone_scale`` as there, 1.0 without zone factors)."""
        if self.is_free_flow or free_flow_s == 0:
            return free_flow_s
        if self.major_factors is None:
            drive = free_flow_s * self.factor_at1(depart_s)
        else:
            fl, fm = self.factors_at1(depart_s)
            drive = fl * free_flow_s + (fm - fl) * major_s
        return round(drive * zone_scale if self.zone_factors else drive) + self.overhead_whole_s

    # ------------------------------------------------------------------ files
    @classmethod
    def from_file(cls, path: str | Path, timezone: str = "UTC") -> SpeedProfile:
        """Read a profile TOML file; the factors are for local time in ``timezone``.

        Format 1 is ``factors = [...]``; format 2 adds ``major_factors = [...]``, ``overhead_s`` and
        ``major_min_speed_kmh``; format 3 adds ``zones_file`` (relative to the profile's folder, then its parents),
        ``zones_id_property`` and a ``[zone_factors]`` table of ``"zone id" = g`` (see :data:`PROFILE_KEYS`). Any
        other key is an error naming it.
        """
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise NetworkError(f"speed profile file not found: {p}") from e
        except IsADirectoryError as e:
            raise NetworkError(f"speed profile {p} is a folder, not a TOML file") from e
        except UnicodeDecodeError as e:
            raise NetworkError(f"{p}: not a text (UTF-8) TOML file: {e}") from e
        except tomllib.TOMLDecodeError as e:
            raise NetworkError(f"{p}: not valid TOML: {e}") from e
        unknown = sorted(set(data) - set(PROFILE_KEYS))
        if unknown:
            raise NetworkError(
                f"{p}: unknown key {unknown[0]!r} in the speed profile (allowed: {', '.join(PROFILE_KEYS)})"
            )
        factors = _read_list(p, data, "factors", required=True) or ()
        major = _read_list(p, data, "major_factors", required=False)
        kwargs: dict[str, float] = {}
        for key in ("overhead_s", "major_min_speed_kmh"):
            if key in data:
                v = data[key]
                if isinstance(v, bool) or not isinstance(v, int | float):
                    raise NetworkError(f"{p}: {key} must be a number, got {v!r}")
                kwargs[key] = float(v)
        zone_factors, zones_file, id_property = _read_zones(p, data)
        try:
            return cls(
                factors,
                timezone,
                major,
                **kwargs,
                zone_factors=zone_factors,
                zones_file=zones_file,
                zones_id_property=id_property,
            )
        except ValueError as e:
            raise NetworkError(f"{p}: {e}") from e

    def to_toml(self, comment: str = "", base_dir: Path | None = None) -> str:
        """The profile as TOML text that :meth:`from_file` reads back (the time zone belongs to the scenario).

        ``zones_file`` is written relative to ``base_dir`` (the folder the profile is written to) when given.
        """
        lines = [f"# {line}".rstrip() for line in comment.splitlines()] if comment else []
        if self.overhead_s or self.major_factors is not None:
            lines.append(f"overhead_s = {self.overhead_s:.1f}   # added once to every leg between two nodes")
        if self.major_factors is not None:
            lines.append(
                f"major_min_speed_kmh = {self.major_min_speed_kmh:g}   # edges this fast (free flow) are major roads"
            )
            lines.append("# local streets:")
        lines.append(_toml_list("factors", self.factors))
        if self.major_factors is not None:
            lines.append("# major roads:")
            lines.append(_toml_list("major_factors", self.major_factors))
        if self.zone_factors:
            zf = str(self.zones_file)
            if base_dir is not None and Path(zf).is_absolute():
                zf = os.path.relpath(zf, base_dir)
            lines.append("# a leg from zone a to zone b drives sqrt(g_a * g_b) times as long (zones not listed: 1):")
            lines.append(f"zones_file = {_toml_str(zf)}   # relative to this file's folder (then its parents)")
            if self.zones_id_property:
                lines.append(f"zones_id_property = {_toml_str(self.zones_id_property)}")
            lines.append("[zone_factors]")
            lines.extend(f'"{z}" = {g:.3f}' for z, g in sorted(self.zone_factors))
        return "\n".join(lines) + "\n"


def _toml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _read_zones(p: Path, data: dict[str, object]) -> tuple[tuple[tuple[int, float], ...], str | None, str | None]:
    """``zone_factors``, ``zones_file`` (resolved against the profile's folder, then its parents) and
    ``zones_id_property`` of a profile file."""
    for key in ("zones_file", "zones_id_property"):
        if key in data and not (isinstance(data[key], str) and data[key]):
            raise NetworkError(f"{p}: {key} must be a non-empty string, got {data[key]!r}")
    raw = data.get("zone_factors", {})
    if not isinstance(raw, dict):
        raise NetworkError(f'{p}: zone_factors must be a table of "zone id" = factor, got {raw!r}')
    pairs: list[tuple[int, float]] = []
    for key, value in raw.items():
        try:
            zone = int(key)
        except ValueError:
            raise NetworkError(f"{p}: zone_factors: {key!r} is not an integer zone id") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise NetworkError(f"{p}: zone_factors: zone {key} must be a number, got {value!r}")
        pairs.append((zone, float(value)))
    zones_file = data.get("zones_file")
    id_property = data.get("zones_id_property")
    if pairs and zones_file is None:
        raise NetworkError(f"{p}: zone_factors need zones_file, the zone polygons their ids refer to")
    resolved: str | None = None
    if isinstance(zones_file, str):
        zp = Path(zones_file).expanduser()
        if zp.is_absolute():
            found: Path | None = zp if zp.exists() else None
        else:
            base = p.resolve().parent
            found = next((f / zp for f in (base, *base.parents) if (f / zp).exists()), None)
        if found is None:
            raise NetworkError(
                f"{p}: zones_file not found: {zones_file} (looked in {p.resolve().parent} and its parents)"
            )
        resolved = str(found)
    return tuple(pairs), resolved, id_property if isinstance(id_property, str) else None


def _read_list(p: Path, data: dict[str, object], key: str, *, required: bool) -> tuple[float, ...] | None:
    if key not in data:
        if required:
            raise NetworkError(f"{p}: no `{key} = [...]` in the speed profile (1, 24 or 96 numbers)")
        return None
    v = data[key]
    if not isinstance(v, list) or not all(isinstance(f, int | float) and not isinstance(f, bool) for f in v):
        raise NetworkError(f"{p}: {key} must be a list of numbers with 1, 24 or 96 entries")
    return tuple(float(f) for f in v)


def _toml_list(key: str, values: tuple[float, ...], per_line: int = 8) -> str:
    body = ",\n".join(
        "    " + ", ".join(f"{f:.3f}" for f in values[i : i + per_line]) for i in range(0, len(values), per_line)
    )
    return f"{key} = [\n{body},\n]"

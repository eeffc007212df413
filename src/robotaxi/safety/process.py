"""Disengagements as a Poisson process over the miles a vehicle drives.

An operator disengages on average once every ``m`` miles; ``m`` may depend on the DMV location type of the road
and be scaled by the hour of day. Over a stretch of ``L`` miles with a constant rate ``1/m`` the number of events
is Poisson(``L / m``) and, given the number, their positions are independent and uniform on the stretch (the
order statistics property of the homogeneous Poisson process). Stretches are independent, so the process can be
drawn leg by leg as the vehicle drives (:meth:`DisengagementProcess.draw`, what the simulator will call) or for a
whole run afterwards (:meth:`DisengagementProcess.draw_many` over ``legs.parquet`` segments); the two consume the
random generator differently, so they give different (equally distributed) draws for one seed.

The profile of an operator (:class:`SafetyProfile`) also says who is on board and who ends autonomous mode;
:meth:`SafetyProfiles.from_file` reads them from TOML (``docs/safety.md``).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..errors import SafetyError
from .records import Initiator, LocationType

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

__all__ = ["DisengagementProcess", "DisengagementRates", "SafetyProfile", "SafetyProfiles"]

METRES_PER_MILE = 1609.344


def _positive(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{field}: must be a number > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class DisengagementRates:
    """Miles per disengagement, optionally by DMV location type, scaled by hour of day.

    Parameters
    ----------
    miles_per_disengagement : float
        The base figure (> 0).
    by_location : mapping of LocationType to float
        Miles per disengagement on those location types instead of the base.
    hour_factors : tuple of 24 floats, optional
        Multipliers of the *rate* by local hour 0-23 (2.0 = twice as many disengagements per mile in that hour);
        empty means 1 every hour.
    """

    miles_per_disengagement: float
    by_location: Mapping[LocationType, float] = field(default_factory=dict)
    hour_factors: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "miles_per_disengagement", _positive(self.miles_per_disengagement, "miles_per_disengagement")
        )
        table: dict[LocationType, float] = {}
        for key, value in self.by_location.items():
            loc = LocationType.parse(key, "by_location")
            table[loc] = _positive(value, f"by_location.{loc.value}")
        object.__setattr__(self, "by_location", MappingProxyType(table))
        factors = tuple(self.hour_factors)
        if factors and len(factors) != 24:
            raise ValueError(f"hour_factors: expected 24 values (hours 0-23), got {len(factors)}")
        for h, f in enumerate(factors):
            if isinstance(f, bool) or not isinstance(f, int | float) or not math.isfinite(f) or f < 0:
                raise ValueError(f"hour_factors[{h}]: must be a number >= 0, got {f!r}")
        object.__setattr__(self, "hour_factors", tuple(float(f) for f in factors))

    def max_per_mile(self) -> float:
        """The highest rate over every location type and hour (the envelope for thinning)."""
        slowest = min([self.miles_per_disengagement, *self.by_location.values()])
        return (max(self.hour_factors) if self.hour_factors else 1.0) / slowest

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with location codes as keys."""
        return {
            "miles_per_disengagement": self.miles_per_disengagement,
            "by_location": {k.value: v for k, v in self.by_location.items()},
            "hour_factors": list(self.hour_factors),
        }

    def per_mile(self, location: LocationType, hour: int) -> float:
        """Disengagements per mile on ``location`` in local ``hour`` (any integer: taken modulo 24)."""
        base = 1.0 / self.by_location.get(location, self.miles_per_disengagement)
        return base * (self.hour_factors[hour % 24] if self.hour_factors else 1.0)


@dataclass(frozen=True, slots=True)
class SafetyProfile:
    """How one autonomous operator disengages, and what its DMV report says about the vehicles.

    Parameters
    ----------
    operator : str
    rates : DisengagementRates
    permit_number : str
        The DMV testing / deployment permit number printed in the report.
    driver_present : bool
        Whether a safety (test) driver is on board.
    can_operate_without_driver : bool
        Whether the vehicles are capable of driverless operation (DMV column).
    initiators : mapping of Initiator to float, optional
        Shares of who ends autonomous mode (normalised to sum 1). A test driver needs ``driver_present``. Default:
        half AV system, half test driver with a driver on board; half AV system, half remote operator without.
    """

    operator: str
    rates: DisengagementRates
    permit_number: str = "SIM-0000"
    driver_present: bool = True
    can_operate_without_driver: bool = False
    initiators: Mapping[Initiator, float] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.rates, DisengagementRates):
            raise ValueError(f"rates: expected DisengagementRates, got {self.rates!r}")
        for key in ("driver_present", "can_operate_without_driver"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"{key}: expected true or false, got {getattr(self, key)!r}")
        if not self.operator.strip():
            raise ValueError("operator: must not be empty")
        if not self.permit_number.strip():
            raise ValueError("permit_number: must not be empty")
        given = self.initiators
        if given is None:
            other = Initiator.TEST_DRIVER if self.driver_present else Initiator.REMOTE_OPERATOR
            given = {Initiator.AV_SYSTEM: 0.5, other: 0.5}
        shares: dict[Initiator, float] = {}
        for code, value in given.items():
            who = Initiator.parse(code, "initiators")
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ValueError(f"initiators.{who.value}: must be a share >= 0, got {value!r}")
            shares[who] = float(value)
        total = sum(shares.values())
        if not total > 0:
            raise ValueError("initiators: at least one share must be > 0")
        if shares.get(Initiator.TEST_DRIVER, 0.0) > 0 and not self.driver_present:
            raise ValueError("initiators.test_driver: no driver is present to initiate a disengagement")
        object.__setattr__(self, "initiators", MappingProxyType({k: v / total for k, v in shares.items() if v > 0}))


class DisengagementProcess:
    """Draw disengagements along driven miles for one operator (pure: randomness comes from ``rng``)."""

    def __init__(self, rates: DisengagementRates) -> None:
        self.rates = rates

    def draw(self, leg_miles: float, location: LocationType, hour: int, rng: np.random.Generator) -> NDArray[Any]:
        """Offsets (miles from the stretch's start, sorted) of the disengagements on one stretch of road.

        Raises
        ------
        ValueError
            On negative or non-finite miles.
        """
        import numpy as np

        if not (math.isfinite(leg_miles) and leg_miles >= 0):
            raise ValueError(f"leg_miles: must be a finite number >= 0, got {leg_miles!r}")
        n = int(rng.poisson(leg_miles * self.rates.per_mile(location, hour)))
        return np.sort(rng.uniform(0.0, leg_miles, n))

    def draw_many(
        self,
        miles: ArrayLike,
        locations: ArrayLike,
        hours: ArrayLike,
        rng: np.random.Generator,
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Disengagements along many stretches at once.

        Parameters
        ----------
        miles : array of float
            Length of each stretch (>= 0).
        locations : array of LocationType (or their codes)
        hours : array of int
            Local hour at the start of each stretch.

        Returns
        -------
        stretch : array of int64
            Index of the stretch of each event (ascending).
        offset : array of float64
            Miles from the stretch's start (ascending within a stretch).
        """
        import numpy as np

        m = np.asarray(miles, dtype=np.float64)
        h = np.asarray(hours, dtype=np.int64)
        locs = np.asarray(locations, dtype=object)
        if not (m.shape == h.shape == locs.shape and m.ndim == 1):
            raise ValueError("miles, locations, hours: expected three 1-d arrays of the same length")
        if m.size and not (np.all(np.isfinite(m)) and m.min() >= 0):
            raise ValueError("miles: every stretch must be finite and >= 0")
        rate = np.empty(m.size)
        for code in set(locs.tolist()):
            loc = LocationType.parse(code, "locations")
            sel = locs == code
            base = 1.0 / self.rates.by_location.get(loc, self.rates.miles_per_disengagement)
            factor = np.asarray(self.rates.hour_factors)[h[sel] % 24] if self.rates.hour_factors else 1.0
            rate[sel] = base * factor
        counts = rng.poisson(m * rate)
        stretch = np.repeat(np.arange(m.size, dtype=np.int64), counts)
        offset = rng.uniform(0.0, 1.0, stretch.size) * m[stretch]
        order = np.lexsort((offset, stretch))
        return stretch[order], offset[order]


@dataclass(frozen=True, slots=True)
class SafetyProfiles:
    """The safety profile of each autonomous operator, read from a TOML file (``docs/safety.md``)."""

    profiles: Mapping[str, SafetyProfile]

    def __post_init__(self) -> None:
        object.__setattr__(self, "profiles", MappingProxyType(dict(self.profiles)))

    @classmethod
    def from_file(cls, path: str | Path) -> SafetyProfiles:
        """Read ``[operators.NAME]`` tables; every key is checked.

        Raises
        ------
        SafetyError
            If the file is missing, not TOML, or a key is unknown or invalid (the message names it).
        """
        p = Path(path)
        try:
            table = tomllib.loads(p.read_text(encoding="utf-8"))
        except OSError as e:
            raise SafetyError(f"cannot read safety profiles {p}: {e.strerror}") from e
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise SafetyError(f"{p}: not valid TOML: {e}") from e
        try:
            return cls.from_mapping(table)
        except ValueError as e:
            raise SafetyError(f"{p}: {e}") from e

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> SafetyProfiles:
        """Parse the TOML structure; ``ValueError`` names the bad key."""
        unknown = set(table) - {"operators"}
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))} (expected [operators.NAME] tables)")
        ops = table.get("operators")
        if not isinstance(ops, Mapping) or not ops:
            raise ValueError("operators: expected at least one [operators.NAME] table")
        return cls({name: _profile(name, t) for name, t in ops.items()})


_PROFILE_KEYS = {
    "miles_per_disengagement",
    "by_location",
    "hour_factors",
    "permit_number",
    "driver_present",
    "can_operate_without_driver",
    "initiators",
}


def _profile(name: str, t: object) -> SafetyProfile:
    where = f"operators.{name}"
    if not isinstance(t, Mapping):
        raise ValueError(f"{where}: expected a table")
    unknown = set(t) - _PROFILE_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    if "miles_per_disengagement" not in t:
        raise ValueError(f"{where}.miles_per_disengagement: missing")
    for key in ("driver_present", "can_operate_without_driver"):
        if key in t and not isinstance(t[key], bool):
            raise ValueError(f"{where}.{key}: expected true or false, got {t[key]!r}")
    for key in ("by_location", "initiators"):
        if key in t and not isinstance(t[key], Mapping):
            raise ValueError(f"{where}.{key}: expected a table")
    if "permit_number" in t and not isinstance(t["permit_number"], str):
        raise ValueError(f"{where}.permit_number: expected a string")
    if "hour_factors" in t and not isinstance(t["hour_factors"], list):
        raise ValueError(f"{where}.hour_factors: expected a list of 24 numbers")
    try:
        rates = DisengagementRates(
            t["miles_per_disengagement"], dict(t.get("by_location", {})), tuple(t.get("hour_factors", ()))
        )
        keys = ("permit_number", "driver_present", "can_operate_without_driver")
        extra: dict[str, Any] = {k: t[k] for k in keys if k in t}
        if "initiators" in t:
            extra["initiators"] = dict(t["initiators"])
        return SafetyProfile(name, rates, **extra)
    except ValueError as e:
        raise ValueError(f"{where}.{e}") from e

"""The one interface every demand source implements, and what a load returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ..network import RoadNetwork
from .requests import Requests
from .validation import LoadReport

#: What a seed may be: an int, a ready Generator (used as is), or None (fresh OS entropy: not reproducible).
Seed = int | np.random.Generator | None


def as_generator(seed: Seed) -> np.random.Generator:
    """The generator for ``seed``: a Generator is used as is, an int seeds a new PCG64 generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise ValueError(f"seed must be a non-negative int, a numpy Generator or None, got {seed!r}")
    return np.random.default_rng(seed)


@dataclass(frozen=True, slots=True, eq=False)
class TripFacts:
    """What trip records say beyond the request, one row per request of a :class:`DemandResult` (same order).

    Attributes
    ----------
    dropoff_s : int64
        Drop-off time in seconds since the requests' ``day_start`` (-1 when the file has none).
    trip_distance : float64
        The recorded trip distance in the file's unit (miles for TLC), NaN when missing or unreadable.
    o_zone, d_zone : int64
        Pickup and drop-off zone ids for zone-based files, -1 otherwise.
    """

    dropoff_s: NDArray[np.int64]
    trip_distance: NDArray[np.float64]
    o_zone: NDArray[np.int64]
    d_zone: NDArray[np.int64]

    def __post_init__(self) -> None:
        n = self.dropoff_s.shape[0]
        for name in ("trip_distance", "o_zone", "d_zone"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"TripFacts.{name} must have one value per trip ({n})")


@dataclass(frozen=True, slots=True, eq=False)
class DemandResult:
    """The requests a source produced and the report of how it got them.

    ``trips`` holds the recorded drop-off times, distances and zones of trip-record sources (None for others).
    """

    requests: Requests
    report: LoadReport
    trips: TripFacts | None = None

    def __post_init__(self) -> None:
        if len(self.requests) != self.report.requests:
            raise ValueError(
                f"DemandResult: the report counts {self.report.requests} requests but there are {len(self.requests)}"
            )
        if self.trips is not None and self.trips.dropoff_s.shape[0] != len(self.requests):
            raise ValueError("DemandResult: trips must have one row per request")


@runtime_checkable
class DemandSource(Protocol):
    """A source of ride requests for one service day.

    Implementations are frozen parameter objects; ``load`` reads or generates the requests for ``network``, drawing
    every random number from ``rng`` so that the same seed gives the same requests, byte for byte.
    """

    @property
    def kind(self) -> str:
        """Short name of the source type ("odcounts", "tlc", "table", "synthetic")."""
        ...

    def load(self, network: RoadNetwork, rng: np.random.Generator) -> DemandResult:
        """Produce the requests, snapped to ``network``, with a validation report.

        Raises
        ------
        DemandError
            If the input is missing or is not what it claims to be.
        """
        ...

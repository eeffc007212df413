"""The one interface every demand source implements, and what a load returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

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
class DemandResult:
    """The requests a source produced and the report of how it got them."""

    requests: Requests
    report: LoadReport

    def __post_init__(self) -> None:
        if len(self.requests) != self.report.requests:
            raise ValueError(
                f"DemandResult: the report counts {self.report.requests} requests but there are {len(self.requests)}"
            )


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

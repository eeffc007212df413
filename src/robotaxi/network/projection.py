"""Metric projection of WGS84 coordinates for a city.

A city-sized network is projected with the UTM zone of its centre (pyproj), so x/y are metres with < 0.1 % scale
error across the city. The CRS is kept as an EPSG code string so a cached network projects new points identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from pyproj import Transformer


@lru_cache(maxsize=16)
def _transformer(crs: str) -> Transformer:
    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


@dataclass(frozen=True, slots=True)
class LocalProjection:
    """WGS84 -> UTM projection for one city."""

    crs: str

    @classmethod
    def for_points(cls, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> LocalProjection:
        """The UTM zone containing the median point."""
        lon0, lat0 = float(np.median(lon)), float(np.median(lat))
        zone = int((lon0 + 180.0) // 6.0) % 60 + 1
        epsg = (32600 if lat0 >= 0 else 32700) + zone
        return cls(f"EPSG:{epsg}")

    @classmethod
    def from_crs(cls, crs: str) -> LocalProjection:
        return cls(crs)

    def forward(
        self, lon: NDArray[np.float64], lat: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        x, y = _transformer(self.crs).transform(lon, lat)
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def inverse(
        self, x: NDArray[np.float64], y: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        lon, lat = _transformer(self.crs).transform(x, y, direction="INVERSE")
        return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)

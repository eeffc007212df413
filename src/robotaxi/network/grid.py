"""A synthetic grid city, for small hand-checkable tests and examples."""

from __future__ import annotations

import math

import numpy as np

from ..errors import NetworkError
from .graph import RoadNetwork

_M_PER_DEG_LAT = 111_320.0


def grid_city(
    rows: int,
    cols: int,
    *,
    spacing_m: float = 200.0,
    speed_kmh: float = 36.0,
    origin: tuple[float, float] = (10.0, 50.0),
    name: str | None = None,
) -> RoadNetwork:
    """A ``rows`` x ``cols`` grid of two-way streets.

    Node ``r * cols + c`` sits at row ``r`` (northwards) and column ``c`` (eastwards) from ``origin`` (lon, lat).
    Every block is ``spacing_m`` long and driven at ``speed_kmh``; with the defaults (200 m at 36 km/h) each
    block takes exactly 20 s, so travel times can be checked by hand: time = 20 s x Manhattan distance in blocks.
    """
    if rows < 1 or cols < 1 or rows * cols < 2:
        raise NetworkError(f"grid_city: need at least two nodes, got {rows} x {cols}")
    if spacing_m <= 0 or speed_kmh <= 0:
        raise NetworkError("grid_city: spacing and speed must be positive")
    lon0, lat0 = origin
    r, c = np.divmod(np.arange(rows * cols), cols)
    lat = lat0 + r * spacing_m / _M_PER_DEG_LAT
    lon = lon0 + c * spacing_m / (_M_PER_DEG_LAT * math.cos(math.radians(lat0)))
    idx = np.arange(rows * cols).reshape(rows, cols)
    east = np.column_stack((idx[:, :-1].ravel(), idx[:, 1:].ravel()))
    north = np.column_stack((idx[:-1, :].ravel(), idx[1:, :].ravel()))
    one_way = np.vstack((east, north))
    both = np.vstack((one_way, one_way[:, ::-1]))
    m = both.shape[0]
    return RoadNetwork.from_edges(
        name=name or f"grid {rows}x{cols}",
        node_id=np.arange(rows * cols),
        lon=lon,
        lat=lat,
        tail=both[:, 0],
        head=both[:, 1],
        length_m=np.full(m, spacing_m),
        speed_kmh=np.full(m, speed_kmh),
        source=f"grid_city({rows}, {cols}, spacing_m={spacing_m}, speed_kmh={speed_kmh})",
    )

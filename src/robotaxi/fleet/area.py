"""Where and when an operator may serve: service areas as per-node masks, and daily operating hours.

A :class:`ServiceArea` turns (multi)polygons into one boolean per network node, computed once with shapely 2's
vectorised :func:`shapely.contains_xy` (boundary points count as inside: TLC zone borders run along street centre
lines, so an intersection on the border belongs to the area, see :func:`shapely.intersects_xy`). The dispatch hot
path only ever indexes that mask; no polygon test runs while matching.

:class:`Hours` are a daily window of local wall-clock time, ``"HH:MM-HH:MM"``, that may cross midnight
(``"22:00-06:00"``); ``"00:00-24:00"`` is all day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from ..errors import FleetError
from ..network import RoadNetwork

_DAY = 86_400


@dataclass(frozen=True, slots=True, eq=False)
class ServiceArea:
    """The network nodes an operator may serve.

    Attributes
    ----------
    mask : ndarray of bool, shape (n_nodes,)
        True for the nodes inside the area (read-only).
    source : str
        Where the area came from (a file, or a list of zone ids), for messages.
    outline : shapely geometry or None
        The union of the area's polygons (WGS84), for maps; None for an area given as a bare mask.
    """

    mask: NDArray[np.bool_]
    source: str = ""
    outline: BaseGeometry | None = None

    def __post_init__(self) -> None:
        m = np.array(self.mask, dtype=bool)
        if m.ndim != 1:
            raise ValueError("ServiceArea.mask must be one boolean per node")
        m.setflags(write=False)
        object.__setattr__(self, "mask", m)

    @property
    def n_nodes(self) -> int:
        """Nodes inside the area."""
        return int(self.mask.sum())

    @classmethod
    def from_geometries(
        cls, geometries: list[BaseGeometry], network: RoadNetwork, *, what: str, source: str = ""
    ) -> ServiceArea:
        """The nodes of ``network`` inside any of ``geometries`` (WGS84 polygons or multipolygons).

        Parameters
        ----------
        what : str
            Named in every error (``operator 'downtown': area``).

        Raises
        ------
        FleetError
            If there is no geometry, one is not a (multi)polygon, is invalid or self-intersecting (the message
            quotes :func:`shapely.validation.explain_validity`), or the area holds no network node.
        """
        cls.check_geometries(geometries, what)
        mask = np.zeros(network.n_nodes, dtype=bool)
        for g in geometries:
            shapely.prepare(g)
            mask |= shapely.intersects_xy(g, network.lon, network.lat)
        if not mask.any():
            raise FleetError(f"{what}: the area contains no node of the road network ({network.name})")
        # Adjacent zones share their borders: the union draws the area's own border, not every zone's.
        return cls(mask, source, shapely.union_all(np.asarray(geometries, dtype=object)))

    def rings(self) -> list[NDArray[np.float64]]:
        """The outline's boundary rings (exteriors and holes) as ``(k, 2)`` lon/lat arrays, for drawing.

        Empty for an area without an outline.
        """
        if self.outline is None:
            return []
        polys = getattr(self.outline, "geoms", [self.outline])
        out: list[NDArray[np.float64]] = []
        for poly in polys:
            if poly.geom_type != "Polygon":  # a union of touching polygons may hold a stray line or point
                continue
            out.append(np.asarray(poly.exterior.coords, dtype=np.float64))
            out.extend(np.asarray(r.coords, dtype=np.float64) for r in poly.interiors)
        return out

    @staticmethod
    def check_geometries(geometries: list[BaseGeometry], what: str) -> None:
        """The checks that need no network: (multi)polygons, non-empty, valid, in WGS84 degrees."""
        if not geometries:
            raise FleetError(f"{what}: no polygons")
        for i, g in enumerate(geometries):
            if g.geom_type not in ("Polygon", "MultiPolygon"):
                raise FleetError(f"{what}: feature {i} is a {g.geom_type}, not a Polygon or MultiPolygon")
            if g.is_empty:
                raise FleetError(f"{what}: feature {i} is empty")
            if not g.is_valid:
                raise FleetError(f"{what}: feature {i} is not a valid polygon ({explain_validity(g)})")
        lo_lon, lo_lat, hi_lon, hi_lat = (float(x) for x in shapely.total_bounds(np.asarray(geometries, dtype=object)))
        if not (-180 <= lo_lon <= hi_lon <= 180 and -90 <= lo_lat <= hi_lat <= 90):
            raise FleetError(f"{what}: coordinates are not WGS84 longitude/latitude")


def parse_hours(text: object, what: str) -> Hours:
    """``"HH:MM-HH:MM"`` (local time; the end may be before the start: the window crosses midnight).

    ``"00:00-24:00"`` is all day. Raises :class:`FleetError` naming ``what`` for anything else.
    """
    if not isinstance(text, str) or text.count("-") != 1:
        raise FleetError(f'{what}: expected "HH:MM-HH:MM", got {text!r}')
    a, b = text.split("-")
    start, end = _clock(a.strip(), what), _clock(b.strip(), what)
    if start == _DAY:
        raise FleetError(f"{what}: the start must be before 24:00, got {text!r}")
    if start == end:
        raise FleetError(f'{what}: an empty window {text!r} (write "00:00-24:00" for all day)')
    return Hours(start, end)


def _clock(s: str, what: str) -> int:
    parts = s.split(":")
    if len(parts) != 2 or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise FleetError(f"{what}: expected HH:MM, got {s!r}")
    h, m = int(parts[0]), int(parts[1])
    if m >= 60 or h > 24 or (h == 24 and m):
        raise FleetError(f"{what}: {s!r} is out of range (00:00..24:00)")
    return h * 3600 + m * 60


@dataclass(frozen=True, slots=True)
class Hours:
    """A daily window ``[start_s, end_s)`` of local seconds since midnight; ``end_s < start_s`` crosses midnight.

    ``Hours(0, 86400)`` is all day.
    """

    start_s: int = 0
    end_s: int = _DAY

    def __post_init__(self) -> None:
        if not (0 <= self.start_s < _DAY and 0 <= self.end_s <= _DAY and self.start_s != self.end_s):
            raise ValueError(f"Hours: need 0 <= start < 24 h, 0 <= end <= 24 h, start != end; got {self}")

    @property
    def all_day(self) -> bool:
        return self.start_s == 0 and self.end_s == _DAY

    def is_open(self, t: int) -> bool:
        """Whether local time ``t`` (seconds since a local midnight, any day) is inside the window."""
        s = t % _DAY
        if self.start_s < self.end_s:
            return self.start_s <= s < self.end_s
        return s >= self.start_s or s < self.end_s

    def changes(self, t0: int, t1: int) -> list[tuple[int, bool]]:
        """``(time, opens)`` for every opening and closing with ``t0 < time <= t1``, in time order."""
        if self.all_day:
            return []
        out: list[tuple[int, bool]] = []
        for day in range(t0 // _DAY - 1, t1 // _DAY + 2):
            base = day * _DAY
            out.append((base + self.start_s, True))
            out.append((base + self.end_s, False))
        return sorted((t, o) for t, o in out if t0 < t <= t1)

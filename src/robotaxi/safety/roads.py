"""From OpenStreetMap road classes to the DMV's disengagement location types.

The DMV asks where a disengagement happened in six words: Interstate, Freeway, Highway, Rural Road, Street,
Parking Facility. OSM tags the road itself (``highway=*``, with ``ref``, ``service`` and the area around it).
The mapping (also in ``docs/safety.md``):

=====================================================  ==================================================
OSM                                                    DMV location type
=====================================================  ==================================================
``motorway``, ``motorway_link`` with ``ref`` "I 80",   Interstate (US Interstate routes are the ``I``
"I-280"...                                             routes, 23 U.S.C. 103(c))
``motorway``, ``motorway_link`` otherwise              Freeway (full access control)
``trunk``, ``trunk_link``                              Highway (major road, partial access control)
``primary`` ... ``unclassified``, ``residential``,     Street, or Rural Road when the caller says the
``living_street``, ``road`` and their links            area is rural (OSM itself does not say)
``track``                                              Rural Road
``service`` with ``service=parking_aisle|parking|``    Parking Facility
``drive-through``
``service`` otherwise                                  Street (alleys, access roads)
=====================================================  ==================================================

Anything else raises: an unknown class is a question, not a street.

Networks whose source kept no ``highway`` tag (the OSMnx JSON of the Manhattan scenario has only speeds) get a
class *inferred from the free-flow speed* by :func:`road_class_from_speed`: at least 64 km/h (40 mph) is taken
for a ``motorway``, at least 56 km/h (35 mph) for a ``trunk``, anything slower for a ``residential`` street.
That is an approximation, and the events say so (their ``road_class`` carries the suffix ``~speed``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from .records import LocationType

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from ..network import RoadNetwork

__all__ = ["SPEED_CLASS_LIMITS_KMH", "edge_road_classes", "location_type", "road_class_from_speed"]

_STREETS = {
    "primary",
    "secondary",
    "tertiary",
    "unclassified",
    "residential",
    "living_street",
    "road",
    "busway",
}
_PARKING_SERVICE = {"parking_aisle", "parking", "drive-through"}
_INTERSTATE_REF = re.compile(r"(^|;)\s*I[\s-]*\d", re.IGNORECASE)

#: Free-flow speed thresholds (km/h, inclusive) of the speed-based class inference, fastest first.
SPEED_CLASS_LIMITS_KMH: tuple[tuple[float, str], ...] = ((64.0, "motorway"), (56.0, "trunk"), (0.0, "residential"))

#: Suffix of a road class that was inferred from speed rather than read from an OSM ``highway`` tag.
INFERRED = "~speed"


def location_type(
    highway: str, *, ref: str | None = None, service: str | None = None, rural: bool = False
) -> LocationType:
    """The DMV location type of an OSM road (see the module table).

    Parameters
    ----------
    highway : str
        The OSM ``highway`` value; a class inferred from speed (``"motorway~speed"``) is accepted too.
    ref : str, optional
        The way's ``ref`` (an Interstate is a motorway whose ref starts with ``I``).
    service : str, optional
        The way's ``service`` tag.
    rural : bool
        Whether the surroundings are rural (the caller's knowledge: OSM does not tag it on the road).

    Raises
    ------
    ValueError
        For a class that is not a drivable OSM road class.
    """
    cls = highway.removesuffix(INFERRED).strip().lower()
    base = cls.removesuffix("_link")
    if base == "motorway":
        if ref is not None and _INTERSTATE_REF.search(ref):
            return LocationType.INTERSTATE
        return LocationType.FREEWAY
    if base == "trunk":
        return LocationType.HIGHWAY
    if base in _STREETS:
        return LocationType.RURAL_ROAD if rural else LocationType.STREET
    if cls == "track":
        return LocationType.RURAL_ROAD
    if cls == "service":
        return LocationType.PARKING_FACILITY if service in _PARKING_SERVICE else LocationType.STREET
    raise ValueError(f"road class: {highway!r} is not a drivable OSM highway class")


def road_class_from_speed(speed_kmh: float) -> str:
    """An OSM-like road class inferred from a free-flow speed (km/h), marked with :data:`INFERRED`."""
    if not speed_kmh >= 0:
        raise ValueError(f"speed_kmh: must be >= 0, got {speed_kmh!r}")
    for limit, cls in SPEED_CLASS_LIMITS_KMH:
        if speed_kmh >= limit:
            return cls + INFERRED
    raise AssertionError("unreachable: the last limit is 0")  # pragma: no cover


def edge_road_classes(network: RoadNetwork, highway: NDArray[np.str_] | None = None) -> NDArray[np.str_]:
    """One road class per edge: ``highway`` when the caller has the OSM tags, else inferred from speed.

    Our network loaders keep speeds, not the ``highway`` tag, so today every class is inferred.
    """
    if highway is not None:
        classes = np.asarray(highway, dtype=str)
        if classes.shape != (network.n_edges,):
            raise ValueError(f"highway: expected one class per edge ({network.n_edges}), got shape {classes.shape}")
        return classes
    speeds = np.asarray(network.speed_kmh, dtype=np.float64)
    out = np.empty(speeds.size, dtype=object)
    for limit, cls in reversed(SPEED_CLASS_LIMITS_KMH):
        out[speeds >= limit] = cls + INFERRED
    return out.astype(str)

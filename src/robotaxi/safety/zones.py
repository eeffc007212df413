"""Where an operator disengages too often: miles, disengagements and miles per disengagement by zone.

The first step of the issue's safety-aware policy ("shrink an autonomous operator's service area where its observed
disengagement rate is worst, with enough miles to be significant"): every leg an operator drove is routed as the
simulator drove it and its miles are shared between the zones of the edges it used; every event is placed on its
edge the same way, so miles and events are counted alike. A zone is *flagged* when its miles per disengagement is
significantly below a threshold: the upper end of its exact 95 % interval (Garwood) lies below it. A zone with few
miles has a wide interval and is never flagged on a handful of events.

Zones are given as one zone id per network edge (``edge_zone``, -1 outside every zone); the caller builds it from
zone polygons (``robotaxi safety zones`` uses the edge midpoints and the TLC zones or any GeoJSON).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from .process import METRES_PER_MILE
from .runs import RunData, SafetyEvents, locate_on_leg
from .stats import MilesPerDisengagement, miles_per_disengagement

if TYPE_CHECKING:
    from ..network import Router

__all__ = ["ZoneSafety", "zone_safety"]


@dataclass(frozen=True, slots=True)
class ZoneSafety:
    """One operator in one zone."""

    operator: str
    zone: int
    mpd: MilesPerDisengagement
    flagged: bool


def _leg_edges(router: Router, a: int, b: int, cache: dict[tuple[int, int], NDArray[np.int64]]) -> NDArray[np.int64]:
    key = (a, b)
    edges = cache.get(key)
    if edges is None:
        edges = router.path_edges(router.path(a, b)) if a != b else np.empty(0, dtype=np.int64)
        cache[key] = edges
    return edges


def zone_safety(
    data: RunData,
    events: SafetyEvents,
    router: Router,
    edge_zone: NDArray[np.int64],
    *,
    threshold_mpd: float,
    operators: Iterable[str] | None = None,
) -> list[ZoneSafety]:
    """Miles per disengagement of each operator in each zone it drove in, flagged against ``threshold_mpd``.

    Raises
    ------
    ValueError
        For a threshold that is not > 0, an ``edge_zone`` that is not one id per edge, or events without legs.
    """
    if not threshold_mpd > 0:
        raise ValueError(f"threshold_mpd: must be > 0, got {threshold_mpd!r}")
    net = router.network
    zone_of = np.asarray(edge_zone, dtype=np.int64)
    if zone_of.shape != (net.n_edges,):
        raise ValueError(f"edge_zone: expected one zone per edge ({net.n_edges}), got shape {zone_of.shape}")
    wanted = set(operators) if operators is not None else set(data.autonomous_operators())
    miles: defaultdict[tuple[str, int], float] = defaultdict(float)
    cache: dict[tuple[int, int], NDArray[np.int64]] = {}
    for leg in np.flatnonzero(data.length_m > 0).tolist():
        op = data.operator_of[int(data.leg_vehicle[leg])]
        if op not in wanted:
            continue
        edges = _leg_edges(router, int(data.from_node[leg]), int(data.to_node[leg]), cache)
        if edges.size == 0:
            continue
        length = net.length_m[edges].astype(np.float64)
        share = length * (data.length_m[leg] / length.sum()) / METRES_PER_MILE
        zones = zone_of[edges]
        for z in np.unique(zones):
            miles[(op, int(z))] += float(share[zones == z].sum())
    counts: defaultdict[tuple[str, int], int] = defaultdict(int)
    for i, r in enumerate(events.records):
        if r.operator not in wanted:
            continue
        leg = int(events.leg[i])
        if leg < 0:
            raise ValueError(f"event {r.event_id}: no leg recorded, so its zone is unknown")
        where = locate_on_leg(router, data, int(leg), float(events.offset_m[i]))
        if where is None:
            raise ValueError(f"event {r.event_id}: leg {leg} does not move")
        counts[(r.operator, int(zone_of[where[0]]))] += 1
    out = []
    for key in sorted(set(miles) | set(counts)):
        mpd = miles_per_disengagement(miles.get(key, 0.0), counts.get(key, 0))
        out.append(ZoneSafety(key[0], key[1], mpd, mpd.high < threshold_mpd))
    return out

"""Observed trips for travel-time calibration: TLC records read by the demand loaders, placed like the sampler.

:func:`load_observed_trips` reads trip-record files through :class:`~robotaxi.demand.tlc.TLCSource` (the same
validation, zone look-up and counted rejects as demand), keeps the trips a calibration can use and says why it
dropped the others: not a business day (weekend or US federal holiday, when ``weekdays_only``), a metered duration
of at most ``min_duration_s`` or at least ``max_duration_s`` (TLC meter artefacts: 0-60 s and the 23-hour
records), or no recorded distance. :func:`trip_table` then adds what the fit needs from the router: the mean
free-flow route times of each zone pair over all its node pairs, and ``draws`` placements of each trip drawn with
:meth:`~robotaxi.demand.zones.ZoneNodes.sample_pairs`, the demand sampler's own placement.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..errors import DemandError
from ..network import Router
from ..network.tripfit import TripTable
from .odcounts import us_federal_holidays
from .tlc import TLCSource
from .zones import ZoneNodes, Zones

logger = logging.getLogger(__name__)

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]
METRES_PER_MILE = 1609.344


@dataclass(frozen=True, slots=True, eq=False)
class ObservedTrips:
    """Usable observed trips, one row per trip.

    Attributes
    ----------
    tod_s : int64
        Local time of day of the pickup (seconds since midnight; TLC times are local wall clock).
    date : datetime64[D]
        Pickup date.
    duration_s : float64
        Drop-off minus pickup, seconds.
    meter_m : float64
        The meter's trip distance in metres.
    o_zone, d_zone : int64
        Pickup and drop-off zone ids.
    counts : dict
        Rows read and kept, and the trips dropped by each reason.
    """

    tod_s: I64
    date: NDArray[np.datetime64]
    duration_s: F64
    meter_m: F64
    o_zone: I64
    d_zone: I64
    counts: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.tod_s.shape[0])

    @property
    def month(self) -> I64:
        return (self.date.astype("datetime64[M]").astype(np.int64) % 12 + 1).astype(np.int64)


def _business_days(dates: NDArray[np.datetime64]) -> NDArray[np.bool_]:
    years = sorted({int(y) + 1970 for y in np.unique(dates.astype("datetime64[Y]").astype(np.int64)).tolist()})
    holidays = [np.datetime64(d) for y in years for d in us_federal_holidays(y)]
    return np.is_busday(dates, holidays=np.asarray(holidays, dtype="datetime64[D]"))


def load_observed_trips(
    router: Router,
    paths: Sequence[str | Path],
    zones: str | Path,
    *,
    weekdays_only: bool = True,
    min_duration_s: float = 60.0,
    max_duration_s: float = 3 * 3600.0,
    distance_unit_m: float = METRES_PER_MILE,
    seed: int = 0,
) -> ObservedTrips:
    """Read TLC trip records (zone-based, with drop-off times and distances) and keep the usable trips.

    Raises
    ------
    DemandError
        If a file is not a TLC file with drop-off times and trip distances, or no trip is left.
    """
    if not paths:
        raise DemandError("no trip record file given")
    parts: list[dict[str, NDArray[np.generic]]] = []
    counts = {"rows_read": 0, "rejected_by_loader": 0}
    for p in paths:
        src = TLCSource(path=Path(p), zones=Path(zones))
        cols = src.columns()
        if cols.dropoff_time is None or cols.trip_distance is None:
            raise DemandError(f"{p}: calibration needs drop-off times and trip distances; this file has no such column")
        res = src.load(router.network, np.random.default_rng(seed))
        counts["rows_read"] += res.report.rows_read
        counts["rejected_by_loader"] += res.report.rows_read - res.report.accepted
        f = res.trips
        q = res.requests
        if f is None or q.day_start is None:
            raise DemandError(f"{p}: the loader gave no trip facts or calendar day")
        day0 = np.datetime64(q.day_start, "s")
        pickup = day0 + q.time_s.astype("timedelta64[s]")
        parts.append(
            {
                "date": pickup.astype("datetime64[D]"),
                "tod_s": (pickup - pickup.astype("datetime64[D]")).astype(np.int64),
                "duration_s": (f.dropoff_s - q.time_s).astype(np.float64),
                "meter_m": f.trip_distance * distance_unit_m,
                "o_zone": f.o_zone,
                "d_zone": f.d_zone,
            }
        )
    a = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    keep = np.ones(a["tod_s"].size, dtype=bool)

    def drop(mask: NDArray[np.bool_], reason: str) -> None:
        counts[reason] = int((keep & mask).sum())
        keep[mask] = False

    if weekdays_only:
        drop(~_business_days(a["date"]), "not_business_day")
    drop((a["duration_s"] <= min_duration_s) | (a["duration_s"] >= max_duration_s), "duration_out_of_range")
    drop(~(np.isfinite(a["meter_m"]) & (a["meter_m"] > 0)), "no_distance")
    counts["kept"] = int(keep.sum())
    if not keep.any():
        raise DemandError(f"no usable trip in {len(paths)} file(s): {counts}")
    logger.info("observed trips: %s", counts)
    return ObservedTrips(
        tod_s=a["tod_s"][keep].astype(np.int64),
        date=a["date"][keep],
        duration_s=a["duration_s"][keep],
        meter_m=a["meter_m"][keep],
        o_zone=a["o_zone"][keep].astype(np.int64),
        d_zone=a["d_zone"][keep].astype(np.int64),
        counts=counts,
    )


def _pair_means(router: Router, zn: ZoneNodes, pairs: I64) -> tuple[F64, F64]:
    """Mean free-flow seconds on local streets and on major roads over all distinct node pairs of each zone pair."""
    local = np.empty(pairs.shape[0])
    major = np.empty(pairs.shape[0])
    for j, (a, b) in enumerate(pairs.tolist()):
        na = zn.nodes[zn.indptr[a] : zn.indptr[a + 1]]
        nb = zn.nodes[zn.indptr[b] : zn.indptr[b + 1]]
        t = router.times(na[:, None], nb[None, :]).astype(np.float64)
        m = router.major_times(na[:, None], nb[None, :]).astype(np.float64)
        distinct = na[:, None] != nb[None, :]
        major[j] = float(m[distinct].mean())
        local[j] = float((t - m)[distinct].mean())
    return local, major


def trip_table(
    router: Router, trips: ObservedTrips, zones: Zones | str | Path, *, draws: int = 8, seed: int = 0
) -> TripTable:
    """The observed trips with their zone pairs' mean route times and ``draws`` sampled placements each.

    ``router`` must have been built with a profile that has road classes (for the major-road seconds); ``zones``
    are the zone polygons the trips were loaded with (a file, or the zones read from it).
    """
    if draws < 1:
        raise DemandError(f"draws must be >= 1, got {draws}")
    zn = ZoneNodes.build(zones if isinstance(zones, Zones) else Zones.from_file(zones), router.network)
    oi = zn.zones.index_of(trips.o_zone)
    di = zn.zones.index_of(trips.d_zone)
    if np.any(oi < 0) or np.any(di < 0):
        raise DemandError(f"{zones}: a trip's zone is not in this zones file")
    code = np.unique(oi * (len(zn.zones) + 1) + di, return_inverse=True)
    pair_code, pair = code[0], code[1].ravel().astype(np.int64)
    pairs = np.column_stack((pair_code // (len(zn.zones) + 1), pair_code % (len(zn.zones) + 1)))
    local, major = _pair_means(router, zn, pairs)
    rng = np.random.default_rng(seed)
    n = len(trips)
    dl, dm, dr = np.empty((draws, n)), np.empty((draws, n)), np.empty((draws, n))
    for k in range(draws):
        o, d, bad = zn.sample_pairs(trips.o_zone, trips.d_zone, rng)
        if np.any(bad):
            raise DemandError("a trip's zones have no node to place it on (the loader should have rejected it)")
        t = router.times(o, d).astype(np.float64)
        dm[k] = router.major_times(o, d)
        dl[k] = t - dm[k]
        dr[k] = router.distances(o, d)
    return TripTable(
        tod_s=trips.tod_s,
        duration_s=trips.duration_s,
        meter_m=trips.meter_m,
        month=trips.month,
        pair=pair,
        cell_pair=trips.o_zone * 10_000 + trips.d_zone,
        pair_local_s=local,
        pair_major_s=major,
        draw_local_s=dl,
        draw_major_s=dm,
        draw_route_m=dr,
        o_zone=np.asarray(trips.o_zone, dtype=np.int64),
        d_zone=np.asarray(trips.d_zone, dtype=np.int64),
    )

"""Synthetic demand for any network: a gravity model over its nodes with a realistic hour-of-day profile.

Origins are drawn with probability proportional to a node weight ``W_i``; the destination of a trip from ``i`` is
drawn with probability proportional to ``W_j * exp(-d_ij / decay_m)`` over nodes at least ``min_trip_m`` away
(``d_ij`` is the straight-line distance). This is the production-constrained gravity model with an exponential
deterrence function (Wilson, "A family of spatial interaction models", *Environment and Planning* 3, 1971; Ortuzar
and Willumsen, *Modelling Transport*, 4th ed., ch. 6).

Node weights come from OpenStreetMap when the network was built from a PBF extract (or one is given): every
building, amenity and shop of the extract counts one unit on its nearest network node (within
``feature_snap_m``), plus one for every node so that no node is impossible. Otherwise all nodes weigh the same.

Request times follow :data:`MANHATTAN_HOURLY_PROFILE`, uniform within the hour.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from ..errors import DemandError
from ..network import RoadNetwork
from .requests import Requests
from .source import DemandResult, Seed, as_generator
from .validation import LoadReport

logger = logging.getLogger(__name__)

#: Share of a business day's taxi trips starting in each hour (00:00-01:00 first), Manhattan, NYC TLC 2018
#: business days, all 61 Manhattan zones and Monday-Friday pooled (110,932,862 trips). Computed by us from the
#: counts in ``nyc_manhattan_pyhailing/trips.csv`` (pyhailing 0.0.9, Apache-2.0, aggregated from NYC TLC 2018
#: trip records); see docs/demand.md for the table and the command that reproduces it.
MANHATTAN_HOURLY_PROFILE: tuple[float, ...] = (
    0.02157, 0.01240, 0.00767, 0.00484, 0.00440, 0.00849, 0.02479, 0.04691,
    0.05993, 0.05512, 0.04631, 0.04563, 0.04698, 0.04662, 0.04939, 0.05094,
    0.05020, 0.06208, 0.07209, 0.06888, 0.06088, 0.05804, 0.05359, 0.04225,
)  # fmt: skip

#: Above this many origin x node cells, destination probabilities are computed in chunks (bounded memory).
_CHUNK_CELLS = 4_000_000
WEIGHTS = ("auto", "osm", "uniform")


@dataclass(frozen=True, slots=True)
class SyntheticSource:
    """Gravity-model demand (see the module notes).

    Parameters
    ----------
    n_requests : int or None
        Exactly this many requests; or give ``rate_per_hour`` instead.
    rate_per_hour : float or None
        Mean requests per hour over the day; the day's total is Poisson with mean ``24 * rate_per_hour``.
    weights : {"auto", "osm", "uniform"}
        Node weights: "osm" counts features of ``osm_path`` (or of the network's own PBF); "auto" does so when a PBF
        is known and is uniform otherwise.
    osm_path : Path or None
        OSM extract for the weights (default: the network's source when it is a ``.pbf``).
    decay_m : float
        Length scale of the exponential distance decay, metres.
    min_trip_m : float
        Shortest straight-line trip; nearer destinations are never drawn (unless no node is that far).
    feature_snap_m : float
        OSM features farther than this from every node are ignored.
    hourly_profile : tuple of 24 floats
        Relative demand per hour (normalised here).
    date : date or None
        Calendar date for ``day_start`` (None: no calendar date).
    """

    n_requests: int | None = None
    rate_per_hour: float | None = None
    weights: str = "auto"
    osm_path: Path | None = None
    decay_m: float = 2000.0
    min_trip_m: float = 300.0
    feature_snap_m: float = 250.0
    hourly_profile: tuple[float, ...] = MANHATTAN_HOURLY_PROFILE
    date: dt.date | None = None

    def __post_init__(self) -> None:
        if (self.n_requests is None) == (self.rate_per_hour is None):
            raise ValueError("give exactly one of n_requests and rate_per_hour")
        if self.n_requests is not None and (not isinstance(self.n_requests, int) or self.n_requests < 0):
            raise ValueError(f"n_requests must be an int >= 0, got {self.n_requests!r}")
        if self.rate_per_hour is not None and not (np.isfinite(self.rate_per_hour) and self.rate_per_hour >= 0):
            raise ValueError(f"rate_per_hour must be a finite number >= 0, got {self.rate_per_hour!r}")
        if self.weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}, got {self.weights!r}")
        if self.osm_path is not None:
            object.__setattr__(self, "osm_path", Path(self.osm_path))
        for name in ("decay_m", "feature_snap_m"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        if not self.min_trip_m >= 0:
            raise ValueError("min_trip_m must be >= 0")
        prof = tuple(float(v) for v in self.hourly_profile)
        if len(prof) != 24 or any(not np.isfinite(v) or v < 0 for v in prof) or sum(prof) <= 0:
            raise ValueError("hourly_profile must be 24 non-negative numbers with a positive sum")
        object.__setattr__(self, "hourly_profile", prof)

    @property
    def kind(self) -> str:
        """``"synthetic"``."""
        return "synthetic"

    def _osm_source(self, network: RoadNetwork) -> Path | None:
        if self.weights == "uniform":
            return None
        if self.osm_path is not None:
            return self.osm_path
        src = Path(network.source) if network.source else None
        if src is not None and src.name.lower().endswith(".pbf") and src.is_file():
            return src
        if self.weights == "osm":
            raise DemandError(
                f"weights='osm' but the {network.name} network did not come from a PBF extract",
                hint="give osm_path, or use weights='auto' or 'uniform'",
            )
        return None

    def node_weights(self, network: RoadNetwork) -> NDArray[np.float64]:
        """The weight of every node (1 + OSM features snapped to it, or all ones)."""
        pbf = self._osm_source(network)
        if pbf is None:
            return np.ones(network.n_nodes, dtype=np.float64)
        return osm_node_weights(network, pbf, max_distance_m=self.feature_snap_m)

    def load(self, network: RoadNetwork, rng: np.random.Generator) -> DemandResult:
        """Generate the day's requests."""
        w = self.node_weights(network)
        n = self.n_requests if self.n_requests is not None else int(rng.poisson(24.0 * float(self.rate_per_hour or 0)))
        prof = np.asarray(self.hourly_profile, dtype=np.float64)
        hour = rng.choice(24, size=n, p=prof / prof.sum())
        t = np.sort(hour * 3600 + rng.integers(0, 3600, size=n))
        o = rng.choice(network.n_nodes, size=n, p=w / w.sum())
        d = _gravity_destinations(network, w, o, self.decay_m, self.min_trip_m, rng)
        day_start = dt.datetime.combine(self.date, dt.time()) if self.date is not None else None
        req = Requests.build(
            request_id=np.arange(n, dtype=np.int64),
            time_s=t,
            o_lon=network.lon[o],
            o_lat=network.lat[o],
            d_lon=network.lon[d],
            d_lat=network.lat[d],
            o_node=o,
            d_node=d,
            day_start=day_start,
            network=network.name,
        )
        source = f"synthetic gravity demand on {network.name} ({'osm' if w.min() != w.max() else 'uniform'} weights)"
        report = LoadReport(
            source=source, rows_read=n, accepted=n, requests=n, row_unit="generated rows", requests_note="generated"
        )
        report.log()
        return DemandResult(req, report)


def _gravity_destinations(
    network: RoadNetwork,
    w: NDArray[np.float64],
    origins: NDArray[np.int64],
    decay_m: float,
    min_trip_m: float,
    rng: np.random.Generator,
) -> NDArray[np.int64]:
    """One destination per origin, P(j | i) proportional to w_j exp(-d_ij / decay_m) for d_ij >= min_trip_m."""
    n_nodes = network.n_nodes
    d_out = np.empty(origins.size, dtype=np.int64)
    if origins.size == 0:
        return d_out
    u = rng.random(origins.size)
    uniq, inverse = np.unique(origins, return_inverse=True)
    chunk = max(1, _CHUNK_CELLS // n_nodes)
    for lo in range(0, uniq.size, chunk):
        rows = uniq[lo : lo + chunk]
        dx = network.x[rows, None] - network.x[None, :]
        dy = network.y[rows, None] - network.y[None, :]
        dist = np.hypot(dx, dy)
        p = w[None, :] * np.exp(-dist / decay_m)
        far = dist >= min_trip_m
        # A node with nothing far enough (a tiny network) may go to any other node rather than nowhere.
        no_far = ~far.any(axis=1)
        far[no_far] = dist[no_far] > 0
        p = np.where(far, p, 0.0)
        total = p.sum(axis=1)
        if np.any(total <= 0):
            raise DemandError(f"synthetic demand: the {network.name} network has a node with no other node to go to")
        cdf = np.cumsum(p / total[:, None], axis=1)
        cdf[:, -1] = 1.0
        # Offsetting row r by r makes all rows one increasing array, so one searchsorted serves the chunk.
        flat = (cdf + np.arange(rows.size)[:, None]).ravel()
        sel = np.flatnonzero((inverse >= lo) & (inverse < lo + rows.size))
        r = inverse[sel] - lo
        pos = np.searchsorted(flat, u[sel] + r, side="right")
        d_out[sel] = np.minimum(pos - r * n_nodes, n_nodes - 1)
    # Guard against floating-point edge cases landing on a zero-probability origin itself.
    same = d_out == origins
    if np.any(same):
        d_out[same] = (d_out[same] + 1) % n_nodes
    return d_out


def osm_node_weights(network: RoadNetwork, pbf: str | Path, *, max_distance_m: float = 250.0) -> NDArray[np.float64]:
    """1 + the number of OSM buildings, amenities and shops whose nearest network node is each node.

    Ways count at the mean of their node locations. Features farther than ``max_distance_m`` from every node are
    ignored (they belong to a part of the extract the network does not cover).

    Parameters
    ----------
    network : RoadNetwork
        The network whose nodes are weighted.
    pbf : str or Path
        OSM extract (PBF or XML).
    max_distance_m : float
        Farthest a feature may be from its node.

    Returns
    -------
    ndarray of float64
        One weight per node, all >= 1.

    Raises
    ------
    DemandError
        If the file cannot be read as OSM data.
    """
    import osmium  # imported here: only OSM-weighted demand needs it

    p = Path(pbf)
    if not p.is_file():
        raise DemandError(f"OSM extract not found: {p}")
    lons: list[float] = []
    lats: list[float] = []
    try:
        fp = (
            osmium.FileProcessor(str(p))
            .with_locations()
            .with_filter(osmium.filter.KeyFilter("building", "amenity", "shop"))
        )
        for obj in fp:
            if isinstance(obj, osmium.osm.Node):
                lons.append(obj.location.lon)
                lats.append(obj.location.lat)
            elif isinstance(obj, osmium.osm.Way):
                pts = [(nd.lon, nd.lat) for nd in obj.nodes if nd.location.valid()]
                if pts:
                    lons.append(sum(x for x, _ in pts) / len(pts))
                    lats.append(sum(y for _, y in pts) / len(pts))
    except RuntimeError as e:
        raise DemandError(f"{p}: cannot read OSM features: {e}") from e
    w = np.ones(network.n_nodes, dtype=np.float64)
    if not lons:
        logger.warning("%s: no building, amenity or shop features; node weights are uniform", p)
        return w
    fx, fy = network.project(np.asarray(lons), np.asarray(lats))
    dist, idx = cKDTree(np.column_stack((network.x, network.y))).query(
        np.column_stack((fx, fy)), distance_upper_bound=max_distance_m
    )
    near = np.isfinite(dist)
    w += np.bincount(idx[near], minlength=network.n_nodes)[: network.n_nodes]
    logger.info("%s: %d of %d OSM features weight the %s nodes", p.name, int(near.sum()), len(lons), network.name)
    return w


def synthetic_demand(
    network: RoadNetwork,
    n_requests: int | None = None,
    *,
    rate_per_hour: float | None = None,
    seed: Seed = 0,
    osm_path: str | Path | None = None,
    weights: str = "auto",
    decay_m: float = 2000.0,
    date: dt.date | None = None,
) -> Requests:
    """Gravity-model requests for any network (the embedded Helsinki default uses this).

    Parameters
    ----------
    network : RoadNetwork
        The network; nodes are the possible trip ends.
    n_requests : int or None
        Exactly this many requests (or give ``rate_per_hour``).
    rate_per_hour : float or None
        Mean requests per hour over the day.
    seed : int or Generator
        Same seed, same requests.
    osm_path : path or None
        OSM extract for the node weights (default: the network's own PBF, if any).
    weights : {"auto", "osm", "uniform"}
        See :class:`SyntheticSource`.
    decay_m : float
        Distance-decay length scale in metres.
    date : date or None
        Calendar date stamped as ``day_start``.

    Returns
    -------
    Requests
        Sorted by time, ids 0..n-1 in time order.
    """
    src = SyntheticSource(
        n_requests=n_requests,
        rate_per_hour=rate_per_hour,
        weights=weights,
        osm_path=Path(osm_path) if osm_path is not None else None,
        decay_m=decay_m,
        date=date,
    )
    return src.load(network, as_generator(seed)).requests

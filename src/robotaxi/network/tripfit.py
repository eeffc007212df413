"""Fit time-of-day factors per road class and a per-leg overhead to observed trip durations.

Input (built by :mod:`robotaxi.demand.observed` from trip records): for every observed trip its local time of day,
its metered duration and distance, the month, and its zone pair; for every zone pair the *expected* free-flow
seconds of the fastest route on local streets ``L`` and on major roads ``M``, averaged over all pairs of distinct
network nodes of the two zones (the demand sampler draws each trip end uniformly among its zone's nodes); and ``K``
independent draws of such node pairs per trip, as the simulator would place the trip.

Model (the one :class:`~robotaxi.network.speeds.SpeedProfile` applies): a trip of zone pair ``z`` starting in hour
``h`` takes ``y = f_local[h] * L_z + f_major[h] * M_z + c`` seconds, with ``c`` one overhead per leg.

1. **Robust regression.** ``scipy.optimize.least_squares`` minimises ``sum rho(log(y_hat_i) - log(y_i))`` over the
   48 factors and ``c`` with the soft-L1 loss ``rho(r) = 2 s^2 (sqrt(1 + (r / s)^2) - 1)`` (``s = f_scale``, 0.25
   by default: residuals beyond ~25 % count linearly, so meter artefacts and odd trips do not pull the fit). Log
   residuals make the errors relative (a 2-minute miss matters on a 4-minute trip, not on a 40-minute one). The
   regressor is the zone pair's *mean* route time, not one random draw: a random node pair is the trip's true route
   plus placement noise independent of it, which would flatten the slope and inflate ``c`` (errors in variables:
   with single draws the Manhattan fit put ``c`` at 183 s); the zone-pair mean is a Berkson-type regressor that
   leaves the slope unbiased (Carroll et al., *Measurement Error in Nonlinear Models*, 2nd ed., 2006, ch. 1 and 6).
2. **Median matching per hour.** The simulator does not drive the mean route but a random one; per hour one common
   multiplier ``s_h`` of both classes' factors (bisection) makes the median simulated duration over the ``K``
   placement draws equal the observed median of the fitting trips. It keeps the ratio of the two classes and the
   overhead from step 1 and moves the factors by a few per cent.

Validation uses held-out months (:func:`month_split`): the fit sees only the other months. :func:`evaluate` gives the
report: per hour and per distance band, observed and simulated median duration, signed error of the medians and the
median per-trip absolute error; the zone-pair x 3-hour cell error; and the median ratio of simulated route length
to the meter's distance.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares

from ..errors import NetworkError
from .speeds import DAY_S, MAJOR_MIN_SPEED_KMH, SpeedProfile

logger = logging.getLogger(__name__)

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
B = NDArray[np.bool_]

HOURS = 24
#: Distance bands of the report, in km of the meter's distance.
DISTANCE_BANDS_KM: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 5.0, 8.0, float("inf"))
#: Cells of the zone-pair goal: hours per block, and the fewest trips a cell needs.
CELL_HOURS = 3
CELL_MIN_TRIPS = 20
_MAX_OVERHEAD_S = 900.0
_MAX_LOG_ZONE = float(np.log(10.0))  # zone factors 0.1..10, as SpeedProfile accepts them


@dataclass(frozen=True, slots=True, eq=False)
class TripTable:
    """Observed trips and their simulated routes, one row per trip (column ``k`` of the draws: placement ``k``).

    Attributes
    ----------
    tod_s : int64
        Local time of day of the pickup, seconds since midnight.
    duration_s : float64
        Metered duration (pickup to drop-off), seconds.
    meter_m : float64
        Metered distance, metres (NaN when unknown).
    month : int64
        Calendar month of the pickup, 1..12.
    pair : int64
        Zone pair of the trip, an index into ``pair_local_s`` and ``pair_major_s``.
    cell_pair : int64
        An id of the zone pair that is stable across subsets (e.g. ``o_zone * 10_000 + d_zone``).
    pair_local_s, pair_major_s : float64
        Per zone pair: mean free-flow seconds of the fastest route on local streets / major roads over all node
        pairs of the two zones.
    draw_local_s, draw_major_s, draw_route_m : float64, shape (K, n)
        Per placement draw and trip: free-flow seconds on local streets / major roads and the route length.
    o_zone, d_zone : int64 or None
        Zone ids of the trip's two ends (needed to fit and to apply zone factors).
    """

    tod_s: I64
    duration_s: F64
    meter_m: F64
    month: I64
    pair: I64
    cell_pair: I64
    pair_local_s: F64
    pair_major_s: F64
    draw_local_s: F64
    draw_major_s: F64
    draw_route_m: F64
    o_zone: I64 | None = None
    d_zone: I64 | None = None

    def __post_init__(self) -> None:
        n = self.tod_s.shape[0]
        if (self.o_zone is None) != (self.d_zone is None):
            raise ValueError("TripTable.o_zone and d_zone go together: give both or neither")
        zone_cols = ("o_zone", "d_zone") if self.o_zone is not None else ()
        for name in ("duration_s", "meter_m", "month", "pair", "cell_pair", *zone_cols):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"TripTable.{name} must have one value per trip ({n})")
        if self.pair_local_s.shape != self.pair_major_s.shape:
            raise ValueError("TripTable.pair_local_s and pair_major_s must have one value per zone pair")
        k = self.draw_local_s.shape[0] if self.draw_local_s.ndim == 2 else -1
        for name in ("draw_local_s", "draw_major_s", "draw_route_m"):
            if getattr(self, name).shape != (k, n) or k < 1:
                raise ValueError(f"TripTable.{name} must have shape (draws >= 1, {n})")
        if n and (int(self.pair.min()) < 0 or int(self.pair.max()) >= self.pair_local_s.shape[0]):
            raise ValueError("TripTable.pair must index pair_local_s")

    def __len__(self) -> int:
        return int(self.tod_s.shape[0])

    @property
    def hour(self) -> I64:
        return self.tod_s // 3600

    @property
    def draws(self) -> int:
        return int(self.draw_local_s.shape[0])


# ---------------------------------------------------------------------------------------------------------- split
def month_split(months: I64, holdout: Sequence[int]) -> tuple[B, B]:
    """Masks (fit, held out) that keep whole months apart.

    Raises
    ------
    NetworkError
        If a held-out month is not 1..12 or has no trip, or if either side would be empty.
    """
    hold = sorted(set(holdout))
    bad = [m for m in hold if not 1 <= m <= 12]
    if bad:
        raise NetworkError(f"holdout months must be 1..12, got {bad[0]}")
    present = set(np.unique(months).tolist())
    missing = [m for m in hold if m not in present]
    if missing:
        raise NetworkError(
            f"holdout month {missing[0]} has no trip (the trips cover months {', '.join(map(str, sorted(present)))})"
        )
    test = np.isin(months, hold)
    fit = ~test
    if not fit.any():
        raise NetworkError("every trip is in a held-out month: nothing is left to fit on")
    return fit, test


# ---------------------------------------------------------------------------------------------------------- fit
@dataclass(frozen=True, slots=True)
class TripFit:
    """A fitted profile and how it was found."""

    profile: SpeedProfile
    trips_used: int
    robust_local: tuple[float, ...]  # step 1 factors, before median matching
    robust_major: tuple[float, ...]
    hour_scale: tuple[float, ...]  # step 2 multipliers
    filled_hours: tuple[int, ...]  # hours with too few trips, copied from the nearest hour with enough
    zone_trips: tuple[tuple[int, int], ...] = ()  # with zone factors: (zone id, trip ends in the fit) per zone


def _check_zone_args(trips: TripTable, zone_prior: float | None, zones_file: str | None) -> None:
    if zone_prior is None:
        return
    if not (np.isfinite(zone_prior) and zone_prior > 0):
        raise NetworkError(f"zone_prior must be a positive number of trips, got {zone_prior!r}")
    if trips.o_zone is None or trips.d_zone is None:
        raise NetworkError("zone factors need the trips' zones (TripTable.o_zone and d_zone)")
    if not zones_file:
        raise NetworkError("zone factors need the zones file the trips' zone ids refer to")


def _predict(p: F64, local: F64, major: F64, hour: I64) -> F64:
    out: F64 = p[:HOURS][hour] * local + p[HOURS : 2 * HOURS][hour] * major + p[2 * HOURS]
    return out


def _zone_scale(profile: SpeedProfile, o_zone: I64, d_zone: I64) -> F64:
    """Per trip, the product of its two ends' node multipliers ``sqrt(g)`` (as the router computes it)."""
    ids = np.array([z for z, _ in profile.zone_factors], dtype=np.int64)
    w = np.sqrt(np.array([g for _, g in profile.zone_factors], dtype=np.float64))
    order = np.argsort(ids)
    ids, w = ids[order], w[order]

    def of(z: I64) -> F64:
        k = np.minimum(np.searchsorted(ids, z), ids.size - 1)
        out: F64 = np.where(ids[k] == z, w[k], 1.0)
        return out

    scale: F64 = of(o_zone) * of(d_zone)
    return scale


def fit_profile(
    trips: TripTable,
    mask: B | None = None,
    *,
    loss: str = "soft_l1",
    f_scale: float = 0.25,
    min_trips_per_hour: int = 30,
    major_min_speed_kmh: float = MAJOR_MIN_SPEED_KMH,
    residual: str = "log",
    zone_prior: float | None = None,
    zones_file: str | None = None,
    zones_id_property: str | None = None,
) -> TripFit:
    """Fit hourly factors for local streets and major roads and a per-leg overhead (see the module notes).

    Parameters
    ----------
    trips : TripTable
    mask : bool array or None
        The trips to fit on (default: all).
    loss : str
        A ``least_squares`` loss: ``soft_l1`` (default), ``huber``, ``cauchy``, ``arctan`` or ``linear``.
    f_scale : float
        Residual scale of the loss, in log units.
    min_trips_per_hour : int
        Hours with fewer trips copy the factors of the nearest hour with enough (circularly).
    zone_prior : float or None
        Also fit one factor ``g`` per zone of the trips' ends (a leg between zones ``a`` and ``b`` drives
        ``sqrt(g_a * g_b)`` times as long), shrunk towards 1 by a penalty row ``sqrt(zone_prior) * log g`` per zone:
        the prior weighs as much as ``zone_prior`` trips that say 1. None: no zone factors.
    zones_file, zones_id_property : str or None
        The zone polygons the trips' zone ids refer to, written into the profile (needed with ``zone_prior``).
    """
    sel = np.ones(len(trips), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    y = trips.duration_s[sel]
    if y.size == 0:
        raise NetworkError("no trip to fit on")
    _check_zone_args(trips, zone_prior, zones_file)
    if np.any(~np.isfinite(y)) or np.any(y <= 0):
        raise NetworkError("trip durations must be positive and finite")
    hour = trips.hour[sel]
    counts = np.bincount(hour, minlength=HOURS)
    have = np.flatnonzero(counts >= min_trips_per_hour)
    if have.size == 0:
        raise NetworkError(f"no hour has {min_trips_per_hour} trips to fit on ({y.size} trips in all)")
    local = trips.pair_local_s[trips.pair[sel]]
    major = trips.pair_major_s[trips.pair[sel]]
    # Hours without enough trips are fitted with the nearest hour's factors (their trips join that hour).
    nearest = np.array([have[np.argmin(np.minimum(np.abs(have - h), HOURS - np.abs(have - h)))] for h in range(HOURS)])
    h_fit = nearest[hour]
    # Zone factors: u_z = log g_z per zone seen at either end of a fitting trip; zone indices za, zb per trip.
    zone_ids = np.empty(0, dtype=np.int64)
    za = zb = np.zeros(y.size, dtype=np.int64)
    if zone_prior is not None and trips.o_zone is not None and trips.d_zone is not None:
        oz, dz = trips.o_zone[sel], trips.d_zone[sel]
        zone_ids, inv = np.unique(np.r_[oz, dz], return_inverse=True)
        za, zb = inv[: y.size], inv[y.size :]
    nz = int(zone_ids.size)
    n_par = 2 * HOURS + 1
    p = _robust_fit(y, local, major, h_fit, (za, zb, nz), zone_prior, loss=loss, f_scale=f_scale, residual=residual)
    fl, fm, overhead = p[:HOURS][nearest], p[HOURS : 2 * HOURS][nearest], float(p[2 * HOURS])
    zone_factors = tuple(
        (int(z), float(np.clip(np.round(np.exp(u), 3), 0.1, 10.0))) for z, u in zip(zone_ids, p[n_par:], strict=True)
    )
    draft = SpeedProfile((1.0,), zone_factors=zone_factors, zones_file=zones_file) if nz else None
    zone_scale = (
        _zone_scale(draft, trips.o_zone, trips.d_zone)
        if draft is not None and trips.o_zone is not None and trips.d_zone is not None
        else np.ones(len(trips))
    )
    scale = _median_match(trips, sel, fl, fm, overhead, nearest, have, zone_scale)
    fl2 = np.clip(np.round(fl * scale, 3), 0.1, 20.0)
    fm2 = np.clip(np.round(fm * scale, 3), 0.1, 20.0)
    profile = SpeedProfile(
        tuple(fl2.tolist()),
        major_factors=tuple(fm2.tolist()),
        overhead_s=round(overhead, 1),
        major_min_speed_kmh=major_min_speed_kmh,
        zone_factors=zone_factors,
        zones_file=zones_file if nz else None,
        zones_id_property=zones_id_property if nz else None,
    )
    ends = np.bincount(np.r_[za, zb], minlength=nz) if nz else np.zeros(0, dtype=np.int64)
    filled = tuple(int(h) for h in np.flatnonzero(counts < min_trips_per_hour))
    logger.info("fitted %d trips: overhead %.1f s, %d hours filled", y.size, overhead, len(filled))
    return TripFit(
        profile=profile,
        trips_used=int(y.size),
        robust_local=tuple(float(v) for v in fl),
        robust_major=tuple(float(v) for v in fm),
        hour_scale=tuple(float(v) for v in scale),
        filled_hours=filled,
        zone_trips=tuple((int(z), int(c)) for z, c in zip(zone_ids, ends, strict=True)),
    )


def _robust_fit(
    y: F64,
    local: F64,
    major: F64,
    h_fit: I64,
    zones: tuple[I64, I64, int],
    zone_prior: float | None,
    *,
    loss: str,
    f_scale: float,
    residual: str,
) -> F64:
    """Step 1: the parameters (48 factors, the overhead, then one log zone factor per zone) by robust regression."""
    za, zb, nz = zones
    n_par = 2 * HOURS + 1
    ratio = float(np.median(y / np.maximum(local + major, 1.0)))
    x0 = np.r_[np.full(2 * HOURS, np.clip(ratio, 0.2, 10.0)), 60.0, np.zeros(nz)]
    lo = np.r_[np.full(2 * HOURS, 0.1), 0.0, np.full(nz, -_MAX_LOG_ZONE)]
    hi = np.r_[np.full(2 * HOURS, 20.0), _MAX_OVERHEAD_S, np.full(nz, _MAX_LOG_ZONE)]
    prior = np.sqrt(zone_prior) if zone_prior is not None else 0.0
    # Hours or classes without information (no major-road time at all) keep their start value: least_squares
    # handles a zero Jacobian column, and the profile stays finite.
    log_y = np.log(y)

    def parts(p: F64) -> tuple[F64, F64, F64]:
        """(predicted seconds, driving seconds before the zone scale, zone scale) per trip."""
        drive = p[:HOURS][h_fit] * local + p[HOURS : 2 * HOURS][h_fit] * major
        zs = np.exp(0.5 * (p[n_par:][za] + p[n_par:][zb])) if nz else np.ones(y.size)
        return np.maximum(zs * drive + p[2 * HOURS], 1.0), drive, zs

    def residuals(p: F64) -> F64:
        pred = parts(p)[0]
        if residual == "log":
            r: F64 = np.log(pred) - log_y
        else:
            r = (pred - y) / pred
        return np.r_[r, prior * p[n_par:]] if nz else r

    rows = np.arange(y.size)

    def jacobian(p: F64) -> F64:
        pred, drive, zs = parts(p)
        # d log(pred) / d theta = (d pred / d theta) / pred; relative residuals: y / pred**2 instead of 1 / pred.
        g = 1.0 / pred if residual == "log" else y / pred**2
        jac = np.zeros((y.size + nz, n_par + nz))
        jac[rows, h_fit] = zs * local * g
        jac[rows, HOURS + h_fit] = zs * major * g
        jac[rows, 2 * HOURS] = g
        if nz:
            half = 0.5 * zs * drive * g
            jac[rows, n_par + za] = half
            jac[rows, n_par + zb] += half  # both ends in one zone: the two halves add up
            jac[y.size + np.arange(nz), n_par + np.arange(nz)] = prior
        return jac

    sol = least_squares(
        residuals,
        x0,
        jac=jacobian,
        bounds=(lo, hi),
        loss=loss,
        f_scale=f_scale,
        x_scale=np.r_[np.ones(2 * HOURS), 100.0, np.ones(nz)],
    )
    if not sol.success:
        raise NetworkError(f"the robust fit did not converge: {sol.message}")
    p: F64 = sol.x
    return p


def _median_match(
    trips: TripTable, sel: B, fl: F64, fm: F64, overhead: float, nearest: I64, have: I64, zone_scale: F64
) -> F64:
    """Per hour, the multiplier of both factors that makes the simulated median equal the observed one."""
    scale = np.ones(HOURS)
    hour = trips.hour
    oh = round(overhead)
    for h in have.tolist():
        k = sel & (nearest[hour] == h)
        target = float(np.median(trips.duration_s[k]))
        drive = (fl[h] * trips.draw_local_s[:, k] + fm[h] * trips.draw_major_s[:, k]) * zone_scale[k]
        a, b = 0.2, 5.0
        for _ in range(40):
            mid = 0.5 * (a + b)
            if float(np.median(np.rint(mid * drive) + oh)) < target:
                a = mid
            else:
                b = mid
        scale[h] = 0.5 * (a + b)
    return scale[nearest]


# ---------------------------------------------------------------------------------------------------------- evaluate
def simulate(profile: SpeedProfile, trips: TripTable) -> F64:
    """Simulated durations (K, n) of every placement draw under ``profile``, as the router would give them."""
    slot = trips.tod_s * len(profile.factors) // DAY_S
    fl = np.asarray(profile.factors)[slot]
    fm = np.asarray(profile.major_factors)[slot] if profile.major_factors is not None else fl
    total = trips.draw_local_s + trips.draw_major_s
    drive = fl * total + (fm - fl) * trips.draw_major_s
    if profile.has_zones:
        if trips.o_zone is None or trips.d_zone is None:
            raise NetworkError("a profile with zone factors needs the trips' zones (TripTable.o_zone and d_zone)")
        drive = drive * _zone_scale(profile, trips.o_zone, trips.d_zone)
    sim: F64 = np.rint(drive) + np.where(total > 0, profile.overhead_whole_s, 0)
    return sim


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the report: a group of trips."""

    label: str
    trips: int
    observed_median_s: float
    simulated_median_s: float
    trip_abs_error: float  # median over trips of |simulated - observed| / observed (first placement draw)

    @property
    def signed_error(self) -> float:
        """Simulated median / observed median - 1."""
        return self.simulated_median_s / self.observed_median_s - 1.0


@dataclass(frozen=True, slots=True)
class Evaluation:
    """How well simulated durations match observed ones on a set of trips (all errors are fractions)."""

    name: str
    trips: int
    by_hour: tuple[Row, ...]
    by_distance: tuple[Row, ...]
    overall: Row
    cells: int
    cell_trips: int
    cell_error: float  # trip-weighted median of |cell simulated median / observed median - 1|
    route_ratio: float  # median of simulated route length / meter distance

    @property
    def worst_hour(self) -> float:
        return max((abs(r.signed_error) for r in self.by_hour), default=float("nan"))

    @property
    def hours_within_10(self) -> int:
        return sum(abs(r.signed_error) <= 0.10 for r in self.by_hour)


def _row(label: str, obs: F64, sim: F64) -> Row:
    return Row(
        label=label,
        trips=int(obs.size),
        observed_median_s=float(np.median(obs)),
        simulated_median_s=float(np.median(sim)),
        trip_abs_error=float(np.median(np.abs(sim[0] - obs) / obs)),
    )


def weighted_median(values: F64, weights: F64) -> float:
    """The smallest value with at least half the total weight at or below it."""
    order = np.argsort(values, kind="stable")
    cw = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cw, 0.5 * cw[-1])])


def evaluate(profile: SpeedProfile, trips: TripTable, mask: B | None = None, *, name: str = "") -> Evaluation:
    """The fit report's figures for the trips in ``mask`` (see the module notes)."""
    sel = np.ones(len(trips), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if not sel.any():
        raise NetworkError(f"{name or 'evaluation'}: no trip to evaluate")
    sim = simulate(profile, trips)[:, sel]
    obs = trips.duration_s[sel]
    hour = trips.hour[sel]
    by_hour = tuple(_row(f"{h:02d}", obs[hour == h], sim[:, hour == h]) for h in range(HOURS) if np.any(hour == h))
    km = trips.meter_m[sel] / 1000.0
    bands = []
    for a, b in itertools.pairwise(DISTANCE_BANDS_KM):
        k = (km >= a) & (km < b)
        if k.any():
            bands.append(_row(f"{a:g}-{b:g} km" if np.isfinite(b) else f">= {a:g} km", obs[k], sim[:, k]))
    key = trips.cell_pair[sel] * 100 + hour // CELL_HOURS
    _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
    errs, weights = [], []
    for c in np.flatnonzero(cnt >= CELL_MIN_TRIPS).tolist():
        k = inv == c
        errs.append(abs(float(np.median(sim[:, k])) / float(np.median(obs[k])) - 1.0))
        weights.append(float(cnt[c]))
    cell_error = weighted_median(np.asarray(errs), np.asarray(weights)) if errs else float("nan")
    meter = trips.meter_m[sel]
    ok = np.isfinite(meter) & (meter > 0)
    route_ratio = float(np.median(trips.draw_route_m[:, sel][:, ok] / meter[ok])) if ok.any() else float("nan")
    return Evaluation(
        name=name,
        trips=int(sel.sum()),
        by_hour=by_hour,
        by_distance=tuple(bands),
        overall=_row("all", obs, sim),
        cells=len(errs),
        cell_trips=int(sum(weights)),
        cell_error=cell_error,
        route_ratio=route_ratio,
    )


def report_text(evaluations: Sequence[Evaluation]) -> str:
    """The evaluations side by side as plain text (per hour, per distance band, then the goals)."""
    out: list[str] = []
    for ev in evaluations:
        out.append(f"== {ev.name}: {ev.trips:,} trips")
        head = f"{'':>10} {'trips':>7} {'observed':>9} {'simulated':>9} {'signed':>7} {'|trip|':>7}"
        for title, rows in (("by pickup hour", ev.by_hour), ("by meter distance", ev.by_distance)):
            out.append(f"-- {title} (median minutes; signed = median vs median, |trip| = median per-trip error)")
            out.append(head)
            for r in (*rows, ev.overall):
                out.append(
                    f"{r.label:>10} {r.trips:>7,} {r.observed_median_s / 60:>9.2f} {r.simulated_median_s / 60:>9.2f} "
                    f"{100 * r.signed_error:>+6.1f}% {100 * r.trip_abs_error:>6.1f}%"
                )
        out.append(
            f"-- goals: worst hour {100 * ev.worst_hour:.1f} % (goal <= 10 %, {ev.hours_within_10}/{len(ev.by_hour)} "
            f"hours within); zone-pair x {CELL_HOURS} h cells with >= {CELL_MIN_TRIPS} trips: {ev.cells} cells, "
            f"{ev.cell_trips:,} trips, trip-weighted median error {100 * ev.cell_error:.1f} % (goal <= 15 %); "
            f"route length / meter distance, median {ev.route_ratio:.3f} (goal 0.90-1.10)"
        )
        out.append("")
    return "\n".join(out)

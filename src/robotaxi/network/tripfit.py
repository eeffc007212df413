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

    def __post_init__(self) -> None:
        n = self.tod_s.shape[0]
        for name in ("duration_s", "meter_m", "month", "pair", "cell_pair"):
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


def _predict(p: F64, local: F64, major: F64, hour: I64) -> F64:
    out: F64 = p[:HOURS][hour] * local + p[HOURS : 2 * HOURS][hour] * major + p[2 * HOURS]
    return out


def fit_profile(
    trips: TripTable,
    mask: B | None = None,
    *,
    loss: str = "soft_l1",
    f_scale: float = 0.25,
    min_trips_per_hour: int = 30,
    major_min_speed_kmh: float = MAJOR_MIN_SPEED_KMH,
    residual: str = "log",
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
    """
    sel = np.ones(len(trips), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    y = trips.duration_s[sel]
    if y.size == 0:
        raise NetworkError("no trip to fit on")
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
    ratio = float(np.median(y / np.maximum(local + major, 1.0)))
    x0 = np.r_[np.full(2 * HOURS, np.clip(ratio, 0.2, 10.0)), 60.0]
    lo = np.r_[np.full(2 * HOURS, 0.1), 0.0]
    hi = np.r_[np.full(2 * HOURS, 20.0), _MAX_OVERHEAD_S]
    # Hours or classes without information (no major-road time at all) keep their start value: least_squares
    # handles a zero Jacobian column, and the profile stays finite.
    log_y = np.log(y)

    def residuals(p: F64) -> F64:
        pred = np.maximum(_predict(p, local, major, h_fit), 1.0)
        if residual == "log":
            r: F64 = np.log(pred) - log_y
        else:
            r = (pred - y) / pred
        return r

    rows = np.arange(y.size)

    def jacobian(p: F64) -> F64:
        pred = np.maximum(_predict(p, local, major, h_fit), 1.0)
        # d log(pred) / d theta = (d pred / d theta) / pred; relative residuals: y / pred**2 instead of 1 / pred.
        g = 1.0 / pred if residual == "log" else y / pred**2
        jac = np.zeros((y.size, 2 * HOURS + 1))
        jac[rows, h_fit] = local * g
        jac[rows, HOURS + h_fit] = major * g
        jac[:, 2 * HOURS] = g
        return jac

    sol = least_squares(
        residuals,
        x0,
        jac=jacobian,
        bounds=(lo, hi),
        loss=loss,
        f_scale=f_scale,
        x_scale=np.r_[np.ones(2 * HOURS), 100.0],
    )
    if not sol.success:
        raise NetworkError(f"the robust fit did not converge: {sol.message}")
    p = sol.x
    fl, fm, overhead = p[:HOURS][nearest], p[HOURS : 2 * HOURS][nearest], float(p[2 * HOURS])
    scale = _median_match(trips, sel, fl, fm, overhead, nearest, have)
    fl2 = np.clip(np.round(fl * scale, 3), 0.1, 20.0)
    fm2 = np.clip(np.round(fm * scale, 3), 0.1, 20.0)
    profile = SpeedProfile(
        tuple(fl2.tolist()),
        major_factors=tuple(fm2.tolist()),
        overhead_s=round(overhead, 1),
        major_min_speed_kmh=major_min_speed_kmh,
    )
    filled = tuple(int(h) for h in np.flatnonzero(counts < min_trips_per_hour))
    logger.info("fitted %d trips: overhead %.1f s, %d hours filled", y.size, overhead, len(filled))
    return TripFit(
        profile=profile,
        trips_used=int(y.size),
        robust_local=tuple(float(v) for v in fl),
        robust_major=tuple(float(v) for v in fm),
        hour_scale=tuple(float(v) for v in scale),
        filled_hours=filled,
    )


def _median_match(trips: TripTable, sel: B, fl: F64, fm: F64, overhead: float, nearest: I64, have: I64) -> F64:
    """Per hour, the multiplier of both factors that makes the simulated median equal the observed one."""
    scale = np.ones(HOURS)
    hour = trips.hour
    oh = round(overhead)
    for h in have.tolist():
        k = sel & (nearest[hour] == h)
        target = float(np.median(trips.duration_s[k]))
        drive = fl[h] * trips.draw_local_s[:, k] + fm[h] * trips.draw_major_s[:, k]
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
    sim: F64 = np.rint(fl * total + (fm - fl) * trips.draw_major_s) + np.where(total > 0, profile.overhead_whole_s, 0)
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

"""Rebalancing: send idle vehicles from zones with more than they need to zones that will need them.

Every ``interval_s`` the engine builds a :class:`RebalanceView` (the idle vehicles, the busy ones that will be free
soon, expected demand per zone from a :class:`DemandForecast`) and asks a :class:`Rebalancer` for :class:`Moves`.
The one implementation, :class:`ZoneFlowRebalancer`:

1. counts the *supply* of each zone: its idle vehicles plus the busy vehicles whose plan ends in it within the
   horizon;
2. sets integer *targets* by sharing the total supply among zones in proportion to their expected demand (largest
   remainder rounding): a demand-weighted form of the equal split of excess vehicles in the real-time policy of
   Pavone et al., "Robotic load balancing for mobility-on-demand systems", IJRR 31(7), 2012; Wallar et al.,
   "Vehicle rebalancing for mobility-on-demand systems with ride-sharing", IROS 2018, likewise estimate demand per
   region over a horizon and send idle vehicles where it exceeds supply;
3. solves a min-cost flow from *surplus* zones (idle vehicles above target; only idle vehicles move) to *deficit*
   zones (supply below target) as an LP with HiGHS: the most vehicles that the share limit allows, at the least
   total centre-to-centre travel time, on arcs no longer than ``max_travel_s``. Like Pavone et al.'s rebalancing
   LP, it is a transportation problem with integer capacities (plus one budget row, i.e. a super-source arc), so
   its basic optimal solutions are integral;
4. picks the vehicles: within each surplus zone, the ones nearest (by travel time) to the deficit zone's centre.

Everything here is pure and deterministic: the same inputs give the same moves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import LinearConstraint, linprog, milp
from scipy.sparse import csr_array

from ..errors import DispatchError
from ..network import TravelTimes
from ._zoning import Zoning

__all__ = [
    "DemandForecast",
    "Moves",
    "MovingAverageForecast",
    "RateTableForecast",
    "RebalanceParams",
    "RebalanceView",
    "Rebalancer",
    "ZoneFlowRebalancer",
    "Zoning",
]

I32 = NDArray[np.int32]
I64 = NDArray[np.int64]
F64 = NDArray[np.float64]

DAY_S = 86_400
#: A selected vehicle this close (seconds) to its target centre already serves the deficit zone: it is not moved.
_NEAR_S = 30
#: Arcs of the flow LP: each surplus zone keeps its nearest deficit zones, each deficit zone its nearest sources.
_ARCS_PER_ZONE = 8


# ---------------------------------------------------------------------------------------------------- forecasts
class DemandForecast(Protocol):
    """Expected ride requests per zone."""

    def expected(self, now_s: int, horizon_s: int) -> F64:
        """Expected new requests per zone in ``[now_s, now_s + horizon_s)`` (epoch seconds)."""
        ...

    def observe(self, zone: I32, time_s: I64) -> None:
        """Record request arrivals (zone -1 is ignored); may do nothing."""
        ...


class MovingAverageForecast:
    """Arrivals over the last ``window_s`` seconds, scaled to the horizon.

    State is a ring of per-zone arrival counts, one row per ``bucket_s`` bucket, so it pickles small. The window
    is whole buckets: ``expected(now, h)`` counts the arrivals in the ``window_s / bucket_s`` buckets up to the one
    holding ``now - 1`` and returns ``count * h / window_s``. Arrivals older than the window are forgotten.

    Parameters
    ----------
    n_zones : int
        Number of zones (> 0).
    window_s : int
        Averaging window in seconds (a positive multiple of ``bucket_s``).
    bucket_s : int
        Bucket width in seconds (> 0).
    """

    __slots__ = ("_bucket", "_bucket_s", "_counts")

    def __init__(self, n_zones: int, window_s: int = 1800, bucket_s: int = 60) -> None:
        if n_zones <= 0:
            raise ValueError(f"n_zones must be > 0, got {n_zones}")
        if bucket_s <= 0:
            raise ValueError(f"bucket_s must be > 0, got {bucket_s}")
        if window_s <= 0 or window_s % bucket_s:
            raise ValueError(f"window_s must be a positive multiple of bucket_s ({bucket_s}), got {window_s}")
        n = window_s // bucket_s
        self._bucket_s = int(bucket_s)
        self._counts = np.zeros((n, n_zones), dtype=np.int32)
        self._bucket = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)  # absolute bucket held by each row

    def observe(self, zone: I32, time_s: I64) -> None:
        """Count request arrivals at ``time_s`` (epoch seconds) in ``zone``; zone -1 is ignored.

        Raises
        ------
        ValueError
            If the arrays differ in shape or a zone is out of range (nothing is counted then).
        """
        z = np.asarray(zone, dtype=np.int64).ravel()
        t = np.asarray(time_s, dtype=np.int64).ravel()
        n_rows, n_zones = self._counts.shape
        if z.shape != t.shape:
            raise ValueError(f"zone and time_s must have the same length, got {z.shape[0]} and {t.shape[0]}")
        if z.size and (int(z.min()) < -1 or int(z.max()) >= n_zones):
            raise ValueError(f"zone values must be -1 or in 0..{n_zones - 1}")
        keep = z >= 0
        z, b = z[keep], t[keep] // self._bucket_s
        if b.size == 0:
            return
        row = b % n_rows
        newest = self._bucket.copy()
        np.maximum.at(newest, row, b)
        self._counts[newest != self._bucket] = 0  # a row moving on to a newer bucket forgets the old one
        self._bucket = newest
        live = b == newest[row]  # arrivals older than what their row now holds are outside the window
        np.add.at(self._counts, (row[live], z[live]), 1)

    def expected(self, now_s: int, horizon_s: int) -> F64:
        """Expected requests per zone in ``[now_s, now_s + horizon_s)``: the windowed rate times the horizon."""
        n_rows = self._counts.shape[0]
        last = (now_s - 1) // self._bucket_s
        live = (self._bucket > last - n_rows) & (self._bucket <= last)
        counts = self._counts[live].sum(axis=0)
        out: F64 = counts * (horizon_s / (n_rows * self._bucket_s))
        return out


@dataclass(frozen=True, slots=True, eq=False)
class RateTableForecast:
    """Expected requests per zone per slot of the local day.

    Attributes
    ----------
    rates : ndarray of float64, shape (n_zones, n_slots)
        Expected requests of each zone in each slot of the local day (``n_slots`` divides 86,400: 24 for hours,
        96 for quarter hours); the rate is uniform within a slot.
    timezone : str
        IANA time zone of the local day (e.g. ``"America/New_York"``).

    Notes
    -----
    ``expected`` takes epoch seconds and integrates the rate over the local wall-clock time the interval covers:
    on the day clocks go back the repeated hour is counted twice, on the day they go forward the skipped hour not
    at all. The UTC offset is looked up with :mod:`zoneinfo` at the interval's ends (and bisected when it changes
    within a day-long piece), so a call costs a handful of look-ups whatever the horizon.
    """

    rates: F64
    timezone: str
    _tz: ZoneInfo = field(init=False, repr=False)
    _cum: F64 = field(init=False, repr=False)

    def __post_init__(self) -> None:
        r = np.array(self.rates, dtype=np.float64)
        if r.ndim != 2 or r.shape[0] == 0 or r.shape[1] == 0 or DAY_S % r.shape[1]:
            raise ValueError(f"rates must have shape (n_zones, n_slots) with n_slots dividing 86400, got {r.shape}")
        if not np.all(np.isfinite(r)) or np.any(r < 0):
            raise ValueError("rates must be finite and >= 0")
        try:
            tz = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as e:
            raise ValueError(f"timezone must be an IANA time zone name, got {self.timezone!r}") from e
        r.setflags(write=False)
        cum = np.zeros((r.shape[0], r.shape[1] + 1))
        np.cumsum(r, axis=1, out=cum[:, 1:])
        object.__setattr__(self, "rates", r)
        object.__setattr__(self, "_tz", tz)
        object.__setattr__(self, "_cum", cum)

    @classmethod
    def from_requests(
        cls,
        zoning: Zoning,
        o_node: I32,
        local_time_of_day_s: I64,
        n_days: float,
        slots: int = 24,
        *,
        timezone: str,
    ) -> RateTableForecast:
        """The average requests per zone and local slot of a demand sample covering ``n_days`` days.

        Parameters
        ----------
        zoning : Zoning
        o_node : ndarray of int
            Origin node of each request; requests outside every zone are not counted.
        local_time_of_day_s : ndarray of int
            Local wall-clock time of day of each request, in ``[0, 86400)``.
        n_days : float
            Days the sample covers (> 0): the table is counts / ``n_days``.
        slots : int
            Slots per day (dividing 86,400).
        timezone : str
            IANA time zone of the local times.
        """
        o = np.asarray(o_node, dtype=np.int64).ravel()
        tod = np.asarray(local_time_of_day_s, dtype=np.int64).ravel()
        if o.shape != tod.shape:
            raise ValueError(f"o_node and local_time_of_day_s differ in length ({o.shape[0]} vs {tod.shape[0]})")
        if not n_days > 0:
            raise ValueError(f"n_days must be > 0, got {n_days}")
        if slots <= 0 or DAY_S % slots:
            raise ValueError(f"slots must divide 86400, got {slots}")
        if o.size and (int(o.min()) < 0 or int(o.max()) >= zoning.zone_of_node.shape[0]):
            raise ValueError("o_node values must be node indices of the zoning's network")
        if tod.size and (int(tod.min()) < 0 or int(tod.max()) >= DAY_S):
            raise ValueError("local_time_of_day_s values must be in [0, 86400)")
        zone = zoning.zone_of_node[o].astype(np.int64)
        keep = zone >= 0
        cell = zone[keep] * slots + tod[keep] // (DAY_S // slots)
        counts = np.bincount(cell, minlength=zoning.n_zones * slots).reshape(zoning.n_zones, slots)
        return cls(counts / float(n_days), timezone)

    def observe(self, zone: I32, time_s: I64) -> None:
        """Does nothing: the table is fixed."""

    def expected(self, now_s: int, horizon_s: int) -> F64:
        """Expected requests per zone in ``[now_s, now_s + horizon_s)`` (epoch seconds)."""
        out = np.zeros(self.rates.shape[0])
        t, end = int(now_s), int(now_s) + max(int(horizon_s), 0)
        while t < end:
            piece_end = min(end, t + DAY_S)  # at most one offset change per day in any real time zone
            off = self._offset(t)
            if self._offset(piece_end - 1) != off:
                lo, hi = t, piece_end - 1  # offset(lo) == off != offset(hi): bisect for the first changed second
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    lo, hi = (mid, hi) if self._offset(mid) == off else (lo, mid)
                piece_end = hi
            out += self._local_integral(piece_end + off) - self._local_integral(t + off)
            t = piece_end
        return out

    def _offset(self, t: int) -> int:
        delta = datetime.fromtimestamp(t, self._tz).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    def _local_integral(self, local_s: int) -> F64:
        """Expected requests from local midnight of 1970-01-01 up to ``local_s`` (a periodic rate's antiderivative)."""
        n_slots = self.rates.shape[1]
        slot_s = DAY_S // n_slots
        day, s = divmod(local_s, DAY_S)
        k, frac = divmod(s, slot_s)
        out: F64 = day * self._cum[:, -1] + self._cum[:, k] + self.rates[:, k % n_slots] * (frac / slot_s)
        return out


# ---------------------------------------------------------------------------------------------------- inputs, outputs
@dataclass(frozen=True, slots=True)
class RebalanceParams:
    """Rebalancing settings.

    Attributes
    ----------
    interval_s : int
        How often the engine calls the rebalancer, in seconds (> 0).
    horizon_s : int
        Forecast horizon in seconds (> 0): demand is expected, and busy vehicles counted, over this time ahead.
    max_share : float
        At most ``floor(max_share * fleet_size)`` vehicles are moved per call (0 < max_share <= 1).
    max_travel_s : int
        No vehicle is sent on a move longer than this many seconds (> 0).
    unassigned_targets : bool
        Before the zone flow, send idle vehicles to the pickups of the requests the last decision left unassigned
        (:attr:`RebalanceView.waiting_node`), as Alonso-Mora et al. (PNAS 2017) do: each such pickup at most one
        vehicle, as many as possible, then the least total travel time, within ``max_travel_s`` and the share
        limit (shared with the zone flow, which moves the idle vehicles left).
    """

    interval_s: int = 300
    horizon_s: int = 900
    max_share: float = 0.1
    max_travel_s: int = 900
    unassigned_targets: bool = False

    def __post_init__(self) -> None:
        for name in ("interval_s", "horizon_s", "max_travel_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v <= 0:
                raise ValueError(f"RebalanceParams.{name} must be a positive integer number of seconds, got {v!r}")
        if not (isinstance(self.max_share, int | float) and 0 < self.max_share <= 1):
            raise ValueError(f"RebalanceParams.max_share must be in (0, 1], got {self.max_share!r}")
        if not isinstance(self.unassigned_targets, bool | np.bool_):
            raise ValueError(
                f"RebalanceParams.unassigned_targets must be true or false, got {self.unassigned_targets!r}"
            )


@dataclass(frozen=True, slots=True, eq=False)
class RebalanceView:
    """What a rebalancer sees at one call (arrays are stored as read-only copies).

    Attributes
    ----------
    now_s : int
        Epoch seconds.
    vehicle : ndarray of int32
        Candidate vehicles (idle: no stops in their plan), as dense engine indices, each once.
    node : ndarray of int32
        Current node of each candidate.
    soon_free_zone : ndarray of int32
        For each busy vehicle whose plan ends within the horizon, the zone where it will be free (-1 is ignored).
    fleet_size : int
        Vehicles in service (the base of ``max_share``).
    expected : ndarray of float64
        Expected requests per zone over the horizon (from a :class:`DemandForecast`).
    area : ndarray of int32, optional
        Per candidate, the row of ``area_mask`` it must stay inside (-1: anywhere): the service area of its
        operator (the marketplace). A vehicle is only ever sent to a target inside its area.
    area_mask : ndarray of bool (areas x nodes), optional
    waiting_node : ndarray of int32, optional
        Pickup node of each open request the last decision left unassigned (one entry per request; used with
        :attr:`RebalanceParams.unassigned_targets`). None: not known.
    """

    now_s: int
    vehicle: I32
    node: I32
    soon_free_zone: I32
    fleet_size: int
    expected: F64
    area: I32 | None = None
    area_mask: NDArray[np.bool_] | None = None
    waiting_node: I32 | None = None

    def __post_init__(self) -> None:
        vehicle = _int_vector(self.vehicle, "RebalanceView.vehicle")
        node = _int_vector(self.node, "RebalanceView.node")
        if node.shape != vehicle.shape:
            raise ValueError("RebalanceView.node must have one entry per vehicle")
        if vehicle.size and (int(vehicle.min()) < 0 or np.unique(vehicle).shape[0] != vehicle.shape[0]):
            raise ValueError("RebalanceView.vehicle must hold distinct vehicle indices >= 0")
        if self.fleet_size < 0:
            raise ValueError(f"RebalanceView.fleet_size must be >= 0, got {self.fleet_size}")
        expected = np.array(self.expected, dtype=np.float64)
        if expected.ndim != 1 or not np.all(np.isfinite(expected)) or np.any(expected < 0):
            raise ValueError("RebalanceView.expected must be a 1-D array of finite values >= 0")
        expected.setflags(write=False)
        object.__setattr__(self, "vehicle", vehicle)
        object.__setattr__(self, "node", node)
        object.__setattr__(self, "soon_free_zone", _int_vector(self.soon_free_zone, "RebalanceView.soon_free_zone"))
        object.__setattr__(self, "expected", expected)
        if self.area is not None:
            area = _int_vector(self.area, "RebalanceView.area")
            if area.shape != vehicle.shape:
                raise ValueError("RebalanceView.area must have one entry per vehicle")
            if self.area_mask is None or (area.size and int(area.max()) >= self.area_mask.shape[0]):
                raise ValueError("RebalanceView.area refers to rows of area_mask that do not exist")
            object.__setattr__(self, "area", area)
        if self.waiting_node is not None:
            object.__setattr__(self, "waiting_node", _int_vector(self.waiting_node, "RebalanceView.waiting_node"))


@dataclass(frozen=True, slots=True, eq=False)
class Moves:
    """Repositioning decisions: send ``vehicle[i]`` to ``node[i]`` (each vehicle at most once).

    Attributes
    ----------
    vehicle : ndarray of int32
        Vehicles to move, increasing.
    node : ndarray of int32
        Target node of each.
    """

    vehicle: I32
    node: I32

    def __post_init__(self) -> None:
        vehicle = _int_vector(self.vehicle, "Moves.vehicle")
        node = _int_vector(self.node, "Moves.node")
        if node.shape != vehicle.shape:
            raise ValueError("Moves.node must have one entry per vehicle")
        if np.unique(vehicle).shape[0] != vehicle.shape[0]:
            raise ValueError("Moves.vehicle must not name a vehicle twice")
        object.__setattr__(self, "vehicle", vehicle)
        object.__setattr__(self, "node", node)


def _no_moves() -> Moves:
    return Moves(np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int32))


# ---------------------------------------------------------------------------------------------------- rebalancers
class Rebalancer(Protocol):
    """Decides, every ``interval_s`` seconds, which idle vehicles to reposition."""

    @property
    def interval_s(self) -> int:
        """Seconds between calls."""
        ...

    def rebalance(self, view: RebalanceView, zoning: Zoning, travel: TravelTimes) -> Moves:
        """The moves for this call (pure: no state changes anywhere)."""
        ...


@dataclass(frozen=True, slots=True)
class ZoneFlowRebalancer:
    """Surplus-to-deficit min-cost flow between zones (see the module notes).

    Attributes
    ----------
    params : RebalanceParams
    """

    params: RebalanceParams = field(default_factory=RebalanceParams)

    @property
    def interval_s(self) -> int:
        """Seconds between calls (``params.interval_s``)."""
        return self.params.interval_s

    def rebalance(self, view: RebalanceView, zoning: Zoning, travel: TravelTimes) -> Moves:
        """Moves that bring idle supply towards expected demand.

        Raises
        ------
        DispatchError
            If the view does not fit the zoning (``expected`` of another length, a node or zone out of range).
        """
        _check_view(view, zoning)
        p = self.params
        # The epsilon keeps e.g. 0.29 * 100 (28.999999999999996 in floating point) at 29.
        budget = math.floor(p.max_share * view.fleet_size + 1e-9)
        if budget <= 0 or view.vehicle.shape[0] == 0:
            return _no_moves()
        if p.unassigned_targets and view.waiting_node is not None and view.waiting_node.size:
            first = _to_unassigned(view, travel, budget, p.max_travel_s)
            if first.sent.size == 0:
                return self._flow(view, zoning, travel, budget)
            # The vehicles sent (or already standing at a pickup) are supply where they go: the zone flow moves
            # the others, within what is left of the share limit.
            rest = ~np.isin(view.vehicle, first.sent)
            sub = RebalanceView(
                now_s=view.now_s,
                vehicle=view.vehicle[rest],
                node=view.node[rest],
                soon_free_zone=np.concatenate((view.soon_free_zone, zoning.zone_of_node[first.sent_to])),
                fleet_size=view.fleet_size,
                expected=view.expected,
                area=None if view.area is None else view.area[rest],
                area_mask=view.area_mask,
            )
            flow = self._flow(sub, zoning, travel, budget - int(first.sent.size))
            vehicle = np.concatenate((first.vehicle, flow.vehicle))
            node = np.concatenate((first.node, flow.node))
            order = np.argsort(vehicle, kind="stable")
            return Moves(vehicle[order], node[order])
        return self._flow(view, zoning, travel, budget)

    def _flow(self, view: RebalanceView, zoning: Zoning, travel: TravelTimes, budget: int) -> Moves:
        """The zone flow (steps 1-4 of the module notes) for the idle vehicles of ``view``."""
        p = self.params
        if budget <= 0 or view.vehicle.shape[0] == 0:
            return _no_moves()
        n = zoning.n_zones
        zone = zoning.zone_of_node[view.node].astype(np.int64)
        idle = np.bincount(zone[zone >= 0], minlength=n)
        soon = view.soon_free_zone[view.soon_free_zone >= 0]
        supply = idle + np.bincount(soon, minlength=n)
        target = _apportion(int(supply.sum()), view.expected)
        surplus = np.clip(np.minimum(idle, supply - target), 0, None)
        deficit = np.clip(target - supply, 0, None)
        src, dst = np.flatnonzero(surplus), np.flatnonzero(deficit)
        if src.size == 0 or dst.size == 0:
            return _no_moves()
        centre = zoning.center_node
        cost = travel.times(centre[src][:, None], centre[dst][None, :], view.now_s).astype(np.int64)
        fi, fj, units = _solve_flow(cost, surplus[src], deficit[dst], budget, p.max_travel_s)
        if units.size == 0:
            return _no_moves()
        # Cheapest flows choose their vehicles first (deterministic order: cost, then zone indices).
        order = np.lexsort((dst[fj], src[fi], cost[fi, fj]))
        return _pick_vehicles(view, zone, centre, travel, src[fi][order], dst[fj][order], units[order], p)


@dataclass(frozen=True, slots=True)
class _Sent:
    """Idle vehicles given to unassigned requests: the moves, and every vehicle counted (moved or already there)."""

    vehicle: I32
    node: I32
    sent: I32
    sent_to: I32


def _to_unassigned(view: RebalanceView, travel: TravelTimes, budget: int, max_travel_s: int) -> _Sent:
    """Idle vehicles to the pickups of unassigned requests (Alonso-Mora et al., PNAS 2017, "rebalancing"): a
    rectangular assignment (SciPy ``linear_sum_assignment``) of idle vehicles to waiting pickups, one vehicle per
    request, as many as possible (a pair costs its travel time; a pair over ``max_travel_s`` or outside the
    vehicle's area a prohibitive cost), then the least total travel time; at most ``budget`` pairs, the shortest
    kept. Vehicles and pickups are put in index order first, so the answer does not depend on the view's order. A
    vehicle within ``_NEAR_S`` of its pickup is counted but not moved."""
    from scipy.optimize import linear_sum_assignment

    waiting = np.sort(view.waiting_node.astype(np.int64)) if view.waiting_node is not None else np.empty(0, np.int64)
    by_vehicle = np.argsort(view.vehicle, kind="stable")
    node = view.node[by_vehicle].astype(np.int64)
    secs = travel.times(node[:, None], waiting[None, :], view.now_s).astype(np.int64)
    allowed = secs <= max_travel_s
    if view.area is not None and view.area_mask is not None:
        a = view.area[by_vehicle]
        allowed &= (a < 0)[:, None] | view.area_mask[np.maximum(a, 0)][:, waiting]
    e32 = np.empty(0, np.int32)
    if not allowed.any():
        return _Sent(e32, e32, e32, e32)
    # Only vehicles and pickups with an allowed pair take part (a smaller problem, the same optimum).
    rows, cols = np.flatnonzero(allowed.any(axis=1)), np.flatnonzero(allowed.any(axis=0))
    sub_ok, sub_s = allowed[np.ix_(rows, cols)], secs[np.ix_(rows, cols)]
    # A prohibited pair costs more than any set of allowed ones: the most pairs first, then the least time.
    big = (min(sub_s.shape) + 1) * (max_travel_s + 1)
    ri, ci = linear_sum_assignment(np.where(sub_ok, sub_s, big))
    ok = sub_ok[ri, ci]
    vi, wi = rows[ri[ok]], cols[ci[ok]]
    if vi.size > budget:
        keep = np.lexsort((view.vehicle[by_vehicle][vi], secs[vi, wi]))[:budget]
        vi, wi = vi[keep], wi[keep]
    vehicles = view.vehicle[by_vehicle][vi]
    targets = waiting[wi].astype(np.int32)
    far = secs[vi, wi] > _NEAR_S
    order = np.argsort(vehicles[far], kind="stable")
    return _Sent(vehicles[far][order], targets[far][order], vehicles.astype(np.int32), targets)


def _check_view(view: RebalanceView, zoning: Zoning) -> None:
    n_nodes, n = zoning.zone_of_node.shape[0], zoning.n_zones
    if view.expected.shape[0] != n:
        raise DispatchError(f"rebalance: expected demand has {view.expected.shape[0]} zones, the zoning has {n}")
    if view.node.size and (int(view.node.min()) < 0 or int(view.node.max()) >= n_nodes):
        raise DispatchError(f"rebalance: vehicle nodes must be in 0..{n_nodes - 1}")
    sf = view.soon_free_zone
    if sf.size and (int(sf.min()) < -1 or int(sf.max()) >= n):
        raise DispatchError(f"rebalance: soon_free_zone values must be -1 or in 0..{n - 1}")
    wn = view.waiting_node
    if wn is not None and wn.size and (int(wn.min()) < 0 or int(wn.max()) >= n_nodes):
        raise DispatchError(f"rebalance: waiting_node values must be in 0..{n_nodes - 1}")


def _apportion(total: int, weight: F64) -> I64:
    """``total`` units shared in proportion to ``weight`` by largest remainders (ties: lower index).

    All zeros when there is no weight.
    """
    w_sum = float(weight.sum())
    if total <= 0 or w_sum <= 0:
        return np.zeros(weight.shape[0], dtype=np.int64)
    quota = np.round(weight * (total / w_sum), 9)  # rounding kills float noise such as 1.9999999999999998
    base = np.floor(quota).astype(np.int64)
    rest = total - int(base.sum())
    if rest > 0:
        order = np.lexsort((np.arange(weight.shape[0]), -(quota - base)))
        base[order[:rest]] += 1
    return base


def _solve_flow(cost: I64, supply: I64, demand: I64, budget: int, max_travel_s: int) -> tuple[I64, I64, I64]:
    """Integral min-cost max-flow from ``supply`` rows to ``demand`` columns, at most ``budget`` units in total.

    Arcs are the pairs with ``cost <= max_travel_s`` among each row's and each column's ``_ARCS_PER_ZONE`` cheapest
    (exact on that sparse graph; far arcs are seldom in the optimum of a geometric transport problem, and the pruning
    keeps the LP small at 300 zones). The objective ``sum (cost - M) x`` with ``M > (U + 1) * max cost``, where U
    bounds the flow, makes any larger flow better than any smaller one and breaks ties by total cost. Returns
    (row, column, units) for the arcs with flow.
    """
    ns, nd = cost.shape
    k = _ARCS_PER_ZONE
    near = np.zeros(cost.shape, dtype=bool)
    np.put_along_axis(near, np.argsort(cost, axis=1, kind="stable")[:, :k], True, axis=1)
    np.put_along_axis(near, np.argsort(cost, axis=0, kind="stable")[:k, :], True, axis=0)
    ii, jj = np.nonzero(near & (cost <= max_travel_s))
    empty = np.empty(0, dtype=np.int64)
    if ii.size == 0:
        return empty, empty, empty
    c = cost[ii, jj].astype(np.float64)
    bound = min(budget, int(supply.sum()), int(demand.sum()))
    big = (bound + 1) * max(float(c.max()), 1.0) + 1.0
    m = ii.shape[0]
    rows = np.concatenate((ii, ns + jj, np.full(m, ns + nd)))
    a = csr_array((np.ones(3 * m), (rows, np.tile(np.arange(m), 3))), shape=(ns + nd + 1, m))
    b = np.concatenate((supply, demand, [budget])).astype(np.float64)
    # Presolve finds little to remove in a transportation LP and costs ~20 % of the solve at 300 zones.
    res = linprog(c - big, A_ub=a, b_ub=b, bounds=(0, None), method="highs", options={"presolve": False})
    x = np.asarray(res.x) if res.status == 0 else None
    if x is None or not _integral_and_feasible(x, a, b):
        # Basic solutions of this network LP are integral; should HiGHS return another one, ask for integers.
        res = milp(c - big, constraints=LinearConstraint(a, -np.inf, b), integrality=np.ones(m), bounds=(0, np.inf))
        if res.status != 0 or res.x is None:
            raise DispatchError(f"rebalance: the flow problem could not be solved ({res.message})")
        x = np.asarray(res.x)
    units = np.rint(x).astype(np.int64)
    used = units > 0
    return ii[used], jj[used], units[used]


def _integral_and_feasible(x: F64, a: csr_array, b: F64) -> bool:
    r = np.rint(x)
    return bool(np.all(np.abs(x - r) <= 1e-6) and np.all(r >= 0) and np.all(a @ r <= b + 1e-9))


def _pick_vehicles(
    view: RebalanceView,
    zone: I64,
    centre: I32,
    travel: TravelTimes,
    fsrc: I64,
    fdst: I64,
    units: I64,
    p: RebalanceParams,
) -> Moves:
    """For each flow in order, its ``units`` unused vehicles of the source zone nearest the target centre.

    Only vehicles within ``max_travel_s`` of the target are eligible (a flow may then move fewer). A chosen vehicle
    within ``_NEAR_S`` of the target is counted but not moved. Ties go to the lower vehicle index.
    """
    by_zone = np.lexsort((view.vehicle, zone))  # candidate positions grouped by zone, vehicle index ascending
    zsorted = zone[by_zone]
    lo = np.searchsorted(zsorted, fsrc, side="left")
    hi = np.searchsorted(zsorted, fsrc, side="right")
    # One travel-time query for every (flow, vehicle of its source zone) pair.
    sizes = hi - lo
    starts = np.concatenate(([0], np.cumsum(sizes)))
    flow_of_pair = np.repeat(np.arange(fsrc.shape[0]), sizes)
    rank = np.arange(int(starts[-1])) - starts[flow_of_pair]  # position of the vehicle within its zone's group
    pos = by_zone[lo[flow_of_pair] + rank]
    seconds = travel.times(view.node[pos], centre[fdst][flow_of_pair], view.now_s).astype(np.int64)
    taken = np.zeros(view.vehicle.shape[0], dtype=bool)
    moved_pos: list[I64] = []
    moved_to: list[I64] = []
    for f in range(fsrc.shape[0]):
        cand, secs = pos[starts[f] : starts[f + 1]], seconds[starts[f] : starts[f + 1]]
        ok = ~taken[cand] & (secs <= p.max_travel_s)
        if view.area is not None and view.area_mask is not None:
            a = view.area[cand]
            ok &= (a < 0) | view.area_mask[np.maximum(a, 0), centre[fdst[f]]]
        cand, secs = cand[ok], secs[ok]
        pick = np.lexsort((view.vehicle[cand], secs))[: units[f]]
        taken[cand[pick]] = True
        far = secs[pick] > _NEAR_S
        moved_pos.append(cand[pick][far])
        moved_to.append(np.full(int(far.sum()), centre[fdst[f]], dtype=np.int64))
    chosen = np.concatenate(moved_pos)
    target = np.concatenate(moved_to)
    order = np.argsort(view.vehicle[chosen], kind="stable")
    return Moves(view.vehicle[chosen][order], target[order].astype(np.int32))


def _int_vector(a: object, name: str) -> I32:
    arr = np.asarray(a)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ValueError(f"{name} must be a 1-D integer array, got shape {arr.shape} and dtype {arr.dtype}")
    out = arr.astype(np.int32)
    out.setflags(write=False)
    return out

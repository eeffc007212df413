"""Key performance indicators of a run, as one typed, frozen record.

Everything here is computed from the run's outputs alone, so the same seed gives byte-identical ``kpis.json``
(wall-clock timings are kept out of it, in :class:`~.run.RunOutput`). Times are seconds, distances kilometres,
shares percent.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..dispatch import REPOSITION
from ..fleet import EventType, VehicleState
from .result import REASON_LABELS, Outcome, SimResult

_BUSY = (VehicleState.RESERVED, VehicleState.STOPPED, VehicleState.ON_TRIP)


@dataclass(frozen=True, slots=True)
class Kpis:
    """The KPIs of one run (see the module docstring for units; None where nothing was there to measure)."""

    scenario: str
    policy: str
    vehicles: int
    window_start_s: int
    window_end_s: int
    last_event_s: int
    requests: int
    served: int
    served_pct: float
    rejected: int
    cancelled: int
    rejected_by_reason: dict[str, int]
    cancelled_by_reason: dict[str, int]
    wait_mean_s: float | None
    wait_median_s: float | None
    wait_p90_s: float | None
    wait_p95_s: float | None
    in_vehicle_mean_s: float | None
    delay_mean_s: float | None
    detour_mean: float | None
    pooled_trips_pct: float | None
    occupancy_mean: float | None
    vehicle_km_occupied: float
    vehicle_km_empty: float
    vehicle_km_rebalancing: float
    vehicle_km_total: float
    passenger_km_direct: float
    vehicle_km_saved_pct: float | None
    empty_km_share_pct: float | None
    fleet_utilisation_pct: float | None
    trips_per_vehicle_mean: float
    trips_per_vehicle_max: int
    vehicles_in_service: int
    vehicle_state_hours: dict[str, float]
    served_pct_by_hour: list[float | None]
    wait_mean_s_by_hour: list[float | None]
    occupancy_by_hour: list[float | None]
    utilisation_pct_by_hour: list[float | None]
    by_operator: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return asdict(self)

    def to_json(self) -> str:
        """Indented JSON with a final newline (stable key order: the fields' order)."""
        return json.dumps(self.to_dict(), indent=2) + "\n"


#: Distance classes of a leg, in this order: riders on board, empty to a pickup (or a depot), empty rebalancing.
KM_OCCUPIED, KM_EMPTY, KM_REBALANCING = 0, 1, 2


def leg_km_class(result: SimResult) -> NDArray[np.int64]:
    """The distance class of every leg (:data:`KM_OCCUPIED`, :data:`KM_EMPTY` or :data:`KM_REBALANCING`)."""
    legs = result.legs
    return np.where(legs.load > 0, KM_OCCUPIED, np.where(legs.kind == REPOSITION, KM_REBALANCING, KM_EMPTY)).astype(
        np.int64
    )


def state_durations(result: SimResult, vehicles: NDArray[np.bool_] | None = None) -> dict[str, float]:
    """Vehicle-seconds spent in each MDS state between each vehicle's first and last event (of the vehicles
    flagged in ``vehicles``, one flag per vehicle; default all)."""
    ev = result.events
    if vehicles is not None:
        keep = vehicles[ev.vehicle]
        ev = type(ev)(**{f: getattr(ev, f)[keep] for f in ev.__dataclass_fields__})
    order = np.lexsort((np.arange(len(ev)), ev.vehicle))
    v, t, s = ev.vehicle[order], ev.time_s[order], ev.state[order]
    same = v[1:] == v[:-1]
    dur = np.where(same, t[1:] - t[:-1], 0)
    totals = np.bincount(s[:-1].astype(np.int64), weights=dur, minlength=len(VehicleState))
    return {VehicleState(i).mds: float(x) for i, x in enumerate(totals)}


def utilisation_by_hour(result: SimResult, n_hours: int) -> list[float | None]:
    """Busy share (reserved, stopped or on a trip) of the vehicle-time in service within each hour of the day, in
    percent, as :attr:`Kpis.fleet_utilisation_pct` is for the whole run; None for an hour no vehicle was in service.

    A fleet near 100 % in an hour has no vehicle to spare: riders turned away then are a question of fleet size,
    not of matching or rebalancing. State intervals are cut at the hour boundaries, to the second."""
    ev = result.events
    out: list[float | None] = [None] * n_hours
    if len(ev) < 2:
        return out
    order = np.lexsort((np.arange(len(ev)), ev.vehicle))
    v, t, s = ev.vehicle[order], ev.time_s[order].astype(np.int64), ev.state[order]
    same = v[1:] == v[:-1]
    horizon = n_hours * 3600
    start = np.clip(t[:-1][same], 0, horizon)
    end = np.clip(t[1:][same], 0, horizon)
    state = s[:-1][same]
    off = np.isin(state, (VehicleState.NON_OPERATIONAL, VehicleState.REMOVED))
    busy = np.isin(state, _BUSY)

    def seconds_by_hour(mask: NDArray[np.bool_]) -> NDArray[np.int64]:
        # Vehicles in the class at each second (+1 where an interval starts, -1 where it ends), summed by hour.
        edges = np.bincount(start[mask], minlength=horizon + 1) - np.bincount(end[mask], minlength=horizon + 1)
        per_hour: NDArray[np.int64] = np.cumsum(edges[:horizon]).reshape(n_hours, 3600).sum(axis=1)
        return per_hour

    in_service, busy_s = seconds_by_hour(~off), seconds_by_hour(busy)
    return [round(100 * float(b) / float(n), 2) if n else None for b, n in zip(busy_s, in_service, strict=True)]


def _pct(a: NDArray[Any], q: float) -> float | None:
    # None, not NaN, when nothing was served: kpis.json must stay valid JSON (NaN is not).
    return float(np.percentile(a, q)) if a.size else None


def _mean(a: NDArray[Any], digits: int = 1) -> float | None:
    return round(float(a.mean()), digits) if a.size else None


def pooled_mask(result: SimResult) -> NDArray[np.bool_]:
    """Served requests that shared their vehicle with another rider at some moment of their ride."""
    o = result.outcomes
    served = np.flatnonzero(o.outcome == Outcome.SERVED)
    pooled = np.zeros(o.outcome.size, dtype=bool)
    if served.size < 2:
        return pooled
    v, b, d = o.vehicle[served], o.board_s[served], o.dropoff_s[served]
    order = np.lexsort((b, v))
    v, b, d, rows = v[order], b[order], d[order], served[order]
    # Within a vehicle (rides sorted by boarding), a ride overlaps an earlier one if it boards before the latest
    # dropoff so far, and a later one if the next ride boards before its own dropoff.
    starts = np.r_[True, v[1:] != v[:-1]]
    group = np.cumsum(starts) - 1
    big = np.int64(1) << 40
    running = np.maximum.accumulate(d + group.astype(np.int64) * big) - group.astype(np.int64) * big
    prev_max = np.r_[np.int64(-1), running[:-1]]
    with_earlier = ~starts & (b < prev_max)
    with_later = np.r_[(~starts[1:]) & (b[1:] < d[:-1]), False]
    pooled[rows] = with_earlier | with_later
    return pooled


def _by_hour(result: SimResult) -> tuple[list[float | None], list[float | None], list[float | None]]:
    r, o = result.requests, result.outcomes
    hour = (r.time_s // 3600).astype(np.int64)
    n_h = max(24, int(hour.max()) + 1) if hour.size else 24
    total = np.bincount(hour, minlength=n_h)
    served = o.outcome == Outcome.SERVED
    n_served = np.bincount(hour[served], minlength=n_h)
    wait = result.wait_s
    wait_sum = np.bincount(hour[served], weights=wait[served], minlength=n_h)
    legs = result.legs
    occ_num: NDArray[np.float64] = np.zeros(n_h)
    occ_den: NDArray[np.float64] = np.zeros(n_h)
    if len(legs):
        lh = np.minimum(legs.start_s // 3600, n_h - 1).astype(np.int64)
        km = legs.length_m.astype(np.float64)
        occupied = legs.load > 0
        occ_num = np.bincount(lh[occupied], weights=(km * legs.load)[occupied], minlength=n_h).astype(np.float64)
        occ_den = np.bincount(lh[occupied], weights=km[occupied], minlength=n_h).astype(np.float64)
    served_pct: list[float | None] = [
        round(100 * float(s) / float(n), 2) if n else None for s, n in zip(n_served, total, strict=True)
    ]
    wait_mean: list[float | None] = [
        round(float(w) / float(s), 1) if s else None for w, s in zip(wait_sum, n_served, strict=True)
    ]
    occ: list[float | None] = [
        round(float(a) / float(b), 3) if b else None for a, b in zip(occ_num, occ_den, strict=True)
    ]
    return served_pct[:n_h], wait_mean[:n_h], occ[:n_h]


def compute_kpis(result: SimResult, scenario: str = "") -> Kpis:
    """The KPIs of ``result``."""
    o = result.outcomes
    n = len(result.requests)
    served = o.outcome == Outcome.SERVED
    wait = result.wait_s[served]
    ride = result.ride_s[served]
    by_reason: dict[str, dict[str, int]] = {"rejected": {}, "cancelled": {}}
    for outcome, key in ((Outcome.REJECTED, "rejected"), (Outcome.CANCELLED, "cancelled")):
        codes = o.reason[o.outcome == outcome]
        for code, count in zip(*np.unique(codes, return_counts=True), strict=True):
            by_reason[key][REASON_LABELS.get(int(code), str(int(code)))] = int(count)
    legs = result.legs
    km = legs.length_m.astype(np.float64) / 1000
    occupied = legs.load > 0
    km_occupied, km_empty, km_rebalancing = (float(x) for x in np.bincount(leg_km_class(result), km, minlength=3))
    km_total = km_occupied + km_empty + km_rebalancing
    pax_km = float((km * legs.load)[occupied].sum())
    direct_km = float(o.direct_m[served].sum(dtype=np.int64)) / 1000
    direct_s = o.direct_s[served].astype(np.float64)
    delay = (o.dropoff_s[served] - result.requests.time_s[served] - direct_s).astype(np.float64)
    detour = ride / np.maximum(direct_s, 1.0)
    durations = state_durations(result)
    in_service = sum(v for k, v in durations.items() if k not in ("non_operational", "removed"))
    busy = sum(durations[s.mds] for s in _BUSY)
    n_veh = len(result.fleet)
    trips = np.bincount(o.vehicle[served], minlength=n_veh)
    starts = int((result.events.event == EventType.SERVICE_START).sum())
    pooled = pooled_mask(result)
    by_hour = _by_hour(result)
    return Kpis(
        scenario=scenario,
        policy=result.policy,
        vehicles=n_veh,
        window_start_s=result.start_s,
        window_end_s=result.end_s,
        last_event_s=result.last_event_s,
        requests=n,
        served=int(served.sum()),
        served_pct=round(100 * float(served.mean()), 2) if n else 0.0,
        rejected=int((o.outcome == Outcome.REJECTED).sum()),
        cancelled=int((o.outcome == Outcome.CANCELLED).sum()),
        rejected_by_reason=by_reason["rejected"],
        cancelled_by_reason=by_reason["cancelled"],
        wait_mean_s=_mean(wait),
        wait_median_s=_pct(wait, 50),
        wait_p90_s=_pct(wait, 90),
        wait_p95_s=_pct(wait, 95),
        in_vehicle_mean_s=_mean(ride),
        delay_mean_s=_mean(delay),
        detour_mean=_mean(detour, 3),
        pooled_trips_pct=round(100 * float(pooled[served].mean()), 2) if served.any() else None,
        occupancy_mean=round(pax_km / km_occupied, 3) if km_occupied else None,
        vehicle_km_occupied=round(km_occupied, 1),
        vehicle_km_empty=round(km_empty, 1),
        vehicle_km_rebalancing=round(km_rebalancing, 1),
        vehicle_km_total=round(km_total, 1),
        passenger_km_direct=round(direct_km, 1),
        vehicle_km_saved_pct=round(100 * (1 - km_occupied / direct_km), 2) if direct_km else None,
        empty_km_share_pct=round(100 * (km_empty + km_rebalancing) / km_total, 2) if km_total else None,
        fleet_utilisation_pct=round(100 * busy / in_service, 2) if in_service else None,
        trips_per_vehicle_mean=round(float(trips.mean()), 2),
        trips_per_vehicle_max=int(trips.max()),
        vehicles_in_service=starts,
        vehicle_state_hours={k: round(v / 3600, 1) for k, v in durations.items() if v},
        served_pct_by_hour=by_hour[0],
        wait_mean_s_by_hour=by_hour[1],
        occupancy_by_hour=by_hour[2],
        utilisation_pct_by_hour=utilisation_by_hour(result, len(by_hour[0])),
        by_operator=operator_kpis(result),
    )


def operator_kpis(result: SimResult) -> dict[str, dict[str, Any]]:
    """Per operator (by name): kind, vehicles, trips and their share of the platform's trips, trips by hour of the
    request, mean wait, vehicle-km (occupied, to pickups, rebalancing and returning to the depot), utilisation, and
    for human-driver pools the offers made and declined (or let lapse)."""
    fleet = result.fleet
    o = result.outcomes
    served = o.outcome == Outcome.SERVED
    op = result.operator
    hour = (result.requests.time_s // 3600).astype(np.int64)
    n_h = max(24, int(hour.max()) + 1) if hour.size else 24
    legs = result.legs
    leg_op = fleet.operator[legs.vehicle] if len(legs) else np.empty(0, np.int16)
    km = legs.length_m.astype(np.float64) / 1000
    occupied = legs.load > 0
    rebal = ~occupied & (legs.kind == REPOSITION)
    n_trips = int(served.sum())
    wait = result.wait_s
    out: dict[str, dict[str, Any]] = {}
    for j, operator in enumerate(fleet.operators):
        mine = served & (op == j)
        on = leg_op == j
        trips = int(mine.sum())
        durations = state_durations(result, fleet.operator == j)
        in_service = sum(v for k, v in durations.items() if k not in ("non_operational", "removed"))
        busy = sum(durations[s.mds] for s in _BUSY)
        row: dict[str, Any] = {
            "kind": operator.kind.value,
            "vehicles": int((fleet.operator == j).sum()),
            "trips": trips,
            "share_of_trips_pct": round(100 * trips / n_trips, 2) if n_trips else None,
            "trips_by_hour": np.bincount(hour[mine], minlength=n_h)[:n_h].tolist(),
            "wait_mean_s": _mean(wait[mine]),
            "vehicle_km_occupied": round(float(km[on & occupied].sum()), 1),
            "vehicle_km_empty": round(float(km[on & ~occupied & ~rebal].sum()), 1),
            "vehicle_km_rebalancing": round(float(km[on & rebal].sum()), 1),
            "vehicle_hours_in_service": round(in_service / 3600, 1),
            "utilisation_pct": round(100 * busy / in_service, 2) if in_service else None,
        }
        if operator.human and result.vehicle_offers is not None and result.vehicle_declines is not None:
            row["offers"] = int(result.vehicle_offers[fleet.operator == j].sum())
            row["offers_declined"] = int(result.vehicle_declines[fleet.operator == j].sum())
        out[operator.name] = row
    return out

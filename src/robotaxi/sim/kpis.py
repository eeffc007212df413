"""Key performance indicators of a run, as one flat JSON-ready mapping."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..fleet import EventType, VehicleState
from .result import REASON_LABELS, Outcome, SimResult

_BUSY = (VehicleState.RESERVED, VehicleState.STOPPED, VehicleState.ON_TRIP)


def state_durations(result: SimResult) -> dict[str, float]:
    """Vehicle-seconds spent in each MDS state between each vehicle's first and last event."""
    ev = result.events
    order = np.lexsort((np.arange(len(ev)), ev.vehicle))
    v, t, s = ev.vehicle[order], ev.time_s[order], ev.state[order]
    same = v[1:] == v[:-1]
    dur = np.where(same, t[1:] - t[:-1], 0)
    totals = np.bincount(s[:-1].astype(np.int64), weights=dur, minlength=len(VehicleState))
    return {VehicleState(i).mds: float(x) for i, x in enumerate(totals)}


def _pct(a: NDArray[np.int64], q: float) -> float | None:
    # None, not NaN, when nothing was served: kpis.json must stay valid JSON (NaN is not).
    return float(np.percentile(a, q)) if a.size else None


def compute_kpis(result: SimResult) -> dict[str, Any]:
    """The KPIs of ``result`` (times in seconds, distances in km, shares in percent)."""
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
    km_occupied = float(o.ride_m[served].sum(dtype=np.int64)) / 1000
    km_empty = float(o.pickup_m[served].sum(dtype=np.int64)) / 1000
    durations = state_durations(result)
    in_service = sum(v for k, v in durations.items() if k not in ("non_operational", "removed"))
    busy = sum(durations[s.mds] for s in _BUSY)
    n_veh = len(result.fleet)
    trips = np.bincount(o.vehicle[served], minlength=n_veh)
    starts = int((result.events.event == EventType.SERVICE_START).sum())
    return {
        "policy": result.policy,
        "vehicles": n_veh,
        "window_start_s": result.start_s,
        "window_end_s": result.end_s,
        "last_event_s": result.last_event_s,
        "requests": n,
        "served": int(served.sum()),
        "served_pct": round(100 * float(served.mean()), 2) if n else 0.0,
        "rejected": int((o.outcome == Outcome.REJECTED).sum()),
        "cancelled": int((o.outcome == Outcome.CANCELLED).sum()),
        "rejected_by_reason": by_reason["rejected"],
        "cancelled_by_reason": by_reason["cancelled"],
        "wait_mean_s": round(float(wait.mean()), 1) if wait.size else None,
        "wait_median_s": _pct(wait, 50),
        "wait_p90_s": _pct(wait, 90),
        "wait_p95_s": _pct(wait, 95),
        "in_vehicle_mean_s": round(float(ride.mean()), 1) if ride.size else None,
        "vehicle_km_occupied": round(km_occupied, 1),
        "vehicle_km_empty": round(km_empty, 1),
        "empty_km_share_pct": round(100 * km_empty / (km_empty + km_occupied), 2) if km_occupied else None,
        "fleet_utilisation_pct": round(100 * busy / in_service, 2) if in_service else None,
        "trips_per_vehicle_mean": round(float(trips.mean()), 2),
        "trips_per_vehicle_max": int(trips.max()),
        "vehicles_in_service": starts,
        "vehicle_state_hours": {k: round(v / 3600, 1) for k, v in durations.items() if v},
        "wall_s": round(result.wall_s, 2),
        "sim_vehicle_km_per_wall_s": round((km_occupied + km_empty) / result.wall_s, 1) if result.wall_s else None,
    }

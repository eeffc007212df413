"""Record a run's completed trips in a verifiable ledger (``robotaxi simulate --ledger PATH``).

Each served request becomes one :class:`~robotaxi.ledger.TripRecord`: the trip runs from boarding (MDS
``trip_start``) to drop-off (``trip_end``), between the network nodes where the vehicle stopped, over the ride
distance the simulator measured. Times are converted from the simulator's local clock (seconds since the service
day's local midnight) to UTC epoch milliseconds with the scenario's IANA time zone, per record, so a day that crosses
a daylight-saving change is stamped correctly. Trip ids are UUIDv5 of (scenario, seed, request id): the same run
gives the same records, byte for byte, and a different run never collides.

All trips of a run are appended as one durable batch, then a checkpoint is signed.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from ..errors import ScenarioError
from ..ledger import DEFAULT_ORIGIN, Ledger, SigningKey, TripRecord
from ..network import RoadNetwork
from .result import SimResult

logger = logging.getLogger(__name__)

#: Namespace of trip ids written by the simulator (UUIDv5 of "robotaxi-sim").
TRIP_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "robotaxi-sim")


@dataclass(frozen=True, slots=True)
class LedgerExport:
    """What ``--ledger`` wrote."""

    path: Path
    key_path: Path
    first_index: int
    count: int
    size: int
    checkpoint: str
    safety_events: int = 0


def epoch_ms(day_start: dt.datetime, seconds: NDArray[np.int64], timezone: str) -> NDArray[np.int64]:
    """UTC epoch milliseconds of local times ``day_start + seconds`` in ``timezone``."""
    tz = ZoneInfo(timezone)
    secs = np.asarray(seconds, dtype=np.int64)
    if secs.size == 0:
        return np.empty(0, dtype=np.int64)

    def to_ms(s: int) -> int:
        return int((day_start + dt.timedelta(seconds=s)).replace(tzinfo=tz).timestamp() * 1000)

    lo, hi = int(secs.min()), int(secs.max())
    base = to_ms(0)
    if to_ms(lo) - base == lo * 1000 and to_ms(hi) - base == hi * 1000:
        return base + secs * 1000  # no offset change inside the run's span
    return np.fromiter((to_ms(int(s)) for s in secs), dtype=np.int64, count=secs.size)


def trip_records(
    result: SimResult,
    network: RoadNetwork,
    *,
    scenario: str,
    seed: int,
    timezone: str = "UTC",
    fares: NDArray[np.int64] | None = None,
    currency: str = "USD",
) -> list[TripRecord]:
    """One ledger record per served request, in drop-off order (ties by request id).

    ``fares`` (integer cents per request row, -1 where unpriced; :meth:`robotaxi.sim.pricing.MarketRun.fare_by_request`)
    are the fares the run priced; without them a trip carries the fare its demand recorded, or ``null``.

    Raises
    ------
    ScenarioError
        If the requests carry no calendar date (a ledger needs real timestamps).
    """
    day_start = result.requests.day_start
    if day_start is None:
        raise ScenarioError(
            "--ledger needs calendar times, but this demand has no date",
            hint="set `date = YYYY-MM-DD` in the scenario's [demand] table",
        )
    served = np.flatnonzero(result.served)
    out = result.outcomes
    start_s = np.where(out.board_s[served] >= 0, out.board_s[served], out.pickup_s[served])
    end_s = out.dropoff_s[served]
    order = np.lexsort((result.requests.request_id[served], end_s))
    served, start_s, end_s = served[order], start_s[order], end_s[order]
    start_ms = epoch_ms(day_start, start_s, timezone)
    end_ms = epoch_ms(day_start, end_s, timezone)
    req = result.requests
    o, d = req.o_node[served], req.d_node[served]
    vehicles = out.vehicle[served]
    names = [op.name for op in result.fleet.operators]
    op_of = result.fleet.operator[vehicles]
    if fares is not None and np.shape(fares) != (len(req),):
        raise ScenarioError(f"ledger: {np.shape(fares)} fares for {len(req)} requests")
    fare_of = req.fare_cents if fares is None else np.asarray(fares, dtype=np.int64)
    records = []
    for k, i in enumerate(served.tolist()):
        rid = int(req.request_id[i])
        fare = int(fare_of[i])
        op = names[int(op_of[k])]
        records.append(
            TripRecord(
                trip_id=str(uuid.uuid5(TRIP_NAMESPACE, f"{scenario}/{seed}/{rid}")),
                provider_id=op,
                vehicle_id=f"{op}-{int(vehicles[k]):05d}",
                start_time_ms=int(start_ms[k]),
                end_time_ms=int(end_ms[k]),
                start_lon=round(float(network.lon[o[k]]), 7),
                start_lat=round(float(network.lat[o[k]]), 7),
                end_lon=round(float(network.lon[d[k]]), 7),
                end_lat=round(float(network.lat[d[k]]), 7),
                distance_m=int(out.ride_m[i]),
                duration_s=int(end_s[k] - start_s[k]),
                fare_cents=fare if fare >= 0 else None,
                currency=currency,
                request_id=str(rid),
                passengers=int(req.passengers[i]),
            )
        )
    return records


def export_to_ledger(
    result: SimResult,
    network: RoadNetwork,
    path: str | Path,
    *,
    scenario: str,
    seed: int,
    timezone: str = "UTC",
    key_path: str | Path | None = None,
    origin: str = DEFAULT_ORIGIN,
    fares: NDArray[np.int64] | None = None,
    currency: str = "USD",
) -> LedgerExport:
    """Append every completed trip of ``result`` (then its safety events, when the run drew any) to the ledger at
    ``path`` and sign a checkpoint.

    The ledger is created if missing; the signing key is read from ``key_path`` (default ``PATH.key``) or generated
    there, with its verifier key beside it (``.vkey``). ``fares`` and ``currency``: see :func:`trip_records`.
    """
    p = Path(path)
    kp = Path(key_path) if key_path is not None else p.with_name(p.name + ".key")
    records = trip_records(
        result, network, scenario=scenario, seed=seed, timezone=timezone, fares=fares, currency=currency
    )
    events: list[Any] = []
    if result.safety is not None:  # disengagements drawn inside the run ([operators.safety]), after the trips
        from ..safety.ledgering import ledger_event

        events = [ledger_event(r) for r in result.safety.events.records]
    key = SigningKey.load_or_generate(kp, origin)
    with Ledger.open_or_create(p, origin=origin) as ledger:
        first = ledger.append_records([*records, *events]) if records or events else ledger.size
        note = ledger.sign_checkpoint(key)
        size = ledger.size
    logger.info("appended %d trips to %s (entries %d..%d)", len(records), p, first, size - 1)
    return LedgerExport(
        path=p,
        key_path=kp,
        first_index=first,
        count=len(records) + len(events),
        size=size,
        checkpoint=note,
        safety_events=len(events),
    )

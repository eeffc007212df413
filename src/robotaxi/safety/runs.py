"""Safety events and autonomous mileage of a simulation run folder.

A run folder (``docs/simulation.md``) holds ``legs.parquet`` (every leg driven), ``vehicle_events.parquet`` (whose
``provider`` names each vehicle's operator), ``requests.parquet`` and the ``scenario.toml`` that produced them
(its ``[demand] date`` and ``[time] timezone`` turn the run's clock into calendar dates).

:func:`simulate_disengagements` draws disengagements *after* a run over the legs it drove, and
:func:`write_events` stores them as ``safety_events.parquet`` (schema: :data:`EVENT_SCHEMA`, ``docs/safety.md``).
Offline events change nothing in the run; events inside the simulator, which delay or cancel trips, come with the
marketplace (issue 12).

Drawing uses thinning (Lewis and Shedler, 1979, "Simulation of nonhomogeneous Poisson processes by thinning",
Naval Research Logistics Quarterly 26(3)): candidates are drawn along each leg at the operator's highest rate;
only legs with a candidate are routed, and a candidate at a point with rate ``r`` is kept with probability
``r / r_max``. The result is exactly the Poisson process with the rate of each road and hour, and a whole-day
run needs routes for a handful of legs only.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from ..errors import SafetyError
from .process import METRES_PER_MILE, SafetyProfile
from .records import DisengagementRecord, Initiator, LocationType, ReportingPeriod
from .roads import edge_road_classes, location_type
from .vin import simulated_vin

if TYPE_CHECKING:
    from ..network import Router

__all__ = [
    "EFFECT_SCHEMA",
    "EVENTS_FILE",
    "EVENT_SCHEMA",
    "RunData",
    "RunInfo",
    "SafetyEvents",
    "read_events",
    "simulate_disengagements",
    "write_events",
]

EVENTS_FILE = "safety_events.parquet"

#: Namespace of trip ids, the same as ``robotaxi.sim.ledger_export.TRIP_NAMESPACE`` (a test keeps them equal), so
#: an event's ``trip_id`` is the ledger's id of that trip.
TRIP_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "robotaxi-sim")
#: Namespace of safety event ids.
EVENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "robotaxi-safety")

#: The columns of ``safety_events.parquet``, one row per event, in time order.
EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("event_type", pa.string()),  # "disengagement" (collisions are not simulated yet)
        ("operator", pa.string()),
        ("permit_number", pa.string()),
        ("vin", pa.string()),
        ("vehicle", pa.int32()),  # the run's vehicle index (legs.parquet vehicle_id)
        ("vehicle_id", pa.string()),  # "<operator>-<index:05d>", as the ledger's trip records name vehicles
        ("trip_id", pa.string()),  # the ledger's trip id of the rider on board, null when empty
        ("date", pa.date32()),  # local calendar date
        ("time_s", pa.int64()),  # seconds since the run's local midnight
        ("time_ms", pa.int64()),  # UTC epoch milliseconds
        ("lon", pa.float64()),
        ("lat", pa.float64()),
        ("road_class", pa.string()),  # OSM highway class, "~speed" when inferred from the free-flow speed
        ("location_type", pa.string()),  # LocationType code
        ("initiator", pa.string()),  # Initiator code
        ("driver_present", pa.bool_()),
        ("can_operate_without_driver", pa.bool_()),
        ("description", pa.string()),
        ("leg", pa.int64()),  # row of legs.parquet
        ("offset_m", pa.float64()),  # metres from the leg's start
    ]
)
_META_KEY = b"robotaxi.safety"
#: Extra columns of events drawn inside the simulator (``robotaxi.safety.insim``): what each one did.
EFFECT_SCHEMA = pa.schema(
    [
        ("action", pa.string()),  # continue | remote | stop
        ("delay_s", pa.int64()),  # seconds the vehicle waited (delay, or recovery for stop)
        ("riders_on_board", pa.int32()),  # passengers on board
        ("riders_redispatched", pa.int32()),  # assigned riders handed back to the engine (stop)
        ("riders_got_out", pa.int32()),  # riders on board who got out and rode on with another vehicle (stop)
    ]
)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What a run's ``scenario.toml`` says about its calendar, network and operators."""

    folder: Path
    name: str
    seed: int
    day: dt.date | None
    timezone: str
    network: str | None
    operator_kinds: Mapping[str, str]
    #: Operators whose scenario says whether a safety driver is on board (``[[operators]] safety_driver``).
    safety_driver: Mapping[str, bool] = field(default_factory=dict)

    @classmethod
    def from_folder(cls, folder: str | Path) -> RunInfo:
        """Read ``scenario.toml`` of a run folder (only the keys safety needs).

        Raises
        ------
        SafetyError
            If the folder or its scenario is missing or unreadable.
        """
        f = Path(folder)
        path = f / "scenario.toml"
        if not f.is_dir():
            raise SafetyError(f"run folder not found: {f}")
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise SafetyError(f"cannot read {path}: {e.strerror}", hint="is this a `robotaxi simulate` output?") from e
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise SafetyError(f"{path}: not valid TOML: {e}") from e
        demand = table.get("demand", {})
        time_t = table.get("time", {})
        fleet = table.get("fleet", {})
        day = demand.get("date")
        if isinstance(day, str):
            try:
                day = dt.date.fromisoformat(day)
            except ValueError as e:
                raise SafetyError(f"{path}: demand.date: expected YYYY-MM-DD, got {day!r}") from e
        timezone = str(time_t.get("timezone", "UTC"))
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise SafetyError(f"{path}: time.timezone: unknown IANA time zone {timezone!r}") from e
        kinds = {str(fleet["operator"]): str(fleet.get("kind", "autonomous"))} if "operator" in fleet else {}
        drivers: dict[str, bool] = {}
        for op in table.get("operators", []):  # the marketplace's [[operators]] tables
            if isinstance(op, dict) and "name" in op:
                kinds[str(op["name"])] = str(op.get("kind", "autonomous"))
                if kinds[str(op["name"])] == "autonomous":
                    drivers[str(op["name"])] = bool(op.get("safety_driver", False))
        return cls(
            folder=f,
            name=str(table.get("name", f.name)),
            seed=int(table.get("seed", 0)),
            day=day if isinstance(day, dt.date) else None,
            timezone=timezone,
            network=str(table["network"]["path"]) if "path" in table.get("network", {}) else None,
            operator_kinds=kinds,
            safety_driver=drivers,
        )

    def require_day(self) -> dt.date:
        if self.day is None:
            raise SafetyError(
                f"{self.folder}: the run has no calendar date, and DMV reports need dates",
                hint="set `date = YYYY-MM-DD` in the scenario's [demand] table and run it again",
            )
        return self.day

    def epoch_ms(self, time_s: int) -> int:
        """UTC epoch milliseconds of a local run time."""
        local = dt.datetime.combine(self.require_day(), dt.time()) + dt.timedelta(seconds=int(time_s))
        return int(local.replace(tzinfo=ZoneInfo(self.timezone)).timestamp() * 1000)


def _read(path: Path, columns: list[str]) -> pa.Table:
    if not path.is_file():
        raise SafetyError(f"{path} not found", hint="is this a `robotaxi simulate` output folder?")
    try:
        return pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowException) as e:
        raise SafetyError(f"cannot read {path}: {e}") from e
    except KeyError as e:  # pragma: no cover - pyarrow raises ArrowInvalid for missing columns
        raise SafetyError(f"{path}: missing column {e}") from e


@dataclass(frozen=True, slots=True)
class RunData:
    """The legs and the vehicles' operators of a run, as arrays."""

    info: RunInfo
    leg_vehicle: NDArray[np.int64]
    from_node: NDArray[np.int64]
    to_node: NDArray[np.int64]
    start_s: NDArray[np.int64]
    end_s: NDArray[np.int64]
    load: NDArray[np.int64]
    length_m: NDArray[np.float64]
    vehicles: NDArray[np.int64]  # every vehicle of the run, ascending
    operator_of: Mapping[int, str]  # vehicle index -> operator name

    @classmethod
    def read(cls, info: RunInfo) -> RunData:
        """Read ``legs.parquet`` and ``vehicle_events.parquet``; negative leg lengths are an error."""
        legs = _read(
            info.folder / "legs.parquet", ["vehicle_id", "from_node", "to_node", "start_s", "end_s", "load", "length_m"]
        )
        ev = _read(info.folder / "vehicle_events.parquet", ["provider", "vehicle_id"])
        col = {name: legs.column(name).to_numpy(zero_copy_only=False) for name in legs.column_names}
        length = col["length_m"].astype(np.float64)
        bad = np.flatnonzero(~(length >= 0))
        if bad.size:
            raise SafetyError(
                f"{info.folder / 'legs.parquet'}: row {int(bad[0])}: negative miles (length_m {length[bad[0]]})"
            )
        ev_vehicle = ev.column("vehicle_id").to_numpy(zero_copy_only=False).astype(np.int64)
        provider = np.asarray(ev.column("provider").to_pylist(), dtype=object)
        vehicles, first = np.unique(ev_vehicle, return_index=True)
        operator_of = {int(v): str(provider[i]) for v, i in zip(vehicles, first, strict=True)}
        unknown = np.setdiff1d(col["vehicle_id"], vehicles)
        if unknown.size:
            raise SafetyError(f"{info.folder}: legs of vehicle {int(unknown[0])}, which has no vehicle events")
        return cls(
            info=info,
            leg_vehicle=col["vehicle_id"].astype(np.int64),
            from_node=col["from_node"].astype(np.int64),
            to_node=col["to_node"].astype(np.int64),
            start_s=col["start_s"].astype(np.int64),
            end_s=col["end_s"].astype(np.int64),
            load=col["load"].astype(np.int64),
            length_m=length,
            vehicles=vehicles.astype(np.int64),
            operator_of=operator_of,
        )

    def autonomous_operators(self) -> list[str]:
        """Operators of the run that are not human-driven (per the scenario's ``[fleet] kind``), sorted."""
        names = sorted(set(self.operator_of.values()))
        return [n for n in names if self.info.operator_kinds.get(n, "autonomous") != "human_driven"]

    def monthly_miles(self) -> dict[int, dict[tuple[int, int], float]]:
        """Miles per vehicle and calendar month ``(year, month)``; a leg counts in the month it started."""
        day = self.info.require_day()
        out: dict[int, dict[tuple[int, int], float]] = {int(v): {} for v in self.vehicles}
        offset = self.start_s // 86_400
        for k in np.unique(offset):
            d = day + dt.timedelta(days=int(k))
            sel = offset == k
            miles = np.bincount(self.leg_vehicle[sel], weights=self.length_m[sel]) / METRES_PER_MILE
            for v in np.flatnonzero(miles):
                month = out[int(v)]
                month[(d.year, d.month)] = month.get((d.year, d.month), 0.0) + float(miles[v])
        return out

    def vin(self, vehicle: int) -> str:
        return simulated_vin(self.operator_of[vehicle], vehicle, self.info.require_day().year)


def _vehicle_id(operator: str, vehicle: int) -> str:
    return f"{operator}-{vehicle:05d}"


class _Riders:
    """Who is on board a vehicle at a time (from ``requests.parquet``), for the events' trip ids."""

    def __init__(self, info: RunInfo) -> None:
        t = _read(info.folder / "requests.parquet", ["request_id", "vehicle", "board_s", "dropoff_s"])
        cols = {n: t.column(n).to_numpy(zero_copy_only=False) for n in t.column_names}
        ok = ~(np.isnan(cols["board_s"].astype(float)) | np.isnan(cols["dropoff_s"].astype(float)))
        self.request = cols["request_id"][ok].astype(np.int64)
        self.vehicle = cols["vehicle"][ok].astype(np.int64)
        self.board = cols["board_s"][ok].astype(np.int64)
        self.dropoff = cols["dropoff_s"][ok].astype(np.int64)
        self.prefix = f"{info.name}/{info.seed}/"

    def trip_at(self, vehicle: int, time_s: int) -> str | None:
        """The ledger trip id of the rider who boarded last among those on board, or None."""
        on = np.flatnonzero((self.vehicle == vehicle) & (self.board <= time_s) & (time_s < self.dropoff))
        if on.size == 0:
            return None
        k = on[np.lexsort((self.request[on], -self.board[on]))[0]]
        return str(uuid.uuid5(TRIP_NAMESPACE, self.prefix + str(int(self.request[k]))))


def simulate_disengagements(
    data: RunData,
    router: Router,
    profiles: Mapping[str, SafetyProfile],
    rng: np.random.Generator,
    *,
    road_class: NDArray[np.str_] | None = None,
) -> SafetyEvents:
    """Draw disengagements over the legs a run drove (see the module documentation).

    Parameters
    ----------
    data : RunData
    router : Router
        A router over the run's network (legs are routed node to node as the simulator drove them).
    profiles : mapping of operator name to SafetyProfile
        Every autonomous operator of the run needs one; operators without a profile raise.
    rng : numpy.random.Generator
    road_class : array of str, optional
        OSM class per edge; inferred from the free-flow speed when omitted.

    Returns
    -------
    SafetyEvents
        The records in time order (ties: vehicle, then leg), with their vehicles, times, legs and offsets.
    """
    info = data.info
    info.require_day()
    missing = [op for op in data.autonomous_operators() if op not in profiles]
    if missing:
        raise SafetyError(f"no safety profile for autonomous operator(s) {', '.join(missing)}")
    network = router.network
    classes = edge_road_classes(network, road_class)
    leg_ops = np.asarray([data.operator_of[int(v)] for v in data.leg_vehicle], dtype=object)
    envelope = np.zeros(data.length_m.size)
    for op, prof in profiles.items():
        envelope[leg_ops == op] = prof.rates.max_per_mile()
    miles = data.length_m / METRES_PER_MILE
    counts = rng.poisson(miles * envelope)
    cand_leg = np.repeat(np.arange(miles.size), counts)
    cand_off = rng.uniform(0.0, 1.0, cand_leg.size) * data.length_m[cand_leg]
    keep_u = rng.uniform(0.0, 1.0, cand_leg.size)
    order = np.lexsort((cand_off, cand_leg))
    riders = _Riders(info)
    drawn: list[tuple[int, int, int, float, str, LocationType, float, float]] = []
    for c in order:
        leg = int(cand_leg[c])
        where = locate_on_leg(router, data, leg, float(cand_off[c]))
        if where is None:
            continue
        edge, frac, time_s = where
        op = str(leg_ops[leg])
        rates = profiles[op].rates
        loc = location_type(str(classes[edge]))
        hour = int(time_s // 3600) % 24
        if keep_u[c] * envelope[leg] >= rates.per_mile(loc, hour):
            continue
        u, v = int(network.tail[edge]), int(network.head[edge])
        lon = float(network.lon[u] + frac * (network.lon[v] - network.lon[u]))
        lat = float(network.lat[u] + frac * (network.lat[v] - network.lat[u]))
        drawn.append((time_s, int(data.leg_vehicle[leg]), leg, float(cand_off[c]), str(classes[edge]), loc, lon, lat))
    drawn.sort(key=lambda d: (d[0], d[1], d[2], d[3]))
    return SafetyEvents(
        records=[_record(data, profiles, riders, d, rng) for d in drawn],
        vehicle=np.asarray([d[1] for d in drawn], dtype=np.int64),
        time_s=np.asarray([d[0] for d in drawn], dtype=np.int64),
        leg=np.asarray([d[2] for d in drawn], dtype=np.int64),
        offset_m=np.asarray([d[3] for d in drawn], dtype=np.float64),
        metadata={},
    )


def locate_on_leg(router: Router, data: RunData, leg: int, offset_m: float) -> tuple[int, float, int] | None:
    """The edge, the fraction along it and the local time of a point ``offset_m`` into a leg."""
    a, b = int(data.from_node[leg]), int(data.to_node[leg])
    if a == b:
        return None
    edges = router.path_edges(router.path(a, b))
    net = router.network
    length = net.length_m[edges].astype(np.float64)
    # The leg's recorded length is what was driven; the route's edge lengths share it out.
    cum = np.cumsum(length) * (data.length_m[leg] / length.sum())
    k = min(int(np.searchsorted(cum, offset_m, side="right")), edges.size - 1)
    before = cum[k - 1] if k else 0.0
    frac = min(max((offset_m - before) / (cum[k] - before), 0.0), 1.0)
    # Time is shared between edges in proportion to free-flow times, as the simulator's motion model does.
    tt = net.travel_time_s[edges].astype(np.float64)
    share = (tt[:k].sum() + frac * tt[k]) / tt.sum()
    t0, t1 = int(data.start_s[leg]), int(data.end_s[leg])
    return int(edges[k]), float(frac), t0 + int(share * (t1 - t0))


def _record(
    data: RunData,
    profiles: Mapping[str, SafetyProfile],
    riders: _Riders,
    d: tuple[int, int, int, float, str, LocationType, float, float],
    rng: np.random.Generator,
) -> DisengagementRecord:
    time_s, vehicle, leg, offset_m, road_class, loc, lon, lat = d
    info = data.info
    op = data.operator_of[vehicle]
    prof = profiles[op]
    who = list(prof.initiators or {})
    initiator: Initiator = who[int(rng.choice(len(who), p=[(prof.initiators or {})[w] for w in who]))]
    mpd = prof.rates.by_location.get(loc, prof.rates.miles_per_disengagement)
    day = info.require_day() + dt.timedelta(days=time_s // 86_400)
    return DisengagementRecord(
        event_id=str(uuid.uuid5(EVENT_NAMESPACE, f"{info.name}/{info.seed}/{vehicle}/{leg}/{offset_m!r}")),
        operator=op,
        date=day,
        initiator=initiator,
        location_type=loc,
        description=(
            f"Simulated disengagement ({initiator.label}) on a {loc.label.lower()} ({road_class}), "
            f"drawn offline from a Poisson process at {mpd:,.0f} miles per disengagement"
        ),
        driver_present=prof.driver_present,
        can_operate_without_driver=prof.can_operate_without_driver,
        permit_number=prof.permit_number,
        vin=data.vin(vehicle),
        time_ms=info.epoch_ms(time_s),
        lon=lon,
        lat=lat,
        vehicle_id=_vehicle_id(op, vehicle),
        trip_id=riders.trip_at(vehicle, time_s),
        road_class=road_class,
    )


@dataclass(frozen=True, slots=True)
class SafetyEvents:
    """Events of a run: the records and, per record, the run's vehicle index, local time, leg and offset.

    ``leg`` is -1 and ``offset_m`` NaN where unknown.
    """

    records: list[DisengagementRecord]
    vehicle: NDArray[np.int64]
    time_s: NDArray[np.int64]
    leg: NDArray[np.int64]
    offset_m: NDArray[np.float64]
    metadata: Mapping[str, Any]

    def __post_init__(self) -> None:
        n = len(self.records)
        if not self.vehicle.size == self.time_s.size == self.leg.size == self.offset_m.size == n:
            raise ValueError("records, vehicle, time_s, leg, offset_m: expected one value per record")


def write_events(folder: str | Path, events: SafetyEvents, effects: Mapping[str, list[Any]] | None = None) -> Path:
    """Write ``safety_events.parquet`` into a run folder (atomically: a temporary file renamed into place).

    ``effects`` (events drawn inside the simulator) adds the columns of :data:`EFFECT_SCHEMA`, one value per event.
    """
    rows: dict[str, list[Any]] = {name: [] for name in EVENT_SCHEMA.names}
    for i, r in enumerate(events.records):
        leg = int(events.leg[i])
        values = {
            "event_id": r.event_id,
            "event_type": "disengagement",
            "operator": r.operator,
            "permit_number": r.permit_number,
            "vin": r.vin,
            "vehicle": int(events.vehicle[i]),
            "vehicle_id": r.vehicle_id,
            "trip_id": r.trip_id,
            "date": r.date,
            "time_s": int(events.time_s[i]),
            "time_ms": r.time_ms,
            "lon": r.lon,
            "lat": r.lat,
            "road_class": r.road_class,
            "location_type": r.location_type.value,
            "initiator": r.initiator.value,
            "driver_present": r.driver_present,
            "can_operate_without_driver": r.can_operate_without_driver,
            "description": r.description,
            "leg": leg if leg >= 0 else None,
            "offset_m": float(events.offset_m[i]) if leg >= 0 else None,
        }
        for name, value in values.items():
            rows[name].append(value)
    schema = EVENT_SCHEMA
    if effects is not None:
        for f in EFFECT_SCHEMA:
            if len(effects[f.name]) != len(events.records):
                raise ValueError(f"effects.{f.name}: expected one value per event")
            rows[f.name] = list(effects[f.name])
        schema = pa.schema([*EVENT_SCHEMA, *EFFECT_SCHEMA])
    table = pa.table(rows, schema=schema).replace_schema_metadata(
        {_META_KEY: json.dumps(dict(events.metadata), sort_keys=True).encode("utf-8")}
    )
    out = Path(folder) / EVENTS_FILE
    tmp = out.with_suffix(".parquet.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(out)
    except OSError as e:
        raise SafetyError(f"cannot write {out}: {e.strerror}") from e
    return out


def read_events(folder: str | Path) -> SafetyEvents | None:
    """The events of a run folder's ``safety_events.parquet``, validated row by row; None when there is none.

    Raises
    ------
    SafetyError
        For an unreadable file, missing columns, or a row that fails validation (its row number named).
    """
    path = Path(folder) / EVENTS_FILE
    if not path.exists():
        return None
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as e:
        raise SafetyError(f"cannot read {path}: {e}") from e
    missing = [n for n in EVENT_SCHEMA.names if n not in table.column_names]
    if missing:
        raise SafetyError(f"{path}: missing column(s) {', '.join(missing)} (schema: docs/safety.md)")
    meta_raw = (table.schema.metadata or {}).get(_META_KEY)
    metadata: dict[str, Any] = json.loads(meta_raw) if meta_raw else {}
    records: list[DisengagementRecord] = []
    for i, row in enumerate(table.to_pylist()):
        if row["event_type"] != "disengagement":
            raise SafetyError(f"{path}: row {i}: event_type {row['event_type']!r} is not supported yet")
        try:
            records.append(
                DisengagementRecord(
                    event_id=row["event_id"],
                    operator=row["operator"],
                    date=row["date"],
                    initiator=Initiator.parse(row["initiator"], "initiator"),
                    location_type=LocationType.parse(row["location_type"], "location_type"),
                    description=row["description"],
                    driver_present=row["driver_present"],
                    can_operate_without_driver=row["can_operate_without_driver"],
                    permit_number=row["permit_number"],
                    vin=row["vin"],
                    time_ms=row["time_ms"],
                    lon=row["lon"],
                    lat=row["lat"],
                    vehicle_id=row["vehicle_id"],
                    trip_id=row["trip_id"],
                    road_class=row["road_class"],
                )
            )
        except ValueError as e:
            raise SafetyError(f"{path}: row {i}: {e}") from e

    def column(name: str, fill: float) -> NDArray[Any]:
        return np.asarray(table.column(name).fill_null(fill).to_numpy(zero_copy_only=False))

    return SafetyEvents(
        records=records,
        vehicle=column("vehicle", -1).astype(np.int64),
        time_s=column("time_s", -1).astype(np.int64),
        leg=column("leg", -1).astype(np.int64),
        offset_m=column("offset_m", np.nan).astype(np.float64),
        metadata=metadata,
    )


def reporting_periods(data: RunData) -> list[ReportingPeriod]:
    """The DMV reporting periods a run's legs fall in."""
    day = data.info.require_day()
    offsets = np.unique(data.start_s // 86_400) if data.start_s.size else np.zeros(1, dtype=np.int64)
    return sorted({ReportingPeriod.of(day + dt.timedelta(days=int(k))) for k in offsets})

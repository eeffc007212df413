"""Trip-record files (one row per trip) streamed in batches, validated row by row and snapped to the network.

This is the engine behind the generic CSV/Parquet source and the NYC TLC readers: a :class:`ColumnMapping` says
which file column feeds each request field, :class:`RecordOptions` says how to judge rows, and
:func:`load_records` does the work with bounded memory (one batch of the file plus the accepted rows of the day).

Checks, in order (a row gets the first reason that applies):

1. missing / unparsable request time (``missing_field`` / ``unparsable_field``), or a negative one in seconds
   (``invalid_value``);
2. with a service ``date``: a request time outside ``[date 00:00, date + 1 day)`` is *skipped* (``outside_day``);
3. missing / unparsable other mapped fields; a passenger count that is negative or above 9 (``invalid_value``);
4. zone ids not in the zone file (``unknown_zone``);
5. drop-off before the request time (``dropoff_before_pickup``);
6. an end farther than ``max_snap_m`` from every node, outside the ``service_area`` polygon, or in a zone with no
   node (``outside_area``);
7. both ends on the same node, or a recorded trip distance of 0 (``zero_distance``);
8. a request id seen before in the file (``duplicate_id``; the first occurrence is kept).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import shapely
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from ..errors import DemandError
from ..network import RoadNetwork
from . import _parse
from .requests import Requests
from .source import DemandResult, TripFacts
from .validation import RejectLog, RejectReason, check_file
from .zones import ZoneNodes, Zones

logger = logging.getLogger(__name__)

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]
U8 = NDArray[np.uint8]

#: Largest credible party size; a TLC meter entry above it is a typo, not a party.
MAX_PASSENGERS = 9
TIME_UNITS = ("datetime", "seconds")


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """Which file column feeds each request field (None: the file has no such column).

    A file has either coordinates (all of ``o_lon, o_lat, d_lon, d_lat``) or zones (``o_zone, d_zone``).
    ``fare`` is in currency units (dollars) and becomes integer cents; ``max_wait`` is in seconds.
    ``trip_distance`` is only used to reject trips recorded as zero-length.
    """

    time: str
    request_id: str | None = None
    dropoff_time: str | None = None
    o_lon: str | None = None
    o_lat: str | None = None
    d_lon: str | None = None
    d_lat: str | None = None
    o_zone: str | None = None
    d_zone: str | None = None
    passengers: str | None = None
    fare: str | None = None
    max_wait: str | None = None
    trip_distance: str | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is not None and (not isinstance(v, str) or not v):
                raise ValueError(f"columns.{f.name}: expected a column name, got {v!r}")
        coords = [self.o_lon, self.o_lat, self.d_lon, self.d_lat]
        zones = [self.o_zone, self.d_zone]
        has_coords, has_zones = any(c is not None for c in coords), any(z is not None for z in zones)
        if has_coords and None in coords:
            raise ValueError("columns.o_lon/o_lat/d_lon/d_lat: give all four coordinate columns or none")
        if has_zones and None in zones:
            raise ValueError("columns.o_zone/d_zone: give both zone columns or neither")
        if has_coords == has_zones:
            raise ValueError("columns: give either the four coordinate columns or the two zone columns")

    @property
    def zone_based(self) -> bool:
        """True when trip ends are zone ids rather than coordinates."""
        return self.o_zone is not None

    def used(self) -> dict[str, str]:
        """Field -> column for the mapped fields."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True, slots=True)
class RecordOptions:
    """How to judge and place trip records.

    Parameters
    ----------
    zones : Path or None
        Zone polygons, required for zone-based files.
    date : date or None
        The service day: rows whose request time falls outside it are skipped. None keeps every row and counts
        time from the midnight of the earliest accepted request.
    time_unit : {"datetime", "seconds"}
        Request times are timestamps, or seconds since the service day's midnight (numbers or ``HH:MM:SS``).
    service_area : Path or None
        GeoJSON polygon(s): trip ends outside are rejected as ``outside_area``.
    max_snap_m : float
        Farthest a coordinate may be from its nearest network node.
    rejects : Path or None
        Write every rejected row to this CSV.
    batch_rows : int
        Rows per streamed batch (memory bound; also part of what the seed reproduces for zone-based files).
    zero_passengers_default : bool
        Treat a passenger count of 0 or missing as 1 (counted under ``defaulted``): TLC meters record 0 often.
    zone_id_field : str or None
        Zone id property in the zones file (default: detected).
    """

    zones: Path | None = None
    date: dt.date | None = None
    time_unit: str = "datetime"
    service_area: Path | None = None
    max_snap_m: float = 250.0
    rejects: Path | None = None
    batch_rows: int = 1 << 20
    zero_passengers_default: bool = False
    zone_id_field: str | None = None

    def __post_init__(self) -> None:
        for name in ("zones", "service_area", "rejects"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, Path(v))
        if self.time_unit not in TIME_UNITS:
            raise ValueError(f"time_unit must be one of {', '.join(TIME_UNITS)}, got {self.time_unit!r}")
        if not (self.max_snap_m > 0 and np.isfinite(self.max_snap_m)):
            raise ValueError(f"max_snap_m must be a positive number of metres, got {self.max_snap_m!r}")
        if not isinstance(self.batch_rows, int) or self.batch_rows < 1:
            raise ValueError(f"batch_rows must be a positive int, got {self.batch_rows!r}")
        if self.date is not None and isinstance(self.date, dt.datetime):
            object.__setattr__(self, "date", self.date.date())


@dataclass(slots=True)
class _Accepted:
    """Accepted rows, one list entry per batch (concatenated once at the end)."""

    cols: dict[str, list[NDArray[Any]]] = field(default_factory=dict)

    def add(self, **arrays: NDArray[Any]) -> None:
        for k, v in arrays.items():
            self.cols.setdefault(k, []).append(v)

    def get(self, name: str, dtype: type[np.generic]) -> NDArray[Any]:
        parts = self.cols.get(name)
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype=dtype)


class _Judge:
    """Per-batch validation state for one load (owned by :func:`load_records`, never shared)."""

    def __init__(
        self, path: Path, mapping: ColumnMapping, opts: RecordOptions, network: RoadNetwork, rng: np.random.Generator
    ) -> None:
        self.path = path
        self.mapping = mapping
        self.opts = opts
        self.network = network
        self.rng = rng
        self.csv = _parse.table_kind(path) == "csv"
        self.log = RejectLog(
            path.name,
            opts.rejects,
            locator="line" if self.csv else "row",
            fields=list(dict.fromkeys(mapping.used().values())),
        )
        self.tree = cKDTree(np.column_stack((network.x, network.y)))
        self.zone_nodes: ZoneNodes | None = None
        if mapping.zone_based:
            if opts.zones is None:
                raise DemandError(f"{path}: zone-based trip records need the zone polygons (zones = ...)")
            zones = Zones.from_file(opts.zones, id_field=opts.zone_id_field)
            self.zone_nodes = ZoneNodes.build(zones, network)
        self.area = _service_area(opts.service_area) if opts.service_area is not None else None
        self.day0 = _parse.midnight_epoch(opts.date) if opts.date is not None else None
        self.acc = _Accepted()
        self._defaulted_passengers = 0
        self._defaulted_fare = 0
        self._zero_recorded: NDArray[np.bool_] = np.zeros(0, dtype=bool)

    # ------------------------------------------------------------------ one batch
    def batch(self, b: _parse.Batch, bad_lines: _parse.BadLines) -> None:
        table, n = b.table, b.table.num_rows
        self.log.rows_read += n
        lines = b.first_row + np.arange(n, dtype=np.int64) + (2 if self.csv else 0)
        if self.csv:
            lines = bad_lines.shift(lines)
        m = self.mapping
        t, code = self._times(table.column(m.time))
        detail = np.full(n, "", dtype=object)
        detail[code != 0] = m.time
        if self.day0 is not None:
            outside = (code == 0) & ((t < self.day0) | (t >= self.day0 + 86400))
            self.log.skip("outside_day", int(outside.sum()))
            keep = ~outside
            if not keep.all():
                idx = np.flatnonzero(keep)
                table, lines, t, code, detail = table.take(idx), lines[idx], t[idx], code[idx], detail[idx]
        f = self._fields(table, code, detail)
        self._check_rows(f, t, code, detail)
        bad = np.flatnonzero(code)
        if bad.size:
            self.log.reject(code[bad], lines[bad], list(detail[bad]), _raw_rows(table, bad))
        ok = np.flatnonzero(code == 0)
        self.acc.add(
            line=lines[ok],
            t=t[ok],
            **{k: v[ok] for k, v in f.items()},
        )

    def _times(self, col: pa.ChunkedArray) -> tuple[I64, U8]:
        if self.opts.time_unit == "seconds":
            t, code = _parse.seconds_of_day(col)
            # Seconds count from the service day's midnight: a negative one is no time of that day.
            code[(code == 0) & (t < 0)] = RejectReason.INVALID_VALUE
            if self.day0 is not None:
                t = t + self.day0
            return t, code
        return _parse.to_epoch_seconds(col)

    def _fields(self, table: pa.Table, code: U8, detail: NDArray[np.object_]) -> dict[str, NDArray[Any]]:
        """Parse every mapped field but the time; failing cells set ``code`` (first failure wins)."""
        m = self.mapping
        n = table.num_rows
        out: dict[str, NDArray[Any]] = {}
        v: NDArray[Any]

        def take(name: str, values: NDArray[Any], c: U8, column: str) -> None:
            new = (code == 0) & (c != 0)
            code[new] = c[new]
            detail[new] = column
            out[name] = values

        if m.dropoff_time is not None:
            v, c = self._times(table.column(m.dropoff_time))
            take("dropoff", v, c, m.dropoff_time)
        if m.zone_based:
            for name in ("o_zone", "d_zone"):
                col = getattr(m, name)
                v, c = _parse.to_int(table.column(col))
                take(name, v, c, col)
        else:
            for name in ("o_lon", "o_lat", "d_lon", "d_lat"):
                col = getattr(m, name)
                v, c = _parse.to_float(table.column(col))
                take(name, v, c, col)
        if m.request_id is not None:
            v, c = _parse.to_int(table.column(m.request_id))
            take("request_id", v, c, m.request_id)
        self._optional_fields(table, n, code, detail, take)
        return out

    def _optional_fields(self, table: pa.Table, n: int, code: U8, detail: NDArray[np.object_], take: Any) -> None:
        m = self.mapping
        v: NDArray[Any]
        if m.passengers is not None:
            v, c = _parse.to_int(table.column(m.passengers))
            if self.opts.zero_passengers_default:
                fix = (c == RejectReason.MISSING_FIELD) | ((c == 0) & (v == 0))
                v = np.where(fix, 1, v)
                c = np.where(fix, np.uint8(0), c).astype(np.uint8)
                self._defaulted_passengers = int(fix.sum())
            bad = (c == 0) & ((v < 1) | (v > MAX_PASSENGERS))
            c[bad] = RejectReason.INVALID_VALUE
            take("passengers", v, c, m.passengers)
        else:
            take("passengers", np.ones(n, dtype=np.int64), np.zeros(n, dtype=np.uint8), "")
        if m.fare is not None:
            v, c = _parse.to_float(table.column(m.fare))
            # A fare is optional: a missing or negative (refund) fare is "unknown" (-1), counted as defaulted.
            unknown = (c == RejectReason.MISSING_FIELD) | ((c == 0) & (v < 0))
            self._defaulted_fare = int(((c == 0) & (v < 0)).sum())
            cents = np.where(unknown | (c != 0), -1, np.rint(np.where(c == 0, v, 0) * 100)).astype(np.int64)
            take("fare", cents, np.where(unknown, np.uint8(0), c).astype(np.uint8), m.fare)
        if m.max_wait is not None:
            v, c = _parse.to_int(table.column(m.max_wait))
            missing = c == RejectReason.MISSING_FIELD
            c[(c == 0) & (v < 0)] = RejectReason.INVALID_VALUE
            take("max_wait", np.where(missing, -1, v), np.where(missing, np.uint8(0), c).astype(np.uint8), m.max_wait)
        if m.trip_distance is not None:
            v, c = _parse.to_float(table.column(m.trip_distance))
            # Used to spot zero-length trips (an unreadable distance is no evidence either way), and kept as a fact.
            self._zero_recorded = (c == 0) & (v <= 0)
            take("trip_distance", np.where(c == 0, v, np.nan), np.zeros(n, dtype=np.uint8), m.trip_distance)
        else:
            self._zero_recorded = np.zeros(n, dtype=bool)

    def _check_rows(self, f: dict[str, NDArray[Any]], t: I64, code: U8, detail: NDArray[np.object_]) -> None:
        self.log.default("passengers", self._defaulted_passengers)
        self.log.default("fare", self._defaulted_fare)
        self._defaulted_passengers = self._defaulted_fare = 0

        def mark(mask: NDArray[np.bool_], reason: RejectReason, text: str) -> None:
            new = (code == 0) & mask
            code[new] = reason
            detail[new] = text

        if self.zone_nodes is not None:
            zc = self.zone_nodes.pair_codes(f["o_zone"], f["d_zone"])
            mark(zc == RejectReason.UNKNOWN_ZONE, RejectReason.UNKNOWN_ZONE, "zone id not in the zones file")
        if "dropoff" in f:
            mark(f["dropoff"] < t, RejectReason.DROPOFF_BEFORE_PICKUP, "drop-off earlier than pickup")
        if self.zone_nodes is not None:
            self._place_zones(f, code, mark)
        else:
            self._place_coords(f, code, mark)
        mark(f["o_node"] == f["d_node"], RejectReason.ZERO_DISTANCE, "both ends on the same network node")
        mark(self._zero_recorded, RejectReason.ZERO_DISTANCE, "recorded trip distance is 0")

    def _place_coords(self, f: dict[str, NDArray[Any]], code: U8, mark: Any) -> None:
        lim = self.opts.max_snap_m
        for end in ("o", "d"):
            lon, lat = f[f"{end}_lon"], f[f"{end}_lat"]
            node = np.full(lon.shape[0], -1, dtype=np.int64)
            live = np.flatnonzero(code == 0)
            if live.size:
                x, y = self.network.project(lon[live], lat[live])
                dist, idx = self.tree.query(np.column_stack((x, y)), distance_upper_bound=lim, workers=-1)
                node[live] = np.where(np.isfinite(dist), idx, -1)
            where = "pickup" if end == "o" else "drop-off"
            mark(node < 0, RejectReason.OUTSIDE_AREA, f"{where} more than {lim:.0f} m from the network")
            if self.area is not None:
                inside = np.asarray(shapely.contains_xy(self.area, lon, lat), dtype=bool)
                mark(~inside, RejectReason.OUTSIDE_AREA, f"{where} outside the service area")
            f[f"{end}_node"] = node

    def _place_zones(self, f: dict[str, NDArray[Any]], code: U8, mark: Any) -> None:
        zn = self.zone_nodes
        if zn is None:  # narrowing for the type checker; the caller checked
            return
        live = np.flatnonzero(code == 0)
        o_node = np.full(code.shape[0], -1, dtype=np.int64)
        d_node = np.full(code.shape[0], -1, dtype=np.int64)
        o, d, zc = zn.sample_pairs(f["o_zone"][live], f["d_zone"][live], self.rng)
        o_node[live], d_node[live] = o, d
        full = np.zeros(code.shape[0], dtype=np.uint8)
        full[live] = zc
        mark(full == RejectReason.OUTSIDE_AREA, RejectReason.OUTSIDE_AREA, "zone has no node of the network")
        mark(full == RejectReason.ZERO_DISTANCE, RejectReason.ZERO_DISTANCE, "same single-node zone at both ends")
        lon, lat = self.network.lon, self.network.lat
        f["o_node"], f["d_node"] = o_node, d_node
        f["o_lon"], f["o_lat"] = np.where(o_node >= 0, lon[o_node], np.nan), np.where(o_node >= 0, lat[o_node], np.nan)
        f["d_lon"], f["d_lat"] = np.where(d_node >= 0, lon[d_node], np.nan), np.where(d_node >= 0, lat[d_node], np.nan)
        if self.area is not None:
            for end in ("o", "d"):
                inside = np.asarray(shapely.contains_xy(self.area, f[f"{end}_lon"], f[f"{end}_lat"]), dtype=bool)
                mark(~inside, RejectReason.OUTSIDE_AREA, "trip end outside the service area")

    # ------------------------------------------------------------------ the end
    def finish(self) -> DemandResult:
        a = self.acc
        t = a.get("t", np.int64)
        line = a.get("line", np.int64)
        rid = a.get("request_id", np.int64) if self.mapping.request_id is not None else line - (2 if self.csv else 0)
        keep, first = _first_occurrence(rid)
        if not keep.all():
            dup = np.flatnonzero(~keep)
            where = "line" if self.csv else "row"
            self.log.reject(
                np.full(dup.size, RejectReason.DUPLICATE_ID, dtype=np.uint8),
                line[dup],
                [
                    f"request id {v} already seen ({where} {w})"
                    for v, w in zip(rid[dup].tolist(), line[first[dup]].tolist(), strict=True)
                ],
                {self.mapping.request_id: rid[dup]} if self.mapping.request_id is not None else {},
            )
        sel = np.flatnonzero(keep)
        day0 = self.day0
        if day0 is None:
            day0 = int(t[sel].min() // 86400 * 86400) if sel.size else 0
        day_start: dt.datetime | None = None
        if self.opts.time_unit == "datetime" or self.opts.date is not None:
            day_start = _parse.epoch_to_datetime(day0)
        if self.opts.time_unit == "seconds" and self.opts.date is None:
            day0 = 0
        req = Requests.build(
            request_id=rid[sel],
            time_s=t[sel] - day0,
            o_lon=a.get("o_lon", np.float64)[sel],
            o_lat=a.get("o_lat", np.float64)[sel],
            d_lon=a.get("d_lon", np.float64)[sel],
            d_lat=a.get("d_lat", np.float64)[sel],
            o_node=a.get("o_node", np.int64)[sel],
            d_node=a.get("d_node", np.int64)[sel],
            passengers=a.get("passengers", np.int64)[sel],
            max_wait_s=a.get("max_wait", np.int64)[sel] if self.mapping.max_wait else None,
            fare_cents=a.get("fare", np.int64)[sel] if self.mapping.fare else None,
            day_start=day_start,
            network=self.network.name,
        )
        report = self.log.report(accepted=len(req))
        report.log()
        return DemandResult(req, report, self._facts(sel, rid, t, day0, req))

    def _facts(self, sel: I64, rid: I64, t: I64, day0: int, req: Requests) -> TripFacts:
        """The accepted rows' drop-off times, distances and zones, in the order of ``req`` (time, then id)."""
        a = self.acc
        n = sel.size
        order = sel[np.lexsort((rid[sel], t[sel]))]
        drop = a.get("dropoff", np.int64)[order] - day0 if self.mapping.dropoff_time else np.full(n, -1, np.int64)
        dist = a.get("trip_distance", np.float64)[order] if self.mapping.trip_distance else np.full(n, np.nan)
        zoned = self.mapping.zone_based
        oz = a.get("o_zone", np.int64)[order] if zoned else np.full(n, -1, np.int64)
        dz = a.get("d_zone", np.int64)[order] if zoned else np.full(n, -1, np.int64)
        if not np.array_equal(rid[order], req.request_id):
            raise DemandError("internal: trip facts out of step with the requests")
        return TripFacts(dropoff_s=drop, trip_distance=dist, o_zone=oz, d_zone=dz)


def _first_occurrence(ids: I64) -> tuple[NDArray[np.bool_], I64]:
    """Whether each id is the first of its value, and the position of that first occurrence."""
    keep = np.zeros(ids.shape[0], dtype=bool)
    first_of = np.zeros(ids.shape[0], dtype=np.int64)
    if ids.size:
        _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
        keep[first] = True
        first_of = first[inverse.ravel()].astype(np.int64)
    return keep, first_of


def _raw_rows(table: pa.Table, rows: I64) -> dict[str, list[Any]]:
    sub = table.take(pa.array(rows))
    return {name: sub.column(name).to_pylist() for name in sub.column_names}


def _service_area(path: Path) -> Any:
    zones = Zones.from_file(path)
    area = shapely.union_all(list(zones.geometries))
    shapely.prepare(area)
    return area


def load_records(
    path: str | Path, mapping: ColumnMapping, opts: RecordOptions, network: RoadNetwork, rng: np.random.Generator
) -> DemandResult:
    """Stream, validate and snap a trip-record file (see the module notes).

    Parameters
    ----------
    path : str or Path
        CSV (optionally compressed) or Parquet file.
    mapping : ColumnMapping
        Which file column feeds each request field.
    opts : RecordOptions
        How rows are judged and placed.
    network : RoadNetwork
        The network the trip ends are snapped to.
    rng : numpy.random.Generator
        Draws the nodes of zone-based trip ends.

    Returns
    -------
    DemandResult
        The accepted requests and the load report.

    Raises
    ------
    DemandError
        If the file is missing, unreadable, or lacks a mapped column.
    """
    p = check_file(path, "trip record file")
    names = _parse.header(p)
    used = mapping.used()
    missing = sorted({c for c in used.values() if c not in names})
    if missing:
        raise DemandError(
            f"{p}: no column {', '.join(missing)} (columns: {', '.join(names)})",
            hint="check the column mapping ([demand.columns])",
        )
    judge = _Judge(p, mapping, opts, network, rng)
    bad = _parse.BadLines()
    columns = list(dict.fromkeys(used.values()))
    for b in _parse.iter_batches(p, columns, batch_rows=opts.batch_rows, text_columns=tuple(columns), bad_lines=bad):
        judge.batch(b, bad)
    if bad.lines:
        judge.log.rows_read += len(bad.lines)
        judge.log.reject(
            np.full(len(bad.lines), RejectReason.UNPARSABLE_FIELD, dtype=np.uint8),
            np.array([ln for ln, _ in bad.lines], dtype=np.int64),
            [d for _, d in bad.lines],
        )
    return judge.finish()

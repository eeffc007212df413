"""Aggregated origin-destination counts turned into one day of ride requests.

The table holds, per (day of week, time slot, pickup zone, dropoff zone), the number of trips summed over ``n_days``
days. One simulated day draws, for every cell of the chosen weekday, ``k ~ Poisson(scale * count / n_days)``
requests, each at a uniform random second of its slot and at random network nodes of its zones (see
:mod:`robotaxi.demand.zones`). Poisson counts per cell are the standard model for independent arrivals whose rate is
the historical mean; summing them keeps the daily total's expectation equal to the historical daily mean.

The flagship file is ``nyc_manhattan_pyhailing/trips.csv`` (NYC TLC 2018 business days, 61 Manhattan zones,
15-minute slots, ``dow`` 0 = Monday). Its counts are sums over the business days of 2018, so by default the divisor
is the number of that weekday in the year minus US federal holidays (:func:`business_days`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from ..errors import DemandError
from ..network import RoadNetwork
from . import _parse
from .requests import Requests
from .source import DemandResult, Seed, as_generator
from .validation import RejectLog, RejectReason, check_file
from .zones import ZoneNodes, Zones

logger = logging.getLogger(__name__)

I64 = NDArray[np.int64]
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def us_federal_holidays(year: int) -> list[dt.date]:
    """US federal holidays of ``year`` on their observed dates (5 U.S.C. 6103; Saturday -> Friday, Sunday -> Monday)."""

    def nth(month: int, weekday: int, n: int) -> dt.date:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))

    def last(month: int, weekday: int) -> dt.date:
        d = dt.date(year, month + 1, 1) - dt.timedelta(days=1)
        return d - dt.timedelta(days=(d.weekday() - weekday) % 7)

    def observed(d: dt.date) -> dt.date:
        return d + dt.timedelta(days={5: -1, 6: 1}.get(d.weekday(), 0))

    fixed = [dt.date(year, 1, 1), dt.date(year, 7, 4), dt.date(year, 11, 11), dt.date(year, 12, 25)]
    if year >= 2021:
        fixed.append(dt.date(year, 6, 19))
    moving = [nth(1, 0, 3), nth(2, 0, 3), last(5, 0), nth(9, 0, 1), nth(10, 0, 2), nth(11, 3, 4)]
    return sorted({observed(d) for d in fixed} | set(moving))


def business_days(year: int, weekday: int) -> int:
    """Number of ``weekday`` dates in ``year`` that are not US federal holidays (the default OD-count divisor).

    Parameters
    ----------
    year : int
        Calendar year.
    weekday : int
        0 = Monday .. 6 = Sunday.

    Returns
    -------
    int
        For 2018: Mon 46, Tue 51, Wed 51, Thu 51, Fri 52.

    Raises
    ------
    ValueError
        If ``weekday`` is not in 0..6.
    """
    if not 0 <= weekday <= 6:
        raise ValueError(f"weekday must be 0 (Monday) .. 6 (Sunday), got {weekday}")
    holidays = set(us_federal_holidays(year))
    d = dt.date(year, 1, 1)
    d += dt.timedelta(days=(weekday - d.weekday()) % 7)
    n = 0
    while d.year == year:
        n += d not in holidays
        d += dt.timedelta(days=7)
    return n


@dataclass(frozen=True, slots=True)
class ODCountsColumns:
    """Column names of an origin-destination count table (defaults: the pyhailing ``trips.csv``)."""

    weekday: str = "dow"
    slot: str = "t_15min"
    origin_zone: str = "puzone"
    destination_zone: str = "dozone"
    count: str = "n_trips"

    def __post_init__(self) -> None:
        names = [self.weekday, self.slot, self.origin_zone, self.destination_zone, self.count]
        for attr, name in zip(("weekday", "slot", "origin_zone", "destination_zone", "count"), names, strict=True):
            if not isinstance(name, str) or not name:
                raise ValueError(f"ODCountsColumns.{attr} must be a non-empty column name")
        if len(set(names)) != len(names):
            raise ValueError("ODCountsColumns: the five column names must be distinct")

    def as_list(self) -> list[str]:
        """The five column names: weekday, slot, origin zone, destination zone, count."""
        return [self.weekday, self.slot, self.origin_zone, self.destination_zone, self.count]


@dataclass(frozen=True, slots=True)
class ODCountsSource:
    """One day of requests sampled from an origin-destination count table.

    Parameters
    ----------
    path : Path
        The count table (CSV or Parquet).
    zones : Path
        Zone polygons (GeoJSON in WGS84, or a shapefile with ``.prj``) whose ids the table uses.
    weekday : int or None
        Day of week to build, 0 = Monday (default Wednesday, 2, unless ``date`` says otherwise).
    date : date or None
        Calendar date of the simulated day: sets ``day_start`` and, when ``weekday`` is None, the weekday.
    n_days : int or None
        How many days the counts were summed over; default :func:`business_days` of ``year``.
    year : int
        Year the counts come from (for the default ``n_days``).
    slot_minutes : int
        Length of a time slot.
    scale : float
        Demand multiplier (1.0 = the historical mean; 0.1 for a tenth of the demand).
    columns : ODCountsColumns
        Column names.
    zone_id_field : str or None
        Zone id property in the zones file (default: detected).
    zone_buffer_m : float
        How far outside a node-less zone unassigned nodes may be taken from.
    rejects : Path or None
        Write rejected table rows to this CSV.
    """

    path: Path
    zones: Path
    weekday: int | None = None
    date: dt.date | None = None
    n_days: int | None = None
    year: int = 2018
    slot_minutes: int = 15
    scale: float = 1.0
    columns: ODCountsColumns = ODCountsColumns()
    zone_id_field: str | None = None
    zone_buffer_m: float = 200.0
    rejects: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "zones", Path(self.zones))
        if self.rejects is not None:
            object.__setattr__(self, "rejects", Path(self.rejects))
        if self.weekday is not None and not (isinstance(self.weekday, int) and 0 <= self.weekday <= 6):
            raise ValueError(f"weekday must be 0 (Monday) .. 6 (Sunday), got {self.weekday!r}")
        if self.date is not None and self.weekday is not None and self.date.weekday() != self.weekday:
            raise ValueError(f"date {self.date} is a {WEEKDAY_NAMES[self.date.weekday()]}, not weekday {self.weekday}")
        if self.n_days is not None and self.n_days < 1:
            raise ValueError(f"n_days must be >= 1, got {self.n_days}")
        if not 1 <= self.slot_minutes <= 1440 or 1440 % self.slot_minutes:
            raise ValueError(f"slot_minutes must divide a day (1..1440), got {self.slot_minutes}")
        if not (self.scale > 0 and np.isfinite(self.scale)):
            raise ValueError(f"scale must be a positive number, got {self.scale}")
        if self.zone_buffer_m < 0:
            raise ValueError("zone_buffer_m must be >= 0")

    @property
    def kind(self) -> str:
        """``"odcounts"``."""
        return "odcounts"

    @property
    def day_of_week(self) -> int:
        """The weekday built (0 = Monday)."""
        if self.weekday is not None:
            return self.weekday
        return self.date.weekday() if self.date is not None else 2

    @property
    def divisor(self) -> int:
        """Days the counts are summed over for this weekday."""
        return self.n_days if self.n_days is not None else business_days(self.year, self.day_of_week)

    def load(self, network: RoadNetwork, rng: np.random.Generator) -> DemandResult:
        """Sample the day; see the module notes."""
        zone_nodes = ZoneNodes.build(
            Zones.from_file(self.zones, id_field=self.zone_id_field), network, buffer_m=self.zone_buffer_m
        )
        return self.sample(zone_nodes, network, rng)

    def sample(self, zone_nodes: ZoneNodes, network: RoadNetwork, rng: np.random.Generator) -> DemandResult:
        """Like :meth:`load` with the zone-to-node assignment already built (reuse it across many days)."""
        path = check_file(self.path, "origin-destination count table")
        csv_file = _parse.table_kind(path) == "csv"
        log = RejectLog(path.name, self.rejects, locator="line" if csv_file else "row", fields=self.columns.as_list())
        table, bad_lines = _read_table(path, self.columns, log)
        cols = self.columns
        dow, c_dow = _parse.to_int(table.column(cols.weekday))
        slot, c_slot = _parse.to_int(table.column(cols.slot))
        o_zone, c_o = _parse.to_int(table.column(cols.origin_zone))
        d_zone, c_d = _parse.to_int(table.column(cols.destination_zone))
        count, c_n = _parse.to_int(table.column(cols.count))
        n_rows = table.num_rows
        log.rows_read += n_rows
        code = np.zeros(n_rows, dtype=np.uint8)
        detail_col = np.full(n_rows, "", dtype=object)
        for c, name in (
            (c_dow, cols.weekday),
            (c_slot, cols.slot),
            (c_o, cols.origin_zone),
            (c_d, cols.destination_zone),
            (c_n, cols.count),
        ):
            new = (code == 0) & (c != 0)
            code[new] = c[new]
            detail_col[new] = name
        slots_per_day = 1440 // self.slot_minutes
        invalid = (code == 0) & ((dow < 0) | (dow > 6) | (slot < 0) | (slot >= slots_per_day) | (count < 0))
        code[invalid] = RejectReason.INVALID_VALUE
        detail_col[invalid] = (
            f"{cols.weekday} not in 0..6, {cols.slot} not in 0..{slots_per_day - 1} or {cols.count} < 0"
        )
        wanted = (code == 0) & (dow == self.day_of_week)
        log.skip("other_weekday", int(np.sum((code == 0) & (dow != self.day_of_week))))
        pair_code = zone_nodes.pair_codes(o_zone[wanted], d_zone[wanted])
        w_idx = np.flatnonzero(wanted)
        code[w_idx] = pair_code
        _log_rejects(log, table, code, detail_col, o_zone, d_zone, zone_nodes, bad_lines if csv_file else None)
        good = np.flatnonzero(wanted & (code == 0))
        requests = self._draw(good, slot, o_zone, d_zone, count, zone_nodes, network, rng)
        report = log.report(
            accepted=int(good.size),
            requests=len(requests),
            row_unit="count rows",
            requests_note="sampled from the trip counts of the accepted count rows",
        )
        report.log()
        return DemandResult(requests, report)

    def _draw(
        self,
        rows: I64,
        slot: I64,
        o_zone: I64,
        d_zone: I64,
        count: I64,
        zone_nodes: ZoneNodes,
        network: RoadNetwork,
        rng: np.random.Generator,
    ) -> Requests:
        lam = count[rows].astype(np.float64) * (self.scale / self.divisor)
        k = rng.poisson(lam)
        idx = np.repeat(rows, k)
        slot_s = self.slot_minutes * 60
        t = slot[idx] * slot_s + (rng.random(idx.size) * slot_s).astype(np.int64)
        o_node, d_node, code = zone_nodes.sample_pairs(o_zone[idx], d_zone[idx], rng)
        if np.any(code):
            raise DemandError("internal: a sampled pair failed the zone checks that its table row passed")
        order = np.argsort(t, kind="stable")
        t, o_node, d_node = t[order], o_node[order], d_node[order]
        day_start = dt.datetime.combine(self.date, dt.time()) if self.date is not None else None
        return Requests.build(
            request_id=np.arange(t.size, dtype=np.int64),
            time_s=t,
            o_lon=network.lon[o_node],
            o_lat=network.lat[o_node],
            d_lon=network.lon[d_node],
            d_lat=network.lat[d_node],
            o_node=o_node,
            d_node=d_node,
            day_start=day_start,
            network=network.name,
        )


def _read_table(path: Path, cols: ODCountsColumns, log: RejectLog) -> tuple[pa.Table, _parse.BadLines]:
    names = _parse.header(path)
    missing = [c for c in cols.as_list() if c not in names]
    if missing:
        raise DemandError(
            f"{path}: not an origin-destination count table: no column {', '.join(missing)} "
            f"(columns: {', '.join(names)})",
            hint="name the columns with ODCountsColumns / the [demand.columns] table",
        )
    bad = _parse.BadLines()
    # Read as text so that a bad cell anywhere is one rejected row, not a type error for the whole file.
    text = tuple(cols.as_list())
    batches = [b.table for b in _parse.iter_batches(path, cols.as_list(), text_columns=text, bad_lines=bad)]
    if bad.lines:
        log.rows_read += len(bad.lines)
        lines = np.array([ln for ln, _ in bad.lines], dtype=np.int64)
        log.reject(np.full(lines.size, RejectReason.UNPARSABLE_FIELD, dtype=np.uint8), lines, [d for _, d in bad.lines])
    if not batches:
        raise DemandError(f"{path}: the count table has no rows")
    return pa.concat_tables(batches), bad


def _log_rejects(
    log: RejectLog,
    table: pa.Table,
    code: NDArray[np.uint8],
    detail_col: NDArray[np.object_],
    o_zone: I64,
    d_zone: I64,
    zone_nodes: ZoneNodes,
    bad_lines: _parse.BadLines | None,
) -> None:
    """Record the rejected table rows: CSV line numbers (``bad_lines`` given) or 0-based Parquet rows."""
    bad = np.flatnonzero(code)
    if bad.size == 0:
        return
    details = []
    zsrc = Path(zone_nodes.zones.source).name or "the zones"
    for i in bad.tolist():
        reason = RejectReason(int(code[i]))
        if reason in (RejectReason.MISSING_FIELD, RejectReason.UNPARSABLE_FIELD):
            details.append(f"column {detail_col[i]}")
        elif reason is RejectReason.UNKNOWN_ZONE:
            details.append(f"zone {o_zone[i]} -> {d_zone[i]}: not both zones of {zsrc}")
        elif reason is RejectReason.OUTSIDE_AREA:
            details.append(f"zone {o_zone[i]} -> {d_zone[i]}: a zone with no node of the {zone_nodes.network} network")
        elif reason is RejectReason.ZERO_DISTANCE:
            details.append(f"zone {o_zone[i]} -> {d_zone[i]}: same zone with a single network node")
        else:
            details.append(str(detail_col[i]))
    rows = bad.astype(np.int64)
    sub = table.take(pa.array(rows))
    log.reject(
        code[bad],
        bad_lines.shift(rows + 2) if bad_lines is not None else rows,
        details,
        {name: sub.column(name).to_pylist() for name in sub.column_names},
    )


def manhattan_weekday(
    network: RoadNetwork,
    trips_csv: str | Path,
    zones_geojson: str | Path,
    *,
    weekday: int = 2,
    seed: Seed = 0,
    scale: float = 1.0,
    date: dt.date | None = None,
    n_days: int | None = None,
) -> Requests:
    """The flagship "Manhattan weekday": one business day of NYC TLC 2018 demand (about 446,000 on a Wednesday).

    Parameters
    ----------
    network : RoadNetwork
        Usually ``load_network("../shared/data/nyc_manhattan_hive/manhattan_network.json")`` (4,197 nodes).
    trips_csv : path
        ``nyc_manhattan_pyhailing/trips.csv``.
    zones_geojson : path
        ``nyc_tlc_taxi_zones/taxi_zones.geojson`` (or the ``.shp``).
    weekday : int
        0 = Monday .. 4 = Friday; 2 (Wednesday) by default.
    seed : int or Generator
        Same seed, same requests.
    scale : float
        Demand multiplier.
    date : date or None
        Calendar date to stamp as ``day_start`` (must fall on ``weekday``).
    n_days : int or None
        Override the divisor (default: business days of that weekday in 2018).

    Returns
    -------
    Requests
        Sorted by time, ids 0..n-1 in time order, snapped to ``network``.
    """
    src = ODCountsSource(
        path=Path(trips_csv),
        zones=Path(zones_geojson),
        weekday=weekday,
        date=date,
        n_days=n_days,
        year=2018,
        scale=scale,
    )
    return src.load(network, as_generator(seed)).requests

"""NYC Taxi & Limousine Commission trip records (yellow, green, FHV, high-volume FHV), CSV or Parquet.

The column names changed across the years; :data:`TLC_COLUMN_VARIANTS` lists the names we accept for each field
(compared case-insensitively, surrounding spaces ignored: the 2014 yellow CSVs have a space before every header).
Coordinate-based years (2009-2016) give pickup/drop-off longitude and latitude, which are snapped to the nearest
node; zone-based years (2017 on) give ``PULocationID``/``DOLocationID``, and each trip end becomes a random network
node inside its taxi zone (seeded). The table, with the years each variant belongs to, is in docs/demand.md.

Files are streamed in batches (a month is 10M+ rows); with a service ``date`` only that day's requests are kept.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DemandError
from ..network import RoadNetwork
from . import _parse
from .records import ColumnMapping, RecordOptions, load_records
from .source import DemandResult, Seed, as_generator
from .validation import check_file

#: Request field -> accepted TLC column names, in order of preference (lower case).
TLC_COLUMN_VARIANTS: dict[str, tuple[str, ...]] = {
    # HVFHV files have the time the rider asked (request_datetime) besides the pickup: that is the request time.
    "time": (
        "request_datetime",
        "tpep_pickup_datetime",
        "lpep_pickup_datetime",
        "pickup_datetime",
        "trip_pickup_datetime",
    ),
    "dropoff_time": (
        "tpep_dropoff_datetime",
        "lpep_dropoff_datetime",
        "dropoff_datetime",
        "trip_dropoff_datetime",
    ),
    "o_lon": ("pickup_longitude", "start_lon"),
    "o_lat": ("pickup_latitude", "start_lat"),
    "d_lon": ("dropoff_longitude", "end_lon"),
    "d_lat": ("dropoff_latitude", "end_lat"),
    # The snake_case names are those of the TLC samples shipped with Great Expectations (shared/data/nyc_tlc_trips).
    "o_zone": ("pulocationid", "pickup_location_id"),
    "d_zone": ("dolocationid", "dropoff_location_id"),
    "passengers": ("passenger_count",),
    "fare": ("fare_amount", "fare_amt", "base_passenger_fare"),
    "trip_distance": ("trip_distance", "trip_miles"),
}


def detect_tlc_columns(names: list[str], *, source: str = "") -> ColumnMapping:
    """The column mapping for a TLC file with these header names.

    Parameters
    ----------
    names : list of str
        Header names as written (matched case-insensitively, spaces around them ignored).
    source : str
        File name for error messages.

    Returns
    -------
    ColumnMapping
        Coordinates when the header has them, else zone ids.

    Raises
    ------
    DemandError
        If the header is not a TLC trip-record header (no pickup time, or neither coordinates nor zone ids).
    """
    by_key = {n.strip().lower(): n for n in names}
    found: dict[str, str] = {}
    for fieldname, variants in TLC_COLUMN_VARIANTS.items():
        for v in variants:
            if v in by_key:
                found[fieldname] = by_key[v]
                break
    where = f"{source}: " if source else ""
    if "time" not in found:
        raise DemandError(
            f"{where}not a TLC trip record file: no pickup time column (columns: {', '.join(names)})",
            hint="expected e.g. tpep_pickup_datetime, pickup_datetime or Trip_Pickup_DateTime",
        )
    coords = [found.get(k) for k in ("o_lon", "o_lat", "d_lon", "d_lat")]
    if all(coords):
        for k in ("o_zone", "d_zone"):
            found.pop(k, None)
    elif found.get("o_zone") and found.get("d_zone"):
        for k in ("o_lon", "o_lat", "d_lon", "d_lat"):
            found.pop(k, None)
    else:
        raise DemandError(
            f"{where}not a TLC trip record file: neither pickup/drop-off coordinates nor PULocationID/DOLocationID "
            f"(columns: {', '.join(names)})"
        )
    return ColumnMapping(**found)


@dataclass(frozen=True, slots=True)
class TLCSource:
    """A NYC TLC trip-record file (CSV, CSV.gz or Parquet; see the module notes).

    Parameters
    ----------
    path : Path
        The file.
    zones : Path or None
        Taxi-zone polygons (``taxi_zones.geojson`` or ``.shp``), required for zone-based files.
    date : date or None
        Service day to build (recommended for month files: only that day is kept in memory).
    service_area : Path or None
        GeoJSON polygon; trip ends outside it are rejected.
    max_snap_m : float
        Farthest a coordinate may be from the network.
    rejects : Path or None
        Write every rejected row to this CSV.
    batch_rows : int
        Rows per streamed batch.
    """

    path: Path
    zones: Path | None = None
    date: dt.date | None = None
    service_area: Path | None = None
    max_snap_m: float = 250.0
    rejects: Path | None = None
    batch_rows: int = 1 << 20

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        # RecordOptions validates the rest; building it here reports bad values at construction time.
        self.options()

    @property
    def kind(self) -> str:
        """``"tlc"``."""
        return "tlc"

    def options(self) -> RecordOptions:
        """The record options this source loads with (a 0 or missing passenger count becomes 1, counted)."""
        return RecordOptions(
            zones=self.zones,
            date=self.date,
            service_area=self.service_area,
            max_snap_m=self.max_snap_m,
            rejects=self.rejects,
            batch_rows=self.batch_rows,
            zero_passengers_default=True,
        )

    def columns(self) -> ColumnMapping:
        """The mapping detected from the file's header."""
        p = check_file(self.path, "TLC trip record file")
        return detect_tlc_columns(_parse.header(p), source=str(p))

    def load(self, network: RoadNetwork, rng: np.random.Generator) -> DemandResult:
        """Stream the file and build the requests."""
        return load_records(self.path, self.columns(), self.options(), network, rng)


def tlc_trips(
    network: RoadNetwork,
    path: str | Path,
    *,
    zones: str | Path | None = None,
    date: dt.date | None = None,
    seed: Seed = 0,
    rejects: str | Path | None = None,
) -> DemandResult:
    """Requests and report from a TLC file; ``zones`` is needed for 2017+ (zone-based) files.

    Parameters
    ----------
    network : RoadNetwork
        The network trip ends are snapped to.
    path : str or Path
        TLC trip-record file (CSV, CSV.gz or Parquet).
    zones : str, Path or None
        Taxi-zone polygons, for zone-based files.
    date : date or None
        Keep only this service day.
    seed : int, numpy.random.Generator or None
        Same seed, same nodes for zone-based trip ends.
    rejects : str, Path or None
        Write every rejected row to this CSV.

    Returns
    -------
    DemandResult
        Requests and load report.
    """
    src = TLCSource(
        path=Path(path),
        zones=Path(zones) if zones is not None else None,
        date=date,
        rejects=Path(rejects) if rejects is not None else None,
    )
    return src.load(network, as_generator(seed))

"""Any CSV or Parquet file of trips or requests, read through a column mapping given in the scenario file.

For example, the NREL HIVE request files (``request_id, o_lat, o_lon, d_lat, d_lon, departure_time, passengers``)
load with::

    [demand]
    kind = "csv"
    path = "../shared/data/nyc_manhattan_hive/nyc_20k.csv"
    [demand.columns]
    request_id = "request_id"
    time = "departure_time"
    o_lon = "o_lon"
    o_lat = "o_lat"
    d_lon = "d_lon"
    d_lat = "d_lat"
    passengers = "passengers"
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from ..network import RoadNetwork
from .records import ColumnMapping, RecordOptions, load_records
from .source import DemandResult

#: The mapping for NREL HIVE request files.
HIVE_COLUMNS = ColumnMapping(
    request_id="request_id",
    time="departure_time",
    o_lon="o_lon",
    o_lat="o_lat",
    d_lon="d_lon",
    d_lat="d_lat",
    passengers="passengers",
)

#: Request-table layouts recognised from their header alone, by name (issue 11: a HIVE file needs no -c flags).
KNOWN_LAYOUTS: Mapping[str, ColumnMapping] = MappingProxyType({"hive": HIVE_COLUMNS})


def detect_layout(names: Sequence[str]) -> tuple[str, ColumnMapping] | None:
    """The known layout whose columns a header holds (exact names, as written), or ``None``."""
    have = set(names)
    for name, mapping in KNOWN_LAYOUTS.items():
        if set(mapping.used().values()) <= have:
            return name, mapping
    return None


@dataclass(frozen=True, slots=True)
class TableSource:
    """A CSV or Parquet file of requests read through ``columns``.

    Parameters
    ----------
    path : Path
        The file (``.parquet``/``.pq`` is Parquet, anything else CSV).
    columns : ColumnMapping
        Which column feeds each request field.
    zones : Path or None
        Zone polygons, for files with zone columns.
    date : date or None
        Service day; requests outside it are skipped.
    time_unit : {"datetime", "seconds"}
        Timestamps, or seconds since the service day's midnight.
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
    columns: ColumnMapping
    zones: Path | None = None
    date: dt.date | None = None
    time_unit: str = "datetime"
    service_area: Path | None = None
    max_snap_m: float = 250.0
    rejects: Path | None = None
    batch_rows: int = 1 << 20

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if isinstance(self.columns, Mapping):
            object.__setattr__(self, "columns", ColumnMapping(**self.columns))
        if not isinstance(self.columns, ColumnMapping):
            raise ValueError("columns must be a ColumnMapping or a mapping of field -> column name")
        self.options()

    @property
    def kind(self) -> str:
        """``"table"``."""
        return "table"

    def options(self) -> RecordOptions:
        """The record options this source loads with."""
        return RecordOptions(
            zones=self.zones,
            date=self.date,
            time_unit=self.time_unit,
            service_area=self.service_area,
            max_snap_m=self.max_snap_m,
            rejects=self.rejects,
            batch_rows=self.batch_rows,
        )

    def load(self, network: RoadNetwork, rng: np.random.Generator) -> DemandResult:
        """Stream the file and build the requests."""
        return load_records(self.path, self.columns, self.options(), network, rng)

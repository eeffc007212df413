"""Vehicle start positions from a file: a real fleet's positions brought by its operator.

A CSV or Parquet table with one row per vehicle. Columns are recognised by name (case-insensitive), so the common
layouts load without a mapping, e.g. HIVE's fleet files (``vehicle_id, lat, lon, mechatronics_id, initial_soc``):

========== ===================================================== ===========
field      column names recognised                               required
========== ===================================================== ===========
lon        ``lon``, ``lng``, ``longitude``, ``x``                 yes
lat        ``lat``, ``latitude``, ``y``                           yes
vehicle id ``vehicle_id``, ``device_id``, ``id``, ``vin``         no
operator   ``operator``, ``provider``, ``provider_name``          no
capacity   ``capacity``, ``seats``                                no
========== ===================================================== ===========

Other columns are ignored. The whole file is checked before anything uses it: a missing or unreadable file, no
lon/lat column, an empty table, a cell that is not a number, a coordinate out of range (with a hint when latitude
and longitude look swapped), a repeated vehicle id or a capacity below one is a :class:`~robotaxi.errors.FleetError`
naming the file, the column and the first bad line (line 1 is the CSV header, so data starts on line 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from ..errors import FleetError, OffNetworkError
from ..network import RoadNetwork

#: field -> column names recognised for it (lower case), in order of preference.
ALIASES: Mapping[str, tuple[str, ...]] = {
    "lon": ("lon", "lng", "longitude", "x"),
    "lat": ("lat", "latitude", "y"),
    "vehicle_id": ("vehicle_id", "device_id", "id", "vin"),
    "operator": ("operator", "provider", "provider_name"),
    "capacity": ("capacity", "seats"),
}


@dataclass(frozen=True, slots=True, eq=False)
class FleetPositions:
    """Start positions read from a file (one entry per vehicle, in file order).

    Attributes
    ----------
    source : Path
    lon, lat : ndarray of float64
    vehicle_id : tuple of str, or None when the file has no id column
    operator : tuple of str, or None when the file has no operator column
    capacity : ndarray of int64, or None when the file has no capacity column
    line : ndarray of int64
        The line of the file each vehicle came from (CSV: header is line 1; Parquet: row number + 1).
    """

    source: Path
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    vehicle_id: tuple[str, ...] | None
    operator: tuple[str, ...] | None
    capacity: NDArray[np.int64] | None
    line: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.lon.size)

    def for_operator(self, name: str, *, only: bool = False) -> FleetPositions:
        """The rows of operator ``name``; every row when the file has no operator column.

        Parameters
        ----------
        only : bool
            The scenario has one operator: rows naming another operator are an error, not silently dropped.
        """
        if self.operator is None:
            return self
        keep = np.asarray([op == name for op in self.operator], dtype=bool)
        if only and not keep.all():
            bad = int(np.argmin(keep))
            raise FleetError(
                f"{self.source}: line {int(self.line[bad])} names operator {self.operator[bad]!r}, but the scenario's "
                f"only operator is {name!r}"
            )
        if not keep.any():
            found = ", ".join(sorted(set(self.operator)))
            raise FleetError(f"{self.source}: no vehicle of operator {name!r} (operators in the file: {found})")
        return FleetPositions(
            source=self.source,
            lon=self.lon[keep],
            lat=self.lat[keep],
            vehicle_id=None if self.vehicle_id is None else tuple(np.asarray(self.vehicle_id, dtype=object)[keep]),
            operator=tuple(np.asarray(self.operator, dtype=object)[keep]),
            capacity=None if self.capacity is None else self.capacity[keep],
            line=self.line[keep],
        )

    def snap(self, network: RoadNetwork, max_distance_m: float) -> NDArray[np.int32]:
        """The nearest network node of every vehicle.

        Raises
        ------
        FleetError
            If a vehicle is farther than ``max_distance_m`` from every node; names its line and distance.
        """
        try:
            return network.snap(self.lon, self.lat, max_distance_m).astype(np.int32)
        except OffNetworkError:
            _, dist = network.nearest(self.lon, self.lat)
            far = np.flatnonzero(dist > max_distance_m)
            i = int(far[0])
            _, swapped_dist = network.nearest(self.lat[i : i + 1], self.lon[i : i + 1])
            hint = (
                "latitude and longitude look swapped: check which column is which"
                if swapped_dist[0] <= max_distance_m
                else f"the network covers lon/lat {network.bbox}"
            )
            raise FleetError(
                f"{self.source}: {far.size} of {len(self)} vehicles are off the {network.name} network; the first, "
                f"line {int(self.line[i])} at lon={self.lon[i]:.6f}, lat={self.lat[i]:.6f}, is {dist[i]:.0f} m "
                f"from the nearest node (limit {max_distance_m:.0f} m)",
                hint=hint,
            ) from None


def _read_table(path: Path) -> tuple[pa.Table, int]:
    """The file as an Arrow table with every column as text (CSV) or as stored (Parquet), and the line of row 0."""
    from ..demand._parse import check_text, table_kind
    from ..errors import DemandError

    if not path.is_file():
        raise FleetError(f"fleet positions file not found: {path}")
    try:
        if table_kind(path) == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path), 1
        import pyarrow.csv as pacsv

        try:
            check_text(path)
        except DemandError as e:  # binary or not UTF-8: the same words, as this module's error type
            raise FleetError(str(e)) from None
        names = pacsv.open_csv(path).schema.names
        opts = pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=True)
        return pacsv.read_csv(path, convert_options=opts), 2
    except pa.ArrowInvalid as e:
        raise FleetError(f"{path}: not a readable {table_kind(path).upper()} file: {e}") from None
    except OSError as e:
        raise FleetError(f"{path}: cannot read: {e}") from None


def _column(table: pa.Table, field: str) -> str | None:
    by_lower = {n.strip().lower(): n for n in table.column_names}
    return next((by_lower[a] for a in ALIASES[field] if a in by_lower), None)


def _numbers(path: Path, table: pa.Table, name: str, first_line: int) -> NDArray[np.float64]:
    from ..demand._parse import to_float

    values, code = to_float(table.column(name))
    if code.any():
        i = int(np.argmax(code != 0))
        raw = table.column(name)[i].as_py()
        shown = raw.strip() if isinstance(raw, str) else raw
        raise FleetError(f"{path}: line {first_line + i}: column {name!r} is {shown!r}, not a number")
    return values


def _texts(path: Path, table: pa.Table, name: str, first_line: int) -> tuple[str, ...]:
    values = [None if v is None else str(v).strip() for v in table.column(name).to_pylist()]
    for i, v in enumerate(values):
        if not v:
            raise FleetError(f"{path}: line {first_line + i}: column {name!r} is empty")
    return tuple(v for v in values if v)


def read_positions(path: str | Path) -> FleetPositions:
    """Read and validate a fleet positions file (see the module docstring for the columns).

    Raises
    ------
    FleetError
        On any problem with the file; the message names the file, the column and the line.
    """
    p = Path(path)
    table, first = _read_table(p)
    if table.num_rows == 0:
        raise FleetError(f"{p}: no vehicles (the table has no rows)")
    cols = {f: _column(table, f) for f in ALIASES}
    lon_c, lat_c = cols["lon"], cols["lat"]
    if lon_c is None or lat_c is None:
        missing = " and ".join(f for f in ("lon", "lat") if cols[f] is None)
        raise FleetError(
            f"{p}: no {missing} column (columns: {', '.join(table.column_names)})",
            hint="name them lon/lat (or longitude/latitude)",
        )
    lon = _numbers(p, table, lon_c, first)
    lat = _numbers(p, table, lat_c, first)
    bad = (np.abs(lon) > 180) | (np.abs(lat) > 90)
    if bad.any():
        i = int(np.argmax(bad))
        swapped = abs(lon[i]) <= 90 and abs(lat[i]) <= 180
        raise FleetError(
            f"{p}: line {first + i}: lon={lon[i]:g}, lat={lat[i]:g} is not a position (longitude must lie in "
            f"-180..180, latitude in -90..90)",
            hint="latitude and longitude look swapped: check which column is which" if swapped else None,
        )
    ids = None if cols["vehicle_id"] is None else _texts(p, table, cols["vehicle_id"], first)
    if ids is not None and len(set(ids)) != len(ids):
        seen: dict[str, int] = {}
        for i, v in enumerate(ids):
            if v in seen:
                raise FleetError(
                    f"{p}: line {first + i}: vehicle id {v!r} repeats line {first + seen[v]} (ids must be unique)"
                )
            seen[v] = i
    operators = None if cols["operator"] is None else _texts(p, table, cols["operator"], first)
    capacity = None
    if cols["capacity"] is not None:
        cap = _numbers(p, table, cols["capacity"], first)
        wrong = (cap < 1) | (cap != np.round(cap))
        if wrong.any():
            i = int(np.argmax(wrong))
            raise FleetError(
                f"{p}: line {first + i}: column {cols['capacity']!r} is {cap[i]:g}; a capacity is a whole number >= 1"
            )
        capacity = cap.astype(np.int64)
    return FleetPositions(
        source=p,
        lon=lon,
        lat=lat,
        vehicle_id=ids,
        operator=operators,
        capacity=capacity,
        line=np.arange(table.num_rows, dtype=np.int64) + first,
    )

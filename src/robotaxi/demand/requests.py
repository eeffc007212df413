"""Ride requests held as columns (NumPy arrays), never as a list of objects.

Times are integer seconds since ``day_start`` (a naive local wall-clock datetime: the midnight of the service day
the requests belong to), so the simulator's clock is simply "seconds since local midnight". Optional fields use a
sentinel: ``-1`` for unknown max wait, fare or operator preference.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from ..errors import DemandError

#: Column name -> dtype, in file order.
COLUMNS: dict[str, type[np.generic]] = {
    "request_id": np.int64,
    "time_s": np.int64,
    "o_lon": np.float64,
    "o_lat": np.float64,
    "d_lon": np.float64,
    "d_lat": np.float64,
    "o_node": np.int32,
    "d_node": np.int32,
    "passengers": np.int16,
    "max_wait_s": np.int32,
    "operator": np.int16,
    "fare_cents": np.int64,
}
_OPTIONAL_DEFAULTS = {"passengers": 1, "max_wait_s": -1, "operator": -1, "fare_cents": -1}


@dataclass(frozen=True, slots=True, eq=False)
class Requests:
    """A batch of ride requests, one row per request, sorted by ``time_s`` then ``request_id``.

    Attributes
    ----------
    request_id : int64
        Unique within the batch.
    time_s : int64
        Request time, seconds since ``day_start``.
    o_lon, o_lat, d_lon, d_lat : float64
        Origin and destination, WGS84 degrees.
    o_node, d_node : int32
        Origin and destination snapped to node indices of the network named ``network``.
    passengers : int16
        Party size (>= 1).
    max_wait_s : int32
        Longest the rider will wait for pickup, -1 when the source does not say (the policy default applies).
    operator : int16
        Index into ``operators`` of the rider's preferred operator, -1 for none.
    fare_cents : int64
        Fare paid in the source data (integer cents), -1 when unknown.
    day_start : datetime or None
        Local midnight that ``time_s`` counts from (None for data with no calendar date, e.g. synthetic).
    network : str
        Name of the network the nodes refer to.
    operators : tuple of str
        Operator names that ``operator`` indexes.
    """

    request_id: NDArray[np.int64]
    time_s: NDArray[np.int64]
    o_lon: NDArray[np.float64]
    o_lat: NDArray[np.float64]
    d_lon: NDArray[np.float64]
    d_lat: NDArray[np.float64]
    o_node: NDArray[np.int32]
    d_node: NDArray[np.int32]
    passengers: NDArray[np.int16]
    max_wait_s: NDArray[np.int32]
    operator: NDArray[np.int16]
    fare_cents: NDArray[np.int64]
    day_start: dt.datetime | None = None
    network: str = ""
    operators: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        n = self.request_id.shape[0] if self.request_id.ndim == 1 else -1
        for name, dtype in COLUMNS.items():
            col = getattr(self, name)
            if not isinstance(col, np.ndarray) or col.ndim != 1 or col.shape[0] != n:
                raise ValueError(f"Requests.{name} must be a 1-D array with one value per request ({n})")
            if col.dtype != dtype:
                raise ValueError(f"Requests.{name} must have dtype {np.dtype(dtype)}, got {col.dtype}")
        if n and np.any(np.diff(self.time_s) < 0):
            raise ValueError("Requests must be sorted by time_s (use Requests.build, which sorts)")
        if n > 1:
            ids = np.sort(self.request_id)  # sorting is much faster than NumPy 2's hash-based unique here
            if np.any(ids[1:] == ids[:-1]):
                raise ValueError("Requests.request_id must be unique")

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(
        cls,
        *,
        request_id: Any,
        time_s: Any,
        o_lon: Any,
        o_lat: Any,
        d_lon: Any,
        d_lat: Any,
        o_node: Any,
        d_node: Any,
        passengers: Any = None,
        max_wait_s: Any = None,
        operator: Any = None,
        fare_cents: Any = None,
        day_start: dt.datetime | None = None,
        network: str = "",
        operators: tuple[str, ...] = (),
    ) -> Requests:
        """Build from array-likes (scalars broadcast for optional columns), casting and sorting by time."""
        given = {
            "request_id": request_id,
            "time_s": time_s,
            "o_lon": o_lon,
            "o_lat": o_lat,
            "d_lon": d_lon,
            "d_lat": d_lat,
            "o_node": o_node,
            "d_node": d_node,
            "passengers": passengers,
            "max_wait_s": max_wait_s,
            "operator": operator,
            "fare_cents": fare_cents,
        }
        n = np.asarray(request_id).shape[0]
        cols: dict[str, NDArray[Any]] = {}
        for name, dtype in COLUMNS.items():
            value = given[name]
            if value is None:
                value = _OPTIONAL_DEFAULTS[name]
            arr = np.asarray(value)
            if arr.ndim == 0:
                arr = np.full(n, arr)
            cols[name] = arr.astype(dtype, copy=False)
        order = np.lexsort((cols["request_id"], cols["time_s"]))
        if not np.array_equal(order, np.arange(n)):
            cols = {k: v[order] for k, v in cols.items()}
        return cls(**cols, day_start=day_start, network=network, operators=tuple(operators))

    @classmethod
    def empty(cls, network: str = "") -> Requests:
        """No requests (every column of length 0) on the network named ``network``."""
        return cls.build(
            request_id=np.empty(0, np.int64),
            time_s=[],
            o_lon=[],
            o_lat=[],
            d_lon=[],
            d_lat=[],
            o_node=[],
            d_node=[],
            network=network,
        )

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return int(self.request_id.shape[0])

    def columns(self) -> dict[str, NDArray[Any]]:
        """Column name -> array, in file order (the arrays themselves, not copies)."""
        return {name: getattr(self, name) for name in COLUMNS}

    def take(self, index: NDArray[Any]) -> Requests:
        """Rows selected by a boolean mask or an increasing integer index (order is kept)."""
        return Requests.build(
            **{k: v[index] for k, v in self.columns().items()},
            day_start=self.day_start,
            network=self.network,
            operators=self.operators,
        )

    def window(self, start_s: int, end_s: int) -> Requests:
        """Requests with ``start_s <= time_s < end_s``."""
        lo, hi = np.searchsorted(self.time_s, [start_s, end_s], side="left")
        return self.take(np.arange(lo, hi))

    def per_hour(self) -> NDArray[np.int64]:
        """Request counts by hour of the day (24 bins; times past midnight wrap)."""
        return np.bincount((self.time_s // 3600) % 24, minlength=24).astype(np.int64)

    # ------------------------------------------------------------------ Parquet
    def to_arrow(self) -> pa.Table:
        """An Arrow table of the columns; ``day_start``, ``network`` and ``operators`` go into the schema metadata."""
        meta = {
            b"robotaxi.day_start": (self.day_start.isoformat() if self.day_start else "").encode(),
            b"robotaxi.network": self.network.encode(),
            b"robotaxi.operators": "\x1f".join(self.operators).encode(),
        }
        table = pa.table(self.columns())
        return table.replace_schema_metadata(meta)

    def to_parquet(self, path: str | Path) -> Path:
        """Write the requests to a zstd-compressed Parquet file (creating its folder) and return its path.

        Parameters
        ----------
        path : str or Path
            File to write; :meth:`from_parquet` reads it back unchanged.

        Returns
        -------
        Path
            ``path``.
        """
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(self.to_arrow(), p, compression="zstd")
        return p

    @classmethod
    def from_arrow(cls, table: pa.Table) -> Requests:
        """Requests from a table written by :meth:`to_arrow`.

        Raises
        ------
        DemandError
            If a request column is missing.
        """
        missing = [c for c in COLUMNS if c not in table.column_names]
        if missing:
            raise DemandError(f"not a robotaxi requests table: missing columns {', '.join(missing)}")
        meta = table.schema.metadata or {}
        day = meta.get(b"robotaxi.day_start", b"").decode()
        ops = meta.get(b"robotaxi.operators", b"").decode()
        return cls.build(
            **{c: table.column(c).to_numpy() for c in COLUMNS},
            day_start=dt.datetime.fromisoformat(day) if day else None,
            network=meta.get(b"robotaxi.network", b"").decode(),
            operators=tuple(ops.split("\x1f")) if ops else (),
        )

    @classmethod
    def from_parquet(cls, path: str | Path) -> Requests:
        """Requests from a Parquet file written by :meth:`to_parquet`.

        Raises
        ------
        DemandError
            If the file is missing, not Parquet, or not a requests table.
        """
        p = Path(path)
        try:
            table = pq.read_table(p)
        except FileNotFoundError as e:
            raise DemandError(f"requests file not found: {p}") from e
        except pa.ArrowInvalid as e:
            raise DemandError(f"{p}: not a Parquet file: {e}") from e
        try:
            return cls.from_arrow(table)
        except DemandError as e:
            raise DemandError(f"{p}: {e}") from e

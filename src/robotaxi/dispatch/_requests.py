"""The engine's request table: every request it was given, as growable columns, and the open ones."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DispatchError

I64 = NDArray[np.int64]


class RequestStatus(IntEnum):
    """Where a request is in its lifecycle (stored as int8)."""

    OPEN = 0
    ASSIGNED = 1
    ON_BOARD = 2
    DONE = 3
    REJECTED = 4
    CANCELLED = 5
    OFFERED = 6  # offered to a human driver, waiting for the answer
    REDISPATCHED = 7  # the rider left a stopped vehicle on the way; the ride goes on as a new request

    @property
    def label(self) -> str:
        return self.name.lower()


Status = RequestStatus

#: name -> dtype
COLUMNS: dict[str, Any] = {
    "ext": np.int64,
    "time": np.int64,
    "o": np.int32,
    "d": np.int32,
    "pax": np.int16,
    "deadline": np.int64,
    "latest_dropoff": np.int64,
    "shareable": np.bool_,
    "operator": np.int16,
    "status": np.int8,
    "vehicle": np.int32,
    "decided": np.bool_,
    "declines": np.int16,  # offers declined or lapsed
    "origin": np.int64,  # the request (external id) whose ride this one continues (RidersDisembarked), else -1
}
#: Columns a snapshot may lack (taken before they existed), with the value they had then.
_DEFAULTS: dict[str, int] = {"origin": -1}


class RequestTable:
    """Columns with amortised growth; ``open`` holds the open rows in arrival (row) order."""

    def __init__(self) -> None:
        self.n = 0
        self.cols: dict[str, NDArray[Any]] = {k: np.empty(1024, dtype=d) for k, d in COLUMNS.items()}
        self.index: dict[int, int] = {}
        self.open: I64 = np.empty(0, np.int64)

    def row(self, ext: int) -> int:
        r = self.index.get(ext)
        if r is None:
            raise DispatchError(f"unknown request id {ext}")
        return r

    def append(self, values: dict[str, NDArray[Any]]) -> I64:
        k = int(values["ext"].size)
        need = self.n + k
        if need > self.cols["ext"].size:
            size = max(need, 2 * self.cols["ext"].size)
            for name, a in self.cols.items():
                grown = np.empty(size, dtype=a.dtype)
                grown[: self.n] = a[: self.n]
                self.cols[name] = grown
        sl = slice(self.n, need)
        for name, a in self.cols.items():
            a[sl] = values[name]
        rows = np.arange(self.n, need, dtype=np.int64)
        self.index.update(zip(values["ext"].tolist(), rows.tolist(), strict=True))
        self.n = need
        return rows

    def expiring(self, now: int) -> I64:
        """Open rows whose deadline is before ``now`` (nothing is changed)."""
        if self.open.size == 0:
            return self.open
        return self.open[self.cols["deadline"][self.open] < now]

    def close(self, rows: I64, status: int) -> None:
        """Set ``status`` on rows and drop them from the open set."""
        self.cols["status"][rows] = status
        self.open = self.open[~np.isin(self.open, rows)]

    def reopen(self, row: int) -> None:
        self.cols["status"][row] = Status.OPEN
        self.cols["vehicle"][row] = -1
        pos = int(np.searchsorted(self.open, row))
        self.open = np.insert(self.open, pos, row)

    def to_state(self) -> dict[str, Any]:
        return {"n": self.n, "cols": {k: a[: self.n].copy() for k, a in self.cols.items()}, "open": self.open.copy()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RequestTable:
        t = cls()
        t.n = int(state["n"])
        size = max(1024, t.n)
        for name, dtype in COLUMNS.items():
            a = np.empty(size, dtype=dtype)
            a[: t.n] = state["cols"][name] if name in state["cols"] else _DEFAULTS[name]
            t.cols[name] = a
        t.index = {int(x): i for i, x in enumerate(t.cols["ext"][: t.n].tolist())}
        t.open = np.asarray(state["open"], dtype=np.int64).copy()
        return t

"""What the run's outputs say, computed straight from the Parquet files (independently of the adapter).

The browser tests compare what the page shows with these figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from numpy.typing import NDArray

#: MDS state -> the page's category (``docs/dashboard.md``).
STATE_CATEGORY = {
    "available": "idle",
    "reserved": "to_pickup",
    "stopped": "at_stop",
    "on_trip": "with_riders",
    "non_operational": "off_service",
}


@dataclass(frozen=True)
class Fleet:
    """Vehicle events of a run, sorted by vehicle then time."""

    vehicle: NDArray[np.int64]
    time_s: NDArray[np.int64]
    state: list[str]
    node: NDArray[np.int64]

    @classmethod
    def read(cls, run: Path) -> Fleet:
        t = pq.read_table(run / "vehicle_events.parquet").to_pydict()
        order = np.lexsort((np.arange(len(t["time_s"])), t["time_s"], t["vehicle_id"]))
        return cls(
            vehicle=np.asarray(t["vehicle_id"])[order],
            time_s=np.asarray(t["time_s"])[order],
            state=[str(t["vehicle_state"][i]) for i in order],
            node=np.asarray(t["node"])[order],
        )

    def at(self, t: float) -> dict[str, int]:
        """Vehicles by category at time ``t`` (each vehicle's last event at or before ``t``)."""
        counts = dict.fromkeys((*STATE_CATEGORY.values(), "repositioning"), 0)
        for v in np.unique(self.vehicle):
            rows = np.flatnonzero(self.vehicle == v)
            upto = rows[self.time_s[rows] <= t]
            if upto.size == 0:
                continue
            i = int(upto[-1])
            category = STATE_CATEGORY[self.state[i]]
            moving = i + 1 < self.vehicle.size and self.vehicle[i + 1] == v and self.node[i + 1] != self.node[i]
            if category == "idle" and moving:
                category = "repositioning"
            counts[category] += 1
        return counts


@dataclass(frozen=True)
class Requests:
    """The requests of a run with the instant each stops being open."""

    time_s: NDArray[np.int64]
    close_s: NDArray[np.int64]
    served: NDArray[np.bool_]
    pickup_s: NDArray[np.int64]
    wait_s: NDArray[np.int64]
    vehicle: NDArray[np.int64]
    request_id: NDArray[np.int64]

    @classmethod
    def read(cls, run: Path, max_wait_s: int) -> Requests:
        t = pq.read_table(run / "requests.parquet").to_pydict()
        outcome = np.asarray(t["outcome"])
        time_s = np.asarray(t["time_s"])
        pickup = np.asarray([-1 if p is None else p for p in t["pickup_s"]])
        served = outcome == "served"
        # Served: open until the vehicle reaches the pickup; cancelled: until the max wait; rejected: decided at once.
        close = np.where(served, pickup, np.where(outcome == "cancelled", time_s + max_wait_s, time_s))
        return cls(
            time_s=time_s,
            close_s=close,
            served=served,
            pickup_s=pickup,
            wait_s=np.asarray([-1 if w is None else w for w in t["wait_s"]]),
            vehicle=np.asarray([-1 if v is None else v for v in t["vehicle"]]),
            request_id=np.asarray(t["request_id"]),
        )

    def open_at(self, t: float) -> int:
        return int(((self.time_s <= t) & (self.close_s > t)).sum())

    def served_pct_at(self, t: float) -> float | None:
        closed = int((self.close_s <= t).sum())
        served = int((self.served & (self.pickup_s <= t)).sum())
        return None if closed == 0 else 100 * served / closed

    def served_pct_last_hour(self, t: float) -> float | None:
        """Requests picked up in the last hour as a share of the requests closed in it."""
        closed = int(((self.close_s <= t) & (self.close_s > t - 3600)).sum())
        served = int((self.served & (self.pickup_s <= t) & (self.pickup_s > t - 3600)).sum())
        return None if closed == 0 else 100 * served / closed

    def mean_wait_last_hour(self, t: float) -> float | None:
        sel = self.served & (self.pickup_s <= t) & (self.pickup_s > t - 3600)
        return float(self.wait_s[sel].mean()) if sel.any() else None

"""Estimate a scenario's memory before anything is built, and refuse one that cannot fit.

A fleet of ten million vehicles in a 500-request scenario used to run for minutes, past 1.5 GB, before anyone
could tell it would not end well. :func:`check_footprint` adds up what a run holds at its peak, from the scenario
alone (plus the road network's size), and raises a :class:`~robotaxi.errors.ScenarioError` quoting the estimate
when it exceeds the memory available to the process.

The constants are measured, rounded up (``robotaxi simulate -q`` on the embedded Helsinki network, 500 requests,
2026-12-02, peak RSS): the interpreter with NumPy, SciPy, Arrow and the network readers loaded takes about 240 MB;
each vehicle about 1,060 bytes over a whole run with the dispatch core v2 (fleet arrays, engine state and stop
plans, events, outputs: 243 MB with 1,000 vehicles, 562 MB with 300,000, 1.30 GB with 1,000,000; the first engine
needed 250-340 bytes); each request about 1 KB (the flagship: 446k requests in 0.89 GB with a 141 MB routing
table). The
routing table is exact: up to 20,000 nodes the router keeps ``n**2`` travel times (2 bytes), distances
(4 bytes), up to 8,192 nodes predecessors (2 bytes), and with a speed profile that has road classes the
major-road seconds (2 bytes); building it peaks at about twice that.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import NetworkError, ScenarioError
from ..network import RoadNetwork, SpeedProfile, load_network
from .scenario import Scenario

__all__ = ["Footprint", "available_memory", "check_footprint", "estimate_footprint"]

BASE_BYTES = 300_000_000
BYTES_PER_VEHICLE = 1_500
BYTES_PER_REQUEST = 1_000
BYTES_PER_NODE = 200  # coordinates, CSR rows, KD-tree; edges are counted with their nodes
TABLE_MAX_NODES = 20_000  # Router's default: above it, rows are computed on demand
PRED_TABLE_MAX_NODES = 8_192


@dataclass(frozen=True, slots=True)
class Footprint:
    """Estimated peak memory of a scenario's run, in bytes, by part."""

    nodes: int
    vehicles: int
    requests: int | None
    base: int
    network: int
    table: int
    fleet: int
    demand: int

    @property
    def total(self) -> int:
        """All parts together."""
        return self.base + self.network + self.table + self.fleet + self.demand

    def describe(self) -> str:
        """One line: the total and its largest parts."""
        req = f"{self.requests:,} requests" if self.requests is not None else "requests not known before reading"
        return (
            f"about {_gb(self.total)} (routing table {_gb(self.table)} for {self.nodes:,} nodes, "
            f"fleet {_gb(self.fleet)} for {self.vehicles:,} vehicles, demand {_gb(self.demand)} for {req}, "
            f"base {_gb(self.base + self.network)})"
        )


def _gb(n: int) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e8 else f"{n / 1e6:,.0f} MB"


def table_bytes(nodes: int, *, road_classes: bool = False) -> int:
    """Peak bytes of building the router's full travel-time table for ``nodes`` nodes (0 above the limit).

    ``road_classes``: the speed profile has major-road factors, so the router also keeps major-road seconds.
    """
    if nodes > TABLE_MAX_NODES:
        return 0
    per_pair = 2 + 4 + (2 if nodes <= PRED_TABLE_MAX_NODES else 0) + (2 if road_classes else 0)
    return 2 * per_pair * nodes * nodes


def expected_requests(scenario: Scenario) -> int | None:
    """Requests the demand source will produce, when that is known without reading it; else ``None``.

    Synthetic demand says so itself; a requests Parquet file says so in its footer. Record and count
    tables are streamed with bounded memory and only the service day is kept, so their size is not a guide.
    """
    spec = scenario.demand
    if spec.kind == "synthetic":
        n = spec.options.get("n_requests")
        if isinstance(n, int):
            return n
        rate = spec.options.get("rate_per_hour")
        if isinstance(rate, int | float):
            return int(24 * float(rate) * 1.1) + 100  # Poisson around 24 * rate: a generous upper end
        return None
    if spec.kind == "requests" and spec.path is not None:
        try:
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(spec.path).metadata.num_rows)
        except (OSError, ValueError):
            return None  # the loader reports an unreadable file with its own message
    return None


def estimate_footprint(scenario: Scenario, network: RoadNetwork | None = None) -> Footprint:
    """Estimate the peak memory of running ``scenario``.

    Parameters
    ----------
    scenario
        The scenario.
    network
        Its road network, if already loaded; otherwise it is loaded (the one input read in full, since the
        routing table grows with the square of its nodes).
    """
    if network is None:
        try:
            network = load_network(None if scenario.network == "helsinki" else scenario.network)
        except NetworkError as e:
            raise ScenarioError(f"network: {e}") from e
    nodes = network.n_nodes
    requests = expected_requests(scenario)
    classes = False
    if scenario.speed_profile is not None:
        try:
            classes = SpeedProfile.from_file(scenario.speed_profile).has_classes
        except NetworkError as e:
            raise ScenarioError(f"network.speed_profile: {e}") from e
    return Footprint(
        nodes=nodes,
        vehicles=scenario.n_vehicles,
        requests=requests,
        base=BASE_BYTES,
        network=BYTES_PER_NODE * (nodes + network.n_edges),
        table=table_bytes(nodes, road_classes=classes),
        fleet=BYTES_PER_VEHICLE * scenario.n_vehicles,
        demand=BYTES_PER_REQUEST * (requests or 0),
    )


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def available_memory() -> int | None:
    """Bytes of memory this process may still use: the least of the kernel's ``MemAvailable`` and the cgroup's
    remaining limit; ``None`` where neither can be read."""
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    cg = Path("/sys/fs/cgroup")
    limit, used = _read_int(cg / "memory.max"), _read_int(cg / "memory.current")
    if limit is not None:
        found.append(limit - (used or 0))
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return None
    return max(0, min(found))


def check_footprint(
    scenario: Scenario, *, available: int | None = None, network: RoadNetwork | None = None
) -> Footprint:
    """Estimate ``scenario``'s memory and refuse it if it exceeds what is available.

    Parameters
    ----------
    scenario
        The scenario about to run.
    available
        Bytes available; by default :func:`available_memory` (no check when that cannot be read).
    network
        Its road network, if already loaded.

    Raises
    ------
    ScenarioError
        With the estimate, when the run would not fit.
    """
    # The fleet alone can settle it without reading the network (ten million vehicles need no table to refuse).
    avail = available_memory() if available is None else available
    if avail is not None and BASE_BYTES + BYTES_PER_VEHICLE * scenario.n_vehicles > avail:
        fleet = BYTES_PER_VEHICLE * scenario.n_vehicles
        key = "fleet.vehicles" if scenario.fleet is not None else "operators' vehicles"
        raise ScenarioError(
            f"{key} = {scenario.n_vehicles:,} needs about {_gb(BASE_BYTES + fleet)} of memory "
            f"(fleet {_gb(fleet)}) but {_gb(avail)} is available",
            hint="use fewer vehicles or a machine with more memory",
        )
    fp = estimate_footprint(scenario, network)
    if avail is not None and fp.total > avail:
        raise ScenarioError(
            f"this scenario needs {fp.describe()} of memory, but {_gb(avail)} is available",
            hint="use fewer vehicles, less demand or a smaller network, or a machine with more memory",
        )
    return fp

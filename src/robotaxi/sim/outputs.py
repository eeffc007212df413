"""Writing a run: ``requests.parquet``, ``vehicle_events.parquet``, ``legs.parquet``, ``kpis.json``, ``report.html``.

Everything is written into a fresh sibling folder first and moved into place at the end, so an interrupted or
failed run never leaves files that could be mistaken for results. An existing folder is replaced only if it is empty
or holds nothing but the outputs of a previous run: ``-o .`` or ``-o ~/notes`` must never delete the user's files.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from ..dispatch.plans import KIND_NAMES
from ..errors import SimulationError
from ..fleet import EventType, VehicleState
from ..network import RoadNetwork
from .kpis import Kpis
from .pricing import MarketRun
from .result import REASON_LABELS, Outcome, SimResult

#: The files a run writes; a folder holding anything else is not a previous run and is never replaced.
#: ``safety_events.parquet`` and ``safety_kpis.json`` come from ``[operators.safety]`` (or ``robotaxi safety simulate``
#: writes the events), the ``safety`` folder from ``robotaxi safety report``.
OUTPUT_FILES = frozenset(
    (
        "requests.parquet",
        "vehicle_events.parquet",
        "legs.parquet",
        "kpis.json",
        "report.html",
        "scenario.toml",
        "fares.parquet",
        "market.json",
        "safety_events.parquet",
        "safety_kpis.json",
        "safety_policy.json",
        "safety",
    )
)


def _nullable(a: NDArray[Any]) -> pa.Array:
    """-1 sentinels become nulls."""
    return pa.array(a, mask=a < 0)


def _labels(codes: NDArray[Any], names: dict[int, str]) -> pa.DictionaryArray:
    keys = sorted(names)
    index = np.searchsorted(keys, codes.astype(np.int64))
    return pa.DictionaryArray.from_arrays(pa.array(index.astype(np.int8)), pa.array([names[k] for k in keys]))


def requests_table(result: SimResult) -> pa.Table:
    """One row per request: what was asked, what happened, when, by which vehicle, how far."""
    r, o = result.requests, result.outcomes
    served = o.outcome == Outcome.SERVED
    ops = {i: op.name for i, op in enumerate(result.fleet.operators)}
    operator = result.operator
    market: dict[str, Any] = {}
    if result.offers is not None and result.declines is not None:
        market = {"offers": result.offers, "declines": result.declines}
    return pa.table(
        {
            "request_id": r.request_id,
            "time_s": r.time_s,
            "o_node": r.o_node,
            "d_node": r.d_node,
            "o_lon": r.o_lon,
            "o_lat": r.o_lat,
            "d_lon": r.d_lon,
            "d_lat": r.d_lat,
            "passengers": r.passengers,
            "outcome": _labels(o.outcome, {int(x): x.label for x in Outcome}),
            "reason": _labels(o.reason, REASON_LABELS),
            "vehicle": _nullable(o.vehicle),
            "assigned_s": _nullable(o.assigned_s),
            "pickup_s": _nullable(np.where(served, o.pickup_s, -1)),
            "board_s": _nullable(np.where(served, o.board_s, -1)),
            "dropoff_s": _nullable(np.where(served, o.dropoff_s, -1)),
            "wait_s": _nullable(result.wait_s),
            "ride_s": _nullable(result.ride_s),
            "pickup_m": _nullable(o.pickup_m),
            "ride_m": _nullable(o.ride_m),
            "direct_m": o.direct_m,
            "direct_s": o.direct_s,
            "operator": _operator_labels(operator, ops),
            **market,
        }
    )


def _operator_labels(operator: NDArray[Any], names: dict[int, str]) -> pa.DictionaryArray:
    """Operator names by index, null for -1 (an unserved request)."""
    index = pa.array(np.maximum(operator, 0).astype(np.int16), mask=operator < 0)
    return pa.DictionaryArray.from_arrays(index, pa.array([names[k] for k in sorted(names)]))


def legs_table(result: SimResult) -> pa.Table:
    """One row per leg driven: vehicle, from and to node, start and end (s since day start), riders, purpose, m."""
    g = result.legs
    return pa.table(
        {
            "vehicle_id": g.vehicle,
            "from_node": g.from_node,
            "to_node": g.to_node,
            "start_s": g.start_s,
            "end_s": g.end_s,
            "load": g.load,
            "kind": _labels(g.kind, dict(enumerate(KIND_NAMES))),
            "length_m": g.length_m,
            "operator": _labels(
                result.fleet.operator[g.vehicle], dict(enumerate(o.name for o in result.fleet.operators))
            ),
        }
    )


def vehicle_events_table(result: SimResult, network: RoadNetwork) -> pa.Table:
    """MDS-shaped vehicle events: provider, vehicle, timestamp, event type, resulting state, location, trip."""
    ev, req = result.events, result.requests
    day = req.day_start or dt.datetime(1970, 1, 1)
    epoch_ms = int(day.replace(tzinfo=dt.UTC).timestamp() * 1000)
    trip = np.where(ev.request >= 0, req.request_id[np.maximum(ev.request, 0)], -1)
    ops = result.fleet.operators
    return pa.table(
        {
            "provider": _labels(result.fleet.operator[ev.vehicle], {i: op.name for i, op in enumerate(ops)}),
            "vehicle_id": ev.vehicle,
            "time_s": ev.time_s,
            # Local wall-clock time (naive, like the requests' day_start), in milliseconds as MDS timestamps are.
            "timestamp": pa.array(epoch_ms + ev.time_s * 1000, type=pa.timestamp("ms")),
            "event_type": _labels(ev.event, {int(e): e.mds for e in EventType}),
            "vehicle_state": _labels(ev.state, {int(s): s.mds for s in VehicleState}),
            "node": ev.node,
            "lon": network.lon[ev.node],
            "lat": network.lat[ev.node],
            "trip_id": _nullable(trip),
        }
    )


def write_outputs(
    result: SimResult,
    network: RoadNetwork,
    folder: Path,
    kpis: Kpis,
    *,
    report_html: str | None = None,
    scenario_text: str | None = None,
    market: MarketRun | None = None,
    safety_policy: dict[str, Any] | None = None,
) -> Path:
    """Write all outputs to ``folder`` (replacing a previous run there) and return it.

    With ``safety_policy`` (``[operators.safety_policy]``), also ``safety_policy.json``: per operator, the zones of
    the previous run, the ones taken out of its area and why.

    With ``market`` (a priced run), also ``fares.parquet`` (one row per served request) and ``market.json`` (the
    per-operator accounts).

    Raises
    ------
    SimulationError
        If the folder cannot be written, or it exists and holds anything but a previous run's outputs.
    """
    folder = Path(folder)
    check_output_folder(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; results are meant to be shared
    except OSError as e:
        raise SimulationError(f"cannot create the output folder {folder}: {e}") from e
    try:
        pq.write_table(requests_table(result), tmp / "requests.parquet", compression="zstd")
        pq.write_table(vehicle_events_table(result, network), tmp / "vehicle_events.parquet", compression="zstd")
        pq.write_table(legs_table(result), tmp / "legs.parquet", compression="zstd")
        (tmp / "kpis.json").write_text(kpis.to_json(), encoding="utf-8")
        if report_html is not None:
            (tmp / "report.html").write_text(report_html, encoding="utf-8")
        if scenario_text is not None:
            (tmp / "scenario.toml").write_text(scenario_text, encoding="utf-8")
        if result.safety is not None:  # disengagements drawn inside the run ([operators.safety])
            from ..safety.insim import run_safety_kpis
            from ..safety.runs import write_events

            write_events(tmp, result.safety.events, result.safety.effects())
            (tmp / "safety_kpis.json").write_text(
                json.dumps(run_safety_kpis(result), indent=2) + "\n", encoding="utf-8"
            )
        if safety_policy is not None:
            (tmp / "safety_policy.json").write_text(json.dumps(safety_policy, indent=2) + "\n", encoding="utf-8")
        if market is not None:
            names = tuple(op.name for op in result.fleet.operators)
            pq.write_table(market.fares_table(result, names), tmp / "fares.parquet", compression="zstd")
            (tmp / "market.json").write_text(market.accounts.to_json(), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SimulationError(f"cannot write outputs to {folder}: {e}") from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def check_output_folder(folder: Path) -> None:
    """Refuse to replace a folder that is not a previous run's output (before anything is computed or written)."""
    if not folder.exists():
        return
    target = folder.resolve()
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise SimulationError(
            f"output folder {folder} is the working directory or contains it",
            hint="name a fresh folder for the results, e.g. -o out/run1",
        )
    if not target.is_dir():
        raise SimulationError(f"output folder {folder} exists and is not a folder")
    foreign = sorted(p.name for p in target.iterdir() if p.name not in OUTPUT_FILES)
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise SimulationError(
            f"output folder {folder} holds files that are not simulation outputs ({shown}); not replacing it",
            hint="name a fresh folder, or delete this one yourself",
        )

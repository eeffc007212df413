"""The sweep's table, ``sweep.parquet``: one row per run.

Columns, in order: ``run`` (its folder under ``runs/``), ``index``, ``status`` (``ok`` or ``failed``), one column
per override path (``fleet.vehicles``, ``dispatch.policy``..., null where a run does not set it), ``seed`` (the
run's seed, set or not), every KPI of :class:`robotaxi.sim.Kpis` (tables such as ``rejected_by_reason`` spread
over one column per entry, ``rejected_by_reason.no_vehicle_available``; hourly series as lists), ``wall_s`` (the
run's wall time in its worker), ``simulate_s`` (its event loop) and ``error``. A failed run has nulls for its KPIs.
``vehicle_km_total`` is the run's simulated vehicle-km.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .runner import RunRecord
from .spec import SweepSpec


def rows(spec: SweepSpec, records: Sequence[RunRecord]) -> tuple[list[str], list[dict[str, Any]]]:
    """The table as column names and one dict per run."""
    paths = list(dict.fromkeys(p for r in records for p, _ in r.overrides))
    flat_kpis = [_flatten_kpis(r.kpis) if r.kpis else {} for r in records]
    kpi_cols = list(dict.fromkeys(k for f in flat_kpis for k in f))
    # Counts by reason: a run without any of a reason has 0, not null (it had none of them).
    counted = [c for c in kpi_cols if c.split(".")[0] in ("rejected_by_reason", "cancelled_by_reason")]
    columns = ["run", "index", "status", *[p for p in paths if p != "seed"], "seed", *kpi_cols]
    columns += ["wall_s", "simulate_s", "error"]
    out = []
    for record, kpis in zip(records, flat_kpis, strict=True):
        row: dict[str, Any] = {"run": record.name, "index": record.index, "status": record.status}
        row.update({p: v for p, v in record.overrides})
        row["seed"] = record.seed
        row.update(kpis)
        if record.ok:
            row.update({c: 0 for c in counted if c not in kpis})
        row.update(wall_s=record.wall_s, simulate_s=record.simulate_s, error=record.error)
        out.append(row)
    return columns, out


def _flatten_kpis(kpis: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in kpis.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in sorted(value.items())})
        else:
            flat[key] = value
    return flat


def write_table(spec: SweepSpec, records: Sequence[RunRecord], path: Path) -> Path:
    """Write the table as Parquet (atomically) and return its path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns, data = rows(spec, records)
    arrays = {}
    for col in columns:
        values = [row.get(col) for row in data]
        try:
            arrays[col] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # Values of mixed types (``time.end = [36000, "12:00"]``): kept as their JSON text.
            arrays[col] = pa.array([None if v is None else json.dumps(v, default=str) for v in values])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(pa.table(arrays), tmp)
    tmp.replace(path)
    return path

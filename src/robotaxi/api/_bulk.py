"""Statements over many rows at once, in the form each database runs fastest (internal to the engine thread).

A telemetry batch touches 1,000 rows of two tables and checks 1,000 ids; measured under ``bench_live.py`` on
PostgreSQL (psycopg 3), SQLAlchemy's generic forms cost the engine thread about 300 ms per batch: an ``IN`` list of
1,000 bound values is rendered, adapted and planned anew at every call (71 ms for the ownership check alone), a
1,000-row ``executemany`` UPDATE is 1,000 statements, and the multi-row INSERT binds 8,000 values. On PostgreSQL the
same work is one statement each with **one array per column**: ``= ANY(:array)`` for the lookups,
``INSERT ... SELECT FROM unnest(...)`` and ``UPDATE ... FROM unnest(...)`` for the writes (constant statement text,
so psycopg prepares it once). SQLite keeps the generic forms (it has no arrays; in-process, its calls are cheap).

Every function here has the same effect on both databases; ``tests/api`` runs on both.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ..store import tables

#: The ``unnest`` column types of the telemetry insert and the position update (PostgreSQL names).
_TELEMETRY_COLUMNS = (
    ("telemetry_id", "varchar"),
    ("device_id", "varchar"),
    ("timestamp_ms", "bigint"),
    ("lon", "float8"),
    ("lat", "float8"),
    ("battery_percent", "integer"),
    ("trip_ids", "text"),
    ("received_ms", "bigint"),
)
_POSITION_COLUMNS = (
    ("device_id", "varchar"),
    ("lon", "float8"),
    ("lat", "float8"),
    ("node", "integer"),
    ("battery_percent", "integer"),
    ("last_telemetry_id", "varchar"),
    ("last_telemetry_ms", "bigint"),
)


def is_postgresql(conn: sa.Connection) -> bool:
    return conn.dialect.name == "postgresql"


def one_of(conn: sa.Connection, column: sa.ColumnElement[Any], values: Collection[Any]) -> sa.ColumnElement[bool]:
    """``column IN values``: on PostgreSQL ``column = ANY(:array)`` (one bound value, whatever the count)."""
    if is_postgresql(conn):
        array = sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type))
        return column == sa.any_(array)
    return column.in_(values)


def _unnest(columns: Sequence[tuple[str, str]]) -> str:
    args = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in columns)
    names = ", ".join(name for name, _ in columns)
    return f"unnest({args}) AS u({names})"


def insert_telemetry(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert telemetry rows (dicts with every column of ``telemetry``; ``trip_ids`` a list or None)."""
    if not rows:
        return
    if not is_postgresql(conn):
        conn.execute(tables.telemetry.insert(), rows)
        return
    names = [name for name, _ in _TELEMETRY_COLUMNS]
    cols = ", ".join(names)
    select = ", ".join("CAST(u.trip_ids AS json)" if n == "trip_ids" else f"u.{n}" for n in names)
    params = {n: [r[n] for r in rows] for n in names}
    params["trip_ids"] = [None if r["trip_ids"] is None else json.dumps(r["trip_ids"]) for r in rows]
    conn.execute(sa.text(f"INSERT INTO telemetry ({cols}) SELECT {select} FROM {_unnest(_TELEMETRY_COLUMNS)}"), params)


def update_positions(conn: sa.Connection, rows: list[dict[str, Any]], updated_ms: int) -> None:
    """Set each vehicle's last telemetry (dicts with the keys of ``_POSITION_COLUMNS``; one row per vehicle)."""
    if not rows:
        return
    names = [name for name, _ in _POSITION_COLUMNS]
    if not is_postgresql(conn):
        v = tables.vehicles
        b = sa.bindparam
        stmt = (
            v.update()
            .where(v.c.device_id == b("b_device_id"))
            .values({**{n: b(f"b_{n}") for n in names if n != "device_id"}, "updated_ms": updated_ms})
        )
        conn.execute(stmt, [{f"b_{n}": r[n] for n in names} for r in rows])
        return
    sets = ", ".join(f"{n} = u.{n}" for n in names if n != "device_id")
    params: dict[str, Any] = {n: [r[n] for r in rows] for n in names}
    params["updated_ms"] = updated_ms
    conn.execute(
        sa.text(
            f"UPDATE vehicles AS v SET {sets}, updated_ms = :updated_ms FROM {_unnest(_POSITION_COLUMNS)} "
            "WHERE v.device_id = u.device_id"
        ),
        params,
    )

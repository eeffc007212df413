"""Statements over many rows at once, in the form each database runs fastest (internal to the engine thread).

A telemetry batch touches 1,000 rows of two tables and checks 1,000 ids; measured under ``bench_live.py`` on
PostgreSQL (psycopg 3), SQLAlchemy's generic forms cost the engine thread about 300 ms per batch: an ``IN`` list of
1,000 bound values is rendered, adapted and planned anew at every call (71 ms for the ownership check alone), a
1,000-row ``executemany`` UPDATE is 1,000 statements, and the multi-row INSERT binds 8,000 values. On PostgreSQL the
same work is one statement each with **one JSON document** as its only variable part: ``IN (SELECT
json_array_elements_text(:ids))`` for the lookups (a semi-join, see :func:`one_of`), ``INSERT ... SELECT FROM
json_to_recordset(...)`` and ``UPDATE ... FROM json_to_recordset(...)`` for the writes. The statement text never
changes (psycopg prepares it once), and ``json.dumps`` (C) of the rows costs the engine thread a third of what
psycopg's adaptation of one array per column did (measured: 10-17 ms against 29-36 ms for 8 columns of 1,000).
JSON keeps every value exactly: floats are written with their shortest round-trip repr and read back as
``float8``. SQLite keeps the generic forms (in-process, its calls are cheap), except that the telemetry insert and
the position update go to the driver's ``executemany`` with plain tuples, without SQLAlchemy's per-row parameter
processing.

Every function here has the same effect on both databases; ``tests/api`` runs on both.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

#: The record types of the telemetry insert and the position update (PostgreSQL names).
_TELEMETRY_COLUMNS = (
    ("telemetry_id", "varchar"),
    ("device_id", "varchar"),
    ("timestamp_ms", "bigint"),
    ("lon", "float8"),
    ("lat", "float8"),
    ("battery_percent", "integer"),
    ("trip_ids", "json"),
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


_POSITION_NAMES = tuple(name for name, _ in _POSITION_COLUMNS)
#: The telemetry columns SQLite takes as they are (``trip_ids``, JSON, goes last as text).
_TELEMETRY_PLAIN = tuple(name for name, _ in _TELEMETRY_COLUMNS if name != "trip_ids")
#: SQLite's statements for the driver's ``executemany`` (qmark parameters).
_SQLITE_INSERT_TELEMETRY = "INSERT INTO telemetry ({}, trip_ids) VALUES ({}?)".format(
    ", ".join(_TELEMETRY_PLAIN), "?, " * len(_TELEMETRY_PLAIN)
)
_SQLITE_UPDATE_POSITIONS = (
    f"UPDATE vehicles SET {', '.join(f'{n} = ?' for n in _POSITION_NAMES[1:])}, updated_ms = ? WHERE device_id = ?"
)


def is_postgresql(conn: sa.Connection) -> bool:
    return conn.dialect.name == "postgresql"


def one_of(conn: sa.Connection, column: sa.ColumnElement[Any], values: Collection[Any]) -> sa.ColumnElement[bool]:
    """``column IN values``; on PostgreSQL ``column IN (SELECT json_array_elements_text(:json))`` (one bound value
    whatever the count). For text columns only on PostgreSQL.

    A semi-join, not ``column = ANY(ARRAY(...))``: psycopg prepares a statement run often and PostgreSQL keeps its
    generic plan, which for the ANY form, planned while ``vehicles`` was small or never analysed (autovacuum off),
    was a sequential scan testing every row against the whole array: 1,000 ids x 5,000 vehicles took 75-125 ms
    under the load benchmark, against 3-6 ms for an index or hash semi-join (``auto_explain``, RESULTS.md). A hash
    semi-join stays linear whatever the statistics say."""
    if is_postgresql(conn):
        doc = sa.bindparam(None, json.dumps(list(values)), type_=sa.Text)
        return column.in_(sa.select(sa.func.json_array_elements_text(sa.cast(doc, postgresql.JSON))))
    return column.in_(values)


def _recordset(columns: Sequence[tuple[str, str]]) -> str:
    names = ", ".join(f"{name} {kind}" for name, kind in columns)
    return f"json_to_recordset(CAST(:rows AS json)) AS u({names})"


def insert_telemetry(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert telemetry rows (dicts with every column of ``telemetry``; ``trip_ids`` a list or None)."""
    if not rows:
        return
    if not is_postgresql(conn):
        conn.exec_driver_sql(
            _SQLITE_INSERT_TELEMETRY,
            [(*(r[n] for n in _TELEMETRY_PLAIN), _json_or_null(r["trip_ids"])) for r in rows],
        )
        return
    cols = ", ".join(name for name, _ in _TELEMETRY_COLUMNS)
    select = ", ".join(f"u.{name}" for name, _ in _TELEMETRY_COLUMNS)
    stmt = f"INSERT INTO telemetry ({cols}) SELECT {select} FROM {_recordset(_TELEMETRY_COLUMNS)}"
    conn.execute(sa.text(stmt), {"rows": json.dumps(rows)})


def update_positions(conn: sa.Connection, rows: list[dict[str, Any]], updated_ms: int) -> None:
    """Set each vehicle's last telemetry (dicts with the keys of ``_POSITION_COLUMNS``; one row per vehicle)."""
    if not rows:
        return
    if not is_postgresql(conn):
        conn.exec_driver_sql(
            _SQLITE_UPDATE_POSITIONS,
            [(*(r[n] for n in _POSITION_NAMES[1:]), updated_ms, r["device_id"]) for r in rows],
        )
        return
    sets = ", ".join(f"{n} = u.{n}" for n in _POSITION_NAMES if n != "device_id")
    conn.execute(
        sa.text(
            f"UPDATE vehicles AS v SET {sets}, updated_ms = :updated_ms FROM {_recordset(_POSITION_COLUMNS)} "
            "WHERE v.device_id = u.device_id"
        ),
        {"rows": json.dumps(rows), "updated_ms": updated_ms},
    )


def _json_or_null(value: Any) -> str | None:
    """A JSON column's value as SQLite stores it: the document's text, or NULL for None (as PostgreSQL's
    ``json_to_recordset`` gives for a JSON null)."""
    return None if value is None else json.dumps(value)

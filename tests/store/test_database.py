"""The migrations create exactly the tables of ``robotaxi.store.tables``, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from robotaxi.errors import StoreError
from robotaxi.store import Database, normalise_url, tables

pytestmark = pytest.mark.integration


def test_migrations_match_the_tables(database_url: str) -> None:
    db = Database.open(database_url)
    try:
        assert db.revision() == "0007"
        with db.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), tables.metadata)
        assert diff == []
        db.migrate()  # again: nothing to do
        assert db.revision() == "0007"
    finally:
        db.close()


def test_unique_idempotency_key_per_rider(database_url: str) -> None:
    db = Database.open(database_url)
    row: dict[str, Any] = {
        "request_id": 1,
        "trip_id": "00000000-0000-4000-8000-000000000001",
        "rider": "alice",
        "idempotency_key": "k1",
        "body_sha256": "0" * 64,
        "origin_lon": 10.0,
        "origin_lat": 50.0,
        "destination_lon": 10.01,
        "destination_lat": 50.0,
        "o_node": 0,
        "d_node": 1,
        "passengers": 1,
        "max_wait_s": 600,
        "status": "open",
        "requested_ms": 1,
        "direct_s": 20,
        "direct_m": 200,
        "updated_ms": 1,
    }
    try:
        with db.begin() as conn:
            conn.execute(tables.ride_requests.insert(), row)
            # another rider may use the same key
            conn.execute(
                tables.ride_requests.insert(),
                {**row, "request_id": 2, "trip_id": row["trip_id"][:-1] + "2", "rider": "bob"},
            )
        with pytest.raises(sa.exc.IntegrityError), db.begin() as conn:
            conn.execute(tables.ride_requests.insert(), {**row, "request_id": 3, "trip_id": row["trip_id"][:-1] + "3"})
        with db.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(tables.ride_requests)).scalar_one() == 2
    finally:
        db.close()


def test_sqlite_file_is_created_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "robotaxi.db"
    db = Database.open(f"sqlite:///{path}")
    try:
        assert path.is_file()
        with db.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == 1  # NORMAL: WAL, no fsync per commit
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    finally:
        db.close()
    db = Database.open(f"sqlite:///{path}", sqlite_synchronous="FULL")
    try:
        with db.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == 2
    finally:
        db.close()
    with pytest.raises(StoreError, match="sqlite_synchronous"):
        Database(f"sqlite:///{path}", sqlite_synchronous="OFF")


def test_urls() -> None:
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("sqlite:///x.db").drivername == "sqlite"
    with pytest.raises(StoreError, match="unsupported database 'mysql'"):
        normalise_url("mysql://u@h/db")
    with pytest.raises(StoreError, match="not a database URL"):
        normalise_url("not a url")


def test_unreachable_postgres_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match=r"cannot open database postgresql\+psycopg://nobody@127.0.0.1:1/x"):
        Database.open("postgresql://nobody@127.0.0.1:1/x")


def _telemetry_indexes(conn: sa.Connection) -> set[tuple[str | None, ...]]:
    return {tuple(ix["column_names"]) for ix in sa.inspect(conn).get_indexes("telemetry")}


def test_vehicles_keep_room_for_position_updates_on_postgresql(database_url: str) -> None:
    """Migration 0007: on PostgreSQL ``vehicles`` leaves half of each page free, so that the position updates of
    telemetry batches stay on their page (HOT) instead of adding index entries; and telemetry is indexed by time
    only (nothing reads it by vehicle)."""
    db = Database.open(database_url)
    try:
        with db.connect() as conn:
            assert _telemetry_indexes(conn) == {("timestamp_ms",)}
            if conn.dialect.name == "postgresql":
                options = conn.execute(
                    sa.text("SELECT reloptions FROM pg_class WHERE oid = 'vehicles'::regclass")
                ).scalar()
                assert options == ["fillfactor=50"]
    finally:
        db.close()


def _alembic(db: Database, verb: str, revision: str) -> None:
    from importlib import resources

    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("robotaxi.store") / "migrations"))
    with db.write_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, verb)(cfg, revision)


def test_upgrade_from_0006_keeps_telemetry_and_downgrades_back(database_url: str) -> None:
    """A database of revision 0006 with telemetry in it upgrades to 0007 (the by-vehicle index dropped, the rows
    kept) and downgrades back (the index restored)."""
    db = Database(database_url)
    try:
        _alembic(db, "upgrade", "0006")
        device = "00000000-0000-4000-8000-00000000000a"
        with db.begin() as conn:
            conn.execute(tables.operators.insert().values(id=1, name="op", provider_id=device, created_ms=0))
            conn.execute(
                tables.vehicles.insert().values(
                    device_id=device, operator_id=1, vehicle_id="V1", vehicle_type="car", propulsion_types=["electric"],
                    capacity=4, state="available", registered_ms=0, node=0, lon=0.0, lat=0.0, plan=[], updated_ms=0,
                )
            )  # fmt: skip
            conn.execute(
                tables.telemetry.insert().values(
                    telemetry_id="00000000-0000-4000-8000-00000000000b", device_id=device, timestamp_ms=5, lon=0.0,
                    lat=0.0, received_ms=5,
                )
            )  # fmt: skip

        def indexes() -> set[tuple[str | None, ...]]:
            with db.connect() as conn:
                return _telemetry_indexes(conn)

        assert indexes() == {("timestamp_ms",), ("device_id", "timestamp_ms")}
        db.migrate()
        assert db.revision() == "0007"
        assert indexes() == {("timestamp_ms",)}
        with db.connect() as conn:
            assert conn.execute(sa.select(tables.telemetry.c.device_id)).scalars().all() == [device]
        _alembic(db, "downgrade", "0006")
        assert indexes() == {("timestamp_ms",), ("device_id", "timestamp_ms")}
        with db.connect() as conn:
            if conn.dialect.name == "postgresql":
                reloptions = "SELECT reloptions FROM pg_class WHERE oid = 'vehicles'::regclass"
                assert conn.execute(sa.text(reloptions)).scalar() is None
    finally:
        db.close()

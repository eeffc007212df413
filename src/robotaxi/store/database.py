"""Opening a database (SQLite file or PostgreSQL URL) and bringing its schema up to date with the migrations.

* ``sqlite:///PATH``: the file (and its directory) is created on first start; the connection runs in WAL mode with
  ``synchronous=NORMAL`` by default (a commit is in the WAL file before it is acknowledged, so it survives the
  process being killed, SIGKILL included; only an operating-system crash or a power cut may lose the last commits,
  which ``synchronous="FULL"`` prevents at the cost of an fsync per commit), foreign keys on, and a busy timeout so
  that readers and the one writer never fail on a lock.
* ``postgresql://...`` (or ``postgresql+psycopg://...``): psycopg 3. A plain ``postgresql://`` URL is read as
  psycopg 3, the driver the platform ships with.

The schema belongs to the Alembic migrations in :mod:`robotaxi.store.migrations`; :meth:`Database.migrate` runs
them to ``head`` (idempotent), so a new file or an empty database is ready after :meth:`Database.open`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ..errors import StoreError

logger = logging.getLogger(__name__)

#: Connections for reads (request threads), and how many more under a burst.
READ_POOL, READ_OVERFLOW = 8, 32
#: Connections for writes (the engine thread, admin changes).
WRITE_POOL = 2
#: Seconds a connection waits for SQLite's write lock before failing.
SQLITE_BUSY_TIMEOUT_S = 30.0


def normalise_url(url: str | sa.URL) -> sa.URL:
    """The URL with its driver made explicit (``postgresql`` -> ``postgresql+psycopg``).

    Raises
    ------
    StoreError
        If the URL cannot be parsed or names a database other than SQLite or PostgreSQL.
    """
    try:
        u = make_url(url)
    except sa.exc.ArgumentError as e:
        raise StoreError(f"--database: not a database URL: {url!s}") from e
    backend = u.get_backend_name()
    if backend == "postgresql":
        if u.get_driver_name() not in ("psycopg", "psycopg2") or "+" not in u.drivername:
            u = u.set(drivername="postgresql+psycopg")
        return u
    if backend == "sqlite":
        return u
    raise StoreError(f"--database: unsupported database {backend!r} (use sqlite:///PATH or postgresql://...)")


def sqlite_url(path: str | Path) -> str:
    """``sqlite:///`` URL of a file path."""
    return f"sqlite:///{Path(path).resolve()}"


#: SQLite ``synchronous`` levels :class:`Database` accepts (WAL mode: see the module notes).
SQLITE_SYNCHRONOUS = ("NORMAL", "FULL")


def _sqlite_pragmas(synchronous: str) -> Any:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return on_connect


class Database:
    """A connection pool on one database, with the schema migrated to ``head``.

    Use :meth:`open`; then ``with db.begin() as conn:`` for one transaction (committed when the block ends without
    an exception) and ``with db.connect() as conn:`` for reads.
    """

    def __init__(self, url: str | sa.URL, *, sqlite_synchronous: str = "NORMAL") -> None:
        if sqlite_synchronous not in SQLITE_SYNCHRONOUS:
            raise StoreError(f"sqlite_synchronous: one of {', '.join(SQLITE_SYNCHRONOUS)}, got {sqlite_synchronous!r}")
        self.url = normalise_url(url)
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            path = self.url.database
            if path and path != ":memory:":
                Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        # Two pools: readers (many request threads) never starve the writers (the service's engine thread and the
        # occasional admin change), and a reader waiting for a connection never holds one a writer needs.
        self.engine = sa.create_engine(self.url, pool_size=READ_POOL, max_overflow=READ_OVERFLOW, **kwargs)
        self.write_engine = sa.create_engine(self.url, pool_size=WRITE_POOL, max_overflow=0, **kwargs)
        if self.is_sqlite:
            for e in (self.engine, self.write_engine):
                sa.event.listen(e, "connect", _sqlite_pragmas(sqlite_synchronous))

    @classmethod
    def open(cls, url: str | sa.URL, *, sqlite_synchronous: str = "NORMAL") -> Database:
        """Connect and migrate the schema to the latest revision (``sqlite_synchronous``: see the module notes).

        Raises
        ------
        StoreError
            If the database cannot be reached or migrated (the message names the database without its password).
        """
        db = cls(url, sqlite_synchronous=sqlite_synchronous)
        try:
            db.migrate()
        except sa.exc.OperationalError as e:
            db.close()
            raise StoreError(f"cannot open database {db.display_url}: {e.orig or e}") from e
        return db

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def display_url(self) -> str:
        """The URL with any password hidden."""
        return self.url.render_as_string(hide_password=True)

    def migrate(self) -> None:
        """Run the Alembic migrations up to ``head`` (nothing to do when the schema is current)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(resources.files("robotaxi.store") / "migrations"))
        with self.write_engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def revision(self) -> str | None:
        """The schema's current Alembic revision (``None`` before the first migration)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        """One transaction: committed when the block ends, rolled back on an exception."""
        with self.write_engine.begin() as conn:
            yield conn

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        """A connection for reads."""
        with self.engine.connect() as conn:
            yield conn

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        self.write_engine.dispose()

"""Alembic environment: runs the migrations on the connection :func:`robotaxi.store.database.Database.migrate`
passes in ``config.attributes["connection"]`` (or on ``sqlalchemy.url`` when run by the ``alembic`` tool)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from robotaxi.store.tables import metadata

config = context.config


def _run(connection: sa.Connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things; batch mode rebuilds tables there (a no-op on PostgreSQL).
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


given = config.attributes.get("connection")
if isinstance(given, sa.Connection):
    _run(given)
else:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("robotaxi.store migrations: no connection and no sqlalchemy.url given")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()

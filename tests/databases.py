"""The two databases every storage and API test runs against: a SQLite file and PostgreSQL.

PostgreSQL runs on the development and CI machines at 127.0.0.1:5432 with trust authentication
(``$ROBOTAXI_TEST_POSTGRES`` overrides the admin URL). Each test session creates its own database
(``robotaxi_test_<random>``) and drops it at the end; each test gets a fresh schema inside it. When the server cannot
be reached the tests **fail** with a message saying so: they never skip PostgreSQL silently.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

ADMIN_URL = os.environ.get("ROBOTAXI_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


class PostgresSession:
    """A database of its own for one test session; :meth:`schema_url` gives a fresh, empty schema in it."""

    def __init__(self, admin_url: str = ADMIN_URL) -> None:
        self.admin = sa.make_url(admin_url)
        self.name = f"robotaxi_test_{secrets.token_hex(6)}"
        engine = sa.create_engine(self.admin, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        except sa.exc.OperationalError as e:
            pytest.fail(
                f"PostgreSQL is not reachable at {self.admin.render_as_string(hide_password=True)} ({e.orig}): the "
                "storage and API tests run against PostgreSQL as well as SQLite and must not skip it; start it "
                "(127.0.0.1:5432, trust auth) or set ROBOTAXI_TEST_POSTGRES",
                pytrace=False,
            )
        finally:
            engine.dispose()
        self.url = self.admin.set(database=self.name)
        self._engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")

    def schema_url(self) -> str:
        """A new empty schema; the URL sets it as the connection's search path."""
        schema = f"t_{secrets.token_hex(6)}"
        with self._engine.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        return self.url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)

    def drop(self) -> None:
        self._engine.dispose()
        engine = sa.create_engine(self.admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        engine.dispose()


@contextmanager
def postgres_session() -> Iterator[PostgresSession]:
    pg = PostgresSession()
    try:
        yield pg
    finally:
        pg.drop()

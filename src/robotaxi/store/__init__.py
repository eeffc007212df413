"""The live service's storage: SQLAlchemy Core tables and the Alembic migrations that create them.

SQLite by default (one file, WAL, ``synchronous=NORMAL``), PostgreSQL through a ``postgresql://`` URL (psycopg 3); the
same migrations for both. The domain never imports this package: the service (:mod:`robotaxi.api`) translates.
"""

from . import tables as tables
from .database import Database as Database
from .database import normalise_url as normalise_url
from .database import sqlite_url as sqlite_url

"""Shared fixtures: small networks, and the real data in ../shared/data when present."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from robotaxi.network import RoadNetwork, grid_city

from .databases import BACKENDS, PostgresSession, postgres_session

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_DATA = SHARED / "data"


def shared_file(relative: str) -> Path:
    """A file under ../shared; fails (never skips) when it is missing, because CI always has it."""
    p = SHARED / relative
    if not p.exists():
        pytest.fail(f"shared data file missing: {p} (the project expects ../shared beside the checkout)")
    return p


@pytest.fixture(scope="session")
def grid3() -> RoadNetwork:
    """A 3x3 grid city: 200 m blocks at 36 km/h, so every block takes 20 s."""
    return grid_city(3, 3)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresSession]:
    """This session's PostgreSQL database (created on first use, dropped at the end); fails when unreachable."""
    with postgres_session() as pg:
        yield pg


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind: a new SQLite file, or a new schema in this session's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'robotaxi.db'}"
    pg: PostgresSession = request.getfixturevalue("postgres")
    return pg.schema_url()

"""Shared fixtures: small networks, and the real data in ../shared/data when present."""

from __future__ import annotations

from pathlib import Path

import pytest

from robotaxi.network import RoadNetwork, grid_city

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

"""A small sweep on a grid city: an 8 x 8 grid (200 m blocks, 20 s each), 200 synthetic requests in one hour."""

from __future__ import annotations

from pathlib import Path

import pytest

from robotaxi.network import grid_city, save_network

BASE = """\
name = "grid"
seed = 1
[network]
path = "grid.npz"
[demand]
kind = "synthetic"
n_requests = 2400
[time]
start = "08:00"
end = "09:00"
[fleet]
vehicles = 4
[dispatch]
policy = "batch"
max_wait_s = 300
"""

#: 2 fleet sizes x 2 policies x 2 seeds; no per-run report.html (its plots would take most of the time).
SWEEP = """\
scenario = "base.toml"
output = "out"
workers = 2
run_reports = false
[grid]
"fleet.vehicles" = [3, 6]
dispatch.policy = ["batch", "immediate"]
seed = [1, 2]
"""


@pytest.fixture
def city(tmp_path: Path) -> Path:
    """A folder holding grid.npz, base.toml and sweep.toml."""
    save_network(grid_city(8, 8), tmp_path / "grid.npz")
    (tmp_path / "base.toml").write_text(BASE, encoding="utf-8")
    (tmp_path / "sweep.toml").write_text(SWEEP, encoding="utf-8")
    return tmp_path

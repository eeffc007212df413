"""Fixtures for the dashboard: one short simulator run on the embedded Helsinki network, shared by the tests.

"A Helsinki morning": 07:30-09:00 of the embedded synthetic day (about 800 requests), 25 robotaxis and a 240 s
maximum wait, so the run has served, rejected and cancelled requests, idle and busy vehicles.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from robotaxi.dashboard import ReplayData, load_replay
from robotaxi.sim import Scenario, run_scenario

from .browser import CHROMIUM

MORNING = """
name = "helsinki-morning"
seed = 11
output = "out"
[network]
path = "helsinki"
[demand]
kind = "synthetic"
n_requests = 12000
date = "2026-11-18"
[time]
start = "07:30"
end = "09:00"
timezone = "Europe/Helsinki"
[fleet]
vehicles = 25
[dispatch]
policy = "batch"
batch_seconds = 30
max_wait_s = 240
"""


@pytest.fixture(scope="session")
def morning_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run folder of the Helsinki morning."""
    base = tmp_path_factory.mktemp("morning")
    (base / "s.toml").write_text(MORNING, encoding="utf-8")
    run_scenario(Scenario.from_file(base / "s.toml"), output=base / "run")
    return base / "run"


@pytest.fixture(scope="session")
def morning_replay(morning_run: Path) -> ReplayData:
    """The Helsinki morning read by the adapter."""
    return load_replay(morning_run)


MARKET = """
name = "helsinki-market"
seed = 4
output = "out"
[network]
path = "helsinki"
[demand]
kind = "synthetic"
n_requests = 8000
date = "2026-11-18"
[time]
start = "07:30"
end = "08:30"
timezone = "Europe/Helsinki"
[dispatch]
policy = "batch"
batch_seconds = 30
max_wait_s = 300
[[operators]]
name = "central-av"
vehicles = 12
area = "area.geojson"
depot = [24.94, 60.165]
[[operators]]
name = "city-cabs"
vehicles = 12
[pricing]
currency = "EUR"
[pricing.fares]
base_cents = 300
per_km_cents = 120
per_minute_cents = 35
minimum_cents = 800
"""
#: The central operator's service area: a square around central Helsinki (lon, lat ring).
CENTRE = [[24.93, 60.16], [24.95, 60.16], [24.95, 60.17], [24.93, 60.17], [24.93, 60.16]]


@pytest.fixture(scope="session")
def market_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A priced marketplace run: one operator inside a square service area, one on the whole network."""
    import json

    base = tmp_path_factory.mktemp("market")
    geo = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": {
        "type": "Polygon", "coordinates": [CENTRE]}}]}  # fmt: skip
    (base / "area.geojson").write_text(json.dumps(geo), encoding="utf-8")
    (base / "s.toml").write_text(MARKET, encoding="utf-8")
    run_scenario(Scenario.from_file(base / "s.toml"), output=base / "run")
    return base / "run"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """The system's headless Chromium (one per test module), driven by Playwright; missing is a failure."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install the Debian package `chromium` (see .ci/run)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM))
        yield b
        b.close()

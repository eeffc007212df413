"""The replay page in a real browser (headless Chromium): what it draws and shows matches the run's outputs."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from playwright.sync_api import Browser

from robotaxi.dashboard import ReplayData, export_replay, load_replay
from robotaxi.sim import Scenario, run_scenario

from .browser import WAIT_MS, Session, open_page
from .conftest import MORNING
from .reference import Fleet, Requests

pytestmark = pytest.mark.integration

#: Three moments of the Helsinki morning: early, the peak, and after the demand window (trips still ending).
TIMES = (7 * 3600 + 40 * 60, 8 * 3600 + 20 * 60, 9 * 3600 + 4 * 60)


@pytest.fixture(scope="module")
def page_file(morning_replay: ReplayData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_replay(morning_replay, tmp_path_factory.mktemp("page") / "replay.html")


@pytest.fixture
def session(browser: Browser, page_file: Path) -> Iterator[Session]:
    with open_page(browser, page_file.as_uri()) as s:
        yield s


def _seek_with_slider(s: Session, t: int) -> None:
    """Move the time bar as a user's drag does (the slider's input event)."""
    s.page.eval_on_selector(
        "#seek", "(el, t) => { el.value = String(t); el.dispatchEvent(new Event('input', {bubbles: true})); }", t
    )
    s.next_frames()


@pytest.mark.slow
def test_vehicles_drawn_match_the_run_at_three_times(session: Session, morning_run: Path) -> None:
    fleet = Fleet.read(morning_run)
    for t in TIMES:
        _seek_with_slider(session, t)
        expected = fleet.at(t)
        total = sum(expected.values())
        assert total > 0
        assert session.api("api => api.layerLength('vehicles')") == total
        assert session.text("#kpi-vehicles") == f"{total:,}"
        for category, count in expected.items():
            assert session.text(f"#state-{category}") == f"{count:,}", (t, category)
    assert session.errors == []


def test_seeking_sets_the_kpi_panel_to_the_outputs(session: Session, morning_run: Path) -> None:
    reqs = Requests.read(morning_run, max_wait_s=240)
    seen = set()
    for t in TIMES:
        _seek_with_slider(session, t)
        assert session.text("#clock") == f"{t // 3600:02d}:{t % 3600 // 60:02d}:00"
        assert session.text("#kpi-open") == f"{reqs.open_at(t):,}"
        assert session.api("api => api.layerLength('requests')") == reqs.open_at(t)
        pct = reqs.served_pct_at(t)
        assert pct is not None
        assert session.text("#kpi-served") == f"{pct:.1f} %"
        hour = reqs.served_pct_last_hour(t)
        assert hour is not None
        assert session.text("#kpi-served-hour") == f"{hour:.1f} %"
        wait = reqs.mean_wait_last_hour(t)
        assert wait is not None
        assert session.text("#kpi-wait") == f"{wait / 60:.1f} min"
        seen.add((session.text("#kpi-open"), session.text("#kpi-served"), session.text("#kpi-wait")))
    assert len(seen) == len(TIMES), "the panel changes with the clock"
    # At the end every request is closed: served % is the run's own figure.
    import json

    kpis = json.loads((morning_run / "kpis.json").read_text(encoding="utf-8"))
    _seek_with_slider(session, 10**6)
    assert session.text("#kpi-open") == "0"
    assert session.text("#kpi-served") == f"{kpis['served_pct']:.1f} %"


def _isolated(points: list[dict[str, float]], others: list[dict[str, float]], gap: float) -> list[dict[str, float]]:
    out = []
    for p in points:
        near = [q for q in others if q is not p and math.hypot(q["x"] - p["x"], q["y"] - p["y"]) < gap]
        if not near and 300 < p["x"] < 900 and 20 < p["y"] < 740:
            out.append(p)
    return out


def test_clicking_a_vehicle_shows_its_trips(session: Session, morning_run: Path) -> None:
    reqs = Requests.read(morning_run, max_wait_s=240)
    _seek_with_slider(session, TIMES[1])
    vehicles = session.api("api => api.drawnVehicles()")
    requests = session.api("api => api.openRequests()")
    candidates = [v for v in _isolated(vehicles, vehicles + requests, 12) if (reqs.vehicle == v["id"]).any()]
    assert candidates, "some vehicle with trips stands apart on the map"
    v = candidates[0]
    session.click_object("vehicles", v["x"], v["y"])
    session.page.wait_for_function(
        "id => document.getElementById('detail-title').textContent === id", arg=f"Vehicle {v['id']}", timeout=WAIT_MS
    )
    shown = session.page.eval_on_selector_all(
        "#vehicle-trips tr[data-request]", "rows => rows.map(r => r.dataset.request)"
    )
    mine = reqs.vehicle == v["id"]
    expected = reqs.request_id[mine][np.argsort(reqs.time_s[mine], kind="stable")]
    assert [int(x) for x in shown] == expected.tolist()
    # A trip row opens that request's timeline.
    session.page.click(f"#vehicle-trips tr[data-request='{shown[0]}']")
    assert session.text("#detail-title") == f"Request {shown[0]}"
    assert session.errors == []


def test_clicking_a_request_shows_its_timeline(session: Session, morning_run: Path) -> None:
    import pyarrow.parquet as pq

    _seek_with_slider(session, TIMES[1])
    vehicles = session.api("api => api.drawnVehicles()")
    requests = session.api("api => api.openRequests()")
    candidates = _isolated(requests, vehicles + requests, 14)
    assert candidates, "some open request stands apart on the map"
    q = candidates[0]
    session.click_object("requests", q["x"], q["y"])
    session.page.wait_for_function(
        "id => document.getElementById('detail-title').textContent === id", arg=f"Request {q['id']}", timeout=WAIT_MS
    )
    row = next(r for r in pq.read_table(morning_run / "requests.parquet").to_pylist() if r["request_id"] == q["id"])
    steps = session.page.eval_on_selector_all("#request-timeline li", "li => li.map(x => x.dataset.step)")
    expected = ["requested"] + [k for k in ("assigned", "pickup", "board", "dropoff") if row[f"{k}_s"] is not None]
    if row["outcome"] != "served":
        expected.append(row["outcome"])
    assert steps == expected
    assert session.text("#request-outcome") == f"outcome: {row['outcome']}"
    if row["outcome"] != "served":
        assert row["reason"].replace("_", " ") in session.text("#request-timeline")


def test_exported_file_plays_with_the_network_disabled(browser: Browser, page_file: Path) -> None:
    with open_page(browser, page_file.as_uri(), offline=True) as s:
        _seek_with_slider(s, TIMES[0])
        before = s.api("api => api.drawnVehicles()")
        s.page.select_option("#speed", "600")
        start = s.api("api => ({frames: api.snapshot().frames, ms: performance.now()})")
        s.page.click("#play")
        # Play until five minutes of the run and ten frames have passed (page state, however slow the machine).
        s.page.wait_for_function(
            "([t, f]) => window.robotaxiReplay.time() > t && window.robotaxiReplay.snapshot().frames > f",
            arg=[TIMES[0] + 300, start["frames"] + 10],
            timeout=WAIT_MS,
        )
        s.page.click("#play")  # pause
        t = s.api("api => api.time()")
        elapsed_s = (s.api("api => performance.now()") - start["ms"]) / 1000
        after = s.api("api => api.drawnVehicles()")
        # Ten minutes of replay per second of play at most (a slow frame's step is capped, never stretched).
        assert TIMES[0] + 300 < t <= TIMES[0] + 600 * elapsed_s + 1
        moved = sum(1 for a, b in zip(before, after, strict=True) if (a["x"], a["y"]) != (b["x"], b["y"]))
        assert moved > 0
        assert [u for u in s.requests if not u.startswith(("file:", "data:", "blob:"))] == []
        assert s.errors == []


def test_the_ledger_panel_shows_the_checkpoint(browser: Browser, morning_run: Path, tmp_path: Path) -> None:
    from robotaxi.dashboard import load_replay
    from robotaxi.ledger import Ledger, SigningKey

    key = SigningKey.generate("robotaxi.test/ledger")
    with Ledger.open_or_create(tmp_path / "trips.db", origin=key.name) as ledger:
        ledger.append([b"one", b"two"])
        note = ledger.sign_checkpoint(key)
    page = export_replay(load_replay(morning_run, ledger=tmp_path / "trips.db"), tmp_path / "replay.html")
    with open_page(browser, page.as_uri()) as s:
        assert "2 trips, checkpoint verified" in s.text("#ledger")
        assert s.page.inner_text("#ledger-note").strip() == note.strip()
        assert s.errors == []


def _png(rgb: tuple[int, int, int], size: int = 256) -> bytes:
    """A plain one-colour PNG tile."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + bytes(rgb) * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_tiles_from_a_named_server_are_drawn_behind_the_streets(
    browser: Browser, morning_replay: ReplayData, tmp_path: Path
) -> None:
    import io
    import re
    import threading
    from dataclasses import replace
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from PIL import Image  # Pillow comes with matplotlib

    tile = _png((200, 40, 40))
    asked: list[str] = []

    class Tiles(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Access-Control-Allow-Origin", "*")
            self.end_headers()
            self.wfile.write(tile)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{{z}}/{{x}}/{{y}}.png"
        data = replace(morning_replay, meta={**morning_replay.meta, "tiles": url})
        page = export_replay(data, tmp_path / "tiles.html")
        with open_page(browser, page.as_uri()) as s:
            # Wait until the tile layer has every tile it wants (page state), then for the frame that draws them.
            s.page.wait_for_function(
                "() => window.robotaxiReplay.app.mapDeck.props.layers.find(l => l.id === 'tiles').isLoaded",
                timeout=WAIT_MS,
            )
            s.page.wait_for_function("() => !window.robotaxiReplay.app.mapDeck.needsRedraw()", timeout=WAIT_MS)
            s.next_frames(3)
            shot = s.page.screenshot(clip={"x": 1250, "y": 20, "width": 1, "height": 1})
            assert s.errors == []
    finally:
        server.shutdown()
        server.server_close()
    assert asked
    assert all(re.fullmatch(r"/\d+/\d+/\d+\.png", p) for p in asked)
    pixel = Image.open(io.BytesIO(shot)).convert("RGB").getpixel((0, 0))
    assert isinstance(pixel, tuple)
    assert pixel[0] > 80 > pixel[1], pixel  # the red tile, at 60 % over the dark background


@pytest.mark.slow
def test_colour_by_riders_on_board_counts_the_riders_of_a_pooled_run(browser: Browser, tmp_path: Path) -> None:
    """Insertion pooling on the Helsinki morning: coloured by riders on board, the key's counts at three times are
    the vehicles holding 0, 1, 2, ... boarded and not yet dropped-off requests (from requests.parquet)."""
    scenario = MORNING.replace('policy = "batch"', 'policy = "insertion"').replace("vehicles = 25", "vehicles = 12")
    (tmp_path / "s.toml").write_text(scenario, encoding="utf-8")
    run_scenario(Scenario.from_file(tmp_path / "s.toml"), output=tmp_path / "run")
    page = export_replay(load_replay(tmp_path / "run"), tmp_path / "pooled.html")
    req = pq.read_table(tmp_path / "run" / "requests.parquet").to_pydict()
    rides = [
        (int(v), int(b), int(d))
        for v, b, d in zip(req["vehicle"], req["board_s"], req["dropoff_s"], strict=True)
        if v is not None and b is not None and d is not None
    ]
    with open_page(browser, page.as_uri()) as s:
        s.page.select_option("#color-by", "occupancy")
        assert s.page.is_visible("#occupancy-key")
        most = 0
        for t in TIMES:
            _seek_with_slider(s, t)
            riders = np.bincount([v for v, b, d in rides if b <= t < d], minlength=12)
            want = np.bincount(np.minimum(riders, 4), minlength=5)
            want[0] = int(s.api("api => api.layerLength('vehicles')")) - int(want[1:].sum())  # drawn, empty
            got = [int(s.text(f"#onboard-{k}").replace(",", "")) for k in range(5)]
            assert got == want.tolist(), t
            most = max(most, int(riders.max()))
        assert most >= 2  # the check saw shared rides
        assert s.errors == []

"""The live view in a real browser: ``robotaxi serve --dashboard`` on a free port with a small grid city, a virtual
fleet docked with ``robotaxi fleet connect``, rides booked through the rider API; headless Chromium signs in and
shows the vehicles appear and move and the KPI panel follow the platform. Riders and operators are refused.

Every wait is on the page's state (``wait_for_function``) with a generous bound, never a fixed sleep: the machine
may be loaded. ``ROBOTAXI_SCREENSHOTS=DIR`` also saves the page to ``DIR/dashboard_live.png``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.api.conftest import node_location
from tests.api.test_end_to_end import live_platform
from tests.api.test_restart import _token

from .browser import WAIT_MS

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _sign_in(page: Page, base: str, key: str) -> None:
    page.goto(f"{base}/dashboard")
    page.wait_for_selector("#signin:not([hidden])")
    page.fill("#signin-key", key)
    page.click("#signin-go")


def _api(page: Page, expression: str, arg: object = None) -> object:
    return page.evaluate(f"([arg]) => ({expression})(window.robotaxiReplay, arg)", [arg])


def test_live_view_follows_the_platform(browser: Browser, tmp_path: Path) -> None:
    args = ["--operator", "virtual", "--vehicles", "4", "--speedup", "10", "--duration", "600", "--seed", "3"]
    errors: list[str] = []
    with (
        live_platform(tmp_path, args, dashboard=True, stdout=subprocess.DEVNULL) as (server, _fleet, admin_key),
        contextlib.closing(browser.new_context(viewport={"width": 1280, "height": 800})) as context,
        httpx.Client(base_url=server.base, timeout=30) as c,
    ):
        admin = _token(c, admin_key)

        def key(body: dict[str, str]) -> str:
            r = c.post("/v1/admin/credentials", json=body, headers=admin)
            assert r.status_code == 201, r.text
            return str(r.json()["api_key"])

        rider_key = key({"role": "rider", "subject": "alice"})
        regulator_key = key({"role": "regulator", "subject": "city"})
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))

        # A rider (or anyone but an admin or a regulator) is refused, and told why.
        _sign_in(page, server.base, rider_key)
        page.wait_for_selector("body[data-feed=refused]", timeout=WAIT_MS)
        assert "role rider may not watch the dashboard" in page.inner_text("#signin-error")
        assert page.evaluate("window.robotaxiReplay") is None

        # The regulator sees the fleet once it has docked.
        _sign_in(page, server.base, regulator_key)
        page.wait_for_selector("body[data-rendered]", timeout=WAIT_MS)
        page.wait_for_function(
            "() => document.getElementById('kpi-vehicles').textContent.trim() === '4'", timeout=WAIT_MS
        )
        assert _api(page, "api => api.layerLength('vehicles')") == 4
        # every street of the grid once, two vertices each
        assert _api(page, "api => api.layerLength('roads')") == 2 * (2 * 6 * 5)
        before = _api(page, "api => api.drawnVehicles()")
        assert isinstance(before, list)
        assert {v["category"] for v in before} == {"idle"}
        assert page.inner_text("#kpi-open").strip() == "0"

        # Rides: the vehicles drive to the riders and on to the destinations; the panels follow.
        alice = _token(c, rider_key)
        for o, d in ((0, 35), (7, 20), (30, 5), (14, 15)):
            r = c.post(
                "/v1/rides",
                json={"origin": node_location(o), "destination": node_location(d)},
                headers={**alice, "Idempotency-Key": uuid.uuid4().hex},
            )
            assert r.status_code == 201, r.text
        page.wait_for_function(
            """before => window.robotaxiReplay.drawnVehicles().some(v => {
                const b = before.find(x => x.id === v.id);
                return b && (Math.abs(b.lon - v.lon) > 1e-5 || Math.abs(b.lat - v.lat) > 1e-5);
            })""",
            arg=before,
            timeout=WAIT_MS,
        )
        page.wait_for_function(
            "() => document.querySelectorAll('#events li[data-kind=requested]').length === 4", timeout=WAIT_MS
        )
        if shots := os.environ.get("ROBOTAXI_SCREENSHOTS"):
            page.screenshot(path=str(Path(shots) / "dashboard_live.png"))
        page.wait_for_function("() => document.getElementById('kpi-trips').textContent.trim() === '4'", timeout=WAIT_MS)
        assert page.inner_text("#kpi-open").strip() == "0"
        assert page.inner_text("#kpi-served-hour").strip() == "100.0 %"
        assert page.inner_text("#kpi-wait").strip().endswith(" min")
        row = page.locator("#operator-table tr[data-operator=virtual]")
        assert row.locator(".op-vehicles").inner_text().strip() == "4"
        assert row.locator(".op-trips").inner_text().strip() == "4"
        assert len(page.query_selector_all("#events li[data-kind=trip_completed]")) == 4

        # A click on a vehicle asks the platform for its plan and trips.
        vehicles = _api(page, "api => api.drawnVehicles()")
        assert isinstance(vehicles, list)
        v = vehicles[0]
        _api(page, "(api, v) => api.app.select({kind: 'vehicle', index: v.index})", v)
        page.evaluate(
            "v => window.robotaxiReplay.app.feed.askVehicle(window.robotaxiReplay.replay.registry[v].device_id)",
            v["index"],
        )
        page.wait_for_selector("#vehicle-state", timeout=WAIT_MS)
        assert page.inner_text("#detail-title").strip() == f"Vehicle {v['id']}"
        assert page.inner_text("#vehicle-state").strip().startswith("now: ")
        assert errors == []

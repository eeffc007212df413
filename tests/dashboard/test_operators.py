"""A marketplace run in the replay: vehicles coloured by operator, service areas as outlines, per-operator trips and
fares that follow the clock, all checked against the run's outputs (``vehicle_events``, ``requests``, ``fares``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from playwright.sync_api import Browser

from robotaxi.dashboard import ReplayData, export_replay, load_replay

from .browser import Session, open_page
from .conftest import CENTRE

pytestmark = pytest.mark.integration
#: Operator colours of the page (main.js OPERATOR_COLORS), in the run's operator order.
COLORS = [[255, 167, 38], [66, 165, 245]]


def test_the_adapter_reads_operators_fares_and_areas(market_run: Path) -> None:
    data = load_replay(market_run)
    assert [o["name"] for o in data.meta["operators"]] == ["central-av", "city-cabs"]
    assert [o["vehicles"] for o in data.meta["operators"]] == [12, 12]
    events = pq.read_table(market_run / "vehicle_events.parquet").to_pandas()
    provider = events.groupby("vehicle_id")["provider"].first()
    names = [o["name"] for o in data.meta["operators"]]
    got = [names[k] for k in data.arrays["veh_operator"]]
    assert got == [str(provider[v]) for v in data.arrays["veh_id"]]
    fares = pq.read_table(market_run / "fares.parquet").to_pandas()
    by_id = dict(zip(data.arrays["req_id"].tolist(), data.arrays["req_fare"].tolist(), strict=True))
    assert all(by_id[r] == f for r, f in zip(fares["request_id"], fares["fare_cents"], strict=True))
    assert sum(1 for f in by_id.values() if f >= 0) == len(fares) > 0
    assert data.meta["priced"] is True
    assert data.meta["currency"] == "EUR"
    (area,) = data.meta["areas"]
    assert (area["operator"], area["index"]) == ("central-av", 0)
    (ring,) = area["paths"]
    assert sorted(map(tuple, ring[:-1])) == sorted(map(tuple, CENTRE[:-1]))  # the square's own corners
    assert ring[0] == ring[-1]


def _expected_at(market_run: Path, t: int) -> dict[str, tuple[int, int]]:
    """Per operator: trips dropped off by t and the riders' fares of those trips (cents)."""
    req = pq.read_table(market_run / "requests.parquet").to_pandas()
    fares = pq.read_table(market_run / "fares.parquet").to_pandas().set_index("request_id")["fare_cents"]
    done = req[req["dropoff_s"].notna() & (req["dropoff_s"] <= t)]
    out = {}
    for name, rows in done.groupby(done["operator"].astype(str)):
        out[str(name)] = (len(rows), int(fares.reindex(rows["request_id"]).fillna(0).sum()))
    return out


def _seek(s: Session, t: int) -> None:
    s.page.eval_on_selector(
        "#seek", "(el, t) => { el.value = String(t); el.dispatchEvent(new Event('input', {bubbles: true})); }", t
    )
    s.next_frames()


def test_operators_on_the_map_and_in_the_panel(browser: Browser, market_run: Path, tmp_path: Path) -> None:
    page = export_replay(load_replay(market_run), tmp_path / "market.html")
    with open_page(browser, page.as_uri()) as s:
        assert s.api("api => api.layerLength('areas')") == 1
        assert "central-av" in s.text("#areas-note")
        checked = 0
        for t in (7 * 3600 + 50 * 60, 8 * 3600 + 20 * 60, 10**6):
            _seek(s, t)
            expected = _expected_at(market_run, t)
            for name in ("central-av", "city-cabs"):
                row = f"#operator-table tr[data-operator='{name}']"
                trips, cents = expected.get(name, (0, 0))
                assert s.text(f"{row} .op-trips") == f"{trips:,}", (t, name)
                assert s.text(f"{row} .op-revenue") == f"{cents / 100:,.2f} EUR", (t, name)
                checked += trips
        assert checked > 0
        # At the end, the fares of every priced trip.
        fares = pq.read_table(market_run / "fares.parquet").to_pandas()
        total = s.page.eval_on_selector_all(
            "#operator-table .op-revenue", "cells => cells.map(c => c.textContent.replace(/[^0-9.]/g, ''))"
        )
        assert round(sum(float(x) for x in total) * 100) == int(fares["fare_cents"].sum())
        # Colour by operator: each vehicle drawn in its operator's colour.
        _seek(s, 8 * 3600)
        s.page.select_option("#color-by", "operator")
        s.next_frames()
        vehicles = s.api("api => api.drawnVehicles()")
        colours = s.api("api => Array.from({length: api.replay.drawn}, (_, j) => api.vehicleColor(j))")
        assert len(vehicles) == len(colours) > 0
        assert {v["operator"] for v in vehicles} == {0, 1}
        assert all(c == COLORS[v["operator"]] for v, c in zip(vehicles, colours, strict=True))
        s.page.select_option("#color-by", "state")
        s.next_frames()
        colours = s.api("api => Array.from({length: api.replay.drawn}, (_, j) => api.vehicleColor(j))")
        assert any(c not in COLORS for c in colours)
        assert s.errors == []


def test_a_run_without_operators_has_no_operator_panel(
    browser: Browser, morning_replay: ReplayData, tmp_path: Path
) -> None:
    page = export_replay(morning_replay, tmp_path / "plain.html")
    with open_page(browser, page.as_uri()) as s:
        assert s.page.is_hidden("#operators")
        assert s.page.is_disabled("#color-by-operator")
        assert s.api("api => api.layerLength('areas')") is None
        assert np.all(np.asarray(s.api("api => api.drawnVehicles().map(v => v.operator)")) == -1)

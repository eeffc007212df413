"""Trips and safety events are recorded once: appends are idempotent by id, and lookup by id uses the index."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robotaxi.cli import main
from robotaxi.errors import LedgerError
from robotaxi.ledger import DuplicateIdError, Ledger, SafetyEvent, TripRecord, audit, canonical_json, ids
from robotaxi.ledger.store import SQLiteStore

ORIGIN = "robotaxi.test/ledger"


def trip(i: int, *, fare: int | None = 1000) -> TripRecord:
    """Trip ``t{i}``: two minutes, one kilometre in Helsinki."""
    return TripRecord(
        trip_id=f"t{i}", provider_id="op", vehicle_id=f"v{i % 7}", start_time_ms=1_700_000_000_000 + i * 1000,
        end_time_ms=1_700_000_120_000 + i * 1000, start_lon=24.94, start_lat=60.17, end_lon=24.95, end_lat=60.18,
        distance_m=1000, duration_s=120, fare_cents=fare,
    )  # fmt: skip


def event(i: int, description: str = "construction zone") -> SafetyEvent:
    return SafetyEvent(
        event_id=f"e{i}", event_type="disengagement", provider_id="op", vehicle_id="v1", time_ms=1_700_000_000_000,
        lon=24.94, lat=60.17, initiated_by="safety_driver", driver_present=True, location_type="street",
        description=description,
    )  # fmt: skip


def test_reappending_trips_appends_only_what_is_missing(tmp_path: Path) -> None:
    with Ledger.create(tmp_path / "l.db", origin=ORIGIN) as led:
        first = led.add_records([trip(i) for i in range(100)])
        assert first == (0, 100, 0)
        root = led.root()
        again = led.add_records([trip(i) for i in range(100)])
        assert again == (100, 0, 100)
        assert led.size == 100
        assert led.root() == root
        # A re-run after a crash: half of it was recorded, the rest is new.
        more = led.add_records([trip(i) for i in range(50, 150)])
        assert more == (100, 50, 50)
        assert led.append_records([trip(i) for i in range(150)]) == 150  # first new index; nothing new
        assert led.size == 150
        assert [led.find_id("trip", f"t{i}") for i in (0, 99, 100, 149)] == [0, 99, 100, 149]
        assert led.find_id("trip", "t150") is None
    assert audit(tmp_path / "l.db").ok


def test_same_id_different_content_is_refused_and_nothing_is_appended(tmp_path: Path) -> None:
    with Ledger.create(tmp_path / "l.db", origin=ORIGIN) as led:
        led.append_records([trip(i) for i in range(10)] + [event(1)])
        size, root = led.size, led.root()
        with pytest.raises(DuplicateIdError, match=r"trip 't3' is entry 3 with different content"):
            led.append_records([trip(20), trip(3, fare=999)])
        with pytest.raises(DuplicateIdError, match=r"safety_event 'e1' is entry 10"):
            led.append_records([event(1, "another description")])
        with pytest.raises(DuplicateIdError, match="twice in the batch"):
            led.append_records([trip(30), trip(30, fare=1)])
        assert (led.size, led.root()) == (size, root)
        # The same record twice in one batch is recorded once.
        assert led.add_records([trip(40), trip(40), event(2), event(2)]) == (size, 2, 2)


def test_raw_and_jsonl_appends_are_idempotent_too(tmp_path: Path) -> None:
    with Ledger.create(tmp_path / "l.db", origin=ORIGIN) as led:
        raw = [canonical_json(trip(i).to_json()) for i in range(5)]
        led.append(raw)
        assert led.add(raw) == (5, 0, 5)
        lines = tmp_path / "t.jsonl"
        lines.write_text("".join(json.dumps(trip(i).to_json()) + "\n" for i in range(3, 8)))
        assert led.append_jsonl(lines) == (5, 3, 2)
        # Objects that are not trips or safety events are not deduplicated: a log may hold a note twice.
        note = {"kind": "note", "text": "hello"}
        led.append_records([note, note])
        assert led.size == 10
        with pytest.raises(LedgerError, match="entry 1 of the batch is int, not bytes"):
            led.add([raw[0], 5])  # type: ignore[list-item]
        # A trip's bytes are found through the index; other entries by hash.
        assert led.find(raw[2]) == 2
        assert led.find(canonical_json(note)) == 8


def test_lookup_by_id_does_not_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Ledger.create(tmp_path / "l.db", origin=ORIGIN) as led:
        for start in range(0, 3000, 500):
            led.append_records([trip(i) for i in range(start, start + 500)])

        def no_scan(*_args: object) -> None:
            raise AssertionError("find_leaf scans the log")

        monkeypatch.setattr(SQLiteStore, "find_leaf", no_scan)
        assert led.find_id("trip", "t2345") == 2345
        assert led.find(canonical_json(trip(17).to_json())) == 17

    def no_whole_runs(*_args: object) -> None:
        raise AssertionError("a lookup read whole index runs")

    # A fresh ledger object has no runs in memory: a lookup binary-searches them on disk.
    monkeypatch.setattr(SQLiteStore, "get_index_runs", no_whole_runs)
    with Ledger.open(tmp_path / "l.db") as led:
        assert [led.find_id("trip", f"t{i}") for i in (0, 499, 500, 2047, 2048, 2999)] == [
            0,
            499,
            500,
            2047,
            2048,
            2999,
        ]
        assert led.find_id("trip", "t3000") is None
        assert led.add_records([trip(7), trip(2999)]) == (3000, 0, 2)


def test_a_ledger_without_the_index_gets_it_built(tmp_path: Path) -> None:
    """A ledger written before the index existed (schema 1: no idruns table) is indexed on first use."""
    path = tmp_path / "old.db"
    with Ledger.create(path, origin=ORIGIN) as led:
        led.append_records([trip(i) for i in range(70)])
    db = sqlite3.connect(path)
    db.execute("DROP TABLE idruns")
    db.execute("PRAGMA user_version = 0")
    db.close()
    with Ledger.open(path) as led:
        assert led.add_records([trip(i) for i in range(60, 80)]) == (70, 10, 10)
        assert led.find_id("trip", "t65") == 65
    assert audit(path).ok


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.lists(st.tuples(st.integers(0, 40), st.booleans()), min_size=0, max_size=12), min_size=1, max_size=12)
)
def test_index_matches_a_model(tmp_path_factory: pytest.TempPathFactory, batches: list[list[tuple[int, bool]]]) -> None:
    """Random batches of trips (some repeated, some plain entries) against a dict model, with runs capped at 8
    entries so that merges and full blocks both occur."""
    cap = ids.RUN_CAP_LEVEL
    ids.RUN_CAP_LEVEL = 3
    try:
        path = tmp_path_factory.mktemp("model") / "l.db"
        model: dict[str, int] = {}
        size = 0
        with Ledger.create(path, origin=ORIGIN) as led:
            for batch in batches:
                records: list[TripRecord | dict[str, object]] = []
                for n, plain in batch:
                    records.append({"kind": "note", "n": n} if plain else trip(n))
                res = led.add_records(records)
                for r in records:
                    if isinstance(r, TripRecord) and r.trip_id not in model:
                        model[r.trip_id] = size
                        size += 1
                    elif not isinstance(r, TripRecord):
                        size += 1
                assert led.size == size
                assert res.appended + res.skipped == len(records)
            for n in range(41):
                assert led.find_id("trip", f"t{n}") == model.get(f"t{n}")
    finally:
        ids.RUN_CAP_LEVEL = cap


def test_cli_append_twice_reports_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "l.db")
    assert main(["ledger", "init", "--log", db]) == 0
    lines = tmp_path / "t.jsonl"
    lines.write_text("".join(json.dumps(trip(i).to_json()) + "\n" for i in range(4)))
    assert main(["ledger", "append", str(lines), "--log", db]) == 0
    assert main(["ledger", "append", str(lines), "--log", db]) == 0
    out = capsys.readouterr().out
    assert "appended 4 entries at 0..3" in out
    assert "appended 0 entries; skipped 4 already recorded; ledger size 4" in out
    changed = dataclasses.replace(trip(2), fare_cents=1)
    lines.write_text(json.dumps(changed.to_json()) + "\n")
    assert main(["ledger", "append", str(lines), "--log", db]) == 1
    assert "trip 't2' is entry 2 with different content" in capsys.readouterr().err


def test_audit_checks_the_id_index(tmp_path: Path) -> None:
    """A run of the index that lost a key would let a trip in twice: the audit compares it with the entries."""
    path = tmp_path / "l.db"
    with Ledger.create(path, origin=ORIGIN) as led:
        led.append_records([trip(i) for i in range(100)])
    assert audit(path).ok
    db = sqlite3.connect(path)
    rid = ids.run_id(6, 0)  # entries 0..63
    (keys,) = db.execute("SELECT keys FROM idruns WHERE id = ?", (rid,)).fetchone()
    with db:
        db.execute("UPDATE idruns SET keys = ? WHERE id = ?", (keys[:-8] + bytes(8), rid))
    db.close()
    report = audit(path)
    assert [p.what for p in report.problems] == ["the id index of entries 0..63 does not match the entries"]


_names = st.sampled_from(["kind", "trip_id", "event_id", "x", "pad", "trip"])
_values = st.one_of(
    st.sampled_from(["trip", "safety_event", "note", "", "t1"]), st.text(max_size=8), st.integers(), st.none()
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_names, st.one_of(_values, st.dictionaries(_names, _values, max_size=2)), max_size=5))
def test_entry_id_agrees_with_the_parser(obj: dict[str, object]) -> None:
    """The fast path over flat canonical bytes gives what parsing the entry gives, for any mix of members."""
    expected = ids.record_id(obj)
    assert ids.entry_id(canonical_json(obj)) == expected
    assert ids.entry_id(json.dumps(obj, indent=1).encode()) == expected
    assert ids.entry_id(json.dumps(obj, ensure_ascii=True).encode()) == expected

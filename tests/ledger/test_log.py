"""The SQLite-backed ledger: appends, proofs at any size, lookups, JSONL input, checkpoints and bundles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robotaxi.errors import LedgerError, VerificationError
from robotaxi.ledger import (
    ConsistencyBundle,
    InclusionBundle,
    JsonlError,
    Ledger,
    SafetyEvent,
    SigningKey,
    TripRecord,
    canonical_json,
    hash_leaf,
    open_checkpoint,
    verify_bundle,
    verify_consistency,
    verify_inclusion,
)
from robotaxi.ledger.merkle import MemoryTree

ORIGIN = "robotaxi.test/ledger"


def _entries(n: int, start: int = 0) -> list[bytes]:
    return [canonical_json({"i": i, "pad": "x" * (i % 7)}) for i in range(start, start + n)]


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate(ORIGIN)


def test_append_matches_memory_tree(tmp_path: Path) -> None:
    """Odd batch sizes across strip boundaries: every root and proof equals the in-memory reference."""
    entries = _entries(700)
    ref = MemoryTree(hash_leaf(e) for e in entries)
    with Ledger.create(tmp_path / "l.db", origin=ORIGIN) as led:
        pos = 0
        for n in [1, 2, 3, 61, 64, 65, 1, 127, 200, 176]:
            assert led.append(entries[pos : pos + n]) == pos
            pos += n
            assert led.size == pos
            assert led.root() == ref.root(pos)
        assert pos == 700
        for size in [1, 2, 3, 63, 64, 65, 255, 256, 257, 699, 700]:
            assert led.root(size) == ref.root(size)
            for index in {0, size // 2, size - 1}:
                proof = led.inclusion_proof(index, size)
                verify_inclusion(hash_leaf(entries[index]), index, size, proof, ref.root(size))
            for s1 in {1, size // 3 or 1, size}:
                verify_consistency(s1, size, ref.root(s1), ref.root(size), led.consistency_proof(s1, size))
        assert led.entry(699) == entries[699]
        assert led.entries(10, 13) == entries[10:13]
        assert led.find(entries[517]) == 517
        assert led.find(hash_leaf(entries[0])) == 0
        assert led.find(b"not there") is None


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 90), min_size=1, max_size=6))
def test_batches_property(tmp_path_factory: pytest.TempPathFactory, batches: list[int]) -> None:
    path = tmp_path_factory.mktemp("p") / "l.db"
    with Ledger.create(path, origin=ORIGIN) as led:
        ref = MemoryTree()
        pos = 0
        for n in batches:
            chunk = _entries(n, pos)
            led.append(chunk)
            for e in chunk:
                ref.append(hash_leaf(e))
            pos += n
            assert led.root() == ref.root()
        i = pos // 2
        verify_inclusion(ref.get_nodes([(0, i)])[0, i], i, pos, led.inclusion_proof(i), ref.root())


def test_reopen_continues(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    entries = _entries(150)
    with Ledger.create(path, origin=ORIGIN) as led:
        led.append(entries[:77])
    with Ledger.open(path) as led:
        led.append(entries[77:])
        assert led.root() == MemoryTree(hash_leaf(e) for e in entries).root()
    with pytest.raises(LedgerError):
        Ledger.create(path, origin=ORIGIN)
    with pytest.raises(LedgerError):
        Ledger.open(tmp_path / "missing.db")
    with pytest.raises(LedgerError):
        Ledger.open_or_create(path, origin="other.origin")


def test_records_are_canonical(tmp_path: Path) -> None:
    trip = TripRecord(
        trip_id="t1",
        provider_id="op1",
        vehicle_id="v1",
        start_time_ms=1_700_000_000_000,
        end_time_ms=1_700_000_600_000,
        start_lon=24.94,
        start_lat=60.17,
        end_lon=24.95,
        end_lat=60.18,
        distance_m=2300,
        duration_s=600,
        fare_cents=1250,
    )
    event = SafetyEvent(
        event_id="e1",
        event_type="disengagement",
        provider_id="op1",
        vehicle_id="v1",
        time_ms=1_700_000_100_000,
        lon=24.94,
        lat=60.17,
        initiated_by="safety_driver",
        driver_present=True,
        location_type="street",
        description="construction zone",
        trip_id="t1",
    )
    with Ledger.create(tmp_path / "l.db", origin=ORIGIN) as led:
        assert led.append_records([trip, event, {"b": 1, "a": [1.5, "é"]}]) == 0
        assert led.entry(2) == '{"a":[1.5,"é"],"b":1}'.encode()
        got = json.loads(led.entry(0))
        assert (got["kind"], got["fare_cents"], got["v"]) == ("trip", 1250, 1)
        assert led.entry(0) == canonical_json(json.loads(led.entry(0)))
        with pytest.raises(LedgerError):
            led.append_records([{"ok": 1}, {"bad": float("nan")}])
        assert led.size == 3
    with pytest.raises(ValueError, match="ends before"):
        TripRecord("t", "p", "v", 2, 1, 0, 0, 0, 0, 0, 0, 0)


def test_jsonl_all_or_nothing(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text('{"a": 1}\n\n{"b": 2}\n', encoding="utf-8")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\nnot json\n{"b": 2}\n[1, 2]\n{"a": 1, "a": 2}\n{"n": NaN}\n', encoding="utf-8")
    with Ledger.create(tmp_path / "l.db", origin=ORIGIN) as led:
        assert led.append_jsonl(good) == (0, 2, 0)
        with pytest.raises(JsonlError) as info:
            led.append_jsonl(bad)
        assert [n for n, _ in info.value.problems] == [2, 4, 5, 6]
        assert "line 2" in str(info.value)
        assert led.size == 2


def test_checkpoints_and_bundles(tmp_path: Path, key: SigningKey) -> None:
    entries = _entries(40)
    with Ledger.create(tmp_path / "l.db", origin=ORIGIN) as led:
        led.append(entries[:10])
        old = led.sign_checkpoint(key)
        led.append(entries[10:])
        new = led.sign_checkpoint(key)
        assert open_checkpoint(new, key.verifier()).size == 40
        assert led.verifier == key.verifier()
        with pytest.raises(LedgerError):
            led.sign_checkpoint(SigningKey.generate(ORIGIN))
        with pytest.raises(LedgerError):
            led.sign_checkpoint(SigningKey.generate("other.name"))
        inc = InclusionBundle.build(led, 33)
        text = json.dumps(inc.to_json())
        assert verify_bundle(text, key.verifier()) == inc
        con = ConsistencyBundle.build(led, old, new)
        assert verify_bundle(json.dumps(con.to_json()), key.verifier()) == con
    # Offline checks fail for a wrong key, a changed entry, or a wrong index.
    with pytest.raises(VerificationError):
        verify_bundle(text, SigningKey.generate(ORIGIN).verifier())
    changed = dict(inc.to_json(), entry=InclusionBundle(0, b"{}", (), "").to_json()["entry"])
    with pytest.raises(VerificationError):
        verify_bundle(json.dumps(changed), key.verifier())
    with pytest.raises(VerificationError):
        verify_bundle(json.dumps(dict(inc.to_json(), index=32)), key.verifier())
    with pytest.raises(VerificationError):
        verify_bundle("[]", key.verifier())


def test_consistency_from_a_forged_empty_checkpoint(key: SigningKey) -> None:
    """A signed size-0 checkpoint must carry SHA-256(""); any other root is not the empty tree."""
    from robotaxi.ledger.merkle import EMPTY_ROOT
    from robotaxi.ledger.note import Checkpoint

    new = Checkpoint(ORIGIN, 1, hash_leaf(b"x")).sign(key)
    good = ConsistencyBundle(Checkpoint(ORIGIN, 0, EMPTY_ROOT).sign(key), new, ())
    assert good.verify(key.verifier())[0].size == 0
    forged = ConsistencyBundle(Checkpoint(ORIGIN, 0, hash_leaf(b"y")).sign(key), new, ())
    with pytest.raises(VerificationError, match="empty tree"):
        forged.verify(key.verifier())

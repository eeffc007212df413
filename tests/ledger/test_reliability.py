"""Reliability: SIGKILL in the middle of appends, tampering with every kind of stored data, forks."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robotaxi.ledger import Ledger, SigningKey, audit, canonical_json
from robotaxi.ledger.store import STRIP_BITS, SQLiteStore

ORIGIN = "robotaxi.test/ledger"
BATCH = 100

# The child appends deterministic batches forever and prints the size after each acknowledged append.
CHILD = f"""
import sys
from robotaxi.ledger import Ledger, canonical_json
led = Ledger.open_or_create(sys.argv[1], origin={ORIGIN!r})
print("ready", led.size, flush=True)
while True:
    n = led.size
    led.append([canonical_json({{"i": i, "pad": "p" * 400}}) for i in range(n, n + {BATCH})])
    print("ack", n + {BATCH}, flush=True)
"""


def _expected(i: int) -> bytes:
    return canonical_json({"i": i, "pad": "p" * 400})


@pytest.mark.integration
def test_sigkill_mid_batch(tmp_path: Path) -> None:
    """Kill the appender many times at random moments: every acknowledged entry survives, no batch is torn."""
    path = tmp_path / "crash.db"
    rng = random.Random(20240607)
    acked = 0
    kills = 0
    for _ in range(12):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
        )
        assert proc.stdout is not None
        ready = proc.stdout.readline().split()
        assert ready[0] == "ready", ready
        assert int(ready[1]) >= acked
        time.sleep(rng.uniform(0.0, 0.1))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        kills += 1
        acks = [int(line.split()[1]) for line in out.splitlines() if line.startswith("ack")]
        if acks:
            acked = max(acked, acks[-1])
        with Ledger.open(path) as led:
            size = led.size
            # Durable before acknowledged, and atomic: at most the one batch in flight is extra, and whole.
            assert size in (acked, acked + BATCH), (size, acked)
            assert led.entries(0, size)[-1] == _expected(size - 1)
            assert isinstance(led.store, SQLiteStore)
            assert led.store.count_entries() == (size, size)
        acked = size
        report = audit(path)
        assert report.ok, report.problems
    assert kills == 12
    assert acked > 0
    with Ledger.open(path) as led:
        assert led.entries(0, acked) == [_expected(i) for i in range(acked)]


def _build(path: Path, n: int = 300) -> SigningKey:
    key = SigningKey.generate(ORIGIN)
    with Ledger.create(path, origin=ORIGIN) as led:
        led.append([canonical_json({"i": i}) for i in range(n // 2)])
        led.sign_checkpoint(key)
        led.append([canonical_json({"i": i}) for i in range(n // 2, n)])
        led.sign_checkpoint(key)
    assert audit(path).ok
    return key


def _sql(path: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    db = sqlite3.connect(path)
    with db:
        db.execute(sql, params)
    db.close()


def _flip_blob_byte(path: Path, table: str, key_col: str, key: int, col: str, offset: int) -> None:
    db = sqlite3.connect(path)
    (blob,) = db.execute(f"SELECT {col} FROM {table} WHERE {key_col} = ?", (key,)).fetchone()
    b = bytearray(blob)
    b[offset] ^= 0x01
    with db:
        db.execute(f"UPDATE {table} SET {col} = ? WHERE {key_col} = ?", (bytes(b), key))
    db.close()


@pytest.mark.parametrize("index", [0, 1, 63, 64, 150, 299])
def test_tampered_entry_named(tmp_path: Path, index: int) -> None:
    path = tmp_path / "l.db"
    _build(path)
    _flip_blob_byte(path, "entries", "idx", index, "data", 3)
    report = audit(path)
    assert report.first_bad_index == index
    assert len([p for p in report.problems if p.index is not None]) == 1


@pytest.mark.parametrize(("level", "node"), [(0, 0), (0, 77), (1, 10), (3, 5), (6, 1), (8, 0)])
def test_tampered_node_named(tmp_path: Path, level: int, node: int) -> None:
    path = tmp_path / "l.db"
    _build(path)
    sid = (level << 48) | (node >> STRIP_BITS)
    _flip_blob_byte(path, "strips", "id", sid, "hashes", (node % 64) * 32 + 5)
    report = audit(path)
    assert report.first_bad_index == node << level, report.problems


def test_deleted_and_reordered_entries(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    _build(path)
    _sql(path, "DELETE FROM entries WHERE idx = 200")
    assert audit(path).first_bad_index == 200
    path2 = tmp_path / "l2.db"
    _build(path2)
    _sql(path2, "UPDATE entries SET idx = -1 WHERE idx = 40")
    _sql(path2, "UPDATE entries SET idx = 40 WHERE idx = 41")
    _sql(path2, "UPDATE entries SET idx = 41 WHERE idx = -1")
    assert audit(path2).first_bad_index == 40
    path3 = tmp_path / "l3.db"
    _build(path3)
    _sql(path3, "DELETE FROM entries WHERE idx = 299")  # truncation of the tail
    _sql(path3, "UPDATE meta SET size = 299")
    report = audit(path3)
    assert not report.ok
    assert any("truncated" in p.what for p in report.problems)


def test_checkpoint_tampering(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    _build(path)
    # A checkpoint signed by another key.
    intruder = SigningKey.generate(ORIGIN)
    with Ledger.open(path) as led:
        meta = led.store.meta()
        from robotaxi.ledger.note import Checkpoint

        led.store.add_checkpoint(meta.size, meta.root, Checkpoint(ORIGIN, meta.size, meta.root).sign(intruder))
    report = audit(path)
    assert any("not validly signed" in p.what for p in report.problems)
    assert report.first_bad_index is None


def test_fork_detected(tmp_path: Path) -> None:
    """Two checkpoints of the same size with different roots (a split view) are reported."""
    path = tmp_path / "l.db"
    key = _build(path, 10)
    from robotaxi.ledger.note import Checkpoint

    fake_root = bytes(32)
    with Ledger.open(path) as led:
        led.store.add_checkpoint(10, fake_root, Checkpoint(ORIGIN, 10, fake_root).sign(key))
    report = audit(path)
    assert any("forked" in p.what for p in report.problems)
    assert any("does not match the entries" in p.what for p in report.problems)


def test_checkpoint_note_byte_changed(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    _build(path)
    db = sqlite3.connect(path)
    (note,) = db.execute("SELECT note FROM checkpoints WHERE seq = 1").fetchone()
    with db:
        db.execute("UPDATE checkpoints SET note = ? WHERE seq = 1", (note.replace("\n150\n", "\n151\n"),))
    db.close()
    assert not audit(path).ok

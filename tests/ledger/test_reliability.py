"""Reliability: SIGKILL in the middle of appends, tampering with every kind of stored data, forks."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from robotaxi.ledger import Ledger, SigningKey, audit, canonical_json
from robotaxi.ledger.store import BUNDLE_BITS, STRIP_BITS, SQLiteStore, pack_bundle, unpack_bundle

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
            [sys.executable, "-c", CHILD, str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        assert proc.stdout is not None
        ready = proc.stdout.readline().split()
        if not ready:
            _, err = proc.communicate()
            pytest.fail(f"the appender died before it was ready (exit {proc.returncode}):\n{err}")
        assert ready[0] == "ready", ready
        assert int(ready[1]) >= acked
        time.sleep(rng.uniform(0.0, 0.1))
        proc.send_signal(signal.SIGKILL)
        out, _err = proc.communicate()
        kills += 1
        # Only whole lines count: a kill in the middle of writing "ack N" leaves a torn last line, which the parent
        # never received as an acknowledgement.
        whole = out.split("\n")[:-1]
        acks = [int(line.split()[1]) for line in whole if line.startswith("ack ")]
        if acks:
            acked = max(acked, acks[-1])
        with Ledger.open(path) as led:
            size = led.size
            # Durable before acknowledged, and atomic: at most the one batch in flight is extra, and whole.
            assert size in (acked, acked + BATCH), (size, acked)
            if size:  # a kill before the first commit leaves an empty, valid log
                assert led.entries(0, size)[-1] == _expected(size - 1)
            assert isinstance(led.store, SQLiteStore)
            assert led.store.stored_extent() == size
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


def _edit_bundle(path: Path, index: int, edit: Callable[[list[bytes], int], object]) -> None:
    """Apply ``edit(entries, position)`` to the bundle row holding entry ``index``."""
    db = sqlite3.connect(path)
    bid = index >> BUNDLE_BITS
    (blob,) = db.execute("SELECT data FROM bundles WHERE id = ?", (bid,)).fetchone()
    entries = unpack_bundle(blob)
    edit(entries, index - (bid << BUNDLE_BITS))
    with db:
        db.execute("UPDATE bundles SET data = ? WHERE id = ?", (pack_bundle(entries), bid))
    db.close()


def _flip_entry_byte(entries: list[bytes], k: int) -> None:
    b = bytearray(entries[k])
    b[3] ^= 0x01
    entries[k] = bytes(b)


@pytest.mark.parametrize("index", [0, 1, 63, 64, 150, 299])
def test_tampered_entry_named(tmp_path: Path, index: int) -> None:
    path = tmp_path / "l.db"
    _build(path)
    _edit_bundle(path, index, _flip_entry_byte)
    report = audit(path)
    assert report.first_bad_index == index
    assert len([p for p in report.problems if p.index is not None]) == 1


def test_every_byte_of_a_bundle(tmp_path: Path) -> None:
    """Flip each byte of a stored bundle row in turn (data and length prefixes): the audit always fails."""
    path = tmp_path / "l.db"
    _build(path, 70)
    db = sqlite3.connect(path)
    (blob,) = db.execute("SELECT data FROM bundles WHERE id = 1").fetchone()
    db.close()
    for offset in range(0, len(blob), 7):
        _flip_blob_byte(path, "bundles", "id", 1, "data", offset)
        report = audit(path)
        assert report.first_bad_index is not None
        assert report.first_bad_index >= 64
        _flip_blob_byte(path, "bundles", "id", 1, "data", offset)
    assert audit(path).ok


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
    _edit_bundle(path, 200, lambda entries, k: entries.pop(k))
    assert audit(path).first_bad_index == 200
    path2 = tmp_path / "l2.db"
    _build(path2)

    def swap(entries: list[bytes], k: int) -> None:
        entries[k], entries[k + 1] = entries[k + 1], entries[k]

    _edit_bundle(path2, 40, swap)
    assert audit(path2).first_bad_index == 40
    _sql(path2, "DELETE FROM bundles WHERE id = 2")
    assert audit(path2).first_bad_index == 40
    _sql(path2, "UPDATE bundles SET id = 2 WHERE id = 3")
    assert audit(path2).first_bad_index == 40
    path3 = tmp_path / "l3.db"
    _build(path3)
    _edit_bundle(path3, 299, lambda entries, k: entries.pop(k))  # truncation of the tail
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


def test_bytes_outside_any_entry(tmp_path: Path) -> None:
    """Trailing bytes or a surplus entry in a bundle row are stored data the tree does not cover: reported."""
    path = tmp_path / "l.db"
    _build(path)
    db = sqlite3.connect(path)
    (blob0,) = db.execute("SELECT data FROM bundles WHERE id = 0").fetchone()
    (blob1,) = db.execute("SELECT data FROM bundles WHERE id = 1").fetchone()
    db.close()
    _sql(path, "UPDATE bundles SET data = ? WHERE id = 0", (blob0 + b"\x00\x00\x00",))
    report = audit(path)
    assert report.first_bad_index == 63, report.problems
    # A copy of entry 64 smuggled in after entry 63: every entry still matches its leaf, yet the row changed.
    _sql(path, "UPDATE bundles SET data = ? WHERE id = 0", (blob0 + pack_bundle(unpack_bundle(blob1)[:1]),))
    report = audit(path)
    assert report.first_bad_index == 63, report.problems
    with Ledger.open(path) as led:
        assert led.entries(60, 70) == [canonical_json({"i": i}) for i in range(60, 70)]
    _sql(path, "UPDATE bundles SET data = ? WHERE id = 0", (blob0,))
    assert audit(path).ok


@pytest.mark.parametrize(
    ("sql", "first_bad"),
    [
        ("UPDATE bundles SET data = 'text' WHERE id = 1", 64),
        (f"UPDATE strips SET hashes = 'text' WHERE id = {(1 << 48) | 0}", 0),
        ("UPDATE checkpoints SET root = 'text' WHERE seq = 1", None),
        ("UPDATE checkpoints SET size = 'text' WHERE seq = 2", None),
        ("UPDATE meta SET verifier_key = 'not a key'", None),
    ],
)
def test_values_of_the_wrong_type(tmp_path: Path, sql: str, first_bad: int | None) -> None:
    """SQLite lets a tamperer store text where a blob or integer belongs: the audit reports it, never crashes."""
    path = tmp_path / "l.db"
    _build(path)
    _sql(path, sql)
    report = audit(path)
    assert not report.ok
    assert report.first_bad_index == first_bad, report.problems


def test_damaged_meta_row(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    _build(path)
    _sql(path, "UPDATE meta SET size = 'text'")
    report = audit(path)
    assert not report.ok
    assert "damaged" in str(report.problems[0])


def test_flipped_stored_checkpoint_root_reported_once(tmp_path: Path) -> None:
    """A byte flipped in a checkpoint's stored root is one finding (the stored copy), not also a fork."""
    path = tmp_path / "l.db"
    _build(path)
    _flip_blob_byte(path, "checkpoints", "seq", 1, "root", 3)
    report = audit(path)
    assert not report.ok
    assert len(report.problems) == 1, report.problems
    assert "differ from the signed note" in report.problems[0].what
    assert not any("forked" in p.what for p in report.problems)

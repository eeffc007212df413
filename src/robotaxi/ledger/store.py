"""Ledger storage: a small Protocol, and the default SQLite implementation (one file, WAL).

The store keeps, besides the entries, the hash of every *perfect* subtree of the tree (RFC 9162 nodes over
aligned power-of-two ranges of leaves), so any inclusion or consistency proof is O(log n) node reads and
never a rebuild. SQLite packs node hashes in *strips*: row ``(level << 48) | (index >> 6)`` holds up to 64
consecutive node hashes of one level, 2 KiB, which fits one 4 KiB page. Completed strips never change; the
last strip of each level grows by rewriting it. An append writes one row per entry, about 2 + n/32 strip
rows for n entries, and the meta row, in one transaction.

Durability: ``journal_mode=WAL`` with ``synchronous=FULL``, so the write-ahead log is fsynced when a
transaction commits, and :meth:`SQLiteStore.append` returns only after the commit. With ``NORMAL``, SQLite
fsyncs the WAL only at checkpoints: a process crash loses nothing, but a power cut or kernel panic can roll
back transactions that were already acknowledged, which a ledger must not do.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import LedgerError
from .merkle import EMPTY_ROOT, HASH_SIZE, NodeId

__all__ = ["LedgerMeta", "LedgerStore", "NodeRun", "SQLiteStore", "StoredCheckpoint"]

log = logging.getLogger(__name__)

STRIP_BITS = 6
STRIP_WIDTH = 1 << STRIP_BITS  # node hashes per strip row
_LEVEL_SHIFT = 48
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class LedgerMeta:
    """What identifies a log: its origin line, its verifier key (once known), and its state."""

    origin: str
    verifier_key: str | None
    size: int
    root: bytes


@dataclass(frozen=True, slots=True)
class NodeRun:
    """Consecutive new node hashes of one level: nodes ``(level, first) .. (level, first + len - 1)``."""

    level: int
    first: int
    hashes: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A signed checkpoint as the log stored it."""

    seq: int
    size: int
    root: bytes
    note: str
    created_ms: int


class LedgerStore(Protocol):
    """What the ledger needs from a database. Every method is one round trip or one transaction."""

    def meta(self) -> LedgerMeta:
        """Origin, verifier key, committed size and root."""
        ...

    def set_verifier_key(self, vkey: str) -> None:
        """Record the log's verifier key (once)."""
        ...

    def append(
        self, start: int, entries: Sequence[bytes], nodes: Sequence[NodeRun], new_size: int, new_root: bytes
    ) -> None:
        """Atomically and durably add entries ``start..`` and their nodes; fail if the size is not ``start``."""
        ...

    def get_nodes(self, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        """Hashes of stored perfect subtrees; :class:`LedgerError` if one is missing."""
        ...

    def get_entries(self, start: int, end: int) -> list[bytes]:
        """Entries ``start .. end - 1``."""
        ...

    def find_leaf(self, leaf_hash: bytes, size: int) -> int | None:
        """Lowest index below ``size`` whose leaf hash is ``leaf_hash``."""
        ...

    def add_checkpoint(self, size: int, root: bytes, note: str) -> StoredCheckpoint:
        """Store a signed checkpoint."""
        ...

    def checkpoints(self) -> list[StoredCheckpoint]:
        """Every stored checkpoint, oldest first."""
        ...

    def close(self) -> None:
        """Release the database."""
        ...


def _strip_id(level: int, index: int) -> int:
    return (level << _LEVEL_SHIFT) | (index >> STRIP_BITS)


_SCHEMA = """
CREATE TABLE meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    schema INTEGER NOT NULL,
    origin TEXT NOT NULL,
    verifier_key TEXT,
    size INTEGER NOT NULL,
    root BLOB NOT NULL
);
CREATE TABLE entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE strips (id INTEGER PRIMARY KEY, hashes BLOB NOT NULL);
CREATE TABLE checkpoints (
    seq INTEGER PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    note TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
"""


class SQLiteStore:
    """The default store: one SQLite file in WAL mode, fsynced at every commit.

    Parameters
    ----------
    path
        Database file.
    create
        Create the file and schema; refuse if it already holds a ledger.
    origin
        The log's origin line, when creating.
    """

    def __init__(self, path: str | Path, *, create: bool = False, origin: str = "") -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise LedgerError(f"no ledger at {self.path}", hint="create one with `robotaxi ledger init`")
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA cache_size=-65536")  # 64 MiB of page cache
            # Checkpoint the WAL into the database every ~40 MiB instead of every 4 MiB: fewer, longer
            # sequential writes. Durability does not depend on it (the WAL itself is fsynced).
            self._db.execute("PRAGMA wal_autocheckpoint=10000")
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as e:
            raise LedgerError(f"{self.path} is not a ledger database: {e}") from e
        if create:
            if "meta" in tables:
                raise LedgerError(f"{self.path} already holds a ledger")
            self._db.execute("BEGIN IMMEDIATE")
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    self._db.execute(stmt)
            self._db.execute("INSERT INTO meta VALUES (1, ?, ?, NULL, 0, ?)", (SCHEMA_VERSION, origin, EMPTY_ROOT))
            self._db.execute("COMMIT")
        elif "meta" not in tables:
            raise LedgerError(f"{self.path} is not a ledger database (no meta table)")

    # -- reading -----------------------------------------------------------------------------------------

    def meta(self) -> LedgerMeta:
        """Origin, verifier key, committed size and root."""
        row = self._db.execute("SELECT origin, verifier_key, size, root FROM meta WHERE id = 1").fetchone()
        if row is None:
            raise LedgerError(f"{self.path}: the meta row is missing")
        return LedgerMeta(row[0], row[1], int(row[2]), bytes(row[3]))

    def get_nodes(self, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        """Hashes of stored perfect subtrees, read strip by strip in one query."""
        strip_ids = sorted({_strip_id(lv, i) for lv, i in ids})
        marks = ",".join("?" * len(strip_ids))
        strips = dict(self._db.execute(f"SELECT id, hashes FROM strips WHERE id IN ({marks})", strip_ids))
        out: dict[NodeId, bytes] = {}
        for lv, i in ids:
            blob = strips.get(_strip_id(lv, i))
            off = (i & (STRIP_WIDTH - 1)) * HASH_SIZE
            h = bytes(blob[off : off + HASH_SIZE]) if blob is not None else b""
            if len(h) != HASH_SIZE:
                raise LedgerError(f"{self.path}: node ({lv}, {i}) is missing from the store")
            out[lv, i] = h
        return out

    def get_strips(self, level: int, first_strip: int, last_strip: int) -> bytes:
        """Concatenated strips ``first_strip..last_strip`` of ``level`` (auditing reads them in bulk)."""
        rows = self._db.execute(
            "SELECT hashes FROM strips WHERE id BETWEEN ? AND ? ORDER BY id",
            (_strip_id(level, first_strip << STRIP_BITS), _strip_id(level, last_strip << STRIP_BITS)),
        )
        return b"".join(bytes(r[0]) for r in rows)

    def get_entries(self, start: int, end: int) -> list[bytes]:
        """Entries ``start .. end - 1``; :class:`LedgerError` if one is missing."""
        rows = self._db.execute("SELECT idx, data FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end))
        out = [bytes(d) for _, d in rows]
        if len(out) != end - start:
            raise LedgerError(f"{self.path}: entries {start}..{end - 1} are not all stored")
        return out

    def iter_entries(self, start: int, end: int, chunk: int = 4096) -> Iterator[tuple[int, bytes]]:
        """``(index, entry)`` pairs as stored, in index order, read ``chunk`` at a time."""
        pos = start
        while pos < end:
            rows = self._db.execute(
                "SELECT idx, data FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx LIMIT ?", (pos, end, chunk)
            ).fetchall()
            if not rows:
                return
            for idx, data in rows:
                yield int(idx), bytes(data)
            pos = int(rows[-1][0]) + 1

    def count_entries(self) -> tuple[int, int]:
        """``(row count, highest index + 1)`` of the entries table."""
        n, top = self._db.execute("SELECT count(*), coalesce(max(idx) + 1, 0) FROM entries").fetchone()
        return int(n), int(top)

    def find_leaf(self, leaf_hash: bytes, size: int) -> int | None:
        """Lowest index below ``size`` with this leaf hash: a scan of the level-0 strips.

        The scan reads 32 bytes per entry (320 MB at 10 million entries) and keeps no index, so appends pay
        nothing for it; lookups by hash are rare (auditors hold an index or a proof).
        """
        last = _strip_id(0, max(size - 1, 0))
        rows = self._db.execute("SELECT id, hashes FROM strips WHERE id BETWEEN 0 AND ? ORDER BY id", (last,))
        for sid, blob in rows:
            view = bytes(blob)
            pos = view.find(leaf_hash)
            while pos >= 0:
                if pos % HASH_SIZE == 0:
                    idx = (int(sid) << STRIP_BITS) + pos // HASH_SIZE
                    return idx if idx < size else None
                pos = view.find(leaf_hash, pos + 1)
        return None

    def checkpoints(self) -> list[StoredCheckpoint]:
        """Every stored checkpoint, oldest first."""
        rows = self._db.execute("SELECT seq, size, root, note, created_ms FROM checkpoints ORDER BY seq")
        return [StoredCheckpoint(int(s), int(n), bytes(r), str(t), int(c)) for s, n, r, t, c in rows]

    # -- writing -----------------------------------------------------------------------------------------

    def set_verifier_key(self, vkey: str) -> None:
        """Record the log's verifier key (once)."""
        self._db.execute("UPDATE meta SET verifier_key = ? WHERE id = 1 AND verifier_key IS NULL", (vkey,))

    def append(
        self, start: int, entries: Sequence[bytes], nodes: Sequence[NodeRun], new_size: int, new_root: bytes
    ) -> None:
        """Add entries and nodes in one transaction; returns after the commit is on disk."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            (size,) = db.execute("SELECT size FROM meta WHERE id = 1").fetchone()
            if size != start:
                raise LedgerError(f"{self.path}: the log grew to {size} while appending at {start}; retry")
            db.executemany(
                "INSERT INTO entries (idx, data) VALUES (?, ?)", zip(range(start, new_size), entries, strict=True)
            )
            db.executemany("INSERT OR REPLACE INTO strips (id, hashes) VALUES (?, ?)", self._strip_rows(nodes))
            db.execute("UPDATE meta SET size = ?, root = ? WHERE id = 1", (new_size, new_root))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _strip_rows(self, nodes: Sequence[NodeRun]) -> Iterator[tuple[int, bytes]]:
        for run in nodes:
            first, hashes = run.first, run.hashes
            offset = first & (STRIP_WIDTH - 1)
            pos = 0
            if offset:
                # The level's last strip is partial: extend it (new hashes start where the strip ends).
                sid = _strip_id(run.level, first)
                row = self._db.execute("SELECT hashes FROM strips WHERE id = ?", (sid,)).fetchone()
                prefix = bytes(row[0])[: offset * HASH_SIZE] if row else b""
                if len(prefix) != offset * HASH_SIZE:
                    raise LedgerError(f"{self.path}: strip {sid:#x} is shorter than the tree says")
                pos = min(STRIP_WIDTH - offset, len(hashes))
                yield sid, prefix + b"".join(hashes[:pos])
            while pos < len(hashes):
                end = pos + STRIP_WIDTH
                yield _strip_id(run.level, first + pos), b"".join(hashes[pos:end])
                pos = end

    def add_checkpoint(self, size: int, root: bytes, note: str) -> StoredCheckpoint:
        """Store a signed checkpoint (durably)."""
        now = int(time.time() * 1000)
        cur = self._db.execute(
            "INSERT INTO checkpoints (size, root, note, created_ms) VALUES (?, ?, ?, ?)", (size, root, note, now)
        )
        seq = cur.lastrowid
        if seq is None:
            raise LedgerError(f"{self.path}: checkpoint was not stored")
        return StoredCheckpoint(seq, size, root, note, now)

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        """Run raw SQL (tests use it to tamper with a ledger); returns all rows."""
        return list(self._db.execute(sql, params))

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed by SQLite when the last connection closes)."""
        self._db.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Ledger storage: a small Protocol, and the default SQLite implementation (one file, WAL).

The store keeps, besides the entries, the hash of every *perfect* subtree of the tree (RFC 9162 nodes over
aligned power-of-two ranges of leaves), so any inclusion or consistency proof is O(log n) node reads and
never a rebuild. SQLite packs node hashes in *strips*: row ``(level << 48) | (index >> 6)`` holds up to 64
consecutive node hashes of one level, 2 KiB, which fits one 4 KiB page. Completed strips never change; the
last strip of each level grows by rewriting it. Entries are packed the same way, 64 to a *bundle* row
(each entry prefixed by its 4-byte big-endian length, like the entry bundles of C2SP tlog-tiles): an append
of n entries writes about n/64 bundle rows, 2 + n/32 strip rows and the meta row, in one transaction, on
16 KiB pages. Per-row overhead, not bytes, is what limits SQLite here: one row per 1 KiB entry on 4 KiB
pages ran at about half the speed.

Durability: ``journal_mode=WAL`` with ``synchronous=FULL``, so the write-ahead log is fsynced when a
transaction commits, and :meth:`SQLiteStore.append` returns only after the commit. With ``NORMAL``, SQLite
fsyncs the WAL only at checkpoints: a process crash loses nothing, but a power cut or kernel panic can roll
back transactions that were already acknowledged, which a ledger must not do.
"""

from __future__ import annotations

import logging
import sqlite3
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import LedgerError
from .merkle import EMPTY_ROOT, HASH_SIZE, NodeId

__all__ = ["IndexRun", "LedgerMeta", "LedgerStore", "NodeRun", "SQLiteStore", "StoredCheckpoint"]

log = logging.getLogger(__name__)

STRIP_BITS = 6
STRIP_WIDTH = 1 << STRIP_BITS  # node hashes per strip row
BUNDLE_BITS = 6
BUNDLE_WIDTH = 1 << BUNDLE_BITS  # entries per bundle row
PAGE_SIZE = 16384
_LEN = struct.Struct(">I")
_LEVEL_SHIFT = 48
SCHEMA_VERSION = 1
#: ``PRAGMA user_version`` of a ledger whose id index is complete (older files hold 0 and get it built).
INDEX_VERSION = 2


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


#: One id-index run as stored: row id, keys blob, offsets blob (see :mod:`robotaxi.ledger.idindex`).
IndexRun = tuple[int, bytes, bytes]


class LedgerStore(Protocol):
    """What the ledger needs from a database. Every method is one round trip or one transaction."""

    def meta(self) -> LedgerMeta:
        """Origin, verifier key, committed size and root."""
        ...

    def set_verifier_key(self, vkey: str) -> None:
        """Record the log's verifier key (once)."""
        ...

    def append(
        self,
        start: int,
        entries: Sequence[bytes],
        nodes: Sequence[NodeRun],
        new_size: int,
        new_root: bytes,
        index_put: Sequence[IndexRun] = (),
        index_drop: Sequence[int] = (),
    ) -> None:
        """Atomically and durably add entries ``start..``, their nodes and id-index runs (replacing
        ``index_drop``); fail if the size is not ``start``."""
        ...

    def index_ready(self) -> bool:
        """Whether the id index covers the log (a ledger written before it existed has none yet)."""
        ...

    def build_index(self, size: int, runs: Sequence[IndexRun]) -> None:
        """Replace the whole id index with ``runs`` for a log of ``size`` entries, in one transaction."""
        ...

    def index_run_ids(self) -> list[int]:
        """Ids of the stored id-index runs."""
        ...

    def get_index_runs(self, ids: Sequence[int]) -> dict[int, tuple[bytes, bytes]]:
        """``id -> (keys blob, offsets blob)`` of stored id-index runs."""
        ...

    def index_run_length(self, rid: int) -> int:
        """Number of keys in stored run ``rid`` (0 if there is none)."""
        ...

    def index_read(self, rid: int, column: str, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` of the ``keys`` or ``offsets`` blob of run ``rid``."""
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


def _blob(value: object) -> bytes | None:
    """A BLOB column's value, or ``None`` when the row holds another type (a damaged or altered row)."""
    return value if isinstance(value, bytes) else None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
CREATE TABLE bundles (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE strips (id INTEGER PRIMARY KEY, hashes BLOB NOT NULL);
CREATE TABLE checkpoints (
    seq INTEGER PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    note TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE idruns (id INTEGER PRIMARY KEY, keys BLOB NOT NULL, offsets BLOB NOT NULL);
"""

_INDEX_TABLE = "CREATE TABLE IF NOT EXISTS idruns (id INTEGER PRIMARY KEY, keys BLOB NOT NULL, offsets BLOB NOT NULL)"


def pack_bundle(entries: Sequence[bytes]) -> bytes:
    """Entries, each prefixed by its length as a 4-byte big-endian integer."""
    return b"".join(_LEN.pack(len(e)) + e for e in entries)


def unpack_bundle(blob: bytes) -> list[bytes]:
    """The entries of a bundle, up to the first inconsistent length prefix (a damaged tail is dropped)."""
    out: list[bytes] = []
    pos, n = 0, len(blob)
    while pos + 4 <= n:
        (length,) = _LEN.unpack_from(blob, pos)
        end = pos + 4 + length
        if end > n:
            break
        out.append(blob[pos + 4 : end])
        pos = end
    return out


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
            if create:
                self._db.execute(f"PRAGMA page_size={PAGE_SIZE}")  # only takes effect on a new file
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
            self._db.execute(f"PRAGMA user_version = {INDEX_VERSION}")
            self._db.execute("COMMIT")
        elif "meta" not in tables:
            raise LedgerError(f"{self.path} is not a ledger database (no meta table)")

    # -- reading -----------------------------------------------------------------------------------------

    def meta(self) -> LedgerMeta:
        """Origin, verifier key, committed size and root."""
        row = self._db.execute("SELECT origin, verifier_key, size, root FROM meta WHERE id = 1").fetchone()
        if row is None:
            raise LedgerError(f"{self.path}: the meta row is missing")
        origin, vkey, size, root = row
        if not (isinstance(origin, str) and isinstance(vkey, str | None) and _is_int(size) and isinstance(root, bytes)):
            raise LedgerError(f"{self.path}: the meta row is damaged (a value has the wrong type)")
        return LedgerMeta(origin, vkey, size, root)

    def get_nodes(self, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        """Hashes of stored perfect subtrees, read strip by strip in one query."""
        strip_ids = sorted({_strip_id(lv, i) for lv, i in ids})
        marks = ",".join("?" * len(strip_ids))
        strips = dict(self._db.execute(f"SELECT id, hashes FROM strips WHERE id IN ({marks})", strip_ids))
        out: dict[NodeId, bytes] = {}
        for lv, i in ids:
            blob = _blob(strips.get(_strip_id(lv, i)))
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
        return b"".join(_blob(r[0]) or b"" for r in rows)

    def bundle_rows(self, first: int, last: int) -> dict[int, bytes]:
        """Raw bundle rows ``first..last`` by id; a row whose data is not a blob is left out (unreadable)."""
        rows = self._db.execute("SELECT id, data FROM bundles WHERE id BETWEEN ? AND ?", (first, last))
        return {int(i): d for i, d in rows if isinstance(d, bytes)}

    def get_entries(self, start: int, end: int) -> list[bytes]:
        """Entries ``start .. end - 1``; :class:`LedgerError` if one is missing."""
        if end <= start:
            return []
        out = [e for _, e in self.iter_entries(start, end)]
        if len(out) != end - start:
            raise LedgerError(f"{self.path}: entries {start}..{end - 1} are not all stored")
        return out

    def iter_entries(self, start: int, end: int, chunk: int = 64) -> Iterator[tuple[int, bytes]]:
        """``(index, entry)`` of the entries stored and readable in ``start..end - 1``, in order.

        Missing bundles and unreadable tails of bundles are skipped (the audit reports the gaps).
        """
        first = start >> BUNDLE_BITS
        last = (end - 1) >> BUNDLE_BITS
        for lo in range(first, last + 1, chunk):
            bundles = self.bundle_rows(lo, min(lo + chunk - 1, last))
            for bid in sorted(bundles):
                base = bid << BUNDLE_BITS
                # A bundle holds at most BUNDLE_WIDTH entries: anything past them is not entry base + k.
                for k, data in enumerate(unpack_bundle(bundles[bid])[:BUNDLE_WIDTH]):
                    if start <= base + k < end:
                        yield base + k, data

    def stored_extent(self) -> int:
        """One past the highest entry index held by the bundles table (equals the size when intact)."""
        row = self._db.execute("SELECT id, data FROM bundles ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return 0
        return (int(row[0]) << BUNDLE_BITS) + len(unpack_bundle(_blob(row[1]) or b""))

    def find_leaf(self, leaf_hash: bytes, size: int) -> int | None:
        """Lowest index below ``size`` with this leaf hash: a scan of the level-0 strips.

        The scan reads 32 bytes per entry (320 MB at 10 million entries) and keeps no index, so appends pay
        nothing for it; lookups by hash are rare (auditors hold an index or a proof).
        """
        last = _strip_id(0, max(size - 1, 0))
        rows = self._db.execute("SELECT id, hashes FROM strips WHERE id BETWEEN 0 AND ? ORDER BY id", (last,))
        for sid, blob in rows:
            view = _blob(blob) or b""
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
        out = []
        for s, n, r, t, c in rows:
            if not (_is_int(s) and _is_int(n) and isinstance(r, bytes) and isinstance(t, str) and _is_int(c)):
                raise LedgerError(f"{self.path}: checkpoint #{s} is damaged (a value has the wrong type)")
            out.append(StoredCheckpoint(s, n, r, t, c))
        return out

    # -- writing -----------------------------------------------------------------------------------------

    def set_verifier_key(self, vkey: str) -> None:
        """Record the log's verifier key (once)."""
        self._db.execute("UPDATE meta SET verifier_key = ? WHERE id = 1 AND verifier_key IS NULL", (vkey,))

    def append(
        self,
        start: int,
        entries: Sequence[bytes],
        nodes: Sequence[NodeRun],
        new_size: int,
        new_root: bytes,
        index_put: Sequence[IndexRun] = (),
        index_drop: Sequence[int] = (),
    ) -> None:
        """Add entries, nodes and id-index runs in one transaction; returns after the commit is on disk."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            (size,) = db.execute("SELECT size FROM meta WHERE id = 1").fetchone()
            if size != start:
                raise LedgerError(f"{self.path}: the log grew to {size} while appending at {start}; retry")
            db.executemany("INSERT OR REPLACE INTO bundles (id, data) VALUES (?, ?)", self._bundle_rows(start, entries))
            db.executemany("INSERT OR REPLACE INTO strips (id, hashes) VALUES (?, ?)", self._strip_rows(nodes))
            if index_drop:
                db.executemany("DELETE FROM idruns WHERE id = ?", [(i,) for i in index_drop])
            if index_put:
                db.executemany("INSERT OR REPLACE INTO idruns (id, keys, offsets) VALUES (?, ?, ?)", index_put)
            db.execute("UPDATE meta SET size = ?, root = ? WHERE id = 1", (new_size, new_root))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _bundle_rows(self, start: int, entries: Sequence[bytes]) -> Iterator[tuple[int, bytes]]:
        offset = start & (BUNDLE_WIDTH - 1)
        pos = 0
        if offset:
            bid = start >> BUNDLE_BITS
            row = self._db.execute("SELECT data FROM bundles WHERE id = ?", (bid,)).fetchone()
            prefix = (_blob(row[0]) or b"") if row else b""
            if len(unpack_bundle(prefix)) != offset:
                raise LedgerError(f"{self.path}: bundle {bid} does not hold the {offset} entries the size says")
            pos = min(BUNDLE_WIDTH - offset, len(entries))
            yield bid, prefix + pack_bundle(entries[:pos])
        while pos < len(entries):
            end = pos + BUNDLE_WIDTH
            yield (start + pos) >> BUNDLE_BITS, pack_bundle(entries[pos:end])
            pos = end

    def _strip_rows(self, nodes: Sequence[NodeRun]) -> Iterator[tuple[int, bytes]]:
        for run in nodes:
            first, hashes = run.first, run.hashes
            offset = first & (STRIP_WIDTH - 1)
            pos = 0
            if offset:
                # The level's last strip is partial: extend it (new hashes start where the strip ends).
                sid = _strip_id(run.level, first)
                row = self._db.execute("SELECT hashes FROM strips WHERE id = ?", (sid,)).fetchone()
                prefix = (_blob(row[0]) or b"")[: offset * HASH_SIZE] if row else b""
                if len(prefix) != offset * HASH_SIZE:
                    raise LedgerError(f"{self.path}: strip {sid:#x} is shorter than the tree says")
                pos = min(STRIP_WIDTH - offset, len(hashes))
                yield sid, prefix + b"".join(hashes[:pos])
            while pos < len(hashes):
                end = pos + STRIP_WIDTH
                yield _strip_id(run.level, first + pos), b"".join(hashes[pos:end])
                pos = end

    # -- id index ----------------------------------------------------------------------------------------

    def index_ready(self) -> bool:
        """Whether the id index covers the log (files written before it existed get it built once)."""
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        return bool(version >= INDEX_VERSION)

    def build_index(self, size: int, runs: Sequence[IndexRun]) -> None:
        """Replace the whole id index with ``runs`` for a log of ``size`` entries, in one transaction."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            (now,) = db.execute("SELECT size FROM meta WHERE id = 1").fetchone()
            if now != size:
                raise LedgerError(f"{self.path}: the log grew to {now} while its id index was built; retry")
            db.execute(_INDEX_TABLE)
            db.execute("DELETE FROM idruns")
            db.executemany("INSERT INTO idruns (id, keys, offsets) VALUES (?, ?, ?)", runs)
            db.execute(f"PRAGMA user_version = {INDEX_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def index_run_ids(self) -> list[int]:
        """Ids of the stored id-index runs (none before the index is built)."""
        if not self.index_ready():
            return []
        return [int(r[0]) for r in self._db.execute("SELECT id FROM idruns ORDER BY id")]

    def get_index_runs(self, ids: Sequence[int]) -> dict[int, tuple[bytes, bytes]]:
        """``id -> (keys, offsets)`` of stored runs; a row whose values are not blobs is left out."""
        out: dict[int, tuple[bytes, bytes]] = {}
        for pos in range(0, len(ids), 500):
            chunk = list(ids[pos : pos + 500])
            marks = ",".join("?" * len(chunk))
            for i, k, o in self._db.execute(f"SELECT id, keys, offsets FROM idruns WHERE id IN ({marks})", chunk):
                if isinstance(k, bytes) and isinstance(o, bytes):
                    out[int(i)] = (k, o)
        return out

    def index_run_length(self, rid: int) -> int:
        """Number of keys in stored run ``rid`` (0 if there is none or it is damaged)."""
        row = self._db.execute("SELECT length(keys), length(offsets) FROM idruns WHERE id = ?", (rid,)).fetchone()
        if row is None or not _is_int(row[0]) or row[0] % 8 or row[1] != row[0] // 2:
            return 0
        return int(row[0]) // 8

    def index_read(self, rid: int, column: str, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` of a run's ``keys`` or ``offsets`` blob (incremental blob I/O)."""
        if column not in ("keys", "offsets"):
            raise LedgerError(f"no index column {column!r}")
        with self._db.blobopen("idruns", column, rid, readonly=True) as blob:
            blob.seek(offset)
            return blob.read(length)

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

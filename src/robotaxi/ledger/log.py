"""The ledger: an append-only RFC 9162 log of canonical JSON entries, with signed checkpoints and proofs.

Typical use at the end of a simulation run::

    from robotaxi.ledger import Ledger, SigningKey, TripRecord

    key = SigningKey.from_file("ledger.key")
    with Ledger.open_or_create("run.ledger", origin=key.name) as ledger:
        first = ledger.append_records(trips)        # durable when it returns
        note = ledger.sign_checkpoint(key)          # C2SP signed checkpoint text
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import LedgerError
from .ids import RecordId, entry_id, id_key, record_id, run_id, run_pieces
from .merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    hash_leaf,
    perfect_pieces,
    prove_consistency,
    prove_inclusion,
    root_of,
)
from .note import Checkpoint, SigningKey, VerifierKey, open_checkpoint
from .records import BlobDigest, LedgerRecord, SafetyEvent, TripRecord, read_jsonl, record_bytes
from .store import LedgerStore, NodeRun, SQLiteStore, StoredCheckpoint

if TYPE_CHECKING:
    from .idindex import IdIndex

__all__ = ["DEFAULT_ORIGIN", "AppendResult", "DuplicateIdError", "Ledger"]

log = logging.getLogger(__name__)

#: Origin line (and key name) used when none is given: C2SP suggests a schema-less URL of the log.
DEFAULT_ORIGIN = "robotaxi.local/ledger"

_sha256 = hashlib.sha256


def _leaf_hashes(entries: Sequence[bytes]) -> list[bytes]:
    # hash_leaf inlined: this is the append hot path (RFC 9162 2.1.1, leaf = SHA-256(0x00 || data)).
    zero = _sha256(b"\x00")
    out = []
    for data in entries:
        h = zero.copy()
        h.update(data)
        out.append(h.digest())
    return out


def compute_new_nodes(size: int, leaf_hashes: list[bytes], frontier: Mapping[int, bytes]) -> list[NodeRun]:
    """Every perfect subtree completed by appending ``leaf_hashes`` to a tree of ``size`` leaves.

    Parameters
    ----------
    size
        Leaves before the append.
    leaf_hashes
        The new leaves' hashes.
    frontier
        ``level -> hash`` of the tree's compact range: the perfect subtree ending at ``size`` on each level
        whose bit is set in ``size`` (the left sibling a new node may need).
    """
    runs = [NodeRun(0, size, tuple(leaf_hashes))]
    level, first, row = 0, size, leaf_hashes
    while True:
        if first & 1:  # the first new node is a right child: its left sibling is already stored
            row = [frontier[level], *row]
            first -= 1
        if len(row) < 2:
            return runs
        parents = [_sha256(b"\x01" + row[i] + row[i + 1]).digest() for i in range(0, len(row) - 1, 2)]
        level += 1
        first >>= 1
        row = parents
        runs.append(NodeRun(level, first, tuple(parents)))


def _fold_root(pieces: Sequence[bytes]) -> bytes:
    if not pieces:
        return EMPTY_ROOT
    acc = pieces[-1]
    for h in reversed(pieces[:-1]):
        acc = _sha256(b"\x01" + h + acc).digest()
    return acc


class AppendResult(NamedTuple):
    """What an append did.

    Attributes
    ----------
    first : int
        Index of the first appended entry (the ledger's size before the append).
    appended : int
        Entries appended.
    skipped : int
        Trips and safety events left out because the same record (same id, same bytes) was already in the
        ledger or earlier in the batch.
    """

    first: int
    appended: int
    skipped: int


class DuplicateIdError(LedgerError):
    """A trip or safety event reuses an id the ledger (or the batch) already holds with different content."""

    def __init__(self, clashes: list[str]) -> None:
        self.clashes = clashes
        shown = "; ".join(clashes[:5]) + (f" (and {len(clashes) - 5} more)" if len(clashes) > 5 else "")
        super().__init__(
            f"{len(clashes)} record(s) reuse an id with different content: {shown}",
            hint="nothing was appended; an id names one record, recorded once",
        )


def _record_id(record: LedgerRecord | Mapping[str, Any]) -> RecordId | None:
    if isinstance(record, TripRecord):
        return ("trip", record.trip_id)
    if isinstance(record, SafetyEvent):
        return ("safety_event", record.event_id)
    if isinstance(record, BlobDigest):
        return None
    return record_id(record)


def _check_key_name(verifier: VerifierKey, origin: str) -> None:
    if verifier.name != origin:
        raise LedgerError(
            f"key {verifier.name!r} cannot sign for the ledger {origin!r}",
            hint="the key name must equal the ledger origin",
        )


class Ledger:
    """An append-only, tamper-evident log of trips, safety events and blob digests.

    Open one with :meth:`create`, :meth:`open` or :meth:`open_or_create`; it is a context manager. One
    process appends at a time (SQLite's write lock serialises writers; a writer that finds the log grown
    under it gets a :class:`~robotaxi.errors.LedgerError` and can retry).

    Parameters
    ----------
    store
        Where entries, nodes and checkpoints live (:class:`~robotaxi.ledger.store.SQLiteStore`).
    """

    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        meta = store.meta()
        self.origin = meta.origin
        self._id_index: IdIndex | None = None

    @property
    def _ids(self) -> IdIndex:
        # Imported on first use: NumPy is not needed to open a ledger or append entries without ids.
        if self._id_index is None:
            from .idindex import IdIndex

            self._id_index = IdIndex(self.store)
        return self._id_index

    # -- opening -----------------------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | Path, *, origin: str = DEFAULT_ORIGIN, verifier: VerifierKey | None = None) -> Ledger:
        """Create a new, empty ledger file.

        Parameters
        ----------
        path
            SQLite file to create.
        origin
            The log's name, the first line of every checkpoint; signing keys must carry this name.
        verifier
            The public key checkpoints will be signed with; if omitted, the first signing key is recorded.
        """
        if not origin or "\n" in origin:
            raise LedgerError("the origin must be one non-empty line")
        if Path(path).exists() and Path(path).stat().st_size > 0:
            raise LedgerError(f"{path} already exists", hint="open it instead, or pick another path")
        if verifier is not None:
            # Checked before the file exists: a refused key must not leave a keyless ledger behind.
            _check_key_name(verifier, origin)
        ledger = cls(SQLiteStore(path, create=True, origin=origin))
        if verifier is not None:
            ledger._bind_key(verifier)
        log.info("created ledger %s (origin %s)", path, origin)
        return ledger

    @classmethod
    def open(cls, path: str | Path) -> Ledger:
        """Open an existing ledger file."""
        return cls(SQLiteStore(path))

    @classmethod
    def open_or_create(
        cls, path: str | Path, *, origin: str = DEFAULT_ORIGIN, verifier: VerifierKey | None = None
    ) -> Ledger:
        """Open the ledger at ``path``, creating it (with ``origin``) if the file does not exist."""
        p = Path(path)
        if p.exists() and p.stat().st_size > 0:
            ledger = cls.open(p)
            if ledger.origin != origin:
                raise LedgerError(f"{p} is the ledger {ledger.origin!r}, not {origin!r}")
            return ledger
        return cls.create(p, origin=origin, verifier=verifier)

    def close(self) -> None:
        """Close the underlying store."""
        self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state -------------------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Number of committed entries."""
        return self.store.meta().size

    @property
    def verifier(self) -> VerifierKey | None:
        """The public key checkpoints are signed with (``None`` until one is known)."""
        text = self.store.meta().verifier_key
        return VerifierKey.parse(text) if text else None

    def root(self, size: int | None = None) -> bytes:
        """RFC 9162 root hash of the first ``size`` entries (default: all)."""
        n = self._check_size(size)
        return root_of(self.store, n)

    def _check_size(self, size: int | None) -> int:
        current = self.size
        if size is None:
            return current
        if not 0 <= size <= current:
            raise LedgerError(f"tree size {size} is outside 0..{current}")
        return size

    # -- appending ---------------------------------------------------------------------------------------

    def append(self, entries: Sequence[bytes]) -> int:
        """Append raw entries as one atomic batch; return the index of the first appended entry.

        The batch is on disk (committed, WAL fsynced) when this returns; if anything fails, none of it is.
        Entries that are trip or safety-event JSON objects are idempotent by their id: one already in the
        ledger with the same bytes is skipped, and one with different bytes fails the whole batch
        (:class:`DuplicateIdError`). Use :meth:`append_records` for records and JSON objects (it canonicalises
        them) and :meth:`add` to learn how many were skipped.
        """
        return self.add(entries).first

    def add(self, entries: Sequence[bytes]) -> AppendResult:
        """Like :meth:`append`, returning what was appended and what was skipped."""
        for i, e in enumerate(entries):
            if not isinstance(e, bytes | bytearray | memoryview):
                raise LedgerError(f"entry {i} of the batch is {type(e).__name__}, not bytes")
        batch = [bytes(e) for e in entries]
        return self._append(batch, [entry_id(e) for e in batch])

    def _append(self, batch: list[bytes], ids: Sequence[RecordId | None], chunk: int | None = None) -> AppendResult:
        start = self.size
        kept, kept_keys, skipped = self._dedupe(batch, ids, start)
        step = chunk or max(len(kept), 1)
        for pos in range(0, len(kept), step):
            self._commit(kept[pos : pos + step], kept_keys[pos : pos + step])
        if skipped:
            log.info("skipped %d records already in the ledger", skipped)
        return AppendResult(start, len(kept), skipped)

    def _dedupe(
        self, batch: list[bytes], ids: Sequence[RecordId | None], size: int
    ) -> tuple[list[bytes], list[int | None], int]:
        """The entries not yet in the ledger and their index keys; raise DuplicateIdError, before any write,
        on a clash."""
        keys_all = [None if rid is None else id_key(rid) for rid in ids]
        first_pos: dict[RecordId, int] = {}
        keep = [True] * len(batch)
        clashes: list[str] = []
        for pos, rid in enumerate(ids):
            if rid is None:
                continue
            seen = first_pos.setdefault(rid, pos)
            if seen != pos:
                keep[pos] = False
                if batch[seen] != batch[pos]:
                    clashes.append(f"{rid[0]} {rid[1]!r} twice in the batch (entries {seen} and {pos} of it)")
        if first_pos and size:
            self._ensure_index()
            uniq = list(first_pos.items())
            import numpy as np

            keys = np.fromiter((keys_all[pos] or 0 for _, pos in uniq), dtype=np.uint64, count=len(uniq))
            found = [(q, i) for q, i in self._ids.candidates(keys) if i < size]
            stored = self._entries_at(sorted({i for _, i in found}))
            for q, i in found:
                rid, pos = uniq[q]
                if entry_id(stored[i]) != rid or not keep[pos]:
                    continue  # a 64-bit key shared by two ids, or already matched
                keep[pos] = False
                if stored[i] != batch[pos]:
                    clashes.append(f"{rid[0]} {rid[1]!r} is entry {i} with different content")
        if clashes:
            raise DuplicateIdError(clashes)
        kept = [e for e, k in zip(batch, keep, strict=True) if k]
        kept_keys = [key for key, k in zip(keys_all, keep, strict=True) if k]
        return kept, kept_keys, len(batch) - len(kept)

    def _entries_at(self, indices: list[int]) -> dict[int, bytes]:
        """Entries at sorted ``indices``, read in runs of nearby indices."""
        out: dict[int, bytes] = {}
        pos = 0
        while pos < len(indices):
            end = pos
            while end + 1 < len(indices) and indices[end + 1] - indices[pos] < 256:
                end += 1
            lo, hi = indices[pos], indices[end] + 1
            got = self.store.get_entries(lo, hi)
            for i in indices[pos : end + 1]:
                out[i] = got[i - lo]
            pos = end + 1
        return out

    def _ensure_index(self) -> None:
        """Build the id index of a ledger written before it existed (once, in one transaction)."""
        if self.store.index_ready():
            return
        size = self.size
        step = 1 << 16
        pairs = (
            (i, e)
            for lo in range(0, size, step)
            for i, e in enumerate(self.store.get_entries(lo, min(size, lo + step)), lo)
        )
        self.store.build_index(size, self._ids.build(pairs, size))
        log.info("built the id index of %d entries", size)

    def _runs_to_merge(self, old_size: int, new_size: int) -> bool:
        """Whether growing to ``new_size`` merges a stored id-index run (else entries without ids skip the index)."""
        gone = {run_id(lv, i) for lv, i in run_pieces(old_size)}.difference(
            run_id(lv, i) for lv, i in run_pieces(new_size)
        )
        return bool(gone.intersection(self.store.index_run_ids()))

    def _commit(self, batch: list[bytes], keys: Sequence[int | None]) -> int:
        if not batch:
            return self.size
        leaves = _leaf_hashes(batch)
        start = self.size
        pieces = perfect_pieces(0, start)
        got = self.store.get_nodes(pieces) if pieces else {}
        frontier = {lv: got[lv, i] for lv, i in pieces}
        runs = compute_new_nodes(start, leaves, frontier)
        new_size = start + len(batch)
        new_root = _fold_root(self._frontier_after(new_size, runs, frontier))
        fresh = [(start + k, key) for k, key in enumerate(keys) if key is not None]
        if fresh:
            self._ensure_index()
        if self.store.index_ready() and (fresh or self._runs_to_merge(start, new_size)):
            puts, drops = self._ids.plan(start, new_size, fresh)
        else:  # an older ledger without the index, and nothing to index: it gets built when first needed
            puts, drops = [], []
        self.store.append(start, batch, runs, new_size, new_root, puts, drops)
        if puts or drops:
            self._ids.committed()
        log.debug("appended %d entries at %d", len(batch), start)
        return start

    @staticmethod
    def _frontier_after(size: int, runs: Sequence[NodeRun], old: Mapping[int, bytes]) -> list[bytes]:
        """Hashes of the compact range of ``[0, size)`` from the old frontier and the new nodes."""
        by_level = {r.level: r for r in runs}
        out = []
        for lv, i in perfect_pieces(0, size):
            run = by_level.get(lv)
            if run is not None and run.first <= i < run.first + len(run.hashes):
                out.append(run.hashes[i - run.first])
            else:
                out.append(old[lv])
        return out

    def append_records(self, records: Iterable[LedgerRecord | Mapping[str, Any]]) -> int:
        """Append trip / safety-event / blob records or JSON objects as one batch; return the first new index.

        Trips and safety events already in the ledger (same id, same content) are skipped, so re-recording a
        run appends only what is missing; :meth:`add_records` also says how many were skipped.

        Raises
        ------
        LedgerError
            If any record cannot be canonicalised (nothing is appended).
        DuplicateIdError
            If a trip or safety event reuses a recorded id with different content (nothing is appended).
        """
        return self.add_records(records).first

    def add_records(self, records: Iterable[LedgerRecord | Mapping[str, Any]]) -> AppendResult:
        """Like :meth:`append_records`, returning what was appended and what was skipped."""
        batch: list[bytes] = []
        ids: list[RecordId | None] = []
        for i, r in enumerate(records):
            try:
                batch.append(record_bytes(r))
            except ValueError as e:
                raise LedgerError(f"record {i} of the batch: {e}", hint="nothing was appended") from e
            ids.append(_record_id(r))
        return self._append(batch, ids)

    def append_jsonl(self, path: str | Path, batch_size: int = 10_000) -> AppendResult:
        """Append a JSON-lines file; return ``(first index, count appended, count skipped)``.

        The whole file is validated first: one malformed line, or a trip / safety event that reuses a
        recorded id with different content, rejects the file (every bad line number is listed) and nothing
        is appended. Records already in the ledger are skipped. The rest is appended in batches of
        ``batch_size`` entries.
        """
        entries = read_jsonl(path)
        return self._append(entries, [entry_id(e) for e in entries], chunk=batch_size)

    def find_id(self, kind: str, ident: str) -> int | None:
        """Index of the trip (``kind="trip"``) or safety event (``"safety_event"``) with this id, or ``None``.

        A search of the id index, never a scan of the log (an older ledger gets its index built once).
        """
        self._ensure_index()
        import numpy as np

        rid = (kind, ident)
        keys = np.array([id_key(rid)], dtype=np.uint64)
        size = self.size
        for i in sorted(i for _, i in self._ids.candidates(keys) if i < size):
            if entry_id(self.store.get_entries(i, i + 1)[0]) == rid:
                return i
        return None

    # -- reading -----------------------------------------------------------------------------------------

    def entry(self, index: int) -> bytes:
        """The entry at ``index``."""
        if not 0 <= index < self.size:
            raise LedgerError(f"no entry {index}; the ledger holds {self.size}")
        return self.store.get_entries(index, index + 1)[0]

    def entries(self, start: int, end: int) -> list[bytes]:
        """Entries ``start .. end - 1``."""
        if not 0 <= start <= end <= self.size:
            raise LedgerError(f"range {start}..{end} is outside the ledger of {self.size}")
        return self.store.get_entries(start, end)

    def find(self, entry_or_hash: bytes) -> int | None:
        """Index of an entry, given its bytes or its 32-byte RFC 9162 leaf hash (``None`` if absent).

        A trip or safety event given by its bytes is found through the id index; anything else by a scan of
        the leaf hashes.
        """
        rid = entry_id(entry_or_hash) if len(entry_or_hash) != HASH_SIZE else None
        if rid is not None:
            i = self.find_id(*rid)
            return i if i is not None and self.entry(i) == entry_or_hash else None
        h = entry_or_hash if len(entry_or_hash) == HASH_SIZE else hash_leaf(entry_or_hash)
        return self.store.find_leaf(h, self.size)

    # -- proofs ------------------------------------------------------------------------------------------

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size`` entries (default: all)."""
        n = self._check_size(size)
        if not 0 <= index < n:
            raise LedgerError(f"entry {index} is not in a tree of size {n}")
        return prove_inclusion(self.store, index, n)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """RFC 9162 consistency proof from the tree of ``size1`` entries to that of ``size2`` (default: all)."""
        n = self._check_size(size2)
        if not 0 < size1 <= n:
            raise LedgerError(f"no consistency proof from size {size1} to {n} (the first size must be 1..{n})")
        return prove_consistency(self.store, size1, n)

    # -- checkpoints -------------------------------------------------------------------------------------

    def _bind_key(self, verifier: VerifierKey) -> None:
        _check_key_name(verifier, self.origin)
        known = self.verifier
        if known is None:
            self.store.set_verifier_key(str(verifier))
        elif known != verifier:
            raise LedgerError(f"this ledger is signed by {known}, not by {verifier}")

    def sign_checkpoint(self, key: SigningKey) -> str:
        """Sign and store a checkpoint of the current tree; return the signed note text.

        The first key that signs becomes the ledger's key; later checkpoints must use the same key.
        """
        self._bind_key(key.verifier())
        meta = self.store.meta()
        note = Checkpoint(self.origin, meta.size, meta.root).sign(key)
        self.store.add_checkpoint(meta.size, meta.root, note)
        log.info("signed checkpoint of %s at size %d", self.origin, meta.size)
        return note

    def checkpoints(self) -> list[StoredCheckpoint]:
        """Stored checkpoints, oldest first."""
        return self.store.checkpoints()

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """The most recent stored checkpoint."""
        cps = self.store.checkpoints()
        return cps[-1] if cps else None

    def open_checkpoint(self, note: str) -> Checkpoint:
        """Verify a signed checkpoint of this ledger with its key."""
        v = self.verifier
        if v is None:
            raise LedgerError("this ledger has no key yet", hint="sign a checkpoint first")
        return open_checkpoint(note, v, self.origin)

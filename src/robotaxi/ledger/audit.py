"""Audit a ledger file: recompute the tree from the entries and check every stored hash and checkpoint.

Every stored leaf hash is compared with ``SHA-256(0x00 || entry)``, and every stored interior node with
the hash of its two stored children, level by level. A mismatch is reported only where it starts (both
children check out but the parent does not; or the entry does not match its leaf hash), so one altered byte
yields exactly one problem, at the first entry index the altered data covers. Once the nodes are known to
be consistent with the entries, the root at every checkpointed size is recomputed from them and compared
with the signed checkpoint, whose signature is checked against the ledger's key.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import LedgerError, VerificationError
from .merkle import HASH_SIZE, hash_children, hash_leaf, root_of
from .note import VerifierKey, open_checkpoint
from .store import BUNDLE_BITS, BUNDLE_WIDTH, STRIP_BITS, SQLiteStore, StoredCheckpoint, unpack_bundle

__all__ = ["AuditProblem", "AuditReport", "audit"]

log = logging.getLogger(__name__)

_CHUNK_LEVEL = 12  # entries are re-hashed in aligned chunks of 4096 (a multiple of the strip width)


@dataclass(frozen=True, slots=True)
class AuditProblem:
    """One inconsistency: the first entry index it concerns (``None`` for log-wide ones) and what it is."""

    index: int | None
    what: str

    def __str__(self) -> str:
        return f"index {self.index}: {self.what}" if self.index is not None else self.what


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The outcome of :func:`audit`."""

    path: str
    size: int
    checkpoints_checked: int
    problems: tuple[AuditProblem, ...]

    @property
    def ok(self) -> bool:
        """Whether nothing was found."""
        return not self.problems

    @property
    def first_bad_index(self) -> int | None:
        """Lowest entry index that does not verify, if any problem concerns an entry."""
        indices = [p.index for p in self.problems if p.index is not None]
        return min(indices) if indices else None


def _split(blob: bytes) -> list[bytes]:
    return [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]


class _Auditor:
    def __init__(self, store: SQLiteStore, size: int) -> None:
        self.store = store
        self.size = size
        self.problems: list[AuditProblem] = []
        self.top_hashes: list[bytes] = []  # stored nodes at _CHUNK_LEVEL, one per full chunk
        self.top_flags: list[bool] = []

    def report(self, index: int | None, what: str) -> None:
        self.problems.append(AuditProblem(index, what))

    def stored_level(self, level: int, first: int, count: int) -> list[bytes]:
        """Stored hashes of nodes ``first .. first + count - 1`` at ``level`` (short if some are missing)."""
        if count <= 0:
            return []
        lo, hi = first >> STRIP_BITS, (first + count - 1) >> STRIP_BITS
        blob = self.store.get_strips(level, lo, hi)
        skip = (first - (lo << STRIP_BITS)) * HASH_SIZE
        return _split(blob[skip : skip + count * HASH_SIZE])

    def check_parents(
        self, level: int, first: int, stored: list[bytes], flags: list[bool]
    ) -> tuple[list[bytes], list[bool]]:
        """Check stored level ``level + 1`` nodes over complete pairs of ``stored`` (level ``level``)."""
        pairs = len(stored) // 2
        parents = self.stored_level(level + 1, first >> 1, pairs)
        out_flags: list[bool] = []
        for j in range(pairs):
            index = (first + 2 * j) << level
            bad_child = flags[2 * j] or flags[2 * j + 1]
            if j >= len(parents):
                if not bad_child:
                    self.report(index, f"stored node at level {level + 1} is missing")
                out_flags.append(True)
                parents.append(b"")
                continue
            mismatch = parents[j] != hash_children(stored[2 * j], stored[2 * j + 1])
            if mismatch and not bad_child:
                self.report(index, f"stored node at level {level + 1} does not match its children")
            out_flags.append(mismatch or bad_child)
        return parents[:pairs], out_flags

    def chunk_entries(self, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        """``(index, entry)`` of the readable entries in ``start..end - 1``; report malformed bundle rows.

        A bundle row must be exactly its entries, each behind its length prefix, and at most
        ``BUNDLE_WIDTH`` of them: trailing bytes or surplus entries are data the tree does not cover, which
        the entries-versus-leaves comparison alone would never see.
        """
        rows = self.store.bundle_rows(start >> BUNDLE_BITS, (end - 1) >> BUNDLE_BITS)
        for bid in sorted(rows):
            base, blob = bid << BUNDLE_BITS, rows[bid]
            entries = unpack_bundle(blob)
            want = min(BUNDLE_WIDTH, self.size - base)
            used = sum(4 + len(e) for e in entries)
            if used != len(blob):
                at = base + min(len(entries), want - 1)
                self.report(at, f"bundle {bid} holds {len(blob) - used} bytes that are not a whole entry")
            elif len(entries) > want and base + BUNDLE_WIDTH < self.size:  # the last bundle: see stored_extent
                self.report(base + want - 1, f"bundle {bid} holds {len(entries)} entries, more than {want}")
            for k, data in enumerate(entries[:want]):
                if start <= base + k < end:
                    yield base + k, data

    def check_chunk(self, start: int, end: int, leaf_hash: Callable[[bytes], bytes]) -> None:
        stored = self.stored_level(0, start, end - start)
        flags = [False] * (end - start)
        expected = start
        for idx, data in self.chunk_entries(start, end):
            for missing in range(expected, idx):
                self.report(missing, "entry is missing")
                flags[missing - start] = True
            expected = idx + 1
            k = idx - start
            if k >= len(stored):
                self.report(idx, "stored leaf hash is missing")
                flags[k] = True
            elif leaf_hash(data) != stored[k]:
                self.report(idx, "entry does not match its stored leaf hash (entry or hash altered)")
                flags[k] = True
        for missing in range(expected, end):
            self.report(missing, "entry is missing")
            flags[missing - start] = True
        stored += [b""] * (end - start - len(stored))
        level, first = 0, start
        while len(stored) >= 2 and level < _CHUNK_LEVEL:
            stored, flags = self.check_parents(level, first, stored, flags)
            level += 1
            first >>= 1
        if level == _CHUNK_LEVEL and stored:
            self.top_hashes.append(stored[0])
            self.top_flags.append(flags[0])

    def check_top(self) -> None:
        stored, flags, level = self.top_hashes, self.top_flags, _CHUNK_LEVEL
        while len(stored) >= 2:
            stored, flags = self.check_parents(level, 0, stored, flags)
            level += 1


def _check_checkpoints(
    aud: _Auditor, cps: list[StoredCheckpoint], verifier: VerifierKey | None, origin: str, nodes_ok: bool
) -> None:
    # Only what a valid signature vouches for can show a fork: a damaged stored copy of a checkpoint's size or
    # root is reported once, as such, and the signed values are used for the remaining checks.
    roots_by_size: dict[int, set[bytes]] = defaultdict(set)
    for cp in cps:
        label = f"checkpoint #{cp.seq} (size {cp.size})"
        size, root = cp.size, cp.root
        if verifier is None:
            aud.report(None, f"{label}: the ledger has no verifier key to check it with")
            roots_by_size[size].add(root)
        else:
            try:
                parsed = open_checkpoint(cp.note, verifier, origin)
            except VerificationError as e:
                aud.report(None, f"{label} is not validly signed by {verifier.name}: {e}")
                continue
            if parsed.size != cp.size or parsed.root != cp.root:
                aud.report(
                    None, f"{label}: the stored size/root differ from the signed note (the stored copy was altered)"
                )
                label = f"checkpoint #{cp.seq} (signed size {parsed.size})"
            size, root = parsed.size, parsed.root
            roots_by_size[size].add(root)
        if size > aud.size:
            aud.report(None, f"{label} is beyond the ledger's {aud.size} entries: the log was truncated")
        elif nodes_ok and root_of(aud.store, size) != root:
            aud.report(None, f"{label}: its root does not match the entries")
    for size, roots in sorted(roots_by_size.items()):
        if len(roots) > 1:
            aud.report(None, f"{len(roots)} different signed roots for tree size {size}: the log forked")


def _check_id_index(aud: _Auditor, store: SQLiteStore) -> None:
    """Rebuild the id index from the entries and compare it with the stored runs.

    A run that lost a key would let a trip be recorded twice; a run with a surplus key costs only a lookup
    (candidates are confirmed against the entry), but is reported all the same.
    """
    if not store.index_ready():
        return  # an older ledger: the index is built on its first append or lookup
    from .idindex import IdIndex, run_span

    expected = {rid: (k, o) for rid, k, o in IdIndex(store).build(store.iter_entries(0, aud.size), aud.size)}
    stored = store.get_index_runs(store.index_run_ids())
    for rid in sorted(set(expected) | set(stored)):
        if expected.get(rid) != stored.get(rid):
            start, end = run_span(rid)
            aud.report(None, f"the id index of entries {start}..{min(end, aud.size) - 1} does not match the entries")


def audit(path: str | Path, verifier: VerifierKey | None = None) -> AuditReport:
    """Audit the ledger at ``path``.

    Parameters
    ----------
    path
        Ledger file.
    verifier
        Key to check checkpoints with; by default the key recorded in the ledger. Pass the key you trust:
        someone able to rewrite the file could also replace the recorded key.

    Returns
    -------
    AuditReport
        Problems found (none when the ledger is intact), lowest index first.
    """
    with SQLiteStore(path) as store:
        try:
            meta = store.meta()
        except LedgerError as e:
            return AuditReport(str(path), 0, 0, (AuditProblem(None, str(e)),))
        aud = _Auditor(store, meta.size)
        key = verifier
        if key is None and meta.verifier_key:
            try:
                key = VerifierKey.parse(meta.verifier_key)
            except LedgerError as e:
                aud.report(None, f"the verifier key recorded in the ledger is damaged: {e}")
        top = store.stored_extent()
        if top > meta.size:
            aud.report(meta.size, f"{top - meta.size} entries are stored beyond the size {meta.size}")
        chunk = 1 << _CHUNK_LEVEL
        for start in range(0, meta.size, chunk):
            aud.check_chunk(start, min(start + chunk, meta.size), hash_leaf)
        aud.check_top()
        nodes_ok = not aud.problems
        if nodes_ok and root_of(store, meta.size) != meta.root:
            aud.report(None, "the stored root does not match the entries")
        if nodes_ok:
            _check_id_index(aud, store)
        try:
            cps = store.checkpoints()
        except LedgerError as e:
            aud.report(None, str(e))
            cps = []
        _check_checkpoints(aud, cps, key, meta.origin, nodes_ok)
        problems = sorted(aud.problems, key=lambda p: (p.index is None, p.index or 0))
        log.info("audited %s: %d entries, %d problems", path, meta.size, len(problems))
        return AuditReport(str(path), meta.size, len(cps), tuple(problems))

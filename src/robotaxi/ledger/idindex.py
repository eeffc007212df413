"""The id index: which entry holds a given trip or safety event, found without scanning the log.

Trips and safety events carry their own ids (``trip_id``, ``event_id``); appending one whose id is already in
the log must not record it twice. The index maps a 64-bit key of ``(kind, id)`` to the entry index.

Layout (a small log-structured merge tree, in the shape of the Merkle tree itself). The log's entries
``[0, size)`` split into aligned power-of-two pieces, like the binary digits of ``size``, except that pieces
stop growing at ``2**RUN_CAP_LEVEL`` entries. Each piece with at least one keyed entry has one *run*: the
keys of its keyed entries, sorted, and beside each its offset from the piece's first index. An append turns
the pieces the new size no longer has into the larger pieces that replace them (merging their runs with the
new keys); a run is therefore immutable once written, every write is sequential, and an entry is rewritten
about ``RUN_CAP_LEVEL - log2(batch)`` times over its life. A random-key B-tree, the obvious alternative, dirties
about one 16 KiB page per key once the table outgrows a batch, which costs far more than the entries themselves.

A lookup searches at most ``RUN_CAP_LEVEL + size / 2**RUN_CAP_LEVEL`` sorted runs. Keys are 64-bit prefixes of
SHA-256, so two ids can share one: a match is a candidate, confirmed against the entry it points to.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .ids import RUN_CAP_LEVEL, entry_id, id_key, run_id, run_pieces, run_span

#: A run as the store takes it: (row id, keys blob, offsets blob).
IndexRunT = tuple[int, bytes, bytes]
#: Up to this many query keys, runs not yet in memory are binary-searched on disk instead of read whole.
PROBE_MAX_KEYS = 16

__all__ = ["RUN_CAP_LEVEL", "IdIndex", "IdRun", "run_id", "run_pieces", "run_span"]


@dataclass(frozen=True, slots=True, eq=False)
class IdRun:
    """The sorted keys of one piece's keyed entries and their offsets from the piece's first index."""

    keys: NDArray[np.uint64]
    offsets: NDArray[np.uint32]

    @classmethod
    def from_blobs(cls, keys: bytes, offsets: bytes) -> IdRun:
        """Read a run as stored (little-endian uint64 keys, uint32 offsets)."""
        k = np.frombuffer(keys, dtype="<u8").astype(np.uint64, copy=False)
        o = np.frombuffer(offsets, dtype="<u4").astype(np.uint32, copy=False)
        if k.size != o.size:
            raise ValueError(f"a run holds {k.size} keys but {o.size} offsets")
        return cls(k, o)

    def blobs(self) -> tuple[bytes, bytes]:
        """The run as stored."""
        return self.keys.astype("<u8").tobytes(), self.offsets.astype("<u4").tobytes()

    def matches(self, keys: NDArray[np.uint64]) -> Iterable[tuple[int, int]]:
        """``(position in keys, offset)`` for every query key found in this run (all equal keys)."""
        if self.keys.size == 0 or keys.size == 0:
            return []
        lo = np.searchsorted(self.keys, keys, side="left")
        hi = np.searchsorted(self.keys, keys, side="right")
        out: list[tuple[int, int]] = []
        for q in np.flatnonzero(hi > lo).tolist():
            out.extend((q, int(o)) for o in self.offsets[lo[q] : hi[q]].tolist())
        return out


def merge_runs(start: int, parts: Iterable[tuple[int, IdRun]], new: Iterable[tuple[int, int]]) -> IdRun:
    """One run for the piece starting at ``start``: old runs ``(their start, run)`` and new ``(index, key)``."""
    keys: list[NDArray[np.uint64]] = []
    idx: list[NDArray[np.int64]] = []
    for s, run in parts:
        keys.append(run.keys)
        idx.append(run.offsets.astype(np.int64) + (s - start))
    fresh = list(new)
    if fresh:
        keys.append(np.array([k for _, k in fresh], dtype=np.uint64))
        idx.append(np.array([i for i, _ in fresh], dtype=np.int64) - start)
    if not keys:
        return IdRun(np.empty(0, np.uint64), np.empty(0, np.uint32))
    all_keys, all_idx = np.concatenate(keys), np.concatenate(idx)
    order = np.lexsort((all_idx, all_keys))
    return IdRun(all_keys[order], all_idx[order].astype(np.uint32))


class IdIndex:
    """The id index of one ledger store, with the runs it has read kept in memory (runs never change).

    Parameters
    ----------
    store
        Any object with ``index_run_ids()`` and ``get_index_runs(ids)`` (a
        :class:`~robotaxi.ledger.store.LedgerStore`).
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        self._cache: dict[int, IdRun] = {}
        self._pending: dict[int, IdRun] = {}

    def runs(self, ids: Iterable[int]) -> dict[int, IdRun]:
        """The runs with these ids that are stored (read once, then from memory)."""
        ids = list(ids)
        wanted = [i for i in ids if i not in self._cache]
        if wanted:
            for i, (k, o) in self.store.get_index_runs(wanted).items():
                self._cache[i] = IdRun.from_blobs(k, o)
        return {i: self._cache[i] for i in ids if i in self._cache}

    def candidates(self, keys: NDArray[np.uint64]) -> list[tuple[int, int]]:
        """``(position in keys, entry index)`` of every stored entry whose key equals a query key."""
        out: list[tuple[int, int]] = []
        if keys.size == 0:
            return out
        stored = self.store.index_run_ids()
        if keys.size <= PROBE_MAX_KEYS:
            # A few keys (a lookup, a small append): binary-search the runs not in memory where they are stored,
            # reading O(log n) keys of each, rather than reading whole runs.
            for rid in stored:
                start, _ = run_span(rid)
                run = self._cache.get(rid)
                found = run.matches(keys) if run is not None else self._probe(rid, keys)
                out.extend((q, start + off) for q, off in found)
            return out
        for rid, run in self.runs(stored).items():
            start, _ = run_span(rid)
            out.extend((q, start + off) for q, off in run.matches(keys))
        return out

    def _probe(self, rid: int, keys: NDArray[np.uint64]) -> list[tuple[int, int]]:
        """``(position in keys, offset)`` of the query keys in stored run ``rid``, by binary search on disk."""
        n = self.store.index_run_length(rid)

        def key_at(i: int) -> int:
            return int.from_bytes(self.store.index_read(rid, "keys", 8 * i, 8), "little")

        out: list[tuple[int, int]] = []
        for q, key in enumerate(keys.tolist()):
            lo, hi = 0, n
            while lo < hi:
                mid = (lo + hi) // 2
                if key_at(mid) < key:
                    lo = mid + 1
                else:
                    hi = mid
            while lo < n and key_at(lo) == key:
                out.append((q, int.from_bytes(self.store.index_read(rid, "offsets", 4 * lo, 4), "little")))
                lo += 1
        return out

    def plan(self, old_size: int, new_size: int, fresh: list[tuple[int, int]]) -> tuple[list[IndexRunT], list[int]]:
        """Runs to write and run ids to drop when the log grows from ``old_size`` to ``new_size``.

        ``fresh`` lists ``(entry index, key)`` of the new keyed entries.
        """
        old = {run_id(lv, i) for lv, i in run_pieces(old_size)}
        new = [run_id(lv, i) for lv, i in run_pieces(new_size)]
        gone = sorted(old.difference(new))
        stored = self.runs(gone)
        puts: list[IndexRunT] = []
        pending: dict[int, IdRun] = {}
        for rid in new:
            if rid in old:
                continue
            start, end = run_span(rid)
            parts = [(run_span(g)[0], stored[g]) for g in gone if g in stored and start <= run_span(g)[0] < end]
            mine = fresh[bisect.bisect_left(fresh, (start,)) : bisect.bisect_left(fresh, (end,))]
            if not parts and not mine:
                continue
            run = merge_runs(start, parts, mine)
            pending[rid] = run
            keys, offsets = run.blobs()
            puts.append((rid, keys, offsets))
        self._pending = pending
        return puts, [g for g in gone if g in stored]

    def committed(self) -> None:
        """Keep the runs of the last :meth:`plan` in memory (call after the store committed them)."""
        self._cache.update(self._pending)
        self._pending = {}

    def build(self, entries: Iterable[tuple[int, bytes]], size: int) -> list[IndexRunT]:
        """All runs of a log of ``size`` entries, from its ``(index, entry)`` pairs (to index an older file)."""
        fresh = []
        for i, e in entries:
            found = entry_id(e)
            if found is not None:
                fresh.append((i, id_key(found)))
        out: list[IndexRunT] = []
        for lv, i in run_pieces(size):
            rid = run_id(lv, i)
            start, end = run_span(rid)
            mine = fresh[bisect.bisect_left(fresh, (start,)) : bisect.bisect_left(fresh, (end,))]
            if mine:
                keys, offsets = merge_runs(start, [], mine).blobs()
                out.append((rid, keys, offsets))
        return out

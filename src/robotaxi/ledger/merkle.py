"""RFC 9162 Merkle tree hashing, inclusion and consistency proofs (pure functions, no I/O).

Hashing follows RFC 9162 section 2.1.1: the hash of an empty tree is ``SHA-256()``, a leaf is
``SHA-256(0x00 || data)`` and an interior node ``SHA-256(0x01 || left || right)``.

Proof *generation* is written against a :class:`NodeReader`: anything that can return the hashes of
*perfect* subtrees, i.e. aligned ranges ``[j * 2**level, (j + 1) * 2**level)`` of leaves. A store that keeps
every perfect subtree hash (see :mod:`robotaxi.ledger.store`) therefore answers any proof, for any pair of
tree sizes up to its own size, in O(log n) node reads: the RFC's recursive definitions only ever need
perfect subtrees, plus the hash of a right-hand edge range, which is itself a chain of at most log2(n)
perfect subtrees.

Proof *verification* follows the iterative algorithms of RFC 9162 sections 2.1.3.2 (inclusion) and
2.1.4.2 (consistency) and raises :class:`~robotaxi.errors.VerificationError` on any mismatch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from ..errors import LedgerError, VerificationError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MemoryTree",
    "NodeId",
    "NodeReader",
    "consistency_ranges",
    "hash_children",
    "hash_leaf",
    "inclusion_ranges",
    "perfect_pieces",
    "prove_consistency",
    "prove_inclusion",
    "root_from_leaves",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
#: RFC 9162 2.1.1: the hash of an empty list is the hash of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

#: ``(level, index)``: the perfect subtree over leaves ``[index << level, (index + 1) << level)``.
NodeId = tuple[int, int]


class NodeReader(Protocol):
    """Anything that can return hashes of perfect subtrees, in one round trip."""

    def get_nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        """Return the hash of every requested perfect subtree (raise if one is missing)."""
        ...


def hash_leaf(data: bytes) -> bytes:
    """RFC 9162 leaf hash: ``SHA-256(0x00 || data)``."""
    h = hashlib.sha256(_LEAF_PREFIX)
    h.update(data)
    return h.digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _largest_pow2_below(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``): RFC 9162's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_pieces(start: int, end: int) -> list[NodeId]:
    """Split ``[start, end)`` into the perfect subtrees RFC 9162's MTH recursion produces, left to right.

    Valid for the ranges that occur in the RFC recursion: ``start`` is a multiple of a power of two that is
    at least ``end - start``, so the pieces are the binary digits of the length, largest first.
    """
    pieces: list[NodeId] = []
    pos = start
    remaining = end - start
    while remaining:
        level = remaining.bit_length() - 1
        if pos % (1 << level):
            raise LedgerError(f"range [{start}, {end}) is not aligned for an RFC 9162 subtree")
        pieces.append((level, pos >> level))
        pos += 1 << level
        remaining -= 1 << level
    return pieces


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Hash of a right-edge range from its perfect pieces (left to right): fold from the right."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = hash_children(h, acc)
    return acc


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose hashes make up the inclusion proof of ``index`` in a tree of ``size`` leaves.

    RFC 9162 2.1.3.1: ``PATH(m, D[n])`` splits at ``k``, recurses into the half holding ``m`` and appends
    the hash of the other half. Returned bottom-up, in proof order.
    """
    if not 0 <= index < size:
        raise LedgerError(f"leaf index {index} is outside a tree of size {size}")
    out: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _largest_pow2_below(hi - lo)
        if index < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    out.reverse()
    return out


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """Leaf ranges whose hashes make up the consistency proof from ``size1`` to ``size2``.

    RFC 9162 2.1.4.1: ``PROOF(m, D[n]) = SUBPROOF(m, D[n], true)``. Empty when the sizes are equal or
    the sizes are equal; refused from size 0, which proves nothing (see :func:`verify_consistency`).
    """
    if not 0 < size1 <= size2:
        raise LedgerError(f"no consistency proof from size {size1} to size {size2}")
    if size1 == size2:
        return []
    head: list[tuple[int, int]] = []
    tail: list[tuple[int, int]] = []
    lo, hi, m, whole = 0, size2, size1, True
    while m != hi - lo:
        k = _largest_pow2_below(hi - lo)
        if m <= k:
            tail.append((lo + k, hi))
            hi = lo + k
        else:
            tail.append((lo, lo + k))
            m -= k
            lo += k
            whole = False
    if not whole:
        head.append((lo, hi))
    tail.reverse()
    return head + tail


def _resolve(reader: NodeReader, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """Fetch (in one call) and combine the perfect pieces of every range."""
    pieces = [perfect_pieces(a, b) for a, b in ranges]
    wanted = sorted({p for ps in pieces for p in ps})
    got = reader.get_nodes(wanted) if wanted else {}
    return [_fold([got[p] for p in ps]) for ps in pieces]


def prove_inclusion(reader: NodeReader, index: int, size: int) -> list[bytes]:
    """Inclusion proof (audit path) of leaf ``index`` in the tree of the first ``size`` leaves."""
    return _resolve(reader, inclusion_ranges(index, size))


def prove_consistency(reader: NodeReader, size1: int, size2: int) -> list[bytes]:
    """Consistency proof between the trees of the first ``size1`` and ``size2`` leaves."""
    return _resolve(reader, consistency_ranges(size1, size2))


def root_of(reader: NodeReader, size: int) -> bytes:
    """Root hash (RFC 9162 MTH) of the tree of the first ``size`` leaves."""
    if size == 0:
        return EMPTY_ROOT
    return _resolve(reader, [(0, size)])[0]


def root_from_leaves(leaf_hashes: Iterable[bytes]) -> bytes:
    """Root hash of a tree given all its leaf hashes, in O(log n) memory (a compact range)."""
    stack: list[tuple[int, bytes]] = []  # (level, hash), levels strictly decreasing
    for h in leaf_hashes:
        level, acc = 0, h
        while stack and stack[-1][0] == level:
            acc = hash_children(stack.pop()[1], acc)
            level += 1
        stack.append((level, acc))
    if not stack:
        return EMPTY_ROOT
    return _fold([h for _, h in stack])


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise VerificationError(f"{what} is {len(value)} bytes, expected {HASH_SIZE}")


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check an inclusion proof; raise :class:`VerificationError` unless it proves ``leaf_hash`` at ``index``.

    RFC 9162 section 2.1.3.2, step by step.
    """
    _check_hash(leaf_hash, "leaf hash")
    _check_hash(root, "root hash")
    if not 0 <= index < size:
        raise VerificationError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        _check_hash(p, "proof hash")
        if sn == 0:
            raise VerificationError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = hash_children(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("inclusion proof is shorter than the tree is deep")
    if r != root:
        raise VerificationError(f"inclusion proof of leaf {index} does not lead to the root of tree size {size}")


def _consistency_walk(size1: int, size2: int, root1: bytes, proof: Sequence[bytes]) -> tuple[bytes, bytes]:
    """RFC 9162 2.1.4.2 steps 2-6: the roots of both trees as the proof rebuilds them."""
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # step 2: an exact power of two is itself the first node of the path
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("consistency proof is longer than expected")
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("consistency proof is shorter than expected")
    return fr, sr


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> None:
    """Check a consistency proof; raise :class:`VerificationError` unless tree 2 extends tree 1.

    RFC 9162 section 2.1.4.2, plus the cases its algorithm leaves out: equal sizes need an empty proof and
    equal roots; a proof from the empty tree (``size1 == 0``) proves nothing and is refused, as the
    transparency-dev verifier does.
    """
    if not 0 <= size1 <= size2:
        raise VerificationError(f"sizes {size1} -> {size2} do not grow")
    if size1 == 0:
        raise VerificationError("a consistency proof from the empty tree proves nothing")
    if size1 == size2:
        if proof:
            raise VerificationError("consistency proof between equal sizes must be empty")
        if root1 != root2:
            raise VerificationError(f"two different roots for tree size {size1}")
        return
    _check_hash(root1, "first root")
    _check_hash(root2, "second root")
    for p in proof:
        _check_hash(p, "proof hash")
    if not proof:
        raise VerificationError("consistency proof is empty")
    fr, sr = _consistency_walk(size1, size2, root1, proof)
    if fr != root1:
        raise VerificationError(f"consistency proof does not reproduce the root of size {size1}")
    if sr != root2:
        raise VerificationError(f"consistency proof does not reproduce the root of size {size2}")


class MemoryTree:
    """Every perfect subtree hash of a list of leaf hashes, held in memory (tests and small tools).

    Parameters
    ----------
    leaf_hashes
        RFC 9162 leaf hashes, in log order.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for h in leaf_hashes:
            self.append(h)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash and every perfect subtree it completes."""
        level, h = 0, leaf_hash
        while True:
            if level == len(self._levels):
                self._levels.append([])
            row = self._levels[level]
            row.append(h)
            if len(row) % 2:
                return
            h = hash_children(row[-2], row[-1])
            level += 1

    def get_nodes(self, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        """Hashes of the requested perfect subtrees (``KeyError`` if one is not complete yet)."""
        out: dict[NodeId, bytes] = {}
        for level, index in ids:
            if level >= len(self._levels) or index >= len(self._levels[level]):
                raise KeyError((level, index))
            out[level, index] = self._levels[level][index]
        return out

    def root(self, size: int | None = None) -> bytes:
        """Root of the first ``size`` leaves (default: all of them)."""
        return root_of(self, self.size if size is None else size)

"""RFC 9162 hashing and proofs: the transparency-dev vectors in ../shared, and hypothesis properties."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robotaxi.errors import VerificationError
from robotaxi.ledger.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    hash_leaf,
    prove_consistency,
    prove_inclusion,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)
from tests.conftest import shared_file


def _vector_files(kind: str) -> list[Path]:
    root = shared_file(f"testvectors/rfc6962/{kind}")
    files = sorted(root.glob("*/*.json"))
    assert len(files) > 20, f"expected the {kind} vectors under {root}"
    return files


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.mark.parametrize("path", _vector_files("inclusion"), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_inclusion_vectors(path: Path) -> None:
    v = _load(path)
    proof = [_b64(p) for p in v["proof"] or []]
    args = (_b64(v["leafHash"]), v["leafIdx"], v["treeSize"], proof, _b64(v["root"]))
    if v["wantErr"]:
        with pytest.raises(VerificationError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", _vector_files("consistency"), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_consistency_vectors(path: Path) -> None:
    v = _load(path)
    proof = [_b64(p) for p in v["proof"] or []]
    args = (v["size1"], v["size2"], _b64(v["root1"]), _b64(v["root2"]), proof)
    if v["wantErr"]:
        with pytest.raises(VerificationError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_roots_vector() -> None:
    v = _load(shared_file("testvectors/rfc6962/roots.json"))
    leaves = [bytes.fromhex(x) for x in v["leaf_inputs_hex"]]
    tree = MemoryTree(hash_leaf(x) for x in leaves)
    for n, want in enumerate(v["root_hex_by_size"]):
        assert tree.root(n).hex() == want, n
        assert root_from_leaves(hash_leaf(x) for x in leaves[:n]).hex() == want
    assert tree.root(0) == EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_generated_proofs_match_vectors() -> None:
    """Our generator produces the exact proofs of the happy-path vectors (same leaves as roots.json)."""
    leaves = [bytes.fromhex(x) for x in _load(shared_file("testvectors/rfc6962/roots.json"))["leaf_inputs_hex"]]
    tree = MemoryTree(hash_leaf(x) for x in leaves)
    for case in _vector_files("inclusion"):
        v = _load(case)
        if case.stem == "happy-path":
            want = [_b64(p) for p in v["proof"] or []]
            assert prove_inclusion(tree, v["leafIdx"], v["treeSize"]) == want, case
    for case in _vector_files("consistency"):
        v = _load(case)
        if case.stem == "happy-path":
            want = [_b64(p) for p in v["proof"] or []]
            assert prove_consistency(tree, v["size1"], v["size2"]) == want, case


def _leaves(n: int) -> list[bytes]:
    return [hash_leaf(i.to_bytes(4, "big")) for i in range(n)]


def _flip(data: bytes, bit: int) -> bytes:
    b = bytearray(data)
    b[(bit // 8) % len(b)] ^= 1 << (bit % 8)
    return bytes(b)


def test_every_leaf_at_every_size_small() -> None:
    """Exhaustive for sizes 1..40: every leaf's inclusion proof verifies, and so does every consistency."""
    tree = MemoryTree(_leaves(40))
    for size in range(1, 41):
        root = tree.root(size)
        for i in range(size):
            verify_inclusion(tree.get_nodes([(0, i)])[0, i], i, size, prove_inclusion(tree, i, size), root)
        for s1 in range(1, size + 1):
            verify_consistency(s1, size, tree.root(s1), root, prove_consistency(tree, s1, size))


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 600), st.data())
def test_inclusion_property(size: int, data: st.DataObject) -> None:
    tree = MemoryTree(_leaves(size))
    index = data.draw(st.integers(0, size - 1))
    leaf = tree.get_nodes([(0, index)])[0, index]
    proof = prove_inclusion(tree, index, size)
    root = tree.root(size)
    verify_inclusion(leaf, index, size, proof, root)
    # A flipped bit anywhere (leaf, any proof hash, root) breaks it.
    bit = data.draw(st.integers(0, 255))
    with pytest.raises(VerificationError):
        verify_inclusion(_flip(leaf, bit), index, size, proof, root)
    with pytest.raises(VerificationError):
        verify_inclusion(leaf, index, size, proof, _flip(root, bit))
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:k], _flip(proof[k], bit), *proof[k + 1 :]]
        with pytest.raises(VerificationError):
            verify_inclusion(leaf, index, size, bad, root)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 600), st.data())
def test_consistency_property(size2: int, data: st.DataObject) -> None:
    tree = MemoryTree(_leaves(size2))
    size1 = data.draw(st.integers(1, size2))
    proof = prove_consistency(tree, size1, size2)
    r1, r2 = tree.root(size1), tree.root(size2)
    verify_consistency(size1, size2, r1, r2, proof)
    bit = data.draw(st.integers(0, 255))
    with pytest.raises(VerificationError):
        verify_consistency(size1, size2, _flip(r1, bit), r2, proof)
    with pytest.raises(VerificationError):
        verify_consistency(size1, size2, r1, _flip(r2, bit), proof)
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:k], _flip(proof[k], bit), *proof[k + 1 :]]
        with pytest.raises(VerificationError):
            verify_consistency(size1, size2, r1, r2, bad)


def test_verifiers_reject_bad_shapes() -> None:
    tree = MemoryTree(_leaves(5))
    root = tree.root()
    with pytest.raises(VerificationError):
        verify_inclusion(b"short", 0, 5, prove_inclusion(tree, 0, 5), root)
    with pytest.raises(VerificationError):
        verify_inclusion(tree.get_nodes([(0, 0)])[0, 0], 5, 5, [], root)
    with pytest.raises(VerificationError):
        verify_consistency(5, 3, root, root, [])
    with pytest.raises(VerificationError):
        verify_consistency(0, 5, EMPTY_ROOT, root, [])

"""Proof bundles: self-contained JSON documents anyone can check offline with the log's public key.

An *inclusion bundle* holds one entry, its RFC 9162 inclusion proof and the signed checkpoint the proof
leads to; a *consistency bundle* holds two signed checkpoints and the consistency proof between them.
Neither needs access to the log: :func:`verify_bundle` checks the signatures, then the proof.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from ..errors import VerificationError
from .log import Ledger
from .merkle import EMPTY_ROOT, hash_leaf, verify_consistency, verify_inclusion
from .note import Checkpoint, VerifierKey, open_checkpoint

__all__ = [
    "CONSISTENCY_TYPE",
    "INCLUSION_TYPE",
    "ConsistencyBundle",
    "InclusionBundle",
    "verify_bundle",
]

INCLUSION_TYPE = "robotaxi.ledger/inclusion-v1"
CONSISTENCY_TYPE = "robotaxi.ledger/consistency-v1"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise VerificationError(f"bundle: {what} must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise VerificationError(f"bundle: {what} is not base64") from e


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise VerificationError(f"bundle: {what} must be an integer")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise VerificationError(f"bundle: {what} must be a string")
    return value


def _proof(value: Any) -> list[bytes]:
    if not isinstance(value, list):
        raise VerificationError("bundle: proof must be a list of base64 hashes")
    return [_unb64(p, "proof hash") for p in value]


@dataclass(frozen=True, slots=True)
class InclusionBundle:
    """An entry, its index, its inclusion proof and the signed checkpoint (tree size, root) it proves into."""

    index: int
    entry: bytes
    proof: tuple[bytes, ...]
    checkpoint: str

    @classmethod
    def build(cls, ledger: Ledger, index: int) -> InclusionBundle:
        """Bundle entry ``index`` against the ledger's latest checkpoint that contains it."""
        cp = next((c for c in reversed(ledger.checkpoints()) if c.size > index), None)
        if cp is None:
            raise VerificationError(
                f"no signed checkpoint covers entry {index}", hint="sign one with `robotaxi ledger checkpoint`"
            )
        return cls(index, ledger.entry(index), tuple(ledger.inclusion_proof(index, cp.size)), cp.note)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return {
            "type": INCLUSION_TYPE,
            "index": self.index,
            "entry": _b64(self.entry),
            "proof": [_b64(p) for p in self.proof],
            "checkpoint": self.checkpoint,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InclusionBundle:
        """Parse the dictionary form (raises :class:`VerificationError` on a malformed bundle)."""
        return cls(
            _int(data.get("index"), "index"),
            _unb64(data.get("entry"), "entry"),
            tuple(_proof(data.get("proof"))),
            _str(data.get("checkpoint"), "checkpoint"),
        )

    def verify(self, verifier: VerifierKey) -> Checkpoint:
        """Check the checkpoint's signature and the inclusion proof; return the checkpoint."""
        cp = open_checkpoint(self.checkpoint, verifier)
        verify_inclusion(hash_leaf(self.entry), self.index, cp.size, self.proof, cp.root)
        return cp


@dataclass(frozen=True, slots=True)
class ConsistencyBundle:
    """Two signed checkpoints and the consistency proof that the newer extends the older."""

    old: str
    new: str
    proof: tuple[bytes, ...]

    @classmethod
    def build(cls, ledger: Ledger, old_note: str, new_note: str) -> ConsistencyBundle:
        """Prove from the ledger that ``new_note``'s tree extends ``old_note``'s (both signed by it)."""
        old, new = ledger.open_checkpoint(old_note), ledger.open_checkpoint(new_note)
        if old.size > new.size:
            old_note, new_note, old, new = new_note, old_note, new, old
        proof = ledger.consistency_proof(old.size, new.size) if old.size else []
        return cls(old_note, new_note, tuple(proof))

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return {"type": CONSISTENCY_TYPE, "old": self.old, "new": self.new, "proof": [_b64(p) for p in self.proof]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConsistencyBundle:
        """Parse the dictionary form."""
        return cls(_str(data.get("old"), "old"), _str(data.get("new"), "new"), tuple(_proof(data.get("proof"))))

    def verify(self, verifier: VerifierKey) -> tuple[Checkpoint, Checkpoint]:
        """Check both signatures and the consistency proof; return ``(old, new)``."""
        old = open_checkpoint(self.old, verifier)
        new = open_checkpoint(self.new, verifier)
        if old.size == 0:
            # Every tree extends the empty one; RFC 9162 has no proof for it, so there is nothing to check.
            if self.proof:
                raise VerificationError("a proof from the empty tree must be empty")
            if old.root != EMPTY_ROOT:
                raise VerificationError("the checkpoint of size 0 does not carry the empty tree's root")
            return old, new
        verify_consistency(old.size, new.size, old.root, new.root, self.proof)
        return old, new


def load_bundle(text: str) -> InclusionBundle | ConsistencyBundle:
    """Parse a bundle file's text, whichever kind it is."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise VerificationError(f"bundle is not JSON: {e}") from e
    if not isinstance(data, dict):
        raise VerificationError("bundle must be a JSON object")
    kind = data.get("type")
    if kind == INCLUSION_TYPE:
        return InclusionBundle.from_json(data)
    if kind == CONSISTENCY_TYPE:
        return ConsistencyBundle.from_json(data)
    raise VerificationError(f"unknown bundle type {kind!r}")


def verify_bundle(text: str, verifier: VerifierKey) -> InclusionBundle | ConsistencyBundle:
    """Parse and verify a bundle offline; return it. Raises :class:`VerificationError` if it fails."""
    bundle = load_bundle(text)
    bundle.verify(verifier)
    return bundle

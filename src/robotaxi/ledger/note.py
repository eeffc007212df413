"""C2SP signed notes with Ed25519 keys, and C2SP tlog-checkpoints.

A *signed note* (C2SP ``signed-note``) is a UTF-8 text ending in a newline, a blank line, then one signature
line per signer: ``— <key name> <base64(key ID || signature)>``. The Ed25519 signature covers the text,
final newline included. The key ID is the first four bytes of ``SHA-256(name || 0x0A || 0x01 || public key)``
(0x01 being the Ed25519 signature type). A *verifier key* is written ``<name>+<hex key ID>+<base64(0x01 ||
public key)>``. Private keys use the ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>`` text form of
the Go ``sumdb/note`` tooling, so keys can be shared with other transparency-log tools.

A *checkpoint* (C2SP ``tlog-checkpoint``) is the note text ``<origin>\\n<tree size>\\n<base64 root>\\n``
followed by optional extension lines.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import LedgerError, VerificationError
from .merkle import HASH_SIZE

__all__ = [
    "Checkpoint",
    "Note",
    "NoteSignature",
    "SigningKey",
    "VerifierKey",
    "open_checkpoint",
    "open_note",
    "sign_note",
]

_ED25519 = 0x01
_SIG_PREFIX = "\u2014 "  # em dash and a space open every signature line (C2SP signed-note)
_MAX_SIGNATURES = 100  # the spec lets verifiers cap the number of signatures; Go's note package uses 100
_PRIVATE_PREFIX = "PRIVATE+KEY+"


def _b64decode(text: str, what: str) -> bytes:
    """Strict standard base64: reject anything that does not re-encode to the same text.

    Python's decoder ignores the unused low bits of the last character; without the round trip a changed
    character could decode to the same bytes and a modified note would still verify.
    """
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise VerificationError(f"{what}: not valid base64") from e
    if base64.b64encode(raw).decode("ascii") != text:
        raise VerificationError(f"{what}: not canonical base64")
    return raw


def _check_name(name: str) -> None:
    """C2SP signed-note: a key name is non-empty UTF-8 with no Unicode spaces and no '+'."""
    if not name or "+" in name or any(c.isspace() for c in name) or not name.isprintable():
        raise LedgerError(f"invalid key name {name!r}: it must be non-empty, without spaces or '+'")


def _key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([_ED25519]) + public_key).digest()[:4]


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """The public half of a note signing key: checks signatures, can be shared freely."""

    name: str
    key_id: bytes
    public_key: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.public_key) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        if self.key_id != _key_id(self.name, self.public_key):
            raise ValueError(f"key ID {self.key_id.hex()} does not match the name and key")

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        """Parse ``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
        parts = text.strip().split("+", 2)
        if len(parts) != 3 or len(parts[1]) != 8:
            raise LedgerError("a verifier key reads <name>+<8 hex digits>+<base64 key>")
        name, hex_id, b64 = parts
        try:
            key_id = bytes.fromhex(hex_id)
        except ValueError as e:
            raise LedgerError(f"verifier key ID {hex_id!r} is not hexadecimal") from e
        raw = _b64decode(b64, "verifier key")
        if len(raw) != 33 or raw[0] != _ED25519:
            raise LedgerError("verifier key: only Ed25519 keys (type 0x01, 32 bytes) are supported")
        try:
            return cls(name, key_id, raw[1:])
        except ValueError as e:
            raise LedgerError(f"verifier key: {e}") from e

    @classmethod
    def from_file(cls, path: str | Path) -> VerifierKey:
        """Read a verifier key file (or derive it from a private key file)."""
        text = _read_key_text(path)
        if text.startswith(_PRIVATE_PREFIX):
            return SigningKey.parse(text).verifier()
        return cls.parse(text)

    def __str__(self) -> str:
        b64 = base64.b64encode(bytes([_ED25519]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{b64}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An Ed25519 note signing key. Keep the file private; share :meth:`verifier`."""

    name: str
    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.seed) != 32:
            raise ValueError("an Ed25519 private key seed is 32 bytes")

    @classmethod
    def generate(cls, name: str) -> SigningKey:
        """A fresh random key named ``name`` (e.g. the log origin, ``robotaxi.example/ledger``)."""
        return cls(name, os.urandom(32))

    @classmethod
    def parse(cls, text: str) -> SigningKey:
        """Parse ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``."""
        text = text.strip()
        parts = text[len(_PRIVATE_PREFIX) :].split("+", 2) if text.startswith(_PRIVATE_PREFIX) else []
        if len(parts) != 3:
            raise LedgerError("a private key reads PRIVATE+KEY+<name>+<hex key ID>+<base64 key>")
        raw = _b64decode(parts[2], "private key")
        if len(raw) != 33 or raw[0] != _ED25519:
            raise LedgerError("private key: only Ed25519 keys (type 0x01) are supported")
        key = cls(parts[0], raw[1:])
        if key.verifier().key_id.hex() != parts[1]:
            raise LedgerError("private key: the key ID does not match the key")
        return key

    @classmethod
    def from_file(cls, path: str | Path) -> SigningKey:
        """Read a private key file written by :meth:`to_file`."""
        return cls.parse(_read_key_text(path))

    @classmethod
    def load_or_generate(cls, path: str | Path, name: str) -> SigningKey:
        """Read the key at ``path``; if there is none, generate one named ``name`` and write it (mode 0600).

        Also writes the verifier key next to it (``path`` + ``.vkey``) when generating. Raises
        :class:`LedgerError` if an existing key has another name.
        """
        p = Path(path)
        if p.exists():
            key = cls.from_file(p)
            if key.name != name:
                raise LedgerError(f"{p} holds a key named {key.name!r}, not {name!r}")
            return key
        key = cls.generate(name)
        key.to_file(p)
        p.with_name(p.name + ".vkey").write_text(str(key.verifier()) + "\n", encoding="utf-8")
        return key

    def to_text(self) -> str:
        """The ``PRIVATE+KEY+...`` text form."""
        b64 = base64.b64encode(bytes([_ED25519]) + self.seed).decode("ascii")
        return f"{_PRIVATE_PREFIX}{self.name}+{self.verifier().key_id.hex()}+{b64}"

    def to_file(self, path: str | Path) -> None:
        """Write the private key, readable by the owner only; refuse to overwrite an existing file."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as e:
            raise LedgerError(f"{path} already exists; refusing to overwrite a key") from e
        except OSError as e:
            raise LedgerError(f"cannot write key file {path}: {e.strerror}") from e
        with os.fdopen(fd, "w") as f:
            f.write(self.to_text() + "\n")

    def verifier(self) -> VerifierKey:
        """The matching public verifier key."""
        pub = Ed25519PrivateKey.from_private_bytes(self.seed).public_key().public_bytes_raw()
        return VerifierKey(self.name, _key_id(self.name, pub), pub)

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of ``message``."""
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(message)


def _read_key_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as e:
        raise LedgerError(f"cannot read key file {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise LedgerError(f"key file {path} is not UTF-8 text: is it a key?") from e


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line of a note: who signed (name, key ID) and the signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """The signature line, without its newline."""
        return f"{_SIG_PREFIX}{self.name} {base64.b64encode(self.key_id + self.signature).decode('ascii')}"


@dataclass(frozen=True, slots=True)
class Note:
    """A parsed (not yet verified) signed note: the signed text and its signature lines."""

    text: str
    signatures: tuple[NoteSignature, ...]

    @classmethod
    def parse(cls, message: str | bytes) -> Note:
        """Split a signed note into text and signatures; raise :class:`VerificationError` if malformed."""
        if isinstance(message, bytes):
            try:
                message = message.decode("utf-8")
            except UnicodeDecodeError as e:
                raise VerificationError("signed note is not UTF-8") from e
        if any(c < " " and c != "\n" for c in message):
            raise VerificationError("signed note holds control characters")
        cut = message.rfind("\n\n")
        if cut < 0 or not message.endswith("\n"):
            raise VerificationError("signed note has no signature block")
        text, block = message[: cut + 1], message[cut + 2 : -1]
        sigs: list[NoteSignature] = []
        for line in block.split("\n"):
            if not line.startswith(_SIG_PREFIX):
                raise VerificationError(f"malformed signature line {line!r}")
            name, sep, b64 = line[len(_SIG_PREFIX) :].rpartition(" ")
            if not sep or not name or " " in name or "+" in name:
                raise VerificationError(f"malformed signature line {line!r}")
            raw = _b64decode(b64, "signature")
            if len(raw) < 5:
                raise VerificationError("signature too short")
            sigs.append(NoteSignature(name, raw[:4], raw[4:]))
        if len(sigs) > _MAX_SIGNATURES:
            raise VerificationError(f"more than {_MAX_SIGNATURES} signatures")
        return cls(text, tuple(sigs))

    def format(self) -> str:
        """The signed note text."""
        return self.text + "\n" + "".join(s.line() + "\n" for s in self.signatures)


def sign_note(text: str, *keys: SigningKey) -> str:
    """Sign ``text`` (non-empty, ending in a newline, no blank line) with each key; return the note."""
    if not text.endswith("\n") or "\n\n" in text or text.startswith("\n"):
        raise LedgerError("note text must be non-empty, end in a newline and contain no blank line")
    if any(c < " " and c != "\n" for c in text):
        raise LedgerError("note text must not contain control characters")
    if not keys:
        raise LedgerError("sign_note needs at least one key")
    msg = text.encode("utf-8")
    sigs = tuple(NoteSignature(k.name, k.verifier().key_id, k.sign(msg)) for k in keys)
    return Note(text, sigs).format()


def open_note(message: str | bytes, *verifiers: VerifierKey) -> Note:
    """Parse and verify a signed note against known verifier keys.

    Signatures by unknown keys are ignored (C2SP signed-note); a signature that claims a known key and
    does not verify rejects the whole note; at least one known key must have signed.

    Raises
    ------
    VerificationError
        When the note is malformed, a known key's signature is bad, or no known key signed it.
    """
    note = Note.parse(message)
    known = {(v.name, v.key_id): v for v in verifiers}
    msg = note.text.encode("utf-8")
    verified = 0
    for sig in note.signatures:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            continue
        if not v.verify(msg, sig.signature):
            raise VerificationError(f"bad signature by {sig.name} ({sig.key_id.hex()})")
        verified += 1
    if not verified:
        names = ", ".join(str(v.name) for v in verifiers) or "none given"
        raise VerificationError(f"note is not signed by a known key (known: {names})")
    return note


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A C2SP tlog-checkpoint: the log's origin, its size and its RFC 9162 root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise ValueError("checkpoint origin must be one non-empty line")
        if self.size < 0:
            raise ValueError("checkpoint size must be >= 0")
        if len(self.root) != HASH_SIZE:
            raise ValueError("checkpoint root must be a 32-byte SHA-256 hash")
        if any(not e or "\n" in e for e in self.extensions):
            raise ValueError("checkpoint extension lines must be non-empty single lines")

    def to_text(self) -> str:
        """The note text: origin, decimal size, base64 root, extension lines, each ending in a newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii"), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse checkpoint note text (C2SP tlog-checkpoint)."""
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise VerificationError("checkpoint: expected origin, size and root lines")
        origin, size_s, root_s, *ext = lines[:-1]
        if not size_s.isascii() or not size_s.isdigit() or (size_s != "0" and size_s.startswith("0")):
            raise VerificationError(f"checkpoint: tree size {size_s!r} is not a decimal number")
        try:
            return cls(origin, int(size_s), _b64decode(root_s, "checkpoint root"), tuple(ext))
        except ValueError as e:
            raise VerificationError(f"checkpoint: {e}") from e

    def sign(self, key: SigningKey) -> str:
        """The signed note of this checkpoint."""
        return sign_note(self.to_text(), key)


def open_checkpoint(message: str | bytes, verifier: VerifierKey, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint and return it.

    Parameters
    ----------
    message
        The signed note.
    verifier
        The log's public key.
    origin
        Expected origin line; by default the verifier key's name (the convention of C2SP logs).
    """
    note = open_note(message, verifier)
    cp = Checkpoint.parse(note.text)
    want = verifier.name if origin is None else origin
    if cp.origin != want:
        raise VerificationError(f"checkpoint origin {cp.origin!r} is not the expected {want!r}")
    return cp

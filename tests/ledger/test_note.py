"""C2SP signed notes and checkpoints: the spec's example, keys, and any changed byte failing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robotaxi.errors import LedgerError, VerificationError
from robotaxi.ledger.merkle import hash_leaf
from robotaxi.ledger.note import (
    Checkpoint,
    Note,
    SigningKey,
    VerifierKey,
    open_checkpoint,
    open_note,
    sign_note,
)
from tests.conftest import shared_file


def _example() -> tuple[VerifierKey, str]:
    ex = json.loads(shared_file("testvectors/signed_note_example.json").read_text(encoding="utf-8"))
    return VerifierKey.parse(ex["vkey"]), ex["note"]


def test_spec_example_verifies() -> None:
    vkey, note = _example()
    opened = open_note(note, vkey)
    assert opened.text == "This is an example message.\n"
    assert vkey.name == "example.com/foo"
    assert Note.parse(note).format() == note


def test_spec_example_any_changed_byte_fails() -> None:
    vkey, note = _example()
    raw = note.encode("utf-8")
    for i in range(len(raw)):
        for delta in (1, 0x20):
            bad = bytearray(raw)
            bad[i] = (bad[i] + delta) % 256
            with pytest.raises(VerificationError):
                open_note(bytes(bad), vkey)


def test_spec_example_other_key_fails() -> None:
    _, note = _example()
    other = SigningKey.generate("example.com/foo").verifier()
    with pytest.raises(VerificationError):
        open_note(note, other)


def test_key_round_trip(tmp_path: Path) -> None:
    key = SigningKey.generate("robotaxi.test/ledger")
    assert SigningKey.parse(key.to_text()) == key
    vkey = key.verifier()
    assert VerifierKey.parse(str(vkey)) == vkey
    key.to_file(tmp_path / "k.key")
    assert (tmp_path / "k.key").stat().st_mode & 0o777 == 0o600
    assert SigningKey.from_file(tmp_path / "k.key") == key
    assert VerifierKey.from_file(tmp_path / "k.key") == vkey
    with pytest.raises(LedgerError):
        key.to_file(tmp_path / "k.key")
    assert "seed" not in repr(key) or key.seed.hex() not in repr(key)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there"])
def test_bad_key_names(name: str) -> None:
    with pytest.raises(LedgerError):
        SigningKey.generate(name)


def test_bad_verifier_keys() -> None:
    vkey, _ = _example()
    text = str(vkey)
    for bad in [text.replace("+", "-"), text[:-2], text.replace("530d903a", "530d903b"), "x+y+z"]:
        with pytest.raises(LedgerError):
            VerifierKey.parse(bad)


def test_checkpoint_round_trip_and_tamper() -> None:
    key = SigningKey.generate("robotaxi.test/ledger")
    cp = Checkpoint("robotaxi.test/ledger", 42, hash_leaf(b"x"))
    note = cp.sign(key)
    assert note.startswith("robotaxi.test/ledger\n42\n")
    assert open_checkpoint(note, key.verifier()) == cp
    with pytest.raises(VerificationError):
        open_checkpoint(note.replace("\n42\n", "\n43\n"), key.verifier())
    with pytest.raises(VerificationError):
        open_checkpoint(note, SigningKey.generate("robotaxi.test/ledger").verifier())
    # Another key's co-signature is ignored, ours still counts.
    cosigned = sign_note(cp.to_text(), key, SigningKey.generate("witness.test"))
    assert open_checkpoint(cosigned, key.verifier()) == cp


@pytest.mark.parametrize(
    "text",
    ["o\n", "o\n01\nAAAA\n", "o\n1\nnot-base64\n", "o\n1\n" + "A" * 43 + "=\n\n", "o\n-1\nAAAA\n"],
)
def test_bad_checkpoint_text(text: str) -> None:
    with pytest.raises(VerificationError):
        Checkpoint.parse(text)


def test_sign_note_rejects_bad_text() -> None:
    key = SigningKey.generate("k")
    for text in ["", "no newline", "a\n\nb\n", "bell\a\n"]:
        with pytest.raises(LedgerError):
            sign_note(text, key)


def test_load_or_generate(tmp_path: Path) -> None:
    path = tmp_path / "run.key"
    key = SigningKey.load_or_generate(path, "robotaxi.test/ledger")
    assert (tmp_path / "run.key.vkey").read_text().strip() == str(key.verifier())
    assert SigningKey.load_or_generate(path, "robotaxi.test/ledger") == key
    with pytest.raises(LedgerError):
        SigningKey.load_or_generate(path, "other.name")

"""``robotaxi ledger``: the whole round trip through the CLI, and clear errors with exit code 1."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from robotaxi.cli import main


def _ledger_with_trips(tmp_path: Path, n: int) -> tuple[str, str, Path]:
    """Through the CLI: a key pair ``k.key``/``k.vkey``, a ledger bound to it holding ``n`` trips from a JSON-lines
    file. Returns (ledger path, verifier key path, the trips file)."""
    db, vkey = str(tmp_path / "l.db"), str(tmp_path / "k.vkey")
    assert main(["ledger", "keygen", str(tmp_path / "k"), "--name", "robotaxi.test/ledger"]) == 0
    assert main(["ledger", "init", "--log", db, "--key", vkey]) == 0
    trips = tmp_path / "trips.jsonl"
    trips.write_text("".join(json.dumps({"trip_id": f"t{i}", "fare_cents": 100 + i}) + "\n" for i in range(n)))
    assert main(["ledger", "append", str(trips), "--log", db]) == 0
    return db, vkey, trips


@pytest.mark.integration
def test_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, vkey, trips = _ledger_with_trips(tmp_path, 25)
    cp1, cp2 = tmp_path / "cp1", tmp_path / "cp2"
    assert main(["ledger", "checkpoint", "--log", db, "--key", str(tmp_path / "k.key"), "--out", str(cp1)]) == 0
    assert main(["ledger", "append", str(trips), "--log", db]) == 0
    assert main(["ledger", "checkpoint", "--log", db, "--key", str(tmp_path / "k.key"), "--out", str(cp2)]) == 0
    capsys.readouterr()
    assert main(["ledger", "prove", "--index", "30", "--log", db]) == 0
    bundle = tmp_path / "b.json"
    bundle.write_text(capsys.readouterr().out)
    # Offline: only the bundle and the verifier key.
    assert main(["ledger", "verify", str(bundle), "--key", vkey]) == 0
    out = capsys.readouterr().out
    assert "OK: entry 30" in out
    assert '"trip_id":"t5"' in out
    cons = tmp_path / "c.json"
    assert main(["ledger", "consistency", str(cp1), str(cp2), "--log", db, "--out", str(cons)]) == 0
    assert main(["ledger", "verify", str(cons), "--key", vkey]) == 0
    assert "extends size 25" in capsys.readouterr().out
    assert main(["ledger", "audit", db]) == 0
    assert "OK: 50 entries and 2 checkpoints" in capsys.readouterr().out

    # Malformed input: line numbers, exit 1, nothing appended.
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n{oops\n{"b": 2}\n')
    assert main(["ledger", "append", str(bad), "--log", db]) == 1
    assert "line 2" in capsys.readouterr().err
    # A bundle changed by one character fails; the wrong key fails.
    data = json.loads(bundle.read_text())
    data["index"] = 31
    bundle.write_text(json.dumps(data))
    assert main(["ledger", "verify", str(bundle), "--key", vkey]) == 1
    # Tampering: audit names the first bad index and exits 1.
    con = sqlite3.connect(db)
    with con:
        (blob,) = con.execute("SELECT data FROM bundles WHERE id = 0").fetchone()
        con.execute("UPDATE bundles SET data = ? WHERE id = 0", (blob.replace(b'"t7"', b'"t8"'),))
    con.close()
    capsys.readouterr()
    assert main(["ledger", "audit", db]) == 1
    captured = capsys.readouterr()
    assert "first bad index 7" in captured.err


def test_errors_are_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "nope.db")
    assert main(["ledger", "append", str(tmp_path / "x.jsonl"), "--log", missing]) == 1
    assert "no ledger" in capsys.readouterr().err
    assert main(["ledger", "prove", "--index", "0", "--log", missing]) == 1
    db = str(tmp_path / "l.db")
    assert main(["ledger", "init", "--log", db]) == 0
    assert main(["ledger", "prove", "--index", "0", "--log", db]) == 1
    assert main(["ledger", "checkpoint", "--log", db, "--key", str(tmp_path / "no.key")]) == 1


def test_unreadable_files_are_clean_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Binary (non-UTF-8) key, bundle or checkpoint files and unwritable key paths: exit 1, no traceback."""
    binary = tmp_path / "binary.bin"
    binary.write_bytes(b"\xff\xfe\x00 not text")
    assert main(["ledger", "keygen", str(tmp_path / "no" / "such" / "dir" / "k")]) == 1
    assert "cannot write" in capsys.readouterr().err
    k = tmp_path / "k"
    assert main(["ledger", "keygen", str(k)]) == 0
    vkey = str(tmp_path / "k.vkey")
    assert main(["ledger", "verify", str(binary), "--key", vkey]) == 1
    assert "not UTF-8" in capsys.readouterr().err
    assert main(["ledger", "verify", vkey, "--key", str(binary)]) == 1
    assert "not UTF-8" in capsys.readouterr().err
    db = str(tmp_path / "l.db")
    assert main(["ledger", "init", "--log", db, "--key", vkey]) == 0
    assert main(["ledger", "checkpoint", "--log", db, "--key", str(tmp_path / "k.key"), "--out", vkey + ".cp"]) == 0
    assert main(["ledger", "consistency", str(binary), vkey + ".cp", "--log", db]) == 1
    assert "not UTF-8" in capsys.readouterr().err


def test_init_with_a_mismatched_key_leaves_no_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A refused key must not leave behind a keyless ledger that blocks the corrected command."""
    k = tmp_path / "k"
    assert main(["ledger", "keygen", str(k), "--name", "robotaxi.test/ledger"]) == 0
    db = tmp_path / "l.db"
    vkey = str(tmp_path / "k.vkey")
    assert main(["ledger", "init", "--log", str(db), "--key", vkey, "--origin", "other.test/ledger"]) == 1
    assert "cannot sign" in capsys.readouterr().err
    assert not db.exists()
    assert main(["ledger", "init", "--log", str(db), "--key", vkey]) == 0


def test_damaged_database_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Text stored where a blob belongs: prove and audit exit 1 with a message, not a traceback."""
    db, k = str(tmp_path / "l.db"), tmp_path / "k"
    assert main(["ledger", "keygen", str(k)]) == 0
    assert main(["ledger", "init", "--log", db]) == 0
    trips = tmp_path / "t.jsonl"
    trips.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(10)))
    assert main(["ledger", "append", str(trips), "--log", db]) == 0
    assert main(["ledger", "checkpoint", "--log", db, "--key", str(tmp_path / "k.key")]) == 0
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE strips SET hashes = 'text'")
        con.execute("UPDATE bundles SET data = 'text'")
    con.close()
    capsys.readouterr()
    assert main(["ledger", "audit", db]) == 1
    assert "first bad index 0" in capsys.readouterr().err
    assert main(["ledger", "prove", "--index", "0", "--log", db]) == 1
    assert "l.db: " in capsys.readouterr().err


def test_audit_takes_the_ledger_positionally_or_with_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "l.db")
    assert main(["ledger", "init", "--log", db]) == 0
    capsys.readouterr()
    assert main(["ledger", "audit", db]) == 0
    assert main(["ledger", "audit", "--log", db]) == 0
    assert main(["ledger", "audit", "-l", db]) == 0
    assert capsys.readouterr().out.count("OK: 0 entries") == 3
    assert main(["ledger", "audit", db, "--log", str(tmp_path / "other.db")]) == 1
    assert "two ledgers given" in capsys.readouterr().err


def test_error_text_in_square_brackets_is_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Error messages are printed as written: a file named "[x].jsonl" keeps its brackets."""
    db = str(tmp_path / "l.db")
    assert main(["ledger", "init", "--log", db]) == 0
    bad = tmp_path / "[bold]x.jsonl"
    bad.write_text("{oops\n")
    capsys.readouterr()
    assert main(["ledger", "append", str(bad), "--log", db]) == 1
    assert "[bold]x.jsonl" in capsys.readouterr().err


def test_output_is_not_wrapped_when_piped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Standard output is not a terminal here: a long line stays one line (rich wrapped it at 80 columns)."""
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "ledger.db"
    deep.parent.mkdir(parents=True)
    assert main(["ledger", "init", "--log", str(deep)]) == 0
    out = capsys.readouterr().out
    assert f"created {deep} (origin robotaxi.local/ledger)\n" == out


def test_tiles_are_published_and_verified_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`ledger tiles` writes a C2SP tlog-tiles folder of the latest signed checkpoint; `ledger verify-tiles` checks it
    with the verifier key alone, and names the resource a change broke."""
    db, vkey, _ = _ledger_with_trips(tmp_path, 300)
    out = tmp_path / "tiles"
    capsys.readouterr()
    assert main(["ledger", "tiles", str(out), "--log", db]) == 1
    assert "no signed checkpoint to publish" in capsys.readouterr().err
    assert main(["ledger", "checkpoint", "--log", db, "--key", str(tmp_path / "k.key")]) == 0
    assert main(["ledger", "tiles", str(out), "--log", db]) == 0
    assert "wrote 6 resources" in capsys.readouterr().out
    assert main(["ledger", "verify-tiles", str(out), "--key", vkey]) == 0
    assert "OK: 300 entries in 3 tiles verify" in capsys.readouterr().out
    bundle = out / "tile" / "entries" / "001.p" / "44"
    bundle.write_bytes(bundle.read_bytes().replace(b"t299", b"t298"))
    assert main(["ledger", "verify-tiles", str(out), "--key", vkey]) == 1
    assert "tile/entries/001.p/44: entry 299 does not hash to its leaf" in capsys.readouterr().err
    assert main(["ledger", "verify-tiles", str(tmp_path / "nowhere"), "--key", vkey]) == 1
    assert "holds no checkpoint file" in capsys.readouterr().err

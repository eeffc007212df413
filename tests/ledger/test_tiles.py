"""The ledger as a C2SP tlog-tiles log: paths, tile contents, a static mirror and its verification."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robotaxi.errors import LedgerError, VerificationError
from robotaxi.ledger import Checkpoint, Ledger, SigningKey, canonical_json, hash_leaf
from robotaxi.ledger.merkle import root_from_leaves
from robotaxi.ledger.tiles import (
    TILE_WIDTH,
    TileRef,
    _root_from_tiles,
    entry_bundle,
    parse_tile_path,
    read_resource,
    tile_hashes,
    tiles_of_size,
    verify_tiles,
    write_tiles,
)

ORIGIN = "robotaxi.test/ledger"


def _entries(n: int, start: int = 0) -> list[bytes]:
    return [canonical_json({"i": i, "pad": "x" * (i % 7)}) for i in range(start, start + n)]


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate(ORIGIN)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory, key: SigningKey) -> Iterator[Ledger]:
    """70,000 entries (the spec's example size: tiles on three levels), one signed checkpoint."""
    path = tmp_path_factory.mktemp("tiles") / "big.ledger"
    with Ledger.create(path, origin=ORIGIN) as ledger:
        ledger.append(_entries(70_000))
        ledger.sign_checkpoint(key)
        yield ledger


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    path = tmp_path_factory.mktemp("tiles") / "small.ledger"
    with Ledger.create(path, origin=ORIGIN) as ledger:
        ledger.append(_entries(1_000))
        yield ledger


def test_paths_are_written_as_the_spec_writes_them() -> None:
    assert TileRef(0, 1234067).path == "tile/0/x001/x234/067"
    assert TileRef(0, 0).path == "tile/0/000"
    assert TileRef(3, 999, 12).path == "tile/3/999.p/12"
    assert TileRef(1, 1000).path == "tile/1/x001/000"
    assert TileRef(None, 5, 255).path == "tile/entries/005.p/255"
    assert parse_tile_path("tile/0/x001/x234/067") == TileRef(0, 1234067)
    assert parse_tile_path("tile/entries/x001/000.p/7") == TileRef(None, 1000, 7)


@given(
    level=st.none() | st.integers(0, 63),
    index=st.integers(0, 10**15),
    width=st.integers(1, TILE_WIDTH),
)
def test_a_path_reads_back_as_the_tile_it_names(level: int | None, index: int, width: int) -> None:
    ref = TileRef(level, index, width)
    assert parse_tile_path(ref.path) == ref


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("tiles/0/000", "not a tile path"),
        ("tile/0", "not a tile path"),
        ("tile/00/000", "level"),
        ("tile/64/000", "level"),
        ("tile/-1/000", "level"),
        ("tile/0/67", "3-digit"),
        ("tile/0/0067", "3-digit"),
        ("tile/0/001/067", "3-digit"),
        ("tile/0/x1/067", "3-digit"),
        ("tile/entries/abc", "3-digit"),
        ("tile/0/x000/067", "leading zero"),
        ("tile/0/000.p/0", "width"),
        ("tile/0/000.p/256", "width"),
        ("tile/0/000.p/07", "width"),
        ("tile/0/000.p/", "width"),
    ],
)
def test_a_malformed_path_is_refused_with_the_reason(path: str, says: str) -> None:
    with pytest.raises(LedgerError, match=says):
        parse_tile_path(path)


def test_the_tiles_of_a_tree_are_those_of_the_spec_example() -> None:
    """A tree of 70,000: 273 full level-0 tiles and a partial one of 112, one full level-1 tile and a partial one of
    17, a partial level-2 tile of 1, and an entry bundle per level-0 tile. A tree of 256: one full level-0 tile and
    a partial level-1 tile of 1. An empty tree has none."""
    kinds = collections.Counter((t.level, t.width) for t in tiles_of_size(70_000))
    assert kinds == {(0, 256): 273, (0, 112): 1, (1, 256): 1, (1, 17): 1, (2, 1): 1, (None, 256): 273, (None, 112): 1}
    assert [t.path for t in tiles_of_size(256)] == ["tile/0/000", "tile/entries/000", "tile/1/000.p/1"]
    assert list(tiles_of_size(0)) == []
    assert [t.path for t in tiles_of_size(255)] == ["tile/0/000.p/255", "tile/entries/000.p/255"]


def test_tiles_hold_the_trees_hashes_and_bundles_the_entries(small: Ledger) -> None:
    """Level 0: the leaf hashes; level 1: the tree hash of each 256 leaves; entry bundles: the entries, each after
    its length as two big-endian bytes."""
    entries = _entries(1_000)
    leaves = [hash_leaf(e) for e in entries]
    level0 = tile_hashes(small, TileRef(0, 1))
    assert [level0[i : i + 32] for i in range(0, len(level0), 32)] == leaves[256:512]
    level1 = tile_hashes(small, TileRef(1, 0, 3))
    assert [level1[i : i + 32] for i in range(0, 96, 32)] == [
        root_from_leaves(leaves[j : j + 256]) for j in (0, 256, 512)
    ]
    bundle = entry_bundle(small, TileRef(None, 3, 1_000 - 768))
    expected = b"".join(len(e).to_bytes(2, "big") + e for e in entries[768:])
    assert bundle == expected
    assert read_resource(small, "tile/entries/003.p/232") == expected


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 1_000))
def test_the_root_from_the_tiles_of_any_size_is_the_ledgers(small: Ledger, size: int) -> None:
    hashes = {}
    for ref in tiles_of_size(size):
        if ref.level is not None:
            data = tile_hashes(small, ref, size)
            hashes[ref.level, ref.index] = [data[i : i + 32] for i in range(0, len(data), 32)]
    assert _root_from_tiles(size, hashes) == small.root(size)


def test_a_tile_the_tree_does_not_have_yet_is_refused(small: Ledger) -> None:
    with pytest.raises(LedgerError, match="not in the log"):
        read_resource(small, "tile/0/003")  # entries 768..1023: the ledger holds 1,000
    with pytest.raises(LedgerError, match="not in the log"):
        read_resource(small, "tile/1/000")  # a full level-1 tile needs 65,536 entries
    with pytest.raises(LedgerError, match="not in the log"):
        read_resource(small, "tile/0/003.p/233")
    assert len(read_resource(small, "tile/0/003.p/232")) == 232 * 32


def _reader(folder: Path):  # type: ignore[no-untyped-def]
    return lambda path: (folder / path).read_bytes()


def test_a_static_mirror_verifies_against_the_signed_checkpoint(big: Ledger, key: SigningKey, tmp_path: Path) -> None:
    written = write_tiles(big, tmp_path)
    assert written == 277 + 274 + 1  # Merkle tiles, entry bundles, the checkpoint
    assert (tmp_path / "tile/2/000.p/1").stat().st_size == 32
    assert (tmp_path / "checkpoint").read_text() == big.latest_checkpoint().note  # type: ignore[union-attr]
    report = verify_tiles(_reader(tmp_path), key.verifier())
    assert (report.size, report.root, report.tiles, report.entries) == (70_000, big.root(), 277, 70_000)


def test_a_mirror_grows_by_its_partial_tiles(tmp_path: Path, key: SigningKey) -> None:
    """Full tiles never change, so a second publication writes only the new and the partial ones; the old partial
    tiles stay valid prefixes for clients of the older checkpoint."""
    out = tmp_path / "mirror"
    with Ledger.create(tmp_path / "g.ledger", origin=ORIGIN) as ledger:
        ledger.append(_entries(300))
        ledger.sign_checkpoint(key)
        assert write_tiles(ledger, out) == 6  # 0/000, entries/000, 0/001.p/44, entries/001.p/44, 1/000.p/1, checkpoint
        ledger.append(_entries(300, start=300))
        ledger.sign_checkpoint(key)
        assert write_tiles(ledger, out) == 6  # 0/001, entries/001, 0/002.p/88, entries/002.p/88, 1/000.p/2, checkpoint
        assert (out / "tile/0/001.p/44").read_bytes() == (out / "tile/0/001").read_bytes()[: 44 * 32]
        report = verify_tiles(_reader(out), key.verifier())
        assert (report.size, report.root) == (600, ledger.root())


def test_publishing_needs_a_signed_checkpoint(small: Ledger, tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no signed checkpoint"):
        write_tiles(small, tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("path", "change", "says"),
    [
        ("tile/entries/017", lambda b: b[:40] + bytes([b[40] ^ 1]) + b[41:], r"entry 4\d\d\d does not hash"),
        ("tile/0/017", lambda b: b[:100] + bytes([b[100] ^ 1]) + b[101:], "does not hash to its leaf"),
        ("tile/1/000", lambda b: b[:64] + bytes([b[64] ^ 1]) + b[65:], "hash 2 is not the tree hash of tile 0/2"),
        ("tile/1/001.p/17", lambda b: b[:-1] + bytes([b[-1] ^ 1]), "hash 16 is not the tree hash of tile 0/272"),
        ("tile/0/000", lambda b: b[:-32], "bytes, expected 8192"),
        ("tile/entries/000", lambda b: b[:-3], "entries, expected 256|runs past"),
    ],
)
def test_a_changed_resource_is_named(  # type: ignore[no-untyped-def]
    big: Ledger, key: SigningKey, tmp_path: Path, path: str, change, says: str
) -> None:
    write_tiles(big, tmp_path)
    target = tmp_path / path
    target.write_bytes(change(target.read_bytes()))
    with pytest.raises(VerificationError, match=says):
        verify_tiles(_reader(tmp_path), key.verifier())


def test_tiles_of_another_tree_than_the_checkpoints_are_refused(big: Ledger, key: SigningKey, tmp_path: Path) -> None:
    """Tiles that agree with each other but not with the signed root (a checkpoint of another tree of that size)."""
    write_tiles(big, tmp_path)
    forged = Checkpoint(ORIGIN, 70_000, hash_leaf(b"another tree")).sign(key)
    (tmp_path / "checkpoint").write_text(forged)
    with pytest.raises(VerificationError, match="does not have the checkpoint's root"):
        verify_tiles(_reader(tmp_path), key.verifier())


def test_another_key_does_not_verify_the_mirror(big: Ledger, tmp_path: Path) -> None:
    write_tiles(big, tmp_path)
    with pytest.raises(VerificationError):
        verify_tiles(_reader(tmp_path), SigningKey.generate(ORIGIN).verifier())


def test_an_entry_too_long_for_a_bundle_is_refused(tmp_path: Path) -> None:
    with Ledger.create(tmp_path / "long.ledger", origin=ORIGIN) as ledger:
        ledger.append([b"short", b"x" * 70_000])
        with pytest.raises(LedgerError, match="entry 1 has 70000 bytes"):
            read_resource(ledger, "tile/entries/000.p/2")
        assert read_resource(ledger, "tile/entries/000.p/1") == b"\x00\x05short"

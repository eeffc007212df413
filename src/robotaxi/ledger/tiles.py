"""The ledger as a tiled transparency log (C2SP tlog-tiles, https://c2sp.org/tlog-tiles).

Besides the proof bundles of :mod:`.bundle`, a log can be published as static resources that any tlog-tiles
client (a monitor, a witness, an auditor's mirror) fetches with plain GETs and checks against a signed checkpoint:

* ``checkpoint``: the latest C2SP signed checkpoint;
* ``tile/<L>/<N>[.p/<W>]``: the *n*-th tile of level *l* is the sequence of the Merkle Tree Hashes
  ``MTH(D[(n * 256 + i) * 256**l : (n * 256 + i + 1) * 256**l])`` for *i* from 0 to 255 (a partial tile: the
  first *W*). In this package's terms, the perfect subtrees ``(8 * l, n * 256 + i)``, which the store keeps;
* ``tile/entries/<N>[.p/<W>]``: the entries of level-0 tile *N*, each prefixed by its length as a big-endian
  uint16.

``<N>`` is written in zero-padded 3-digit path elements, all but the last prefixed by ``x`` (1234067 is
``x001/x234/067``). For a tree of size *s*, level *l* has ``s // 256**(l + 1)`` full tiles and, if
``(s // 256**l) % 256`` is not zero, one partial tile that wide. Every tile is immutable: a partial tile is a
prefix of the full tile it grows into, so any prefix whose hashes exist can be served.

:func:`read_resource` serves one resource from a ledger (the service's ``/v1/ledger/tlog/`` routes),
:func:`write_tiles` writes the whole tree of the latest checkpoint to a folder (a static mirror, served by any
web server or handed over as files), and :func:`verify_tiles` checks such a tree from its resources alone: the
checkpoint's signature, every tile against the level below, every entry against its leaf hash, and the root.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import LedgerError, VerificationError
from .log import Ledger
from .merkle import EMPTY_ROOT, HASH_SIZE, _fold, hash_leaf, perfect_pieces, root_from_leaves
from .note import VerifierKey, open_checkpoint

__all__ = [
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "TileRef",
    "TilesReport",
    "parse_tile_path",
    "read_resource",
    "tiles_of_size",
    "verify_tiles",
    "write_tiles",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_LEVEL = 63
#: An entry of an entry bundle carries its length in two bytes.
MAX_ENTRY_BYTES = 0xFFFF
_LEN16 = struct.Struct(">H")
_ELEMENT = re.compile(r"x[0-9]{3}")
_LAST = re.compile(r"[0-9]{3}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_MAX_ELEMENTS = 6  # 21 digits: more than any log will hold


@dataclass(frozen=True, slots=True)
class TileRef:
    """One tlog-tiles resource: a Merkle tile (``level`` 0..63) or an entry bundle (``level`` None), its index,
    and its width in hashes or entries (256: full; 1..255: partial)."""

    level: int | None
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if self.level is not None and not 0 <= self.level <= MAX_LEVEL:
            raise LedgerError(f"tile level {self.level} is outside 0..{MAX_LEVEL}")
        if self.index < 0:
            raise LedgerError(f"tile index {self.index} is negative")
        if not 1 <= self.width <= TILE_WIDTH:
            raise LedgerError(f"tile width {self.width} is outside 1..{TILE_WIDTH}")

    @property
    def partial(self) -> bool:
        return self.width < TILE_WIDTH

    @property
    def path(self) -> str:
        """The resource's path below the log's prefix, e.g. ``tile/0/x001/x234/067.p/12``."""
        digits = str(self.index)
        digits = digits.zfill(-(-len(digits) // 3) * 3)
        groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
        n = "/".join([*("x" + g for g in groups[:-1]), groups[-1]])
        head = "tile/entries" if self.level is None else f"tile/{self.level}"
        return f"{head}/{n}" + (f".p/{self.width}" if self.partial else "")

    def end(self) -> int:
        """How many entries the tree must hold for this resource to exist (its last hash or entry included)."""
        span = 1 if self.level is None else TILE_WIDTH**self.level
        return (self.index * TILE_WIDTH + self.width) * span


def parse_tile_path(path: str) -> TileRef:
    """The resource a tlog-tiles path names (``tile/...``, without the log's prefix), or :class:`LedgerError`
    naming what is wrong with it."""
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise LedgerError(f"{path!r} is not a tile path: expected tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]")
    head = parts[1]
    rest = parts[2:]
    width = TILE_WIDTH
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        w = rest[-1]
        if not _DECIMAL.fullmatch(w) or not 1 <= int(w) < TILE_WIDTH:
            raise LedgerError(f"{path!r}: a partial tile's width is 1..255 without leading zeroes, not {w!r}")
        width = int(w)
        rest = [*rest[:-2], rest[-2][:-2]]
    *upper, last = rest
    if len(upper) > _MAX_ELEMENTS:
        raise LedgerError(f"{path!r}: the index has more than {3 * (_MAX_ELEMENTS + 1)} digits")
    if not _LAST.fullmatch(last) or not all(_ELEMENT.fullmatch(e) for e in upper):
        raise LedgerError(
            f"{path!r}: the index is written in 3-digit elements, all but the last prefixed by x (x001/x234/067)"
        )
    index = int("".join([*(e[1:] for e in upper), last]))
    if upper and upper[0] == "x000":
        raise LedgerError(f"{path!r}: the index has a leading zero element")
    if head == "entries":
        return TileRef(None, index, width)
    if not _DECIMAL.fullmatch(head) or int(head) > MAX_LEVEL:
        raise LedgerError(f"{path!r}: the level is 0..{MAX_LEVEL} without leading zeroes, not {head!r}")
    return TileRef(int(head), index, width)


def tiles_of_size(size: int) -> Iterator[TileRef]:
    """Every Merkle tile and entry bundle of a tree of ``size`` entries, level by level, full tiles first."""
    if size < 0:
        raise LedgerError(f"a tree size is >= 0, not {size}")
    level = 0
    while size >= TILE_WIDTH**level:
        nodes = size // TILE_WIDTH**level
        full, part = divmod(nodes, TILE_WIDTH)
        for n in range(full):
            yield TileRef(level, n)
            if level == 0:
                yield TileRef(None, n)
        if part:
            yield TileRef(level, full, part)
            if level == 0:
                yield TileRef(None, full, part)
        level += 1


def _check_available(ref: TileRef, size: int) -> None:
    if ref.end() > size:
        raise LedgerError(f"{ref.path} is not in the log: it needs {ref.end()} entries, the log holds {size}")


def tile_hashes(ledger: Ledger, ref: TileRef, size: int | None = None) -> bytes:
    """The concatenated hashes of Merkle tile ``ref`` (32 bytes each), from the stored perfect subtrees."""
    if ref.level is None:
        raise LedgerError("an entry bundle has no hashes: read it with entry_bundle")
    _check_available(ref, ledger.size if size is None else size)
    height = TILE_HEIGHT * ref.level
    first = ref.index * TILE_WIDTH
    ids = [(height, first + i) for i in range(ref.width)]
    nodes = ledger.store.get_nodes(ids)
    return b"".join(nodes[i] for i in ids)


def entry_bundle(ledger: Ledger, ref: TileRef, size: int | None = None) -> bytes:
    """Entry bundle ``ref``: each entry prefixed by its length as a big-endian uint16."""
    if ref.level is not None:
        raise LedgerError("a Merkle tile holds hashes: read it with tile_hashes")
    _check_available(ref, ledger.size if size is None else size)
    start = ref.index * TILE_WIDTH
    out = bytearray()
    for k, entry in enumerate(ledger.entries(start, start + ref.width)):
        if len(entry) > MAX_ENTRY_BYTES:
            raise LedgerError(
                f"entry {start + k} has {len(entry)} bytes; an entry bundle holds at most {MAX_ENTRY_BYTES}"
            )
        out += _LEN16.pack(len(entry))
        out += entry
    return bytes(out)


def read_resource(ledger: Ledger, path: str, size: int | None = None) -> bytes:
    """The bytes of the tlog-tiles resource at ``path`` (``tile/...``) for a tree of ``size`` entries (default:
    the ledger's size): :class:`LedgerError` if the path is malformed or the resource does not exist yet."""
    ref = parse_tile_path(path)
    return tile_hashes(ledger, ref, size) if ref.level is not None else entry_bundle(ledger, ref, size)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_tiles(ledger: Ledger, folder: str | Path) -> int:
    """Write the latest signed checkpoint and every tile and entry bundle of its tree under ``folder`` (a static
    tlog-tiles log: serve the folder as the log's prefix). Full tiles already there are kept (they never change);
    partial tiles of this size are written. Returns the number of resources written.

    Raises :class:`LedgerError` if the ledger has no signed checkpoint yet (sign one first).
    """
    cp = ledger.latest_checkpoint()
    if cp is None:
        raise LedgerError(f"{ledger.origin}: no signed checkpoint to publish", hint="sign a checkpoint first")
    root = Path(folder)
    written = 0
    for ref in tiles_of_size(cp.size):
        target = root / ref.path
        if not ref.partial and target.exists():
            continue
        _write_atomic(target, read_resource(ledger, ref.path, cp.size))
        written += 1
    _write_atomic(root / "checkpoint", cp.note.encode("utf-8"))
    return written + 1


@dataclass(frozen=True, slots=True)
class TilesReport:
    """What :func:`verify_tiles` checked: the checkpoint's size and root, and how many tiles and entries."""

    size: int
    root: bytes
    tiles: int
    entries: int


def _split_hashes(data: bytes, ref: TileRef) -> list[bytes]:
    if len(data) != ref.width * HASH_SIZE:
        raise VerificationError(f"{ref.path}: {len(data)} bytes, expected {ref.width * HASH_SIZE}")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def _split_entries(data: bytes, ref: TileRef) -> list[bytes]:
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise VerificationError(f"{ref.path}: a length prefix is cut off at byte {pos}")
        (n,) = _LEN16.unpack_from(data, pos)
        if pos + 2 + n > len(data):
            raise VerificationError(f"{ref.path}: entry {len(out)} runs past the end of the bundle")
        out.append(data[pos + 2 : pos + 2 + n])
        pos += 2 + n
    if len(out) != ref.width:
        raise VerificationError(f"{ref.path}: {len(out)} entries, expected {ref.width}")
    return out


def verify_tiles(fetch: Callable[[str], bytes], verifier: VerifierKey, origin: str | None = None) -> TilesReport:
    """Check a tiled log from its resources alone (``fetch(path)`` returns the bytes at ``path`` below the
    prefix, e.g. read from a folder or an HTTP client): the checkpoint's signature, every entry against its leaf
    hash, every tile against the tiles below it, and the tree's root against the checkpoint's.

    Raises :class:`VerificationError` naming the first resource that does not match.
    """
    cp = open_checkpoint(fetch("checkpoint"), verifier, origin)
    hashes: dict[tuple[int, int], list[bytes]] = {}  # (level, index) -> the tile's hashes
    n_tiles = n_entries = 0
    for ref in tiles_of_size(cp.size):
        data = fetch(ref.path)
        if ref.level is None:
            leaves = [hash_leaf(e) for e in _split_entries(data, ref)]
            if leaves != hashes[0, ref.index]:
                bad = next(i for i, (a, b) in enumerate(zip(leaves, hashes[0, ref.index], strict=True)) if a != b)
                raise VerificationError(
                    f"{ref.path}: entry {ref.index * TILE_WIDTH + bad} does not hash to its leaf in tile/0"
                )
            n_entries += len(leaves)
            continue
        tile = _split_hashes(data, ref)
        hashes[ref.level, ref.index] = tile
        n_tiles += 1
        if ref.level > 0:  # each hash is the MTH of a full tile of the level below
            for i, h in enumerate(tile):
                n = ref.index * TILE_WIDTH + i
                below = hashes.get((ref.level - 1, n))
                if below is None or len(below) != TILE_WIDTH or root_from_leaves(below) != h:
                    raise VerificationError(f"{ref.path}: hash {i} is not the tree hash of tile {ref.level - 1}/{n}")
    root = _root_from_tiles(cp.size, hashes)
    if root != cp.root:
        raise VerificationError(f"the tiles' tree of {cp.size} entries does not have the checkpoint's root")
    return TilesReport(cp.size, root, n_tiles, n_entries)


def _node_from_tiles(height: int, index: int, hashes: dict[tuple[int, int], list[bytes]]) -> bytes:
    """Hash of the perfect subtree ``(height, index)`` from the tiles: the tree hash of ``2**r`` consecutive hashes
    of the tile level ``height // 8`` (``r = height % 8``), as if they were leaf hashes."""
    level, r = divmod(height, TILE_HEIGHT)
    first = index << r
    tile, pos = divmod(first, TILE_WIDTH)
    row = hashes[level, tile]
    return root_from_leaves(row[pos : pos + (1 << r)])


def _root_from_tiles(size: int, hashes: dict[tuple[int, int], list[bytes]]) -> bytes:
    if size == 0:
        return EMPTY_ROOT
    return _fold([_node_from_tiles(h, i, hashes) for h, i in perfect_pieces(0, size)])

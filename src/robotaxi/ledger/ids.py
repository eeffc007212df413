"""Record ids: which ledger entries are trips or safety events, and their 64-bit index keys.

Kept apart from :mod:`robotaxi.ledger.idindex` (NumPy) so that opening a ledger and appending to it start fast.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ID_FIELDS",
    "RUN_CAP_LEVEL",
    "RecordId",
    "entry_id",
    "id_key",
    "record_id",
    "run_id",
    "run_pieces",
    "run_span",
]

#: Pieces (and runs) cover at most 2**20 entries: a run's two blobs stay below 12 MiB.
RUN_CAP_LEVEL = 20
_LEVEL_SHIFT = 48

#: ``kind`` -> the member that holds a record's id. Blob digests are not deduplicated: their default id is a
#: file name, which two different recordings may share.
ID_FIELDS: Mapping[str, str] = {"trip": "trip_id", "safety_event": "event_id"}
_MEMBER_RE = re.compile(rb'"(kind|trip_id|event_id)"\s*:\s*"([^"]*)"')

#: What identifies a record: (kind, id).
RecordId = tuple[str, str]


def record_id(obj: Mapping[str, Any]) -> RecordId | None:
    """``(kind, id)`` of a trip or safety-event JSON object, ``None`` for any other object."""
    kind = obj.get("kind")
    if not isinstance(kind, str):
        return None
    name = ID_FIELDS.get(kind)
    if name is None:
        return None
    value = obj.get(name)
    return (kind, value) if isinstance(value, str) and value else None


def entry_id(entry: bytes) -> RecordId | None:
    """``(kind, id)`` of an entry that is a trip or safety-event JSON object, else ``None``.

    Only entries that mention an id member (or hold a ``\\u`` escape that could spell one) are parsed, so raw
    entries of other kinds cost one substring search each.
    """
    if b'_id"' not in entry and b"\\u" not in entry:
        return None
    if b"\\" not in entry and entry[:1] == b"{" and entry.count(b"{") == 1:
        # A flat object without escapes (every trip the simulator writes): each '"' delimits a string, so
        # a string followed by ':' is a member name. One scan finds the kind and id members; exactly one
        # of each decides, anything else is left to the parser.
        pairs = _MEMBER_RE.findall(entry)
        if not pairs:
            return None
        kinds = [v for n, v in pairs if n == b"kind"]
        if len(kinds) == 1:
            name = ID_FIELDS.get(kinds[0].decode("utf-8", "replace"))
            if name is None:
                return None
            values = [v for n, v in pairs if n == name.encode()]
            if len(values) == 1 and values[0]:
                try:
                    return (kinds[0].decode("utf-8"), values[0].decode("utf-8"))
                except UnicodeDecodeError:
                    return None
    try:
        obj = json.loads(entry)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return record_id(obj) if isinstance(obj, dict) else None


def id_key(rid: RecordId) -> int:
    """The 64-bit index key of a record id: the first 8 bytes of SHA-256(kind, NUL, id), big-endian."""
    kind, ident = rid
    digest = hashlib.sha256(kind.encode() + b"\x00" + ident.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big")


def run_id(level: int, index: int) -> int:
    """Row id of the run of piece ``(level, index)``."""
    return (level << _LEVEL_SHIFT) | index


def run_span(rid: int) -> tuple[int, int]:
    """``[start, end)`` entry range of a run id."""
    level, index = rid >> _LEVEL_SHIFT, rid & ((1 << _LEVEL_SHIFT) - 1)
    return index << level, (index + 1) << level


def run_pieces(size: int) -> list[tuple[int, int]]:
    """The pieces ``(level, index)`` of ``[0, size)``: full ``2**RUN_CAP_LEVEL`` blocks, then the binary digits."""
    full = size >> RUN_CAP_LEVEL
    pieces = [(RUN_CAP_LEVEL, i) for i in range(full)]
    pos = full << RUN_CAP_LEVEL
    for level in range(RUN_CAP_LEVEL - 1, -1, -1):
        if (size >> level) & 1:
            pieces.append((level, pos >> level))
            pos += 1 << level
    return pieces

"""The binary payload the replay page decodes: a JSON header and flat typed arrays, gzip-compressed.

Layout before compression::

    b"RTXR" | uint32 little-endian header length | header JSON (UTF-8, space-padded to 8 bytes) | arrays

Every array starts at a multiple of 8 bytes (so the page can view it as a typed array without copying). The header
lists ``{"name", "dtype", "offset", "length", "encoding"}`` per array; ``encoding`` is ``"raw"`` or ``"delta"`` (the
page takes the running sum: sorted times compress far better as differences). The page inflates the payload with
the browser's own ``DecompressionStream("gzip")``.
"""

from __future__ import annotations

import gzip
import json
import struct
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .replay_data import ReplayData

MAGIC = b"RTXR"
#: NumPy dtypes the page knows how to view (their JavaScript typed-array names are in the page).
DTYPES = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "float32", "float64", "int64")
#: Arrays sent as differences of consecutive values.
DELTA = frozenset(("ev_time", "req_time"))


def _pad(n: int) -> int:
    return (-n) % 8


def encode(data: ReplayData, *, level: int = 6) -> bytes:
    """The gzip-compressed payload of ``data`` (deterministic: the same data gives the same bytes)."""
    specs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    offset = 0
    for name, arr in data.arrays.items():
        a: NDArray[Any] = np.ascontiguousarray(arr)
        if a.dtype.name not in DTYPES:
            raise ValueError(f"array {name}: dtype {a.dtype} has no typed-array view in the page")
        encoding = "raw"
        if name in DELTA and a.size:
            a = np.diff(a, prepend=a.dtype.type(0)).astype(a.dtype)
            encoding = "delta"
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        specs.append(
            {"name": name, "dtype": a.dtype.name, "offset": offset, "length": int(a.size), "encoding": encoding}
        )
        blobs.append(raw + b"\0" * _pad(len(raw)))
        offset += len(raw) + _pad(len(raw))
    header = json.dumps({"meta": data.meta, "arrays": specs}, separators=(",", ":"), allow_nan=False).encode()
    header += b" " * _pad(len(header))
    body = b"".join([MAGIC, struct.pack("<I", len(header)), header, *blobs])
    # The header starts at byte 8, so 8-byte alignment of the arrays holds relative to the buffer start too.
    return gzip.compress(body, compresslevel=level, mtime=0)


def decode(payload: bytes) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
    """Inverse of :func:`encode` (for tests and tools): ``(meta, arrays)`` with delta arrays summed back."""
    body = gzip.decompress(payload)
    if body[:4] != MAGIC:
        raise ValueError("not a robotaxi replay payload")
    (hlen,) = struct.unpack("<I", body[4:8])
    header = json.loads(body[8 : 8 + hlen])
    base = 8 + hlen
    arrays: dict[str, NDArray[Any]] = {}
    for spec in header["arrays"]:
        dt = np.dtype(spec["dtype"]).newbyteorder("<")
        a = np.frombuffer(body, dtype=dt, count=spec["length"], offset=base + spec["offset"])
        if spec["encoding"] == "delta":
            a = np.cumsum(a, dtype=dt)
        arrays[spec["name"]] = a.astype(dt.newbyteorder("="))
    return header["meta"], arrays

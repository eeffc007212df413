"""Identifiers the platform draws itself for rows written in bulk.

Telemetry points and vehicle events arrive a thousand to a batch and are keyed by a UUID. A random (version 4) key
lands each new row on a random page of the primary-key index, so as the table grows every batch dirties about as
many index pages as it has rows: measured on SQLite with 300 batches of 1,000 points, the insert and the commit
took 59 ms per batch against 16 ms with time-ordered keys (``benchmarks/RESULTS.md``). Version 7 UUIDs (RFC 9562,
section 5.7) start with the Unix time in milliseconds, so the keys of one batch sit together at the end of the
index. They are still UUIDs as MDS requires (``telemetry_id``, ``event_id``), with 74 random bits each.
"""

from __future__ import annotations

import os
import uuid

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0x2 << 62
_RANDOM_MASK = ~((0xF << 76) | (0x3 << 62)) & ((1 << 80) - 1)


def uuid7_strings(n: int, unix_ms: int) -> list[str]:
    """``n`` distinct-with-overwhelming-probability version 7 UUIDs (canonical lower-case text) for ``unix_ms``.

    Layout (RFC 9562, 5.7): 48-bit big-endian Unix milliseconds, the version (7), 12 random bits, the variant
    (``10``) and 62 random bits.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, not {n}")
    if not 0 <= unix_ms < 1 << 48:
        raise ValueError(f"unix_ms {unix_ms} does not fit in 48 bits")
    head = unix_ms << 80
    raw = os.urandom(10 * n)
    out = []
    for i in range(n):
        tail = int.from_bytes(raw[10 * i : 10 * i + 10], "big") & _RANDOM_MASK
        out.append(str(uuid.UUID(int=head | _VERSION_7 | _VARIANT_RFC | tail)))
    return out

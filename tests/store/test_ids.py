"""Time-ordered ids for rows the platform writes in bulk (RFC 9562 version 7 UUIDs)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from robotaxi.store.ids import uuid7_strings


@given(st.integers(0, (1 << 48) - 1), st.integers(0, 50))
def test_version_7_layout(ms: int, n: int) -> None:
    ids = uuid7_strings(n, ms)
    assert len(ids) == n
    for s in ids:
        u = uuid.UUID(s)
        assert str(u) == s  # canonical lower-case text
        assert u.version == 7
        assert u.variant == uuid.RFC_4122
        assert u.int >> 80 == ms  # the first 48 bits are the Unix milliseconds


def test_ids_sort_by_time_and_differ() -> None:
    early, late = uuid7_strings(500, 1_764_700_000_000), uuid7_strings(500, 1_764_700_000_001)
    assert max(early) < min(late)  # as text too: the index order is the time order across milliseconds
    assert len(set(early + late)) == 1000


@pytest.mark.parametrize(("n", "ms", "match"), [(-1, 0, "n must be"), (1, -1, "48 bits"), (1, 1 << 48, "48 bits")])
def test_refuses_what_does_not_fit(n: int, ms: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        uuid7_strings(n, ms)

"""Integer-cent arithmetic shared by the market modules.

Money is integer cents everywhere; rates that are fractions (commission, pooled discount, driver share, surge
multipliers) are held as integer **basis points** (1 bp = 0.01 %, 10,000 bp = 1.0). Every division that produces
cents rounds **half up** (half a cent goes to the larger amount) on exact integer numerators, so no float ever
touches an amount of money and the same inputs give the same cents on any machine.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

I64 = NDArray[np.int64]

#: 1.0 as basis points.
BP = 10_000

#: Largest amount one computation step may hold (int64 headroom for the products below): $10 million.
MAX_CENTS = 1_000_000_000

#: Largest surge multiplier, 10x: ``MAX_CENTS * MAX_SURGE_BP * BP * 2`` stays below 2**63.
MAX_SURGE_BP = 10 * BP


def div_half_up(num: I64, den: int) -> I64:
    """``num / den`` rounded half up, for non-negative integer ``num`` and positive ``den`` (exact)."""
    out: I64 = (num * 2 + den) // (2 * den)
    return out


def int_column(values: Any, name: str, *, n: int | None = None) -> I64:
    """A 1-d int64 copy of ``values`` (numbers that are whole), refusing negatives; the error names ``name``.

    A scalar is broadcast to ``n`` rows when ``n`` is given.
    """
    a = np.asarray(values)
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{name}: expected integers, got dtype {a.dtype}")
    if np.issubdtype(a.dtype, np.floating) and (not np.all(np.isfinite(a)) or np.any(a != np.round(a))):
        raise ValueError(f"{name}: expected whole numbers")
    if a.ndim == 0 and n is not None:
        a = np.full(n, a)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d column, got shape {a.shape}")
    if n is not None and a.size != n:
        raise ValueError(f"{name}: expected {n} rows, got {a.size}")
    out = a.astype(np.int64)
    if out.size and int(out.min()) < 0:
        raise ValueError(f"{name}: must be >= 0 (row {int(np.argmax(out < 0))} is {int(out.min())})")
    return out


def fraction_to_bp(value: float, name: str, *, upper: float = 1.0, upper_open: bool = False) -> int:
    """A fraction in ``[0, upper]`` (or ``[0, upper)``) as integer basis points, rounded to the nearest bp."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    if value < 0 or value > upper or (upper_open and value >= upper):
        bound = f"[0, {upper:g})" if upper_open else f"[0, {upper:g}]"
        raise ValueError(f"{name}: must be in {bound}, got {value!r}")
    return round(value * BP)

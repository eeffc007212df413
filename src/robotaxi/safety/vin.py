"""VIN-like identifiers for simulated vehicles, so a run's report has one row per "VIN" as the DMV's has.

A simulated vehicle has no VIN; the report needs one per vehicle, stable across runs and reversible. The layout
follows the 17 positions of a VIN (49 CFR 565.15, ISO 3779) so that tools expecting VINs accept it, and is marked
as not real by its first character ``0``, which ISO 3780 assigns to no region:

* 1-3 ``0RT``: the made-up world manufacturer identifier;
* 4-8: five characters of the SHA-256 of the operator name, in the VIN alphabet (no I, O, Q);
* 9: the check digit of 49 CFR 565.15(c) (transliteration, weights 8 7 6 5 4 3 2 10 0 9 8 7 6 5 4 3 2, mod 11);
* 10: the model-year code of the run's year (A = 1980 or 2010, ..., J = 2018, T = 2026; 30-year cycle);
* 11: ``S`` (simulated "plant");
* 12-17: the vehicle's index in the run, six digits.
"""

from __future__ import annotations

import hashlib

__all__ = ["is_valid_check_digit", "simulated_vin", "vehicle_index_of_vin"]

VIN_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"
_TRANSLIT = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
WMI = "0RT"


def _check_digit(vin: str) -> str:
    total = sum(_TRANSLIT[c] * w for c, w in zip(vin, _WEIGHTS, strict=True))
    r = total % 11
    return "X" if r == 10 else str(r)


def simulated_vin(operator: str, index: int, year: int) -> str:
    """The VIN-like id of vehicle ``index`` of ``operator`` in a run dated in ``year``.

    Raises
    ------
    ValueError
        For an empty operator, an index outside 0..999999 or a year before 1980.
    """
    if not operator:
        raise ValueError("operator: must not be empty")
    if not 0 <= index <= 999_999:
        raise ValueError(f"index: a VIN holds vehicle indices 0..999999, got {index}")
    if year < 1980:
        raise ValueError(f"year: model-year codes start in 1980, got {year}")
    digest = hashlib.sha256(operator.encode("utf-8")).digest()
    vds = "".join(VIN_ALPHABET[b % len(VIN_ALPHABET)] for b in digest[:5])
    body = f"{WMI}{vds}0{_YEAR_CODES[(year - 1980) % 30]}S{index:06d}"
    return body[:8] + _check_digit(body) + body[9:]


def is_valid_check_digit(vin: str) -> bool:
    """Whether a 17-character VIN's ninth character is its check digit."""
    if len(vin) != 17 or any(c not in _TRANSLIT for c in vin):
        return False
    return vin[8] == _check_digit(vin)


def vehicle_index_of_vin(vin: str) -> int:
    """The vehicle index a :func:`simulated_vin` encodes; ``ValueError`` for any other VIN."""
    if not (vin.startswith(WMI) and vin[10] == "S" and vin[11:].isdigit() and is_valid_check_digit(vin)):
        raise ValueError(f"vin: {vin!r} is not a simulated VIN")
    return int(vin[11:])

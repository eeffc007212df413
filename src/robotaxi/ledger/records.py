"""What goes into the ledger: canonical JSON bytes, and the trip, safety-event and blob-digest records.

Canonical JSON
--------------
Every entry is the canonical JSON encoding of one JSON object, so the same record always hashes to the
same leaf, whoever writes it:

* UTF-8, no byte-order mark, no whitespace outside strings (separators ``,`` and ``:``);
* object keys sorted by their UTF-16 code units (RFC 8785 section 3.2.3), no duplicate keys;
* strings escaped as JSON requires and nothing more (non-ASCII characters stay literal);
* integers in plain decimal; floats as ECMAScript ``Number.prototype.toString`` writes them (RFC 8785
  section 3.2.2.3): the shortest digits that read back to the same double, so ``1.0`` is ``1``, ``-0.0``
  is ``0``, ``1e-7`` is ``1e-7`` and ``1e16`` is ``10000000000000000``; ``NaN`` and infinities are refused.

This is RFC 8785 (JCS) for every value a double holds exactly; integers beyond 2**53, which JCS would
round to a double, are kept exact. The same JSON value therefore gives the same bytes whichever way it was
written (``1``, ``1.0`` and ``1e0`` are one number), and any JCS implementation reproduces them. Records
store money in integer cents, times in integer milliseconds since the Unix epoch (UTC), distances in
integer metres and durations in seconds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import LedgerError

__all__ = [
    "BlobDigest",
    "JsonlError",
    "LedgerRecord",
    "SafetyEvent",
    "TripRecord",
    "canonical_json",
    "read_jsonl",
    "record_bytes",
]

SCHEMA_VERSION = 1


class JsonlError(LedgerError):
    """A JSON-lines batch had malformed lines; nothing from it was appended."""

    def __init__(self, source: str, problems: list[tuple[int, str]]) -> None:
        self.source = source
        self.problems = problems
        shown = "; ".join(f"line {n}: {why}" for n, why in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(
            f"{source}: {len(problems)} malformed line(s): {shown}{more}",
            hint="nothing from this file was appended; fix the lines and append it again",
        )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed in the ledger")


def _number(x: float) -> str:
    """A finite double as ECMAScript ``Number.prototype.toString`` (ECMA-262 Number::toString, RFC 8785)."""
    if not math.isfinite(x):
        raise ValueError("NaN and infinity are not allowed in the ledger")
    if x == 0:
        return "0"
    # repr gives the shortest round-trip digits, as ECMAScript does; only the layout differs.
    mantissa, _, exp = repr(abs(x)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    n = len(whole) + int(exp or 0) - (len(whole + frac) - len(digits))  # x = 0.digits * 10**n
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        e = n - 1
        text = digits[0] + ("." + digits[1:] if k > 1 else "") + ("e+" if e >= 0 else "e-") + str(abs(e))
    return "-" + text if x < 0 else text


_LITERALS: dict[object, str] = {None: "null", True: "true", False: "false"}


def _scalar(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return _LITERALS[value]
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _number(value)
    raise ValueError(f"Object of type {type(value).__name__} is not JSON serializable")


def _encode(value: Any, out: list[str]) -> None:
    if isinstance(value, Mapping):
        for k in value:
            if not isinstance(k, str):
                raise ValueError(f"object keys must be strings, not {type(k).__name__}")
        out.append("{")
        # RFC 8785 3.2.3: members sorted by the UTF-16 code units of their names.
        for i, k in enumerate(sorted(value, key=lambda name: name.encode("utf-16-be", "surrogatepass"))):
            out.append(("," if i else "") + json.dumps(k, ensure_ascii=False) + ":")
            _encode(value[k], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _encode(v, out)
        out.append("]")
    else:
        out.append(_scalar(value))


def canonical_json(obj: Mapping[str, Any]) -> bytes:
    """Canonical JSON bytes of a JSON object (see the module documentation).

    Raises
    ------
    ValueError
        When ``obj`` is not a JSON object of JSON values, or holds NaN or an infinity.
    """
    if not isinstance(obj, Mapping):
        raise ValueError(f"a ledger entry is a JSON object, not {type(obj).__name__}")
    out: list[str] = []
    _encode(obj, out)
    return "".join(out).encode("utf-8")


def parse_entry(text: str | bytes) -> dict[str, Any]:
    """Parse one JSON object strictly (no duplicate keys, no NaN); raise ``ValueError`` otherwise."""
    obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


@dataclass(frozen=True, slots=True)
class TripRecord:
    """A completed trip, with the fields of an MDS ``trips`` record that an auditor needs.

    Times are milliseconds since the Unix epoch (UTC), money integer cents, distance metres. ``fare_cents`` is
    ``None`` (JSON ``null``) for a trip that has not been priced, never a made-up zero.
    """

    trip_id: str
    provider_id: str
    vehicle_id: str
    start_time_ms: int
    end_time_ms: int
    start_lon: float
    start_lat: float
    end_lon: float
    end_lat: float
    distance_m: int
    duration_s: int
    fare_cents: int | None
    currency: str = "USD"
    request_id: str | None = None
    passengers: int = 1
    kind: Literal["trip"] = "trip"

    def __post_init__(self) -> None:
        if not self.trip_id or not self.provider_id or not self.vehicle_id:
            raise ValueError("trip_id, provider_id and vehicle_id must be non-empty")
        if self.end_time_ms < self.start_time_ms:
            raise ValueError(f"trip {self.trip_id}: ends before it starts")
        fare = 0 if self.fare_cents is None else self.fare_cents
        if min(self.distance_m, self.duration_s, fare, self.passengers) < 0:
            raise ValueError(f"trip {self.trip_id}: distance, duration, fare and passengers must be >= 0")
        _check_lonlat(self.start_lon, self.start_lat)
        _check_lonlat(self.end_lon, self.end_lat)

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to the ledger (schema version ``v``)."""
        return {**asdict(self), "v": SCHEMA_VERSION}


#: Who ended autonomous operation, in the words of the California DMV disengagement report.
InitiatedBy = Literal["ads", "safety_driver", "remote_operator", "passenger", "none"]


@dataclass(frozen=True, slots=True)
class SafetyEvent:
    """A disengagement or collision, with the fields of a California DMV disengagement / OL 316 report.

    ``event_type`` is ``"disengagement"`` or ``"collision"``; ``location_type`` one of the DMV's
    categories (``street``, ``highway``, ``freeway``, ``parking_facility``, ``rural_road``...).
    """

    event_id: str
    event_type: Literal["disengagement", "collision"]
    provider_id: str
    vehicle_id: str
    time_ms: int
    lon: float
    lat: float
    initiated_by: InitiatedBy
    driver_present: bool
    location_type: str
    description: str
    trip_id: str | None = None
    injuries: int = 0
    kind: Literal["safety_event"] = "safety_event"

    def __post_init__(self) -> None:
        if not self.event_id or not self.provider_id or not self.vehicle_id:
            raise ValueError("event_id, provider_id and vehicle_id must be non-empty")
        if self.event_type not in ("disengagement", "collision"):
            raise ValueError(f"event {self.event_id}: unknown event_type {self.event_type!r}")
        if self.initiated_by not in ("ads", "safety_driver", "remote_operator", "passenger", "none"):
            raise ValueError(f"event {self.event_id}: unknown initiated_by {self.initiated_by!r}")
        if self.injuries < 0:
            raise ValueError(f"event {self.event_id}: injuries must be >= 0")
        _check_lonlat(self.lon, self.lat)

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to the ledger (schema version ``v``)."""
        return {**asdict(self), "v": SCHEMA_VERSION}


@dataclass(frozen=True, slots=True)
class BlobDigest:
    """The SHA-256 and size of an external file (a sensor recording...) that stays outside the ledger."""

    blob_id: str
    sha256_hex: str
    size_bytes: int
    media_type: str = "application/octet-stream"
    vehicle_id: str | None = None
    start_time_ms: int | None = None
    end_time_ms: int | None = None
    uri: str | None = None
    kind: Literal["blob"] = "blob"

    def __post_init__(self) -> None:
        if not self.blob_id:
            raise ValueError("blob_id must be non-empty")
        if len(self.sha256_hex) != 64 or any(c not in "0123456789abcdef" for c in self.sha256_hex):
            raise ValueError(f"blob {self.blob_id}: sha256_hex must be 64 lowercase hex digits")
        if self.size_bytes < 0:
            raise ValueError(f"blob {self.blob_id}: size_bytes must be >= 0")

    @classmethod
    def of_file(cls, path: str | Path, blob_id: str | None = None, **fields: Any) -> BlobDigest:
        """Digest a file in 1 MiB chunks (never loads it whole)."""
        import hashlib

        h = hashlib.sha256()
        size = 0
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
        return cls(blob_id or Path(path).name, h.hexdigest(), size, **fields)

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to the ledger (schema version ``v``)."""
        return {**asdict(self), "v": SCHEMA_VERSION}


def _check_lonlat(lon: float, lat: float) -> None:
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise ValueError(f"({lon}, {lat}) is not a longitude/latitude in degrees")


LedgerRecord = TripRecord | SafetyEvent | BlobDigest


def record_bytes(record: LedgerRecord | Mapping[str, Any]) -> bytes:
    """The entry bytes of a record object or a plain JSON object."""
    if isinstance(record, TripRecord | SafetyEvent | BlobDigest):
        return canonical_json(record.to_json())
    return canonical_json(record)


def _iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as f:
        yield from enumerate(f, start=1)


def read_jsonl(path: str | Path) -> list[bytes]:
    """Read a JSON-lines file into canonical entries, all or nothing.

    Blank lines are skipped. Every malformed line is collected with its number, and if there is any,
    :class:`JsonlError` lists them and nothing is returned.
    """
    p = Path(path)
    try:
        lines: Iterable[tuple[int, bytes]] = list(_iter_lines(p))
    except OSError as e:
        raise LedgerError(f"cannot read {p}: {e.strerror}") from e
    out: list[bytes] = []
    problems: list[tuple[int, str]] = []
    for n, raw in lines:
        if not raw.strip():
            continue
        try:
            out.append(canonical_json(parse_entry(raw.decode("utf-8"))))
        except UnicodeDecodeError:
            problems.append((n, "not UTF-8"))
        except ValueError as e:  # json.JSONDecodeError is a ValueError
            problems.append((n, str(e)))
    if problems:
        raise JsonlError(str(p), problems)
    return out

"""Column conversion for demand files: Arrow arrays to NumPy with a per-row verdict, never failing a whole batch.

Each converter returns ``(values, code)`` where ``code`` is 0 for a good value, ``RejectReason.MISSING_FIELD`` for a
null or empty cell and ``RejectReason.UNPARSABLE_FIELD`` for a cell that is present but not a value of the type. The
fast path is one vectorised Arrow cast; only a batch that contains a bad cell falls back to a per-cell loop.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from numpy.typing import NDArray

from ..errors import DemandError
from .validation import RejectReason

U8 = NDArray[np.uint8]
_MISSING = np.uint8(RejectReason.MISSING_FIELD)
_BAD = np.uint8(RejectReason.UNPARSABLE_FIELD)

#: Datetime layouts tried, in order, for text timestamps that Arrow's ISO 8601 cast does not accept.
DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
)


def _as_array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col


def _null_or_empty(arr: pa.Array) -> NDArray[np.bool_]:
    missing = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        blank = pc.equal(pc.utf8_trim_whitespace(arr), "").fill_null(True)
        missing |= np.asarray(blank.to_numpy(zero_copy_only=False), dtype=bool)
    return missing


def to_float(col: pa.Array | pa.ChunkedArray) -> tuple[NDArray[np.float64], U8]:
    """Float64 values (NaN where bad) and per-row codes. NaN and infinities count as unparsable."""
    arr = _as_array(col)
    missing = _null_or_empty(arr)
    code = np.where(missing, _MISSING, np.uint8(0)).astype(np.uint8)
    if pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type):
        vals = np.asarray(
            arr.cast(pa.float64(), safe=False).fill_null(np.nan).to_numpy(zero_copy_only=False), dtype=np.float64
        )
    else:
        try:
            vals = np.asarray(
                pc.cast(pc.if_else(pa.array(missing), None, pc.utf8_trim_whitespace(arr)), pa.float64())
                .fill_null(np.nan)
                .to_numpy(zero_copy_only=False),
                dtype=np.float64,
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            vals = np.array([_float_or_nan(v) for v in arr.to_pylist()], dtype=np.float64)
    code[(code == 0) & ~np.isfinite(vals)] = _BAD
    return vals, code


def _float_or_nan(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def to_int(col: pa.Array | pa.ChunkedArray) -> tuple[NDArray[np.int64], U8]:
    """Int64 values (0 where bad) and per-row codes; a number with a fractional part is unparsable.

    Integers are read exactly, never through a float: an id beyond 2**53 keeps every digit. A value outside the
    int64 range is unparsable.
    """
    arr = _as_array(col)
    missing = _null_or_empty(arr)
    code = np.where(missing, _MISSING, np.uint8(0)).astype(np.uint8)
    exact: pa.Array | None = None
    if pa.types.is_integer(arr.type):
        exact = arr
    elif pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        exact = pc.if_else(pa.array(missing), None, pc.utf8_trim_whitespace(arr))
    if exact is not None:
        try:
            ints = pc.cast(exact, pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # some cell is not a plain int64 integer: judge the cells one by one below
        else:
            return np.asarray(ints.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64), code
    vals, code = to_float(arr)
    code[(code == 0) & (vals != np.floor(vals))] = _BAD
    # Beyond 2**53 a float has lost digits: read those cells again, exactly, from the source value.
    big = np.flatnonzero((code == 0) & (np.abs(vals) >= _EXACT_FLOAT))
    exact_big: dict[int, int] = {}
    raw = arr.take(pa.array(big)).to_pylist() if big.size else []
    for i, v in zip(big.tolist(), raw, strict=True):
        got = _exact_int(v)
        if got is None:
            code[i] = _BAD
        else:
            exact_big[i] = got
    out = np.where(code == 0, np.where(np.abs(vals) < _EXACT_FLOAT, vals, 0.0), 0.0).astype(np.int64)
    for i, got in exact_big.items():
        out[i] = got
    return out, code


_EXACT_FLOAT = float(2**53)


def _exact_int(value: Any) -> int | None:
    """``value`` as an exact int64, or None when it is not an integer in range."""
    if isinstance(value, int) and not isinstance(value, bool):
        number: Decimal | int = value
    else:
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return None
        if not number.is_finite() or number != number.to_integral_value():
            return None
    v = int(number)
    return v if -(2**63) <= v < 2**63 else None


def to_epoch_seconds(col: pa.Array | pa.ChunkedArray) -> tuple[NDArray[np.int64], U8]:
    """Timestamps as integer seconds since 1970-01-01 of the same (naive, local) wall clock.

    Accepts Arrow timestamps (any unit; a time-zone-aware column is read as the wall clock of its own zone: TLC
    times are local) and text in ISO 8601 or the layouts in :data:`DATETIME_FORMATS`. Sub-second parts are
    truncated. Each cell is judged on its own: a cell's verdict never depends on the other cells of its batch.
    """
    arr = _as_array(col)
    missing = _null_or_empty(arr)
    code = np.where(missing, _MISSING, np.uint8(0)).astype(np.uint8)
    if pa.types.is_timestamp(arr.type):
        ts = arr
    elif pa.types.is_date(arr.type):
        ts = arr.cast(pa.timestamp("s"))
    elif pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        ts = _parse_text_times(pc.utf8_trim_whitespace(arr), missing)
    else:
        raise DemandError(f"a time column has type {arr.type}, not a timestamp or text")
    if ts.type.tz is not None:
        # Arrow stores zoned timestamps as UTC; the wall clock of the column's own zone is what the rider saw.
        ts = pc.local_timestamp(ts)
    secs = pc.cast(pc.floor_temporal(ts, unit="second").cast(pa.timestamp("s", None), safe=False), pa.int64())
    bad = np.asarray(secs.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    code[(code == 0) & bad] = _BAD
    vals = np.asarray(secs.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    return vals, code


#: Text that may be ISO 8601 (date first); only such cells are tried one by one with Arrow's ISO parser.
_ISO_LIKE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
#: A fractional part of the seconds, dropped before the ``strptime`` layouts are tried (they have none).
_FRACTION = r"(:[0-9]{2})[.,][0-9]+"


def _parse_text_times(text: pa.Array, missing: NDArray[np.bool_]) -> pa.Array:
    clean = pc.if_else(pa.array(missing), None, text)
    try:
        return pc.cast(clean, pa.timestamp("ns"))  # every cell ISO 8601: the fast path
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # Some cell is not ISO 8601. Parse the ISO-looking cells in groups that split until each group parses or is a
    # single bad cell, then try the other layouts on what is left: the same rules as the fast path, cell by cell.
    n = len(clean)
    ns = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    iso = np.flatnonzero(pc.match_substring_regex(clean, _ISO_LIKE).fill_null(False).to_numpy(zero_copy_only=False))
    _parse_iso_groups(clean, iso, ns, ok)
    rest = pc.replace_substring_regex(clean, pattern=_FRACTION, replacement="\\1", max_replacements=1)
    other: pa.Array = pa.nulls(n, pa.timestamp("s"))
    for fmt in DATETIME_FORMATS:
        other = pc.coalesce(other, pc.strptime(rest, format=fmt, unit="s", error_is_null=True))
    other_ok = ~ok & ~np.asarray(other.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    ns[other_ok] = np.asarray(other.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False))[other_ok] * 10**9
    ok |= other_ok
    return pa.array(ns, pa.timestamp("ns"), mask=~ok)


def _parse_iso_groups(clean: pa.Array, idx: NDArray[np.int64], ns: NDArray[np.int64], ok: NDArray[np.bool_]) -> None:
    stack = [idx]
    while stack:
        part = stack.pop()
        if part.size == 0:
            continue
        try:
            got = pc.cast(clean.take(pa.array(part)), pa.timestamp("ns")).cast(pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            if part.size > 1:
                half = part.size // 2
                stack.extend((part[half:], part[:half]))
            continue
        ns[part] = np.asarray(got.to_numpy(zero_copy_only=False))
        ok[part] = True


def seconds_of_day(col: pa.Array | pa.ChunkedArray) -> tuple[NDArray[np.int64], U8]:
    """Times given as plain seconds (a number), or as ``HH:MM[:SS]`` text."""
    arr = _as_array(col)
    if pa.types.is_time(arr.type):
        missing = _null_or_empty(arr)
        secs = arr.cast(pa.time32("s"), safe=False).cast(pa.int32()).fill_null(0)
        code = np.where(missing, _MISSING, np.uint8(0)).astype(np.uint8)
        return np.asarray(secs.to_numpy(zero_copy_only=False), dtype=np.int64), code
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        texts = arr.to_pylist()
        if any(isinstance(t, str) and ":" in t for t in texts):
            missing = _null_or_empty(arr)
            vals = np.zeros(len(texts), dtype=np.int64)
            code = np.where(missing, _MISSING, np.uint8(0)).astype(np.uint8)
            for i, t in enumerate(texts):
                if code[i]:
                    continue
                parsed = _hms(str(t))
                if parsed is None:
                    code[i] = _BAD
                else:
                    vals[i] = parsed
            return vals, code
    return to_int(arr)


def _hms(text: str) -> int | None:
    parts = text.strip().split(":")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        return None
    if len(nums) == 2:
        nums.append(0)
    if len(nums) != 3 or min(nums) < 0 or nums[1] > 59 or nums[2] > 59:
        return None
    return nums[0] * 3600 + nums[1] * 60 + nums[2]


def midnight_epoch(day: dt.date) -> int:
    """Seconds since 1970-01-01 of the local midnight starting ``day``."""
    return (day - dt.date(1970, 1, 1)).days * 86400


def epoch_to_datetime(seconds: int) -> dt.datetime:
    """Naive datetime for naive epoch seconds."""
    return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=int(seconds))


# ---------------------------------------------------------------------- streaming tables


@dataclass(slots=True)
class BadLines:
    """CSV lines the parser could not split into the right number of fields (filled by the parse handler)."""

    lines: list[tuple[int, str]] = field(default_factory=list)

    def handler(self, row: Any) -> str:
        number = row.number if row.number is not None else -1
        text = str(row.text or "")
        text = text if len(text) <= 200 else text[:200] + "..."
        detail = f"expected {row.expected_columns} fields, got {row.actual_columns}: {text!r}"
        self.lines.append((int(number), detail))
        return "skip"

    def shift(self, lines: NDArray[np.int64]) -> NDArray[np.int64]:
        """Correct naive line numbers (data row + 2) of good rows for the malformed lines skipped before them."""
        known = np.sort(np.array([n for n, _ in self.lines if n > 0], dtype=np.int64))
        if known.size == 0:
            return lines
        out = lines.copy()
        for _ in range(known.size + 1):
            new = lines + np.searchsorted(known, out, side="right")
            if np.array_equal(new, out):
                break
            out = new
        return out


@dataclass(frozen=True, slots=True)
class Batch:
    """One batch of a table file: the columns asked for and the position of its first row."""

    table: pa.Table
    first_row: int


def table_kind(path: Path) -> str:
    """``"parquet"`` or ``"csv"`` by file name (``.csv.gz`` etc. are CSV)."""
    name = path.name.lower()
    if name.endswith((".parquet", ".pq", ".parq")):
        return "parquet"
    return "csv"


_COMPRESSED = (".gz", ".bz2", ".zst", ".lz4", ".br")


def check_text(path: Path, sniff_bytes: int = 1 << 16) -> None:
    """Refuse a CSV file whose first bytes are binary (a NUL byte, or not UTF-8), naming the offset.

    Arrow would otherwise hand undecodable lines to the row handler, which fails inside Arrow's callback
    ("Exception ignored ... UnicodeDecodeError") before a parse error that quotes the raw bytes. Compressed
    files are left to Arrow, which decompresses them.
    """
    if path.name.lower().endswith(_COMPRESSED):
        return
    try:
        with path.open("rb") as f:
            head = f.read(sniff_bytes)
    except OSError as e:
        raise DemandError(f"{path}: cannot read: {e.strerror}") from e
    nul = head.find(b"\x00")
    if nul >= 0:
        raise DemandError(f"{path}: binary data (a NUL byte at offset {nul}), not a CSV text file")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        # A multi-byte character cut by the sniff window is not an error.
        if e.start < len(head) - 3 or e.reason != "unexpected end of data":
            raise DemandError(
                f"{path}: not UTF-8 text (byte 0x{head[e.start]:02x} at offset {e.start}), not a CSV text file",
                hint="convert it to UTF-8",
            ) from e


class _UndecodableRows:
    """Turn Arrow's failure to decode a malformed row for the row handler into one clear DemandError.

    Arrow decodes the row's text before it calls ``invalid_row_handler``; when that fails, Python reports the
    UnicodeDecodeError through ``sys.unraisablehook`` (a traceback on stderr) and Arrow raises a parse error
    quoting the raw bytes. While reading one block, this catches the first and replaces the second.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.failed = False
        self._saved: Callable[[Any], object] | None = None

    def _hook(self, unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, UnicodeDecodeError):
            self.failed = True
        elif self._saved is not None:
            self._saved(unraisable)

    def __enter__(self) -> _UndecodableRows:
        self._saved = sys.unraisablehook
        sys.unraisablehook = self._hook
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if self._saved is not None:
            sys.unraisablehook = self._saved
        if self.failed and isinstance(exc, pa.ArrowInvalid):
            row = re.search(r"Row #(\d+)", str(exc))
            where = f" (row {row.group(1)})" if row else ""
            raise DemandError(
                f"{self.path}: a line is not UTF-8 text{where}: binary data, not a CSV text file"
            ) from exc


def header(path: Path) -> list[str]:
    """Column names of a CSV or Parquet file, as written."""
    try:
        if table_kind(path) == "parquet":
            return list(pq.ParquetFile(path).schema_arrow.names)
        check_text(path)
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=1 << 16),
            parse_options=pacsv.ParseOptions(invalid_row_handler=lambda _row: "skip"),
        )
        return list(reader.schema.names)
    except UnicodeDecodeError as e:
        raise DemandError(f"{path}: a column name is not UTF-8 text") from e
    except (pa.ArrowInvalid, OSError) as e:
        raise DemandError(f"{path}: not a readable {table_kind(path).upper()} file: {e}") from e


def iter_batches(
    path: Path,
    columns: list[str],
    *,
    batch_rows: int = 1 << 20,
    text_columns: tuple[str, ...] = (),
    bad_lines: BadLines | None = None,
) -> Iterator[Batch]:
    """Stream ``columns`` of a CSV or Parquet file in bounded batches.

    CSV columns named in ``text_columns`` are read as text so that one bad cell cannot abort the stream; the
    converters above then judge each cell. CSV lines with the wrong number of fields go to ``bad_lines``.
    """
    kind = table_kind(path)
    try:
        if kind == "parquet":
            pf = pq.ParquetFile(path)
            first = 0
            for rb in pf.iter_batches(batch_size=batch_rows, columns=columns):
                yield Batch(pa.Table.from_batches([rb]), first)
                first += rb.num_rows
            return
        check_text(path)
        handler: Callable[[Any], str] | None = bad_lines.handler if bad_lines is not None else None
        with _UndecodableRows(path):
            reader = pacsv.open_csv(
                path,
                # Single-threaded parsing is what makes the parser report the true line number of a malformed line.
                read_options=pacsv.ReadOptions(block_size=16 << 20, use_threads=False),
                parse_options=pacsv.ParseOptions(invalid_row_handler=handler),
                convert_options=pacsv.ConvertOptions(
                    include_columns=columns,
                    column_types={c: pa.string() for c in text_columns},
                    strings_can_be_null=True,
                ),
            )
        first = 0
        while True:
            with _UndecodableRows(path):
                rb = reader.read_next_batch()
            yield Batch(pa.Table.from_batches([rb]), first)
            first += rb.num_rows
    except StopIteration:
        return
    except pa.ArrowInvalid as e:
        detail = str(e) if len(str(e)) <= 300 else str(e)[:300] + "..."
        raise DemandError(
            f"{path}: not a valid {kind.upper()} file (or a column changed type mid-file): {detail}"
        ) from e
    except OSError as e:
        raise DemandError(f"{path}: cannot read: {e}") from e

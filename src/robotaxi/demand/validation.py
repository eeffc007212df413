"""Validation bookkeeping for demand loads: reasons, the load report and the rejects file.

Nothing is dropped silently. Every input row ends in exactly one of three places, so that
``rows_read == accepted + rejected + skipped`` always holds:

* **accepted**: it became a request (or, for a count table, contributed to the sampled requests);
* **rejected**: it is bad (:class:`RejectReason`); it is counted, the first few are kept as examples with file and
  line, and all of them can be written to a rejects CSV file;
* **skipped**: it is fine but not asked for (another day, another weekday); it is only counted.

Values that a source replaces by a documented default (a TLC passenger count of 0 becomes 1, a negative fare becomes
"unknown") are counted under ``defaulted`` so the summary shows them too.
"""

from __future__ import annotations

import csv
import enum
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from ..errors import DemandError

logger = logging.getLogger(__name__)

#: How many rejected rows a report keeps as examples (all of them go to the rejects file when one is asked for).
MAX_EXAMPLES = 10


class RejectReason(enum.IntEnum):
    """Why a row was rejected; the integer codes are used in per-row NumPy arrays (0 means "not rejected")."""

    MISSING_FIELD = 1
    UNPARSABLE_FIELD = 2
    UNKNOWN_ZONE = 3
    DROPOFF_BEFORE_PICKUP = 4
    OUTSIDE_AREA = 5
    ZERO_DISTANCE = 6
    DUPLICATE_ID = 7
    INVALID_VALUE = 8

    @property
    def label(self) -> str:
        """The snake_case name used in summaries, JSON and the rejects file."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class RejectExample:
    """One rejected row: where it is and why.

    ``line`` is the 1-based line number in a CSV file (the header is line 1) or the 0-based row index in other
    formats; ``locator`` says which.
    """

    file: str
    line: int
    reason: RejectReason
    detail: str
    locator: str = "line"

    def __str__(self) -> str:
        return f"{self.file}:{self.line} ({self.locator}): {self.reason.label}: {self.detail}"


@dataclass(frozen=True, slots=True)
class LoadReport:
    """The summary a demand load ends with.

    Attributes
    ----------
    source : str
        What was read (a path or a description).
    rows_read : int
        Input rows (records, or count-table rows for an origin-destination table).
    accepted : int
        Rows that were used.
    rejected : Mapping[str, int]
        Rejected rows by reason label (reasons with no rows are omitted).
    skipped : Mapping[str, int]
        Valid rows left out because they were not asked for, by reason (e.g. ``outside_day``).
    defaulted : Mapping[str, int]
        Accepted rows in which a field was replaced by a documented default, by field.
    examples : tuple of RejectExample
        The first few rejected rows.
    requests : int
        Number of requests produced (equals ``accepted`` for record sources).
    rejects_path : str or None
        Where all rejected rows were written, if asked.
    row_unit : str
        What one input row is, as the summary names it (``"rows"``; ``"count rows"`` for an OD-count table,
        whose rows each hold a number of trips).
    requests_note : str
        How requests arise from accepted rows, shown beside the request count in the summary.
    """

    source: str
    rows_read: int
    accepted: int
    rejected: Mapping[str, int] = field(default_factory=dict)
    skipped: Mapping[str, int] = field(default_factory=dict)
    defaulted: Mapping[str, int] = field(default_factory=dict)
    examples: tuple[RejectExample, ...] = ()
    requests: int = 0
    rejects_path: str | None = None
    row_unit: str = "rows"
    requests_note: str = "one per accepted row"

    def __post_init__(self) -> None:
        for name in ("rows_read", "accepted", "requests"):
            if getattr(self, name) < 0:
                raise ValueError(f"LoadReport.{name} must be >= 0")
        for name in ("rejected", "skipped", "defaulted"):
            counts = getattr(self, name)
            if any(v < 0 for v in counts.values()):
                raise ValueError(f"LoadReport.{name} counts must be >= 0")
            object.__setattr__(self, name, MappingProxyType(dict(counts)))
        if self.rows_read != self.accepted + self.n_rejected + self.n_skipped:
            raise ValueError(
                f"LoadReport: rows_read ({self.rows_read}) must equal accepted ({self.accepted}) + rejected "
                f"({self.n_rejected}) + skipped ({self.n_skipped})"
            )

    @property
    def n_rejected(self) -> int:
        """Rejected rows, all reasons together."""
        return sum(self.rejected.values())

    @property
    def n_skipped(self) -> int:
        """Skipped rows, all reasons together."""
        return sum(self.skipped.values())

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "accepted": self.accepted,
            "rejected": dict(self.rejected),
            "skipped": dict(self.skipped),
            "defaulted": dict(self.defaulted),
            "requests": self.requests,
            "examples": [str(e) for e in self.examples],
            "rejects_path": self.rejects_path,
            "row_unit": self.row_unit,
        }

    def summary_lines(self) -> list[str]:
        """Human-readable summary, one fact per line."""
        lines = [
            f"source: {self.source}",
            f"{self.row_unit} read: {self.rows_read:,}",
            f"{self.row_unit} accepted: {self.accepted:,}",
            f"{self.row_unit} rejected: {self.n_rejected:,}" + _by_reason(self.rejected),
        ]
        if self.skipped:
            lines.append(f"{self.row_unit} skipped: {self.n_skipped:,}" + _by_reason(self.skipped))
        if self.defaulted:
            lines.append("defaulted: " + _by_reason(self.defaulted).strip(" ()"))
        lines.append(f"requests: {self.requests:,} ({self.requests_note})")
        lines.extend(f"  e.g. {e}" for e in self.examples)
        if self.rejects_path:
            lines.append(f"all rejected rows written to {self.rejects_path}")
        return lines

    def log(self, level: int = logging.INFO) -> None:
        """Log the summary (one line) and, at DEBUG, the first rejected rows.

        The examples are not warnings: a command line prints them once, from the report itself, and a quiet
        run must stay quiet (issue 11, item 9).
        """
        logger.log(
            level,
            "%s: read %d rows, accepted %d, rejected %d%s, skipped %d, %d requests",
            self.source,
            self.rows_read,
            self.accepted,
            self.n_rejected,
            _by_reason(self.rejected),
            self.n_skipped,
            self.requests,
        )
        for e in self.examples[:3]:
            logger.debug("rejected %s", e)


def _by_reason(counts: Mapping[str, int]) -> str:
    if not counts:
        return ""
    return " (" + ", ".join(f"{k}: {v:,}" for k, v in counts.items()) + ")"


class RejectLog:
    """Collects rejections during one load (a mutable helper owned by a single load call, never shared).

    Parameters
    ----------
    source : str
        File name used in examples and the rejects file.
    rejects_path : path or None
        Write every rejected row to this CSV file (columns ``file, line, reason, detail`` then the row's fields).
    locator : {"line", "row"}
        How rows are numbered: CSV line numbers or 0-based row indices.
    fields : sequence of str
        The input columns the rejects file shows after ``detail``. Fixed up front so that every rejected row,
        whatever the check that caught it, lands under the same header (values a check cannot give stay empty).
        Empty: the columns of the first rejected batch.
    """

    def __init__(
        self,
        source: str,
        rejects_path: str | Path | None = None,
        *,
        locator: str = "line",
        fields: Sequence[str] = (),
    ) -> None:
        self.source = source
        self.locator = locator
        self.rows_read = 0
        self.rejected: dict[RejectReason, int] = {}
        self.skipped: dict[str, int] = {}
        self.defaulted: dict[str, int] = {}
        self.examples: list[RejectExample] = []
        self.rejects_path = Path(rejects_path) if rejects_path is not None else None
        self._fh: IO[str] | None = None
        self._writer: Any = None
        self._fields: list[str] | None = list(fields) or None

    # ------------------------------------------------------------------ counting
    def skip(self, reason: str, n: int) -> None:
        if n:
            self.skipped[reason] = self.skipped.get(reason, 0) + int(n)

    def default(self, what: str, n: int) -> None:
        if n:
            self.defaulted[what] = self.defaulted.get(what, 0) + int(n)

    def reject(
        self,
        codes: NDArray[np.uint8],
        lines: NDArray[np.int64],
        details: Sequence[str] | NDArray[Any],
        fields: Mapping[str, Sequence[Any] | NDArray[Any]] | None = None,
    ) -> None:
        """Record rejected rows.

        Parameters
        ----------
        codes : ndarray of uint8
            One :class:`RejectReason` code per rejected row (no zeros).
        lines : ndarray of int64
            Their line (or row) numbers.
        details : sequence of str
            One detail per row (e.g. the offending column).
        fields : mapping of column name to values, optional
            The rows' fields, written to the rejects file.
        """
        n = int(codes.size)
        if n == 0:
            return
        uniq, counts = np.unique(codes, return_counts=True)
        for code, c in zip(uniq.tolist(), counts.tolist(), strict=True):
            reason = RejectReason(code)
            self.rejected[reason] = self.rejected.get(reason, 0) + int(c)
        room = MAX_EXAMPLES - len(self.examples)
        for i in range(min(room, n)):
            self.examples.append(
                RejectExample(self.source, int(lines[i]), RejectReason(int(codes[i])), str(details[i]), self.locator)
            )
        if self.rejects_path is not None:
            self._write(codes, lines, details, fields or {})

    def _write(
        self,
        codes: NDArray[np.uint8],
        lines: NDArray[np.int64],
        details: Sequence[str] | NDArray[Any],
        fields: Mapping[str, Sequence[Any] | NDArray[Any]],
    ) -> None:
        if self._writer is None and self.rejects_path is not None:
            self.rejects_path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.rejects_path.open("w", newline="", encoding="utf-8")
            self._writer = csv.writer(self._fh)
            if self._fields is None:
                self._fields = list(fields)
            self._writer.writerow(
                ["file", "line" if self.locator == "line" else "row", "reason", "detail", *self._fields]
            )
        names = self._fields or []
        cols = [_as_list(fields.get(k)) for k in names]
        for i in range(int(codes.size)):
            vals = [c[i] if c is not None and i < len(c) else "" for c in cols]
            self._writer.writerow([self.source, int(lines[i]), RejectReason(int(codes[i])).label, details[i], *vals])

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        elif self.rejects_path is not None and self._writer is None:
            # A header-only rejects file says "there were none", which is better than no file, and replaces the
            # rejects of an earlier run that would otherwise pass for this one's.
            self.rejects_path.parent.mkdir(parents=True, exist_ok=True)
            header = ["file", "line" if self.locator == "line" else "row", "reason", "detail", *(self._fields or [])]
            with self.rejects_path.open("w", newline="", encoding="utf-8") as fh:
                csv.writer(fh).writerow(header)

    def report(
        self,
        *,
        accepted: int,
        requests: int | None = None,
        row_unit: str = "rows",
        requests_note: str = "one per accepted row",
    ) -> LoadReport:
        """Close the rejects file and freeze the counts into a :class:`LoadReport`."""
        self.close()
        return LoadReport(
            source=self.source,
            rows_read=self.rows_read,
            accepted=accepted,
            rejected={r.label: self.rejected[r] for r in sorted(self.rejected)},
            skipped=dict(self.skipped),
            defaulted=dict(self.defaulted),
            examples=tuple(self.examples),
            requests=accepted if requests is None else requests,
            rejects_path=str(self.rejects_path) if self.rejects_path is not None else None,
            row_unit=row_unit,
            requests_note=requests_note,
        )


def _as_list(values: Iterable[Any] | None) -> list[Any] | None:
    if values is None:
        return None
    if isinstance(values, np.ndarray):
        return list(values.tolist())
    return list(values)


def check_file(path: str | Path, what: str) -> Path:
    """The path as a Path, or a DemandError naming ``what`` when it is not a readable file."""
    p = Path(path)
    if not p.is_file():
        raise DemandError(f"{what} not found: {p}")
    return p

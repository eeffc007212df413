"""California AV collision reports (OL 316), as compiled in ``shared/data/ca_av_collisions/AutonomousD.csv``.

That file is a hand-compiled table of 250 reports, 2015 to early 2020 (``shared/data/SOURCES.md``, section 5):
one row per collision with the date (``m/d/yy``), address, company, car type, autonomous mode engaged (1/0),
time, weather, road surface, lighting, whether the AV and the other party were moving, damage, a reviewer's
note on the cause ("Significance"), the collision type ("Expanation" [sic]) and who erred ("error": ``av``,
``non av``, ``unclear`` or blank).

Values are read as written, with a short explicit table of corrections (:data:`CORRECTIONS`: a typo, a case
variant, and "significant" damage, which is not an OL 316 grade, read as "major"); every correction applied is
counted and reported. A row that still does not fit is an error naming its line; nothing is dropped.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SafetyError
from .records import CollisionRecord, Damage, Fault, Motion

__all__ = ["CORRECTIONS", "CollisionSummary", "load_collisions", "summarise"]

#: The default file, relative to the repository's sibling ``shared`` folder.
DEFAULT_PATH = Path("../shared/data/ca_av_collisions/AutonomousD.csv")

COLUMNS = (
    "Date",
    "Address",
    "Company",
    "Car Type",
    "Autonomous engaged (1 = yes, 0 = no)",
    "Time",
    "Weather",
    "Road conditions",
    "Lighting",
    "Unusual Conditions",
    "Stopped/Moving",
    "Other Vehicle",
    "Stopped/moving (Car 2)",
    "Damage",
    "Significance",
    "Injury",
    "Expanation",
    "error",
)

#: (column, value as written) -> value read. Applied explicitly and counted, never silently.
CORRECTIONS: dict[tuple[str, str], str] = {
    ("Stopped/Moving", "moivng"): "moving",
    ("Lighting", "Dark-street lights"): "Dark-Street lights",
    ("Damage", "significant"): "major",
}

_FAULT = {"av": Fault.AV, "non av": Fault.OTHER, "unclear": Fault.UNCLEAR, "": Fault.UNKNOWN}


@dataclass(frozen=True, slots=True)
class LoadedCollisions:
    """The records of a file and the corrections applied to them."""

    records: list[CollisionRecord]
    corrections: Counter[tuple[str, str]] = field(default_factory=Counter)


def _opt(text: str) -> str | None:
    t = text.strip()
    return t or None


def _row(row: dict[str, str], report_id: str, fixes: Counter[tuple[str, str]]) -> CollisionRecord:
    vals: dict[str, str] = {}
    for col in COLUMNS:
        raw = (row.get(col) or "").strip()
        fixed = CORRECTIONS.get((col, raw))
        if fixed is not None:
            fixes[(col, raw)] += 1
            raw = fixed
        vals[col] = raw
    try:
        day = dt.datetime.strptime(vals["Date"], "%m/%d/%y").date()
    except ValueError as e:
        raise ValueError(f"Date: expected m/d/yy, got {vals['Date']!r}") from e
    time = None
    if vals["Time"]:
        try:
            time = dt.datetime.strptime(vals["Time"], "%H:%M").time()
        except ValueError as e:
            raise ValueError(f"Time: expected H:MM, got {vals['Time']!r}") from e
    engaged = vals["Autonomous engaged (1 = yes, 0 = no)"]
    if engaged not in ("0", "1"):
        raise ValueError(f"Autonomous engaged: expected 1 or 0, got {engaged!r}")
    other_motion = vals["Stopped/moving (Car 2)"]
    fault = vals["error"].casefold()
    if fault not in _FAULT:
        raise ValueError(f"error: expected av, non av, unclear or blank, got {vals['error']!r}")
    injury = vals["Injury"]
    if injury and not injury.isdigit():
        raise ValueError(f"Injury: expected a count or blank, got {injury!r}")
    return CollisionRecord(
        report_id=report_id,
        date=day,
        time=time,
        location=vals["Address"],
        operator=vals["Company"],
        vehicle=vals["Car Type"],
        autonomous_mode=engaged == "1",
        av_motion=Motion.parse(vals["Stopped/Moving"], "Stopped/Moving"),
        damage=Damage.parse(vals["Damage"], "Damage"),
        other_party=_opt(vals["Other Vehicle"]),
        other_party_motion=None
        if other_motion in ("", "N/A")
        else Motion.parse(other_motion, "Stopped/moving (Car 2)"),
        injuries=int(injury) if injury else None,
        weather=_opt(vals["Weather"]),
        lighting=_opt(vals["Lighting"]),
        road_surface=_opt(vals["Road conditions"]),
        collision_type=_opt(vals["Expanation"]),
        narrative=_opt(vals["Significance"]),
        fault=_FAULT[fault],
    )


def load_collisions(path: str | Path) -> LoadedCollisions:
    """Read the compiled OL 316 table, all rows or none.

    Raises
    ------
    SafetyError
        If the file is unreadable, lacks a column, or any row is invalid (each listed with its line number).
    """
    p = Path(path)
    try:
        with p.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise SafetyError(f"{p}: missing column(s) {', '.join(missing)}")
            rows = [(reader.line_num, row) for row in reader]
    except OSError as e:
        raise SafetyError(f"cannot read {p}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise SafetyError(f"{p}: not UTF-8 text (byte offset {e.start})") from e
    fixes: Counter[tuple[str, str]] = Counter()
    records: list[CollisionRecord] = []
    problems: list[str] = []
    for line, row in rows:
        if not any((v or "").strip() for v in row.values()):
            continue
        try:
            records.append(_row(row, f"{p.name}:{line}", fixes))
        except ValueError as e:
            problems.append(f"line {line}: {e}")
    if problems:
        shown = "; ".join(problems[:10]) + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else "")
        raise SafetyError(f"{p}: {len(problems)} invalid row(s): {shown}")
    return LoadedCollisions(records, fixes)


@dataclass(frozen=True, slots=True)
class CollisionSummary:
    """Counts by company, by mode engaged and by fault."""

    total: int
    by_company: dict[str, dict[str, int]]  # company -> {"total", "autonomous", "conventional", fault codes...}
    by_mode_fault: dict[str, dict[str, int]]  # "autonomous"/"conventional" -> fault code -> count
    first: dt.date | None
    last: dt.date | None


def summarise(records: list[CollisionRecord]) -> CollisionSummary:
    """Counts by company (most collisions first), and a table of mode engaged by fault."""
    by_company: dict[str, dict[str, int]] = {}
    by_mode: dict[str, dict[str, int]] = {
        m: dict.fromkeys((f.value for f in Fault), 0) for m in ("autonomous", "conventional")
    }
    for r in records:
        mode = "autonomous" if r.autonomous_mode else "conventional"
        c = by_company.setdefault(
            r.operator, {"total": 0, "autonomous": 0, "conventional": 0, **dict.fromkeys((f.value for f in Fault), 0)}
        )
        c["total"] += 1
        c[mode] += 1
        c[r.fault.value] += 1
        by_mode[mode][r.fault.value] += 1
    ordered = dict(sorted(by_company.items(), key=lambda kv: (-kv[1]["total"], kv[0])))
    days = [r.date for r in records]
    return CollisionSummary(len(records), ordered, by_mode, min(days, default=None), max(days, default=None))

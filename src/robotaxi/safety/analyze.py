"""Read the California DMV's published disengagement and mileage files and compute miles per disengagement.

The DMV publishes, for each reporting year (December to November), one CSV of disengagements (a row per event)
and one of autonomous mileage (a row per VIN, or per manufacturer and month in the early years). Column names and
values vary between years and manufacturers; :func:`read_dmv_file` recognises the layouts of ``docs/safety.md``
from the header row, normalises names and values, and rejects rows it cannot read with their line numbers
(a rejected row is counted and reported, never guessed). :func:`analyse` joins the files by manufacturer and
year into miles per disengagement with Garwood's exact 95 % interval.

No real DMV file is available here: the layouts are written from the DMV's published column headers as we know
them (see ``docs/safety.md``), and tests build files in each of them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from ..errors import SafetyError
from .records import DisengagementRecord, Initiator, LocationType, ReportingPeriod
from .stats import MilesPerDisengagement, miles_per_disengagement

__all__ = ["DmvFile", "Layout", "ManufacturerYear", "analyse", "manufacturer_key", "read_dmv_file"]


class Layout(Enum):
    """The published layouts :func:`read_dmv_file` reads."""

    DISENGAGEMENTS_2018 = "disengagements-2018+"  # one row per event, OL 311R columns (reports 2018 on)
    DISENGAGEMENTS_2015 = "disengagements-2015-2017"  # one row per event, manufacturers' own tabulations
    MILEAGE_2018 = "mileage-2018+"  # one row per VIN, a column per month
    MILEAGE_2015 = "mileage-2015-2017"  # one row per manufacturer and month


def _norm(header: str) -> str:
    """Upper case, parenthesised hints and punctuation dropped, spaces collapsed: ``"DRIVER PRESENT\\n(Yes or No)"``
    -> ``"DRIVER PRESENT"``."""
    text = re.sub(r"\([^)]*\)", " ", header.replace("\ufeff", ""))
    text = re.sub(r"[^A-Za-z0-9]+", " ", text)
    return " ".join(text.upper().split())


#: Normalised header names of each field, per layout (first match wins).
_D2018 = {
    "manufacturer": ("MANUFACTURER",),
    "permit": ("PERMIT NUMBER", "PERMIT"),
    "date": ("DATE",),
    "vin": ("VIN NUMBER", "VIN"),
    "driverless": ("VEHICLE IS CAPABLE OF OPERATING WITHOUT A DRIVER",),
    "driver_present": ("DRIVER PRESENT",),
    "initiator": ("DISENGAGEMENT INITIATED BY",),
    "location": ("DISENGAGEMENT LOCATION",),
    "description": ("DESCRIPTION OF FACTS CAUSING DISENGAGEMENT", "DESCRIPTION"),
}
_D2015 = {
    "manufacturer": ("MANUFACTURER", "COMPANY"),
    "date": ("DATE", "MONTH"),
    "location": ("LOCATION", "ROAD TYPE", "LOCATION TYPE"),
    "initiator": ("TYPE", "DISENGAGEMENT TYPE", "INITIATED BY"),
    "description": ("CAUSE", "DESCRIPTION", "REASON"),
}
_M2018 = {
    "manufacturer": ("MANUFACTURER",),
    "permit": ("PERMIT NUMBER", "PERMIT"),
    "vin": ("VIN NUMBER", "VIN"),
    "total": ("ANNUAL TOTAL", "TOTAL", "ANNUAL TOTAL MILES"),
}
_M2015 = {
    "manufacturer": ("MANUFACTURER", "COMPANY"),
    "month": ("MONTH",),
    "miles": ("AUTONOMOUS MILES", "MILES"),
}
_OPTIONAL: dict[str, tuple[str, ...]] = {"disengagements": ("ANNUAL TOTAL OF DISENGAGEMENTS", "TOTAL DISENGAGEMENTS")}

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTH_COL = re.compile(r"^(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)[A-Z]*(?: (\d{2}|\d{4}))?$")

#: Published spellings of who initiated a disengagement (normalised: lower case, single spaces).
INITIATOR_ALIASES: dict[str, Initiator] = {
    **dict.fromkeys(
        ("av system", "av", "ads", "system", "autonomous system", "automated system", "automatic", "automated"),
        Initiator.AV_SYSTEM,
    ),
    **dict.fromkeys(
        ("test driver", "safety driver", "driver", "test operator", "vehicle operator", "operator", "manual"),
        Initiator.TEST_DRIVER,
    ),
    **dict.fromkeys(("remote operator", "remote", "teleoperator"), Initiator.REMOTE_OPERATOR),
    "passenger": Initiator.PASSENGER,
}
#: Published spellings of the location type.
LOCATION_ALIASES: dict[str, LocationType] = {
    **dict.fromkeys(("interstate",), LocationType.INTERSTATE),
    **dict.fromkeys(("freeway", "fwy"), LocationType.FREEWAY),
    **dict.fromkeys(("highway", "hwy"), LocationType.HIGHWAY),
    **dict.fromkeys(("rural road", "rural"), LocationType.RURAL_ROAD),
    **dict.fromkeys(("street", "streets", "city street", "surface street", "urban street"), LocationType.STREET),
    **dict.fromkeys(("parking facility", "parking lot", "parking"), LocationType.PARKING_FACILITY),
}
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}
_SUFFIXES = {"inc", "llc", "ltd", "corp", "corporation", "co", "company"}


def manufacturer_key(name: str) -> str:
    """How manufacturers are matched across files: lower-case words without corporate suffixes.

    ``"Waymo LLC"``, ``"WAYMO LLC"`` and ``"Waymo"`` are one manufacturer; ``"Pony.ai"`` and ``"Pony AI"`` too.
    """
    words = re.sub(r"[^0-9a-z]+", " ", name.casefold()).split()
    while len(words) > 1 and words[-1] in _SUFFIXES:
        words.pop()
    return "".join(words)


def _words(value: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", value.casefold()).split())


def _yes_no(value: str, field: str) -> bool:
    v = _words(value)
    if v in _YES:
        return True
    if v in _NO:
        return False
    raise ValueError(f"{field}: expected Yes or No, got {value!r}")


_DATE_FORMATS = ("%m/%d/%Y", "%m/%d/%y", "%Y-%m-%d", "%d-%b-%Y", "%d-%b-%y", "%b %d, %Y", "%m-%d-%Y")
_MONTH_FORMATS = ("%b-%y", "%b-%Y", "%m/%Y", "%Y-%m", "%b %Y", "%B %Y")


def _date(value: str, field: str) -> tuple[dt.date, bool]:
    """A date, and whether only its month was given (then the 1st of that month)."""
    v = value.strip()
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(v, fmt).date(), False
        except ValueError:
            pass
    for fmt in _MONTH_FORMATS:
        try:
            return dt.datetime.strptime(v, fmt).date(), True
        except ValueError:
            pass
    raise ValueError(f"{field}: cannot read the date {value!r}")


def _miles(value: str, field: str) -> float:
    v = value.strip().replace(",", "")
    if v == "":
        return 0.0
    try:
        x = float(v)
    except ValueError as e:
        raise ValueError(f"{field}: expected miles, got {value!r}") from e
    if not x >= 0 or x == float("inf"):
        raise ValueError(f"{field}: negative or infinite miles {value!r}")
    return x


@dataclass(frozen=True, slots=True)
class MileageRow:
    """Autonomous miles of one VIN (or one manufacturer, in the 2015-2017 layout) in one reporting year."""

    manufacturer: str
    year: int
    miles: float
    vin: str | None = None
    permit_number: str | None = None
    disengagements: int | None = None  # the mileage file's own annual total, when it has one


@dataclass(slots=True)
class DmvFile:
    """What was read from one file."""

    path: Path
    layout: Layout
    disengagements: list[DisengagementRecord] = field(default_factory=list)
    mileage: list[MileageRow] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    warnings: Counter[str] = field(default_factory=Counter)


def _decode(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise SafetyError(f"cannot read {path}: {e.strerror}") from e
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Spreadsheet exports on Windows write cp1252; every byte decodes, so note it rather than guess silently.
        return raw.decode("cp1252", errors="strict") if _cp1252_ok(raw) else raw.decode("latin-1")


def _cp1252_ok(raw: bytes) -> bool:
    try:
        raw.decode("cp1252")
    except UnicodeDecodeError:
        return False
    return True


def _columns(header: Sequence[str], spec: dict[str, tuple[str, ...]]) -> dict[str, int] | None:
    names = [_norm(h) for h in header]
    out: dict[str, int] = {}
    for fld, options in spec.items():
        for opt in options:
            if opt in names:
                out[fld] = names.index(opt)
                break
        else:
            return None
    return out


def _month_columns(header: Sequence[str]) -> list[tuple[int, int, int | None]]:
    """(column, month, year or None) of every month column."""
    out = []
    for i, h in enumerate(header):
        m = _MONTH_COL.match(_norm(h))
        if m:
            year = m.group(2)
            y = None if year is None else (int(year) + 2000 if len(year) == 2 else int(year))
            out.append((i, _MONTHS.index(m.group(1)) + 1, y))
    return out


def _detect(rows: list[tuple[int, list[str]]]) -> tuple[int, Layout, dict[str, int]]:
    """The header row (index into ``rows``), the layout and the field columns."""
    for k, (_, row) in enumerate(rows[:10]):
        for layout, spec in (
            (Layout.DISENGAGEMENTS_2018, _D2018),
            (Layout.MILEAGE_2018, _M2018),
            (Layout.MILEAGE_2015, _M2015),
            (Layout.DISENGAGEMENTS_2015, _D2015),
        ):
            cols = _columns(row, spec)
            if cols is None:
                continue
            if layout is Layout.MILEAGE_2018 and len(_month_columns(row)) != 12:
                continue
            return k, layout, cols
    raise ValueError("no header row of a known DMV layout in the first 10 rows (docs/safety.md lists them)")


def read_dmv_file(path: str | Path, *, year: int | None = None) -> DmvFile:
    """Read one published DMV disengagement or mileage CSV file.

    Parameters
    ----------
    path : path
    year : int, optional
        The reporting year the file is for. Disengagements dated outside its period are rejected; a mileage file
        whose month columns carry no years needs it.

    Raises
    ------
    SafetyError
        If the file is unreadable or has no header of a known layout. Bad rows do not raise: they are in
        ``rejected`` with their line numbers.
    """
    p = Path(path)
    text = _decode(p)
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            rows.append((reader.line_num, row))
    except csv.Error as e:
        raise SafetyError(f"{p}: line {reader.line_num}: not CSV: {e}") from e
    try:
        k, layout, cols = _detect(rows)
    except ValueError as e:
        raise SafetyError(f"{p}: {e}") from e
    header = rows[k][1]
    out = DmvFile(p, layout)
    period = ReportingPeriod(year) if year is not None else None
    reader_fn = {
        Layout.DISENGAGEMENTS_2018: _disengagement_row,
        Layout.DISENGAGEMENTS_2015: _disengagement_row,
    }.get(layout)
    months = _month_columns(header)
    optional = _columns(header, _OPTIONAL)
    file_year = _mileage_year(months, year) if layout is Layout.MILEAGE_2018 else year
    if layout is Layout.MILEAGE_2018 and file_year is None:
        raise SafetyError(f"{p}: the month columns carry no year", hint="give the reporting year (--year)")
    for line, raw in rows[k + 1 :]:
        if not any(c.strip() for c in raw):
            continue
        row = raw + [""] * (len(header) - len(raw))  # trailing empty cells are often left out
        try:
            if reader_fn is not None:
                out.disengagements.append(reader_fn(row, cols, layout, period, f"{p.name}:{line}", out))
            elif layout is Layout.MILEAGE_2018:
                out.mileage.append(_mileage_row(row, cols, months, optional, int(file_year or 0), out))
            else:
                out.mileage.append(_legacy_mileage_row(row, cols, period))
        except ValueError as e:
            out.rejected.append((line, str(e)))
    return out


def _mileage_year(months: list[tuple[int, int, int | None]], year: int | None) -> int | None:
    nov = [y for _, m, y in months if m == 11 and y is not None]
    found = nov[0] if nov else None
    if found is not None and year is not None and found != year:
        raise SafetyError(f"the month columns are for the {found} report, not {year}")
    return found if found is not None else year


def _disengagement_row(
    row: list[str],
    cols: dict[str, int],
    layout: Layout,
    period: ReportingPeriod | None,
    event_id: str,
    out: DmvFile,
) -> DisengagementRecord:
    def get(name: str) -> str:
        return row[cols[name]].strip() if name in cols else ""

    day, month_only = _date(get("date"), "date")
    if month_only:
        out.warnings["dates given as a month only (read as its first day)"] += 1
    if period is not None and day not in period:
        raise ValueError(f"date: {day} is outside the reporting period {period}")
    who = INITIATOR_ALIASES.get(_words(get("initiator")))
    if who is None:
        raise ValueError(f"initiator: unknown value {get('initiator')!r}")
    where = LOCATION_ALIASES.get(_words(get("location")))
    if where is None:
        raise ValueError(f"location: unknown value {get('location')!r}")
    if layout is Layout.DISENGAGEMENTS_2018:
        driver_present = _yes_no(get("driver_present"), "driver present")
        driverless = _yes_no(get("driverless"), "capable of operating without a driver")
        vin = get("vin").upper() or None
        permit = get("permit") or None
    else:  # 2015-2017: testing permits required a driver, and the reports gave no VIN or permit
        driver_present, driverless, vin, permit = True, False, None, None
    return DisengagementRecord(
        event_id=event_id,
        operator=get("manufacturer"),
        date=day,
        initiator=who,
        location_type=where,
        description=get("description") or "(no description given)",
        driver_present=driver_present,
        can_operate_without_driver=driverless,
        permit_number=permit,
        vin=vin,
        reporting_year=period.year if period is not None else None,
    )


def _mileage_row(
    row: list[str],
    cols: dict[str, int],
    months: list[tuple[int, int, int | None]],
    optional: dict[str, int] | None,
    year: int,
    out: DmvFile,
) -> MileageRow:
    manufacturer = row[cols["manufacturer"]].strip()
    if not manufacturer:
        raise ValueError("manufacturer: empty")
    vin = row[cols["vin"]].strip().upper()
    if not vin:
        raise ValueError("VIN: empty")
    per_month = [_miles(row[i], f"{_MONTHS[m - 1]} miles") for i, m, _ in months]
    total_cell = row[cols["total"]].strip()
    total = sum(per_month)
    if total_cell:
        stated = _miles(total_cell, "annual total")
        if abs(stated - total) > 0.5:
            out.warnings["annual totals that differ from the sum of the months (the months are used)"] += 1
    count = None
    if optional is not None and row[optional["disengagements"]].strip():
        cell = row[optional["disengagements"]].strip().replace(",", "")
        if not cell.isdigit():
            raise ValueError(f"annual total of disengagements: expected a count, got {cell!r}")
        count = int(cell)
    permit = row[cols["permit"]].strip() or None
    return MileageRow(manufacturer, year, total, vin, permit, count)


def _legacy_mileage_row(row: list[str], cols: dict[str, int], period: ReportingPeriod | None) -> MileageRow:
    manufacturer = row[cols["manufacturer"]].strip()
    if not manufacturer:
        raise ValueError("manufacturer: empty")
    day, _ = _date(row[cols["month"]], "month")
    if period is not None and day not in period:
        raise ValueError(f"month: {day:%Y-%m} is outside the reporting period {period}")
    return MileageRow(manufacturer, ReportingPeriod.of(day).year, _miles(row[cols["miles"]], "miles"))


@dataclass(frozen=True, slots=True)
class ManufacturerYear:
    """One line of the analysis."""

    manufacturer: str
    year: int
    vehicles: int | None
    mpd: MilesPerDisengagement | None  # None when the disengagement count or the miles are unknown
    miles: float | None
    disengagements: int | None
    source: str  # where the count came from: "events", "mileage file" or "-"


@dataclass
class _Join:
    """Accumulates events and miles by (manufacturer key, year)."""

    names: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    events: Counter[tuple[str, int]] = field(default_factory=Counter)
    event_years: set[int] = field(default_factory=set)
    miles: defaultdict[tuple[str, int], float] = field(default_factory=lambda: defaultdict(float))
    stated: dict[tuple[str, int], int] = field(default_factory=dict)
    vins: defaultdict[tuple[str, int], set[str]] = field(default_factory=lambda: defaultdict(set))
    event_vins: list[tuple[tuple[str, int], str]] = field(default_factory=list)

    def add(self, f: DmvFile) -> None:
        for r in f.disengagements:
            key = (manufacturer_key(r.operator), r.period.year)
            self.names[key[0]][r.operator] += 1
            self.events[key] += 1
            self.event_years.add(key[1])
            if r.vin:
                self.event_vins.append((key, r.vin))
        for m in f.mileage:
            key = (manufacturer_key(m.manufacturer), m.year)
            self.names[key[0]][m.manufacturer] += 1
            self.miles[key] += m.miles
            if m.vin:
                self.vins[key].add(m.vin)
            if m.disengagements is not None:
                self.stated[key] = self.stated.get(key, 0) + m.disengagements

    def warnings(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for key, vin in self.event_vins:
            if key in self.vins and vin not in self.vins[key]:
                out[f"disengagements whose VIN has no mileage row ({key[1]} report)"] += 1
        for key in sorted(set(self.stated) & set(self.events)):
            if self.stated[key] != self.events[key]:
                out["manufacturer-years whose mileage file states another disengagement count"] += 1
        return out

    def line(self, key: tuple[str, int]) -> ManufacturerYear:
        mfr, year = key
        count: int | None = None
        source = "-"
        if year in self.event_years:
            count, source = self.events.get(key, 0), "events"
        elif key in self.stated:
            count, source = self.stated[key], "mileage file"
        miles = self.miles.get(key)
        mpd = None
        if miles is not None and count is not None and not (miles == 0 and count > 0):
            mpd = miles_per_disengagement(miles, count)
        display = self.names[mfr].most_common(1)[0][0]
        vehicles = len(self.vins[key]) if key in self.vins else None
        return ManufacturerYear(display, year, vehicles, mpd, miles, count, source)


def analyse(files: Iterable[DmvFile]) -> tuple[list[ManufacturerYear], Counter[str]]:
    """Miles per disengagement by manufacturer and reporting year, and the warnings of the join.

    Counts come from the disengagement files when any covers the year, else from the mileage files' "annual
    total of disengagements". A disengagement whose VIN has no mileage row (in a year with mileage for that
    manufacturer) is a counted warning.
    """
    join = _Join()
    for f in files:
        join.add(f)
    keys = sorted(set(join.events) | set(join.miles), key=lambda k: (k[1], k[0]))
    return [join.line(k) for k in keys], join.warnings()

"""The DMV's report layouts: the disengagement report (one row per event) and the annual mileage report.

Column names are those of the California DMV's published CSV files from the 2019 reporting year on (see
``docs/safety.md``): the disengagement file has one row per disengagement, the mileage file one row per VIN with
its autonomous miles for each month of the reporting period, December to November, and the annual total.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

from .records import DisengagementRecord, ReportingPeriod

__all__ = ["DISENGAGEMENT_COLUMNS", "disengagement_csv", "mileage_columns", "mileage_csv"]

#: Columns of the DMV disengagement report, as the DMV's CSV files print them (2019 reporting year on).
DISENGAGEMENT_COLUMNS: tuple[str, ...] = (
    "Manufacturer",
    "Permit Number",
    "DATE",
    "VIN NUMBER",
    "VEHICLE IS CAPABLE OF OPERATING WITHOUT A DRIVER (Yes or No)",
    "DRIVER PRESENT (Yes or No)",
    "DISENGAGEMENT INITIATED BY (AV System, Test Driver, Remote Operator, or Passenger)",
    "DISENGAGEMENT LOCATION (Interstate, Freeway, Highway, Rural Road, Street, or Parking Facility)",
    "DESCRIPTION OF FACTS CAUSING DISENGAGEMENT",
)

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def mileage_columns(period: ReportingPeriod) -> tuple[str, ...]:
    """Columns of the DMV mileage report for a period: ``DEC 2018`` ... ``NOV 2019`` between the ids and total."""
    months = tuple(f"{_MONTHS[m - 1]} {y}" for y, m in period.months())
    return ("Manufacturer", "Permit Number", "VIN NUMBER", "Annual Total of Disengagements", *months, "ANNUAL TOTAL")


def _yes_no(flag: bool) -> str:
    return "Yes" if flag else "No"


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")  # RFC 4180 line ends, as spreadsheet exports write them
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def disengagement_csv(records: Iterable[DisengagementRecord], period: ReportingPeriod) -> str:
    """The disengagement report of one period: the header and one row per record, in the order given.

    Raises
    ------
    ValueError
        For a record outside the period or without a permit number or VIN (the report needs both).
    """
    rows = []
    for r in records:
        if r.date not in period:
            raise ValueError(f"event {r.event_id}: date {r.date} is outside the reporting period {period}")
        if not r.permit_number or not r.vin:
            raise ValueError(f"event {r.event_id}: the DMV report needs a permit number and a VIN")
        rows.append(
            (
                r.operator,
                r.permit_number,
                r.date.strftime("%m/%d/%Y"),
                r.vin,
                _yes_no(r.can_operate_without_driver),
                _yes_no(r.driver_present),
                r.initiator.label,
                r.location_type.label,
                r.description,
            )
        )
    return _csv(DISENGAGEMENT_COLUMNS, rows)


def mileage_csv(
    period: ReportingPeriod,
    vehicles: Iterable[tuple[str, str, str, Mapping[tuple[int, int], float], int]],
) -> str:
    """The annual mileage report of one period.

    Parameters
    ----------
    vehicles : iterable of (manufacturer, permit number, VIN, miles by (year, month), disengagements)
        One per VIN. Months outside the period are an error; miles are written with one decimal.

    Raises
    ------
    ValueError
        For negative miles, a month outside the period, or a VIN listed twice.
    """
    months = period.months()
    seen: set[str] = set()
    rows = []
    for manufacturer, permit, vin, miles, disengagements in vehicles:
        if vin in seen:
            raise ValueError(f"VIN {vin}: listed twice in the mileage report")
        seen.add(vin)
        outside = sorted(set(miles) - set(months))
        if outside:
            raise ValueError(f"VIN {vin}: miles in {outside[0][0]}-{outside[0][1]:02d}, outside the period {period}")
        if any(not m >= 0 for m in miles.values()):
            raise ValueError(f"VIN {vin}: negative miles")
        per_month = [miles.get(ym, 0.0) for ym in months]
        rows.append(
            (manufacturer, permit, vin, disengagements, *(f"{m:.1f}" for m in per_month), f"{sum(per_month):.1f}")
        )
    return _csv(mileage_columns(period), rows)

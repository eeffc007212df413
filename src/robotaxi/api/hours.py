"""Operators' operating hours in the live service (the marketplace's ``[[operators]] hours``, on the wall clock).

An operator's hours are a daily window of the platform's local time (``robotaxi serve --timezone``), stored as
``"HH:MM-HH:MM"`` in ``operators.hours`` (null: all day). The engine knows no clock and no hours: it knows which
vehicles are on duty. So the engine thread **reconciles** at the start of every batch (every tick included), and
right after an admin changes hours or a vehicle reports ``service_start``: every in-service vehicle of a closed
operator that is still on duty gets :class:`~robotaxi.dispatch.VehiclesOffDuty` (no new work; it finishes the
riders in its plan), and every vehicle of an open operator that is off duty gets
:class:`~robotaxi.dispatch.VehiclesOnDuty`. Both go through ``Ctx.handle``, so they are in the engine log and a
restart replays them; the reconciliation is level-triggered (it looks at the state, not at the openings and
closings it may have missed while the server was down), so a restart, a vehicle docked at night or a change of
hours all end in the same state.

Requests while an operator is closed go to other operators; a request no open operator may take is rejected with
``out_of_hours`` (the engine's marketplace reason: operators cover the trip, none has a vehicle on duty).
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from typing import TYPE_CHECKING

import numpy as np
import sqlalchemy as sa

from ..errors import DispatchError, FleetError, ServiceError
from ..fleet import Hours, VehicleState, parse_hours
from ..store import tables

if TYPE_CHECKING:
    from .live import Ctx

logger = logging.getLogger(__name__)
OP = tables.operators


def check_hours(text: str, operator: str) -> str:
    """The hours as stored (``"HH:MM-HH:MM"``), or a 422 naming the problem."""
    try:
        h = parse_hours(text, f"hours of operator {operator!r}")
    except FleetError as e:
        raise ServiceError(str(e), status=422, field="hours", code="bad_param") from e
    return f"{_hhmm(h.start_s)}-{_hhmm(h.end_s)}"


def check_timezone(given: str | None, platform: str) -> None:
    """Hours are in the platform's time zone; a body that names another one is refused (422)."""
    if given is not None and given != platform:
        raise ServiceError(
            f"timezone: operating hours are in the platform's time zone {platform!r} (robotaxi serve --timezone), "
            f"not {given!r}; convert them",
            status=422,
            field="timezone",
            code="bad_param",
        )


def _hhmm(s: int) -> str:
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}"


class OperatingHours:
    """Every operator's hours, read from the table when first needed after a change, and the reconciliation."""

    def __init__(self, timezone: str) -> None:
        self.tz = zoneinfo.ZoneInfo(timezone)
        self._hours: dict[int, Hours] | None = None

    def invalidate(self) -> None:
        """Read the table again at the next reconciliation (after a change, or a rolled-back batch)."""
        self._hours = None

    def local_s(self, now_s: int) -> int:
        """Seconds since local midnight at epoch second ``now_s``."""
        t = dt.datetime.fromtimestamp(now_s, self.tz)
        return t.hour * 3600 + t.minute * 60 + t.second

    def hours(self, conn: sa.Connection) -> dict[int, Hours]:
        if self._hours is None:
            rows = conn.execute(sa.select(OP.c.id, OP.c.name, OP.c.hours).where(OP.c.hours.is_not(None)))
            self._hours = {int(i): parse_hours(h, f"hours of operator {name!r}") for i, name, h in rows}
        return self._hours

    def reconcile(self, ctx: Ctx) -> None:
        """Send the engine's vehicles off duty or back on duty as their operators' hours say (see the module)."""
        from ..dispatch import VehiclesOffDuty, VehiclesOnDuty

        hours = self.hours(ctx.conn)
        fleet = ctx.engine.fleet
        n = fleet.n
        c = fleet.cols
        off = c["off_duty"][:n]
        if n == 0 or (not hours and not off.any()):
            return
        operator = c["operator"][:n].astype(np.int64)
        is_open = np.ones(int(operator.max()) + 1, dtype=bool)
        local = self.local_s(ctx.now_s)
        for j, h in hours.items():
            if j < is_open.size:
                is_open[j] = h.is_open(local)
        in_service = (c["state"][:n] != int(VehicleState.NON_OPERATIONAL)) & ~c["retired"][:n] & ~c["draining"][:n]
        mine_open = is_open[operator]
        going = np.flatnonzero(in_service & ~mine_open & (off == 0))
        coming = np.flatnonzero(in_service & mine_open & (off > 0))
        try:
            if going.size:
                ctx.handle(VehiclesOffDuty(ctx.now_s, tuple(fleet.ids[v] for v in going.tolist())))
            if coming.size:
                ctx.handle(VehiclesOnDuty(ctx.now_s, tuple(fleet.ids[v] for v in coming.tolist())))
        except DispatchError:  # the engine refused and changed nothing: the next batch tries again
            logger.exception("operating hours: the engine refused a change of duty")

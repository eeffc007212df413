"""Ride requests as the engine thread runs them: grouped (one engine input, one insert, one read for all the
ride requests waiting together), each with its own answer; a refused request changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from ..errors import ServiceError
from ..store import tables
from . import views
from ._grouping import GroupedCommand
from .commands import body_digest
from .operators import fare_schedule
from .schemas import RideOut, RideRequestIn

if TYPE_CHECKING:
    from ..dispatch import Decisions
    from .live import Ctx

RR = tables.ride_requests


def request_ride(rider: str, key: str, body: RideRequestIn) -> RideCommand:
    """``(ride, created)``: a retry with the same key and body returns the stored ride (``created`` False)."""
    return RideCommand(rider, key, body, body_digest(body.model_dump(mode="json")))


@dataclass(frozen=True, slots=True, eq=False)
class RideCommand(GroupedCommand):
    """One ride request. The engine thread runs the ride requests waiting next to each other in its queue as **one
    group** (:meth:`run_group`): one idempotency query, one snap, one ``RequestsArrived`` for the engine, one
    ``executemany`` insert and one read of the answers, instead of each of those per ride."""

    rider: str
    key: str
    body: RideRequestIn
    digest: str

    def __call__(self, ctx: Ctx) -> tuple[RideOut, bool]:
        ok, value = self.run_group(ctx, [self])[0]
        if not ok:
            raise value
        result: tuple[RideOut, bool] = value
        return result

    def group_key(self) -> tuple[str, str]:
        return (self.rider, self.key)

    @staticmethod
    def run_group(ctx: Ctx, cmds: Sequence[GroupedCommand]) -> list[tuple[bool, Any]]:
        rides = [c for c in cmds if isinstance(c, RideCommand)]
        if len(rides) != len(cmds):  # pragma: no cover - the engine thread groups commands of one class
            raise TypeError("RideCommand.run_group: only ride requests")
        return _request_rides(ctx, rides)


@dataclass(slots=True)
class _NewRide:
    at: int  # position in the group
    cmd: RideCommand
    rid: int
    o: int
    d: int
    operator: int
    direct_s: int
    direct_m: int
    fare: int | None
    currency: str | None


def _request_rides(ctx: Ctx, cmds: list[RideCommand]) -> list[tuple[bool, Any]]:
    """Ride requests with distinct (rider, key): each answered ``(True, (ride, created))`` or ``(False, error)``;
    a refused request changes nothing, and does not disturb the others."""
    out: list[tuple[bool, Any]] = [(False, None)] * len(cmds)
    prior = {
        (str(r.rider), str(r.idempotency_key)): r
        for r in ctx.conn.execute(
            sa.select(RR.c.request_id, RR.c.rider, RR.c.idempotency_key, RR.c.body_sha256).where(
                RR.c.idempotency_key.in_({c.key for c in cmds})
            )
        )
    }
    retries: dict[int, int] = {}
    todo: list[int] = []
    for i, c in enumerate(cmds):
        p = prior.get((c.rider, c.key))
        if p is None:
            todo.append(i)
        elif p.body_sha256 != c.digest:
            out[i] = (False, ServiceError(
                "Idempotency-Key: this key was used for a different ride request; use a new key",
                status=422, field="Idempotency-Key", code="idempotency_key_reused",
            ))  # fmt: skip
        else:
            retries[i] = int(p.request_id)
    new = _check_rides(ctx, cmds, todo, out)
    if new:
        _hand_rides(ctx, new, out)
    views_by_id = views.rides(ctx.conn, [*retries.values(), *(n.rid for n in new if out[n.at][0])])
    for i, rid in retries.items():
        out[i] = (True, (views_by_id[rid], False))
    for n in new:
        if out[n.at][0]:
            out[n.at] = (True, (views_by_id[n.rid], True))
    return out


def _check_rides(ctx: Ctx, cmds: list[RideCommand], todo: list[int], out: list[tuple[bool, Any]]) -> list[_NewRide]:
    """Validate the new requests (operator, positions), quote them and give them ids; refusals go to ``out``."""
    if not todo:
        return []
    names = {cmds[i].body.operator for i in todo} - {None}
    op_ids = (
        dict(
            ctx.conn.execute(
                sa.select(tables.operators.c.name, tables.operators.c.id).where(tables.operators.c.name.in_(names))
            ).all()
        )
        if names
        else {}
    )
    net, limit = ctx.service.network, ctx.service.settings.snap_limit_m
    pts = [p for i in todo for p in (cmds[i].body.origin, cmds[i].body.destination)]
    nodes, dist = net.nearest(np.array([p.lng for p in pts]), np.array([p.lat for p in pts]))
    router, settings = ctx.service.router, ctx.service.settings
    fares_of: dict[int, Any] = {}
    new: list[_NewRide] = []
    for k, i in enumerate(todo):
        body = cmds[i].body
        try:
            operator = -1
            if body.operator is not None:
                if body.operator not in op_ids:
                    raise ServiceError(
                        f"operator: no operator named {body.operator!r}",
                        status=422, field="operator", code="unknown_operator",
                    )  # fmt: skip
                operator = int(op_ids[body.operator])
            for j, field in ((2 * k, "origin"), (2 * k + 1, "destination")):
                if dist[j] > limit:
                    p = pts[j]
                    raise ServiceError(
                        f"{field}: lat={p.lat:.6f}, lng={p.lng:.6f} is {dist[j]:.0f} m from the {net.name} network "
                        f"(limit {limit:.0f} m; the network covers lon/lat {net.bbox})",
                        status=422, field=field, code="off_network",
                    )  # fmt: skip
            o, d = int(nodes[2 * k]), int(nodes[2 * k + 1])
            if o == d:
                raise ServiceError(
                    "destination: origin and destination are the same place on the network",
                    status=422, field="destination", code="same_place",
                )  # fmt: skip
        except ServiceError as e:
            out[i] = (False, e)
            continue
        direct_s = int(router.time1(o, d, ctx.now_s))
        direct_m = int(router.distance1(o, d))
        # A ride for one operator is quoted with its fares; any other with the platform's.
        if operator not in fares_of:
            fares_of[operator] = fare_schedule(ctx.conn, None if operator < 0 else operator, settings.fares)
        fares = fares_of[operator]
        fare = int(fares.fare_cents([direct_m], [direct_s])[0]) if fares is not None else None
        new.append(_NewRide(
            i, cmds[i], ctx.service.next_request_id(), o, d, operator, direct_s, direct_m, fare,
            settings.currency if fares else None,
        ))  # fmt: skip
    return new


def _hand_rides(ctx: Ctx, new: list[_NewRide], out: list[tuple[bool, Any]]) -> None:
    """One engine input and one insert for the whole group; should the engine refuse the group (it checks every
    row before changing anything), each ride alone, so that only the ride at fault is refused."""
    from ..errors import DispatchError

    try:
        _hand_engine(ctx, new)
    except DispatchError as e:
        if len(new) == 1:
            out[new[0].at] = (False, ServiceError(str(e), status=409, code="refused_by_dispatch"))
            return
        for n in new:
            try:
                _hand_engine(ctx, [n])
            except DispatchError as e:
                out[n.at] = (False, ServiceError(str(e), status=409, code="refused_by_dispatch"))
            else:
                out[n.at] = (True, None)
        return
    for n in new:
        out[n.at] = (True, None)


def _hand_engine(ctx: Ctx, new: list[_NewRide]) -> None:
    from ..dispatch import RequestsArrived

    def write(_: Decisions) -> None:
        ctx.conn.execute(
            RR.insert(),
            [
                {
                    "request_id": n.rid,
                    "trip_id": str(uuid.uuid4()),
                    "rider": n.cmd.rider,
                    "idempotency_key": n.cmd.key,
                    "body_sha256": n.cmd.digest,
                    "origin_lon": n.cmd.body.origin.lng,
                    "origin_lat": n.cmd.body.origin.lat,
                    "destination_lon": n.cmd.body.destination.lng,
                    "destination_lat": n.cmd.body.destination.lat,
                    "o_node": n.o,
                    "d_node": n.d,
                    "passengers": n.cmd.body.passengers,
                    "operator_id": None if n.operator < 0 else n.operator,
                    "max_wait_s": ctx.engine.params.max_wait_s,
                    "status": "open",
                    "requested_ms": ctx.now_ms,
                    "direct_s": n.direct_s,
                    "direct_m": n.direct_m,
                    "fare_cents": n.fare,
                    "currency": n.currency,
                    "updated_ms": ctx.now_ms,
                }
                for n in new
            ],
        )

    event = RequestsArrived(
        ctx.now_s,
        [n.rid for n in new],
        [n.o for n in new],
        [n.d for n in new],
        passengers=[n.cmd.body.passengers for n in new],
        operator=[n.operator for n in new],
    )
    ctx.handle(event, write)

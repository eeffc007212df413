"""Operators as the live engine knows them: the ``operators`` table turned into the engine's marketplace rules,
and the admin commands that change them (run on the engine thread, so the rules and the engine snapshot change in
one transaction).

An operator with ``offers`` gets each trip as an **offer** it accepts or declines within ``offer_timeout_s``
(:mod:`.offers`); the engine's own offer mechanism (``Decisions.offer_*``, ``OffersAnswered``; see
``docs/marketplace.md``) does the rest. An operator with an ``area`` (GeoJSON polygons, checked like the
marketplace's ``[[operators]] area`` by :class:`~robotaxi.fleet.ServiceArea`) serves only trips whose pickup and
dropoff both lie in it. Without offers or areas the engine runs without a marketplace (every vehicle may serve
every request), exactly as before.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from ..errors import DispatchError, ServiceError
from ..store import tables
from .hours import check_hours, check_timezone
from .schemas import HoursIn, OperatorIn, OperatorOut, OperatorPatch

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from ..dispatch import Marketplace
    from ..market.fares import FareSchedule
    from ..network import RoadNetwork
    from .live import Ctx

OP = tables.operators
#: Policies that can make offers (the engine's offers are unpooled: see docs/marketplace.md).
OFFER_POLICIES = ("immediate", "batch")


def area_geometries(geojson: Any, what: str) -> list[Any]:
    """The shapely geometries of a GeoJSON area (FeatureCollection, Feature, Polygon or MultiPolygon).

    Raises
    ------
    ServiceError
        422 naming the problem: not GeoJSON, or a feature that is no geometry.
    """
    from shapely.errors import GEOSException
    from shapely.geometry import shape

    if not isinstance(geojson, dict):
        raise _bad_area(what, "expected a GeoJSON object")
    kind = geojson.get("type")
    if kind == "FeatureCollection":
        features = geojson.get("features")
        if not isinstance(features, list):
            raise _bad_area(what, "a FeatureCollection needs a list of features")
        raw = [f.get("geometry") if isinstance(f, dict) else None for f in features]
    elif kind == "Feature":
        raw = [geojson.get("geometry")]
    else:
        raw = [geojson]
    geoms = []
    for i, g in enumerate(raw):
        try:
            geoms.append(shape(g))
        except (AttributeError, TypeError, ValueError, KeyError, IndexError, GEOSException) as e:
            raise _bad_area(what, f"feature {i} is not a geometry ({e})") from e
    return geoms


def _bad_area(what: str, text: str) -> ServiceError:
    return ServiceError(f"{what}: {text}", status=422, field="area", code="bad_param")


def area_mask(geojson: Any, network: RoadNetwork, what: str) -> NDArray[np.bool_]:
    """The network nodes inside a GeoJSON area (see :func:`area_geometries`).

    Raises
    ------
    ServiceError
        422 naming the problem: not GeoJSON, not polygons, invalid or self-intersecting polygons, no node inside.
    """
    from shapely.errors import GEOSException

    from ..errors import FleetError
    from ..fleet.area import ServiceArea

    geoms = area_geometries(geojson, what)
    try:
        return ServiceArea.from_geometries(geoms, network, what=what).mask
    except (FleetError, GEOSException, ValueError) as e:
        raise _bad_area(what, str(e).removeprefix(f"{what}: ")) from e


def market_rules(
    conn: sa.Connection, network: RoadNetwork, change: dict[int, dict[str, Any]] | None = None
) -> Marketplace | None:
    """The engine's marketplace for the operators stored, with ``change`` (operator id -> column values) applied
    on top (None when no operator needs a marketplace)."""
    from ..dispatch import Marketplace, OperatorRules

    rows = [dict(r._mapping) for r in conn.execute(sa.select(OP).order_by(OP.c.id))]
    known = {int(r["id"]) for r in rows}
    for op_id, values in (change or {}).items():
        if op_id in known:
            next(r for r in rows if r["id"] == op_id).update(values)
        else:
            rows.append({"id": op_id, **values})
    # Hours need the marketplace too: its reasons tell a rider that no operator was open (``out_of_hours``).
    if not any(r["offers"] or r.get("area") is not None or r.get("hours") is not None for r in rows):
        return None
    if [int(r["id"]) for r in rows] != list(range(len(rows))):  # ids are dense by construction (create_operator)
        raise ServiceError("operator ids are not dense 0..n-1: the operators table was edited by hand", status=500)
    return Marketplace(
        tuple(
            OperatorRules(
                str(r["name"]),
                area=None if r.get("area") is None else area_mask(r["area"], network, f"operator {r['name']!r}: area"),
                offers=bool(r["offers"]),
                offer_timeout_s=int(r["offer_timeout_s"]),
            )
            for r in rows
        )
    )


def parse_fare_table(table: dict[str, Any] | None, name: str) -> FareSchedule | None:
    """An operator's fare schedule from its stored table (checked like the scenario's ``[fares]``)."""
    from ..errors import MarketConfigError
    from ..market.config import parse_fares

    if table is None:
        return None
    try:
        return parse_fares(table, operator=name, where="fares")
    except MarketConfigError as e:
        raise ServiceError(str(e), status=422, field="fares", code="bad_param") from e


def fare_schedule(conn: sa.Connection, operator_id: int | None, default: FareSchedule | None) -> FareSchedule | None:
    """The fares of a trip served (or requested) by ``operator_id``: its own schedule, else the platform's."""
    if operator_id is None:
        return default
    row = conn.execute(sa.select(OP.c.name, OP.c.fares).where(OP.c.id == operator_id)).first()
    if row is None or row.fares is None:
        return default
    return parse_fare_table(row.fares, str(row.name))


def operator_out(r: Any) -> OperatorOut:
    return OperatorOut(
        name=r.name,
        provider_id=r.provider_id,
        created_ms=r.created_ms,
        offers=bool(r.offers),
        offer_timeout_s=int(r.offer_timeout_s),
        dmv_permit=r.dmv_permit,
        area=r.area,
        fares=r.fares,
        hours=r.hours,
    )


def _check_policy(ctx: Ctx, offers: bool) -> None:
    policy = ctx.service.settings.policy
    if offers and policy not in OFFER_POLICIES:
        raise ServiceError(
            f"offers: the platform runs the {policy!r} policy; offers need {' or '.join(OFFER_POLICIES)} "
            "(offers are unpooled)",
            status=422,
            field="offers",
            code="bad_param",
        )


def _apply_rules(ctx: Ctx, change: dict[int, dict[str, Any]]) -> None:
    """Hand the engine the rules the table will hold after ``change``; refused (nothing changed) when the engine
    cannot take them. Called before the command writes: a refusal must leave the table as it was."""
    market = market_rules(ctx.conn, ctx.service.network, change)
    try:
        ctx.engine.set_market(market)
    except DispatchError as e:
        raise ServiceError(f"offers: {e}", status=409, field="offers", code="offers_pending") from e
    ctx.dirty = True
    ctx.service.log_input(ctx.conn, "market", market)


def create_operator(body: OperatorIn) -> Callable[[Ctx], OperatorOut]:
    def run(ctx: Ctx) -> OperatorOut:
        provider = str(body.provider_id or uuid.uuid4())
        conn = ctx.conn
        if conn.execute(sa.select(OP.c.id).where(OP.c.name == body.name)).first():
            raise ServiceError(
                f"name: operator {body.name!r} exists", status=409, field="name", code="already_registered"
            )
        if conn.execute(sa.select(OP.c.id).where(OP.c.provider_id == provider)).first():
            raise ServiceError(
                f"provider_id: {provider} is another operator's",
                status=409,
                field="provider_id",
                code="already_registered",
            )
        _check_policy(ctx, body.offers)
        parse_fare_table(body.fares, body.name)
        hours = None if body.hours is None else check_hours(body.hours, body.name)
        # Operator ids are the engine's operator indices: dense from 0, never reused.
        next_id = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(OP.c.id) + 1, 0))).scalar_one())
        values = {
            "name": body.name,
            "provider_id": provider,
            "created_ms": ctx.now_ms,
            "offers": body.offers,
            "offer_timeout_s": body.offer_timeout_s,
            "dmv_permit": body.dmv_permit,
            "area": body.area,
            "fares": body.fares,
            "hours": hours,
        }
        _apply_rules(ctx, {next_id: values})
        conn.execute(OP.insert().values(id=next_id, **values))
        _hours_changed(ctx)
        return operator_out(conn.execute(sa.select(OP).where(OP.c.id == next_id)).one())

    return run


def update_operator(name: str, body: OperatorPatch) -> Callable[[Ctx], OperatorOut]:
    def run(ctx: Ctx) -> OperatorOut:
        row = ctx.conn.execute(sa.select(OP).where(OP.c.name == name)).first()
        if row is None:
            raise ServiceError(f"name: no operator named {name!r}", status=404, field="name", code="unknown_operator")
        values = body.model_dump(exclude_unset=True)  # an explicit null clears dmv_permit, fares or hours
        for key in ("offers", "offer_timeout_s"):
            if key in values and values[key] is None:
                raise ServiceError(f"{key}: cannot be null", status=422, field=key, code="bad_param")
        if values:
            _check_policy(ctx, bool(values.get("offers", row.offers)))
            parse_fare_table(values.get("fares"), name)
            if values.get("hours") is not None:
                values["hours"] = check_hours(values["hours"], name)
            _apply_rules(ctx, {int(row.id): values})
            ctx.conn.execute(OP.update().where(OP.c.id == row.id).values(**values))
            if "hours" in values:
                _hours_changed(ctx)
        return operator_out(ctx.conn.execute(sa.select(OP).where(OP.c.id == row.id)).one())

    return run


def set_area(name: str, area: dict[str, Any] | None) -> Callable[[Ctx], OperatorOut]:
    """Give an operator a service area (GeoJSON), or none (``None``: everywhere)."""

    def run(ctx: Ctx) -> OperatorOut:
        row = ctx.conn.execute(sa.select(OP).where(OP.c.name == name)).first()
        if row is None:
            raise ServiceError(f"name: no operator named {name!r}", status=404, field="name", code="unknown_operator")
        _apply_rules(ctx, {int(row.id): {"area": area}})
        ctx.conn.execute(OP.update().where(OP.c.id == row.id).values(area=area))
        return operator_out(ctx.conn.execute(sa.select(OP).where(OP.c.id == row.id)).one())

    return run


def set_hours(name: str, body: HoursIn | None) -> Callable[[Ctx], OperatorOut]:
    """Give an operator daily operating hours (``None``: all day); applied to its vehicles at once."""

    def run(ctx: Ctx) -> OperatorOut:
        row = ctx.conn.execute(sa.select(OP).where(OP.c.name == name)).first()
        if row is None:
            raise ServiceError(f"name: no operator named {name!r}", status=404, field="name", code="unknown_operator")
        hours = None
        if body is not None:
            check_timezone(body.timezone, ctx.service.settings.timezone)
            hours = check_hours(body.hours, name)
        _apply_rules(ctx, {int(row.id): {"hours": hours}})
        ctx.conn.execute(OP.update().where(OP.c.id == row.id).values(hours=hours))
        _hours_changed(ctx)
        return operator_out(ctx.conn.execute(sa.select(OP).where(OP.c.id == row.id)).one())

    return run


def _hours_changed(ctx: Ctx) -> None:
    """Read the hours again (inside this transaction) and put the vehicles on or off duty accordingly."""
    ctx.service.hours.invalidate()
    ctx.service.hours.reconcile(ctx)

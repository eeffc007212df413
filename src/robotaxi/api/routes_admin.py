"""Admin routes: operators (and their rules, changed on the engine thread) and API credentials."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, Path, status

from ..errors import ServiceError
from ..store import tables
from . import operators
from .auth import new_api_key
from .deps import Admin, Conn, Service
from .schemas import CredentialIn, CredentialOut, HoursIn, OperatorIn, OperatorOut, OperatorPatch

router = APIRouter(prefix="/v1/admin", tags=["admin"])
OP = tables.operators
CR = tables.credentials


@router.post(
    "/operators",
    response_model=OperatorOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create an operator (an MDS provider); with offers it accepts or declines each trip",
)
async def create_operator(body: OperatorIn, service: Service, _: Admin) -> OperatorOut:
    return await service.run(operators.create_operator(body))


@router.get("/operators", response_model=list[OperatorOut], summary="List operators")
def list_operators(conn: Conn, _: Admin) -> list[OperatorOut]:
    return [operators.operator_out(r) for r in conn.execute(sa.select(OP).order_by(OP.c.id))]


@router.patch(
    "/operators/{name}",
    response_model=OperatorOut,
    summary="Change an operator's rules (offers, offer timeout, DMV permit, fares, hours)",
)
async def update_operator(
    name: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")],
    body: OperatorPatch,
    service: Service,
    _: Admin,
) -> OperatorOut:
    return await service.run(operators.update_operator(name, body))


OperatorName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


@router.put(
    "/operators/{name}/area",
    response_model=OperatorOut,
    summary="Set an operator's service area (GeoJSON polygons): it serves only trips inside it",
)
async def set_area(
    name: OperatorName, body: Annotated[dict[str, Any], Body()], service: Service, _: Admin
) -> OperatorOut:
    return await service.run(operators.set_area(name, body))


@router.delete("/operators/{name}/area", response_model=OperatorOut, summary="Remove an operator's service area")
async def remove_area(name: OperatorName, service: Service, _: Admin) -> OperatorOut:
    return await service.run(operators.set_area(name, None))


@router.put(
    "/operators/{name}/hours",
    response_model=OperatorOut,
    summary="Set an operator's daily operating hours (platform time zone; may cross midnight)",
    description="Outside its hours the operator's vehicles take no new rides; riders go to other operators, or are "
    "rejected with reason out_of_hours when no operator that may serve them is open.",
)
async def set_hours(name: OperatorName, body: HoursIn, service: Service, _: Admin) -> OperatorOut:
    return await service.run(operators.set_hours(name, body))


@router.delete("/operators/{name}/hours", response_model=OperatorOut, summary="Remove an operator's hours (all day)")
async def remove_hours(name: OperatorName, service: Service, _: Admin) -> OperatorOut:
    return await service.run(operators.set_hours(name, None))


def _credential(r: sa.Row[tuple[object, ...]], operator: str | None, key: str | None = None) -> CredentialOut:
    m = r._mapping
    return CredentialOut(
        key_id=m["key_id"],
        api_key=key,
        role=m["role"],
        subject=m["subject"],
        operator=operator,
        created_ms=m["created_ms"],
        revoked_ms=m["revoked_ms"],
    )


@router.post(
    "/credentials",
    response_model=CredentialOut,
    status_code=status.HTTP_201_CREATED,
    summary="Issue an API key (shown once)",
)
def create_credential(body: CredentialIn, service: Service, _: Admin) -> CredentialOut:
    if (body.role == "operator") != (body.operator is not None):
        raise ServiceError(
            "operator: required for an operator key, and only for one", status=422, field="operator", code="bad_param"
        )
    now = int(service.clock() * 1000)
    with service.db.begin() as conn:
        op_id = None
        if body.operator is not None:
            op_id = conn.execute(sa.select(OP.c.id).where(OP.c.name == body.operator)).scalar_one_or_none()
            if op_id is None:
                raise ServiceError(
                    f"operator: no operator named {body.operator!r}",
                    status=422,
                    field="operator",
                    code="unknown_operator",
                )
        key_id, key, digest = new_api_key()
        conn.execute(
            CR.insert().values(
                key_id=key_id,
                secret_sha256=digest,
                role=body.role,
                subject=body.subject,
                operator_id=op_id,
                created_ms=now,
            )
        )
        row = conn.execute(sa.select(CR).where(CR.c.key_id == key_id)).one()
    return _credential(row, body.operator, key)


@router.get("/credentials", response_model=list[CredentialOut], summary="List API keys (without secrets)")
def list_credentials(conn: Conn, _: Admin) -> list[CredentialOut]:
    q = sa.select(CR, OP.c.name.label("op")).select_from(CR.outerjoin(OP, CR.c.operator_id == OP.c.id))
    return [_credential(r, r.op) for r in conn.execute(q.order_by(CR.c.created_ms, CR.c.key_id))]


@router.post("/credentials/{key_id}/revoke", response_model=CredentialOut, summary="Revoke an API key")
def revoke_credential(
    key_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")], service: Service, _: Admin
) -> CredentialOut:
    now = int(service.clock() * 1000)
    with service.db.begin() as conn:
        row = conn.execute(sa.select(CR).where(CR.c.key_id == key_id)).first()
        if row is None:
            raise ServiceError(f"key_id: no API key {key_id}", status=404, field="key_id", code="unknown_key")
        if row.revoked_ms is None:
            conn.execute(CR.update().where(CR.c.key_id == key_id).values(revoked_ms=now))
        q = sa.select(CR, OP.c.name.label("op")).select_from(CR.outerjoin(OP, CR.c.operator_id == OP.c.id))
        out = conn.execute(q.where(CR.c.key_id == key_id)).one()
    return _credential(out, out.op)

"""Public routes: the token exchange and the health check."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends

from ..errors import ServiceError
from ..store import tables
from .auth import PUBLIC, Principal, Role, secret_matches, split_api_key
from .deps import Conn, Service
from .schemas import TokenRequest, TokenResponse

router = APIRouter(tags=["auth"])
_Public = Annotated[None, Depends(PUBLIC)]


@router.post("/v1/auth/token", response_model=TokenResponse, summary="Exchange an API key for a bearer token")
def token(body: TokenRequest, conn: Conn, service: Service, _: _Public) -> TokenResponse:
    key_id, secret = split_api_key(body.api_key)
    c = tables.credentials
    row = conn.execute(sa.select(c).where(c.c.key_id == key_id)).first()
    if row is None or not secret_matches(secret, row.secret_sha256) or row.revoked_ms is not None:
        raise ServiceError("api_key: unknown or revoked API key", status=401, field="api_key", code="invalid_key")
    provider = None
    if row.operator_id is not None:
        provider = conn.execute(
            sa.select(tables.operators.c.provider_id).where(tables.operators.c.id == row.operator_id)
        ).scalar_one()
    who = Principal(Role(row.role), row.subject, row.operator_id, provider)
    return TokenResponse(
        access_token=service.tokens.issue(who),
        expires_in=service.tokens.ttl_s,
        role=who.role.value,
        provider_id=provider,
    )


@router.get("/healthz", summary="Liveness: the engine thread runs and the database answers")
def health(conn: Conn, service: Service, _: _Public) -> dict[str, str | int]:
    conn.execute(sa.text("SELECT 1"))
    if not service.alive:
        raise ServiceError("the engine thread is not running", status=503, code="unavailable")
    return {"status": "ok", "network": service.network.name, "vehicles": service.engine.n_vehicles}

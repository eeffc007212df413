"""FastAPI dependencies shared by the routers: the service, database connections, the caller's operator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request

from ..errors import ServiceError
from ..store import tables
from .auth import Principal, Role, allow
from .commands import OperatorRef
from .live import LiveService

ADMIN = allow(Role.ADMIN)
RIDER = allow(Role.RIDER)
OPERATOR = allow(Role.OPERATOR)
#: MDS data: regulators (every provider), operators (their own provider only), admins.
MDS_READERS = allow(Role.REGULATOR, Role.OPERATOR, Role.ADMIN)


def get_service(request: Request) -> LiveService:
    service: LiveService = request.app.state.service
    return service


Service = Annotated[LiveService, Depends(get_service)]


def get_conn(service: Service) -> Iterator[sa.Connection]:
    with service.db.connect() as conn:
        yield conn


Conn = Annotated[sa.Connection, Depends(get_conn)]


def get_operator(who: Annotated[Principal, Depends(OPERATOR)], service: Service) -> OperatorRef:
    """The operator an operator token speaks for (it must still exist). The connection is returned at once: a
    handler waiting for the engine thread must not hold one."""
    if who.operator_id is None:  # pragma: no cover - TokenIssuer.verify refuses such tokens
        raise ServiceError("operator token without operator", status=401, code="invalid_token")
    with service.db.connect() as conn:
        row = conn.execute(sa.select(tables.operators).where(tables.operators.c.id == who.operator_id)).first()
    if row is None:
        raise ServiceError("the operator of this token no longer exists", status=401, code="invalid_token")
    return OperatorRef(int(row.id), str(row.name), str(row.provider_id))


Operator = Annotated[OperatorRef, Depends(get_operator)]
Rider = Annotated[Principal, Depends(RIDER)]
Admin = Annotated[Principal, Depends(ADMIN)]
MdsReader = Annotated[Principal, Depends(MDS_READERS)]

"""The FastAPI application: routers, error bodies, the body-size limit, the service's life cycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from ..errors import ServiceError
from . import dmv, mds, routes_admin, routes_ledger, routes_offers, routes_operator, routes_public, routes_riders
from .live import LiveService

logger = logging.getLogger(__name__)
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _field(loc: tuple[int | str, ...] | list[int | str]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


def _error(status: int, code: str, description: str, details: list[str]) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": code, "error_description": description, "error_details": details or [description]},
        headers={"WWW-Authenticate": "Bearer"} if status == 401 else None,
    )


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    if mds.is_mds(request):
        return mds.error_response(exc)
    return _error(exc.status, exc.code, str(exc), [exc.field] if exc.field else [])


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("database error on %s %s: %s", request.method, request.url.path, exc)
    return _error(503, "unavailable", "the database is busy or unreachable; retry", ["database"])


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [_field(e["loc"]) for e in exc.errors()]
    text = "; ".join(f"{_field(e['loc'])}: {e['msg']}" for e in exc.errors())
    if mds.is_mds(request):
        return mds.bad_param(fields, text)
    return _error(422, "bad_param", text, fields)


class BodyLimit:
    """Refuses bodies larger than ``limit`` bytes with 413 (by Content-Length, or while streaming)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._too_large(scope, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLargeError
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLargeError:
            await self._too_large(scope, send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        resp = _error(413, "too_large", f"request body larger than {self.limit} bytes", ["body"])
        await resp(scope, _no_body, send)


class _TooLargeError(Exception):
    pass


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def create_app(service: LiveService, *, manage: bool = True, dashboard: bool = False) -> FastAPI:
    """The application around ``service``; with ``manage`` it starts the service on startup and stops it on
    shutdown; with ``dashboard`` it adds the live dashboard (``robotaxi.api.dashboard_feed``)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage and not service.started:
            service.start()
        try:
            yield
        finally:
            if manage:
                service.stop()

    app = FastAPI(
        title="robotaxi",
        version="0.1.0",
        summary="The live platform: ride-hailing API, operator fleet docking, MDS 2.0 Provider API for regulators",
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(SQLAlchemyError, _database_error)
    routers = (routes_public, routes_admin, routes_riders, routes_operator, routes_offers, mds, routes_ledger, dmv)
    for r in (m.router for m in routers):
        app.include_router(r)
    if dashboard:
        from . import dashboard_feed

        dashboard_feed.register(app)
    app.add_middleware(BodyLimit, limit=service.settings.max_body_bytes)
    return app

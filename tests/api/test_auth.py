"""Auth: API keys for tokens, token checks, and the route table: every role is refused wherever it does not belong."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import jwt
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import BaseRoute
from starlette.websockets import WebSocketDisconnect

from robotaxi.api.auth import Role, RoleGuard, SocketGuard

from .conftest import Platform

pytestmark = pytest.mark.integration


def _guards(dep: Dependant) -> list[RoleGuard | SocketGuard]:
    found = [dep.call] if isinstance(dep.call, RoleGuard | SocketGuard) else []
    for sub in dep.dependencies:
        found.extend(_guards(sub))
    return found


def _api_routes(routes: Iterable[BaseRoute], kind: type[Any] = APIRoute) -> Iterator[Any]:
    """Every API route (or WebSocket route), including those of included routers (FastAPI wraps them; a test
    below checks that this walk finds every path of the OpenAPI document)."""
    for route in routes:
        if isinstance(route, kind):
            yield route
        sub = getattr(route, "original_router", None)
        if sub is not None:
            yield from _api_routes(sub.routes, kind)


def _routes(platform: Platform) -> list[tuple[APIRoute, str, RoleGuard]]:
    out = []
    for route in _api_routes(platform.client.app.routes):  # type: ignore[attr-defined]
        guards = _guards(route.dependant)
        assert len(guards) == 1, f"{route.path} declares {len(guards)} role guards (exactly one expected)"
        assert isinstance(guards[0], RoleGuard), f"{route.path}: an HTTP route needs a RoleGuard"
        for method in route.methods or ():
            out.append((route, method, guards[0]))
    return out


def _call(platform: Platform, route: APIRoute, method: str, headers: dict[str, str]) -> Any:
    path = re.sub(
        r"\{[^}]+\}",
        lambda m: "1" if "id}" in m.group(0) and "device" not in m.group(0) else str(uuid.uuid4()),
        route.path,
    )
    path = path.replace("/reports/1", "/reports/2026-01.csv")
    kwargs: dict[str, Any] = {"headers": {**headers, "Idempotency-Key": "k"}}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    return platform.client.request(method, path, **kwargs)


def _one_token_per_role(p: Platform) -> dict[Role, dict[str, str]]:
    """The headers of a token of each role; the operator token is zoox's, with operator waymo created first."""
    p.operator("waymo")
    return {
        Role.ADMIN: p.admin,
        Role.RIDER: p.rider("alice"),
        Role.OPERATOR: p.operator("zoox"),
        Role.REGULATOR: p.regulator(),
    }


def test_every_route_declares_its_roles_and_refuses_the_others(platform: Platform) -> None:
    p = platform
    tokens = _one_token_per_role(p)
    routes = _routes(p)
    assert len(routes) >= 25
    admin_only = {(m, r.path) for r, m, g in routes if tuple(g.roles) == (Role.ADMIN,)}
    assert {("PUT", "/v1/admin/operators/{name}/hours"), ("DELETE", "/v1/admin/operators/{name}/hours")} <= admin_only
    checked = 0
    for route, method, guard in routes:
        if guard.public:
            continue
        r = _call(p, route, method, {})
        assert r.status_code == 401, (method, route.path, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        r = _call(p, route, method, {"Authorization": "Bearer not-a-token"})
        assert r.status_code == 401, (method, route.path, r.text)
        for role, headers in tokens.items():
            r = _call(p, route, method, headers)
            if role in guard.roles:
                assert r.status_code not in (401, 403), (role, method, route.path, r.text)
            else:
                assert r.status_code == 403, (role, method, route.path, r.text)
                checked += 1
    assert checked > 50


def test_every_socket_declares_its_roles_and_refuses_the_others(platform: Platform) -> None:
    """WebSocket routes: one SocketGuard each; no token, a forged one or a role not admitted closes the handshake
    with 1008; an admitted role connects."""
    p = platform
    tokens = _one_token_per_role(p)
    sockets = list(_api_routes(p.client.app.routes, APIWebSocketRoute))  # type: ignore[attr-defined]
    assert sockets
    for route in sockets:
        guards = _guards(route.dependant)
        assert len(guards) == 1, f"{route.path} declares {len(guards)} role guards (exactly one expected)"
        guard = guards[0]
        assert isinstance(guard, SocketGuard), f"{route.path}: a WebSocket route needs a SocketGuard"
        for headers in [{}, {"Authorization": "Bearer not-a-token"}, *tokens.values()]:
            role = next((r for r, h in tokens.items() if h is headers), None)
            if role is not None and role in guard.roles:
                with p.client.websocket_connect(route.path, headers=headers):
                    pass  # admitted
                continue
            with pytest.raises(WebSocketDisconnect) as e, p.client.websocket_connect(route.path, headers=headers):
                pass
            assert e.value.code == 1008, (role, route.path)


def doc_path(path: str) -> str:
    """A route's path as OpenAPI writes it: without Starlette's converters (``{tile_path:path}`` is
    ``{tile_path}``)."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def test_public_routes_are_only_token_and_health(platform: Platform) -> None:
    routes = _routes(platform)
    public = {route.path for route, _, guard in routes if guard.public}
    assert public == {"/v1/auth/token", "/healthz"}
    doc = platform.client.get("/openapi.json").json()
    documented = {(doc_path(r.path), m.lower()) for r, m, _ in routes}
    assert documented == {(p, m) for p, ms in doc["paths"].items() for m in ms}


def test_api_keys_and_tokens(platform: Platform) -> None:
    p = platform
    key = p.key("regulator", "city")
    r = p.client.post("/v1/auth/token", json={"api_key": key})
    assert r.status_code == 200
    token = r.json()["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["role"] == "regulator"
    assert claims["sub"] == "city"
    assert claims["iss"] == "robotaxi"
    assert claims["exp"] - claims["iat"] == 3600
    # wrong secret, malformed key, revoked key
    key_id = key[4:].split(".")[0]
    assert p.client.post("/v1/auth/token", json={"api_key": f"rtk_{key_id}.wrong"}).status_code == 401
    assert p.client.post("/v1/auth/token", json={"api_key": "hello"}).status_code == 401
    assert p.client.post(f"/v1/admin/credentials/{key_id}/revoke", headers=p.admin).status_code == 200
    assert p.client.post("/v1/auth/token", json={"api_key": key}).status_code == 401
    # a token signed with another key, and an expired one
    forged = jwt.encode({**claims, "role": "admin"}, b"x" * 32, algorithm="HS256")
    assert p.client.get("/v1/admin/operators", headers=p.auth(forged)).status_code == 401
    assert p.client.get("/mds/vehicles", headers=p.auth(token)).status_code == 200
    p.clock.t += 3601
    assert p.client.get("/mds/vehicles", headers=p.auth(token)).status_code == 401


def test_operator_claims_carry_the_provider(platform: Platform) -> None:
    p = platform
    r = p.client.post("/v1/admin/operators", json={"name": "cruise"}, headers=p.admin)
    provider = r.json()["provider_id"]
    token = p.token_for(p.key("operator", "ops", operator="cruise"))
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["provider_id"] == provider
    assert claims["role"] == "operator"
    r = p.client.post("/v1/admin/credentials", json={"role": "operator", "subject": "x"}, headers=p.admin)
    assert r.status_code == 422
    assert r.json()["error_details"] == ["operator"]


def test_nul_and_junk_in_keys_are_client_errors(platform: Platform) -> None:
    """PostgreSQL refuses NUL in text: such input must be refused before any query (422/401, never 500)."""
    p = platform
    for key in ("rtk_0123456789abcdef.\x00", "rtk_\x00\x00.x", "rtk_0123456789abcdeg.x", "rtk_.x"):
        r = p.client.post("/v1/auth/token", json={"api_key": key})
        assert r.status_code == 401, (key, r.text)
    assert p.client.post("/v1/admin/credentials/ab%00cd/revoke", headers=p.admin).status_code == 422
    r = p.client.post("/v1/admin/credentials", json={"role": "rider", "subject": "a\x00b"}, headers=p.admin)
    assert r.status_code == 422

"""Who may call what: API keys, bearer tokens (JWT, HS256, signed by the platform) and the four roles.

* **API keys** (``rtk_<key id>.<secret>``) are issued by an admin (the first admin key is written to the data
  directory on first start); the database keeps only the SHA-256 of the secret. A key is exchanged for a bearer
  token at ``POST /v1/auth/token``.
* **Tokens** are JWTs (RFC 7519) signed with HMAC-SHA256 under a secret kept in the data directory
  (``jwt-secret``, mode 0600), with ``iss``, ``sub``, ``role``, ``iat``, ``exp``, ``jti``, and for operators the
  operator id and its MDS ``provider_id`` (the claim MDS names for the provider a token speaks for).
* **Roles**: ``rider`` (its own rides), ``operator`` (its own vehicles and trips only), ``regulator`` (read-only
  MDS and ledger data) and ``admin`` (operators, credentials). Every route declares the roles it admits with
  :func:`allow`; the route-table test checks that every other role is refused on every route.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request, WebSocket, WebSocketException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..errors import ServiceError

ISSUER = "robotaxi"
KEY_PREFIX = "rtk_"
_ALGORITHM = "HS256"
_KEY_ID = re.compile(r"[0-9a-f]{16}")


class Role(StrEnum):
    RIDER = "rider"
    OPERATOR = "operator"
    REGULATOR = "regulator"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller a valid token speaks for."""

    role: Role
    subject: str
    operator_id: int | None = None
    provider_id: str | None = None


def load_or_create_secret(path: Path) -> bytes:
    """The token-signing secret in ``path`` (32 random bytes, hex), created with mode 0600 when missing."""
    if path.is_file():
        text = path.read_text(encoding="ascii").strip()
        try:
            key = bytes.fromhex(text)
        except ValueError as e:
            raise ServiceError(f"{path}: not a hex token-signing secret", status=500) from e
        if len(key) < 32:
            raise ServiceError(f"{path}: the token-signing secret must be at least 32 bytes", status=500)
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key.hex() + "\n")
    return key


def new_api_key() -> tuple[str, str, str]:
    """A fresh API key: ``(key_id, full key to hand out, sha256 of the secret to store)``."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return key_id, f"{KEY_PREFIX}{key_id}.{secret}", hash_secret(secret)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_api_key(key: str) -> tuple[str, str]:
    """``(key_id, secret)`` of an API key; a :class:`ServiceError` (401) if it is not shaped like one."""
    if not key.startswith(KEY_PREFIX) or "." not in key:
        raise ServiceError("api_key: not a robotaxi API key (rtk_<id>.<secret>)", status=401, field="api_key")
    key_id, _, secret = key[len(KEY_PREFIX) :].partition(".")
    if not _KEY_ID.fullmatch(key_id) or not secret or not secret.isascii() or not secret.isprintable():
        raise ServiceError("api_key: not a robotaxi API key (rtk_<id>.<secret>)", status=401, field="api_key")
    return key_id, secret


def secret_matches(secret: str, stored_sha256: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_sha256)


class TokenIssuer:
    """Signs and checks the platform's bearer tokens."""

    def __init__(self, secret: bytes, *, ttl_s: int = 3600, clock: Callable[[], float] = time.time) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s: must be > 0, got {ttl_s}")
        self._secret = secret
        self.ttl_s = ttl_s
        self._clock = clock

    def issue(self, who: Principal) -> str:
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": who.subject,
            "role": who.role.value,
            "iat": now,
            "exp": now + self.ttl_s,
            "jti": str(uuid.uuid4()),
        }
        if who.operator_id is not None:
            claims["operator_id"] = who.operator_id
            claims["provider_id"] = who.provider_id
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; a :class:`ServiceError` (401) for anything else."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                issuer=ISSUER,
                # Times are checked below against the service's clock (injectable), not PyJWT's.
                options={"require": ["exp", "iat", "sub", "iss"], "verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidTokenError as e:
            raise ServiceError(f"invalid bearer token: {e}", status=401, code="invalid_token") from e
        now = int(self._clock())
        if not isinstance(claims["exp"], int) or not isinstance(claims["iat"], int):
            raise ServiceError("invalid bearer token: exp and iat must be integers", status=401, code="invalid_token")
        if claims["exp"] <= now:
            raise ServiceError("invalid bearer token: it has expired", status=401, code="invalid_token")
        if claims["iat"] > now + 60:
            raise ServiceError("invalid bearer token: issued in the future", status=401, code="invalid_token")
        try:
            role = Role(str(claims.get("role")))
        except ValueError as e:
            raise ServiceError("invalid bearer token: unknown role", status=401, code="invalid_token") from e
        op = claims.get("operator_id")
        if role is Role.OPERATOR and (not isinstance(op, int) or not isinstance(claims.get("provider_id"), str)):
            raise ServiceError("invalid bearer token: operator without provider", status=401, code="invalid_token")
        return Principal(role, str(claims["sub"]), op if isinstance(op, int) else None, claims.get("provider_id"))


_bearer = HTTPBearer(auto_error=False, description="A token from POST /v1/auth/token")


class RoleGuard:
    """A FastAPI dependency admitting the given roles (``public``: anyone, no token needed).

    Routes carry exactly one guard; the route-table test reads :attr:`roles` to know whom to try.
    """

    def __init__(self, roles: tuple[Role, ...], *, public: bool = False) -> None:
        self.roles = roles
        self.public = public

    def __call__(
        self, request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Principal | None:
        if self.public:
            return None
        if credentials is None:
            raise ServiceError("a bearer token is required (POST /v1/auth/token)", status=401, code="unauthorized")
        issuer: TokenIssuer = request.app.state.service.tokens
        who = issuer.verify(credentials.credentials)
        if who.role not in self.roles:
            allowed = ", ".join(r.value for r in self.roles)
            raise ServiceError(
                f"role {who.role.value} may not call this endpoint ({allowed} only)", status=403, code="forbidden"
            )
        return who


def allow(*roles: Role) -> RoleGuard:
    """The guard admitting ``roles``."""
    if not roles:
        raise ValueError("allow(): name at least one role (or use PUBLIC)")
    return RoleGuard(tuple(roles))


#: The guard of the few public routes (token exchange, health).
PUBLIC = RoleGuard((), public=True)


class SocketGuard:
    """The guard of a WebSocket route: the bearer token comes in the ``Authorization`` header or, for browsers
    (which cannot set headers on a WebSocket), the ``access_token`` query parameter. A missing, invalid or
    forbidden token closes the handshake with code 1008 (policy violation) and the reason; the route-table test
    reads :attr:`roles` like :class:`RoleGuard`'s."""

    def __init__(self, roles: tuple[Role, ...]) -> None:
        if not roles:
            raise ValueError("SocketGuard: name at least one role")
        self.roles = roles

    def __call__(self, websocket: WebSocket) -> Principal:
        header = websocket.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not (header and scheme.lower() == "bearer"):
            token = websocket.query_params.get("access_token", "")
        if not token:
            raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "a bearer token is required")
        issuer: TokenIssuer = websocket.app.state.service.tokens
        try:
            who = issuer.verify(token)
        except ServiceError as e:
            raise WebSocketException(status.WS_1008_POLICY_VIOLATION, str(e)[:120]) from e
        if who.role not in self.roles:
            allowed = ", ".join(r.value for r in self.roles)
            raise WebSocketException(
                status.WS_1008_POLICY_VIOLATION, f"role {who.role.value} may not use this socket ({allowed} only)"
            )
        return who

"""A small synchronous client of the platform's HTTP API (httpx), with the token exchange built in."""

from __future__ import annotations

import time
from typing import Any

import httpx

from ..errors import ServiceError


class PlatformClient:
    """Calls the platform as one API key's holder; refreshes the bearer token before it expires.

    Raises :class:`~robotaxi.errors.ServiceError` (with the status and the server's error code) for any answer
    that is not a success.
    """

    def __init__(self, server: str, api_key: str, *, timeout: float = 30.0) -> None:
        self.http = httpx.Client(base_url=server.rstrip("/"), timeout=timeout)
        self.api_key = api_key
        self._token = ""
        self._expires = 0.0
        self.role = ""

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _headers(self) -> dict[str, str]:
        if time.monotonic() > self._expires:
            r = self.http.post("/v1/auth/token", json={"api_key": self.api_key})
            body = _check(r)
            self._token = body["access_token"]
            self.role = body["role"]
            self._expires = time.monotonic() + max(1.0, body["expires_in"] * 0.8)
        return {"Authorization": f"Bearer {self._token}"}

    def request(self, method: str, path: str, *, json: Any = None, headers: dict[str, str] | None = None) -> Any:
        r = self.http.request(method, path, json=json, headers={**self._headers(), **(headers or {})})
        return _check(r)

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self.request("POST", path, json=body, headers=headers)

    def get_bytes(self, path: str) -> bytes:
        """The raw body of a GET (tiles, checkpoints as text), after the same status check as the JSON calls."""
        r = self.http.get(path, headers=self._headers())
        _raise_for_error(r)
        return r.content


def _check(r: httpx.Response) -> Any:
    _raise_for_error(r)
    return r.json() if r.content else None


def _raise_for_error(r: httpx.Response) -> None:
    if r.status_code >= 400:
        try:
            body = r.json()
            code, text = str(body.get("error", "error")), str(body.get("error_description", r.text))
        except ValueError:
            code, text = "error", r.text
        raise ServiceError(
            f"{r.request.method} {r.request.url.path}: {r.status_code} {text}", status=r.status_code, code=code
        )

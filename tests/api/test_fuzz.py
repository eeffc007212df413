"""Schemathesis against ``/openapi.json``: generated requests for every operation, as every role that may call it,
on both databases; whatever the input, the service answers without a server error (no 5xx), and the OpenAPI
document is valid enough for schemathesis to generate from. The number of examples is bounded (CI time)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Err

from robotaxi.api import create_app
from robotaxi.api.auth import Role

from .conftest import Platform
from .test_auth import _routes, doc_path

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EXAMPLES = 6


def _fuzz(operation: Any, auth: dict[str, str], failures: list[str]) -> int:
    calls = 0

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        nonlocal calls
        r = case.call(headers=auth)
        calls += 1
        if r.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} -> {r.status_code}: {r.text[:300]}")

    run()
    return calls


def test_no_server_errors_for_any_generated_request(platform: Platform) -> None:
    p = platform
    op = p.operator("waymo")
    p.vehicle(op, node=0)
    # Long-polls for offers (wait_s up to 60 s) return at once here: generated waits would only cost CI time.
    p.service.settings = dataclasses.replace(p.service.settings, long_poll_max_s=0.0)
    headers = {Role.ADMIN: p.admin, Role.RIDER: p.rider("alice"), Role.OPERATOR: op, Role.REGULATOR: p.regulator()}
    allowed = {(doc_path(route.path), method.lower()): guard for route, method, guard in _routes(p)}
    # The service runs already (the fixture's client): this app neither starts nor stops it.
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(p.service, manage=False))
    failures: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the OpenAPI document is not usable
        operation = result.ok()
        guard = allowed[(operation.path, operation.method.lower())]
        for who in [None] if guard.public else guard.roles:
            calls += _fuzz(operation, {} if who is None else headers[who], failures)
    assert calls > 100
    assert failures == []

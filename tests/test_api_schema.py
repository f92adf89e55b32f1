"""Schemathesis over the whole OpenAPI document, in-process and with bounded examples: no input makes the API
answer 5xx, and every answer (status, content type, headers, body) is one the document promises."""

from __future__ import annotations

from collections import Counter

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from likeness.services import hashes
from likeness.services.app import App
from tests.apiclient import api, bearer, token

__all__ = ["api"]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 8


def test_the_api_keeps_its_schema(app: App, api: FastAPI) -> None:
    # Offline: URLs a generated scan asks for fail at once instead of retrying.
    app.settings.fetch.retries = 0
    app.settings.fetch.timeout_s = 1.0
    # Hundreds of requests in seconds from one token: within the rate limits, not what this test is about.
    limits = app.settings.abuse
    limits.token_rate_per_s = limits.ip_rate_per_s = limits.token_burst = limits.ip_burst = 1e6
    limits.enumeration_max_distinct = 10**6
    hashes.require_bank(app, "default", create=True, actor="test")
    headers = bearer(token(app, "admin"))
    schema = schemathesis.openapi.from_asgi("/openapi.json", api)
    ran, statuses = [], Counter[int]()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() == "DELETE" and operation.path == "/v1/tokens/{token_id}":
            continue  # it would revoke the token the run uses, leaving every later operation at 401

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,  # the same examples on every machine: a failure here reproduces anywhere
        )
        def run(case: schemathesis.Case) -> None:
            statuses[case.call_and_validate(headers=headers, checks=CHECKS).status_code] += 1

        run()
        ran.append(f"{operation.method.upper()} {operation.path}")
    assert len(ran) >= 20, ran
    assert sum(n for status, n in statuses.items() if status < 300) >= len(ran), statuses  # not all refused
    assert statuses[401] == 0, statuses

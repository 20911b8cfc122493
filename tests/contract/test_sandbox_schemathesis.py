"""Schemathesis against the live sandbox: generated requests to every operation the client uses find
no server error and no answer that breaks Cashfree's own response schemas (the repaired document of
``openapi_support``; each repair is listed there with its reason)."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from payments.bridges.cashfree.sandbox import SandboxConfig
from payments.bridges.cashfree.sandbox.pg_routes import ENDPOINTS
from tests.contract.live_sandbox import live_sandbox
from tests.contract.openapi_support import REPAIRS, raw_spec

APP_ID, SECRET = "schemathesis-app", "schemathesis-secret"
CREDENTIALS = {"x-client-id": APP_ID, "x-client-secret": SECRET, "x-api-version": "2025-01-01"}


def _repaired_spec() -> dict:
    spec = copy.deepcopy(raw_spec())
    for _, repair in REPAIRS:
        repair(spec)
    return spec


def _implemented(context) -> bool:
    """Only what the sandbox serves: the operations our client calls."""
    served = {(endpoint.method, endpoint.path.removeprefix("/pg")) for endpoint in ENDPOINTS}
    return (context.operation.method.upper(), context.operation.path) in served


SCHEMA = schemathesis.openapi.from_dict(_repaired_spec()).include(_implemented)


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    config = SandboxConfig(
        app_id=APP_ID, secret_key=SECRET, webhook_url="http://127.0.0.1:9/unused", enforce_rate_limits=False
    )
    with live_sandbox(config) as url:
        yield url


@SCHEMA.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_sandbox_answers_generated_requests_within_the_spec(case, sandbox_url):
    case.call_and_validate(
        base_url=sandbox_url,
        headers=CREDENTIALS,
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )


def test_every_operation_the_client_uses_is_exercised():
    tested = {(op.ok().method.upper(), op.ok().path) for op in SCHEMA.get_all_operations()}

    assert len(tested) == len(ENDPOINTS)

"""Our OpenAPI document (``src/payments/web/openapi.yaml``) against what it describes: it is valid
OpenAPI 3.1, it lists exactly the routes and methods of the app bootstrap builds, its security and
headers say what ``web/auth.py`` and ``web/idempotency.py`` do, docs/api.md names every route, and
``GET /openapi.json`` serves it.

The route table is the real one: ``bootstrap.web_app`` built on resources that are never connected
(building the app opens nothing; only handlers use the pool, Redis and the broker).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import pytest
from aiohttp import web
from openapi_core import OpenAPI
from openapi_spec_validator import validate
from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpClient
from redis.asyncio import Redis

from payments.pipeline import bootstrap, metrics
from payments.pipeline.settings import Settings
from payments.web.auth import API_PREFIX, UNAUTHENTICATED_PREFIXES, UNAUTHENTICATED_ROUTES
from payments.web.idempotency import IDEMPOTENCY_KEY_HEADER
from payments.web.openapi import OPENAPI_PATH, openapi_document, setup_openapi
from payments.web.payments import CREATE_ROUTE, VERIFY_ROUTE
from payments.web.refunds import INITIATE_ROUTE
from tests.unit._web_support import build_app

API_DOC: Final = Path(__file__).resolve().parents[2] / "docs" / "api.md"
#: Methods aiohttp adds by itself (HEAD beside every GET) or that are not API operations (CORS preflights).
IGNORED_METHODS: Final = frozenset({"HEAD", "OPTIONS"})
HTTP_METHODS: Final = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
#: The writes that take an Idempotency-Key, by route name.
IDEMPOTENT_ROUTES: Final = frozenset({CREATE_ROUTE, VERIFY_ROUTE, INITIATE_ROUTE})
_PARAMETER: Final = re.compile(r"\{[^}]*\}")


@pytest.fixture
async def app() -> AsyncIterator[web.Application]:
    """The web app exactly as bootstrap builds it, on connections that are never opened."""
    settings = Settings()
    registry = CollectorRegistry()
    redis = Redis.from_url("redis://127.0.0.1:1/0")  # a client object only: nothing connects
    resources = bootstrap.Resources(
        settings=settings,
        registry=registry,
        metrics=metrics.create(registry),
        pool=None,
        redis=redis,
        amqp=None,
        publisher=None,
        cipher=bootstrap.personal_data_cipher(settings),
        gateway=None,
        locks=None,
        rpc=None,
        replies=None,
    )
    yield bootstrap.web_app(resources)
    await redis.aclose()


def routes_of(app: web.Application) -> Iterator[tuple[str, str, str | None]]:
    """(method, path template, route name) of every route the app serves, HEAD and OPTIONS aside."""
    for route in app.router.routes():
        resource = route.resource
        if route.method not in IGNORED_METHODS and resource is not None:
            yield route.method, resource.canonical, route.name


def operations(document: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path, operation) of every operation the document describes."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method.upper(), path, operation


def needs_jwt(path: str) -> bool:
    """What ``auth.needs_token`` decides for a route template."""
    if path.startswith(UNAUTHENTICATED_PREFIXES) or path in UNAUTHENTICATED_ROUTES:
        return False
    return path.startswith(API_PREFIX)


def test_the_document_is_valid_openapi_3_1():
    document = openapi_document()

    validate(document)
    assert document["openapi"].startswith("3.1.")
    OpenAPI.from_dict(document)  # what request and response validation would load


def test_every_route_of_the_app_is_documented_with_its_methods(app):
    served = {(method, path) for method, path, _ in routes_of(app)}
    documented = {(method, path) for method, path, _ in operations(openapi_document())}

    assert served - documented == set(), "routes the document does not describe"
    assert documented - served == set(), "documented operations the app does not serve"


def test_every_operation_has_a_unique_id():
    ids = [operation["operationId"] for _, _, operation in operations(openapi_document())]

    assert len(ids) == len(set(ids))


def test_the_jwt_is_required_exactly_where_the_auth_middleware_requires_it():
    document = openapi_document()
    default = document["security"]

    for method, path, operation in operations(document):
        security = operation.get("security", default)
        if needs_jwt(path):
            assert security == [{"bearerAuth": []}], f"{method} {path}"
        elif path in UNAUTHENTICATED_ROUTES:
            assert security == [{"alertmanagerToken": []}], f"{method} {path}"
        else:
            assert security == [], f"{method} {path}"


def test_every_authenticated_route_documents_401_and_every_jwt_route_429():
    for method, path, operation in operations(openapi_document()):
        responses = operation["responses"]
        if needs_jwt(path) or path in UNAUTHENTICATED_ROUTES:
            assert "401" in responses, f"{method} {path}"
        # The rate limits count the routes that take a JWT (web/rate_limits.py), and only those.
        assert ("429" in responses) == needs_jwt(path), f"{method} {path}"
        if needs_jwt(path):
            assert responses["429"]["$ref"] == "#/components/responses/RateLimited"
    retry_after = openapi_document()["components"]["responses"]["RateLimited"]["headers"]
    assert "Retry-After" in retry_after


def test_the_idempotent_writes_and_only_they_require_an_idempotency_key(app):
    document = openapi_document()
    parameters = document["components"]["parameters"]
    key = {"$ref": f"#/components/parameters/{IDEMPOTENCY_KEY_HEADER}"}
    assert parameters[IDEMPOTENCY_KEY_HEADER]["required"] is True
    writes = {(method, path) for method, path, name in routes_of(app) if name in IDEMPOTENT_ROUTES}
    assert len(writes) == len(IDEMPOTENT_ROUTES)

    for method, path, operation in operations(document):
        takes_key = key in operation.get("parameters", [])
        assert takes_key == ((method, path) in writes), f"{method} {path}"


def test_every_error_answer_is_the_one_error_body():
    document = openapi_document()
    error = {"$ref": "#/components/schemas/Error"}

    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) >= 400 and not path.startswith("/health/"):
                resolved = _resolve(document, response)
                assert resolved["content"]["application/json"]["schema"] == error, f"{method} {path} {status}"


def test_every_documented_route_appears_in_docs_api_md():
    text = _normalised(API_DOC.read_text(encoding="utf-8").replace(API_PREFIX, "/"))
    missing = [
        f"{method} {path}"
        for method, path, _ in operations(openapi_document())
        if not _mentioned(_normalised(path.removeprefix(API_PREFIX[:-1])), text)
    ]

    assert missing == [], f"docs/api.md does not name these routes: {missing}"


async def test_get_openapi_json_serves_the_document_without_a_token(aiohttp_client: AiohttpClient):
    client = await aiohttp_client(build_app(routes=setup_openapi))

    response = await client.get(OPENAPI_PATH)

    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == openapi_document()


def _resolve(document: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _normalised(text: str) -> str:
    """Path parameters compared by position, not name: docs/api.md writes ``{id}`` where we write
    ``{webhookId}``."""
    return _PARAMETER.sub("{}", text)


def _mentioned(path: str, text: str) -> bool:
    """Whether docs/api.md names ``path`` on its own (not as the start of a longer path), or as the
    ``…/<last segment>`` it writes for a sibling of a path just named."""
    if re.search(rf"(?<![\w/.{{}}-]){re.escape(path)}(?![\w/.{{}}-])", text):
        return True
    parent, _, last = path.rpartition("/")
    return f"…/{last}" in text and bool(re.search(rf"{re.escape(parent)}/", text))

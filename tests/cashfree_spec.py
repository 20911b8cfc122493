"""Cashfree's OpenAPI document, for checking the requests our client sends against it.

The document lives beside the repository (``shared/cashfree/openapi-pg-2025-01-01.yaml``) or wherever
``CASHFREE_OPENAPI_SPEC`` points. It is always there (CI clones the repository beside ``shared/``),
so a missing document fails the tests that need it rather than skipping them.
``contract_problems`` checks one recorded request: the route exists, the required
headers and the operation's credentials are there (and none where SPEC wants none), and the JSON body
validates against the operation's request schema.
"""

from __future__ import annotations

import functools
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator

from payments.bridges.cashfree.client import SentRequest

_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "cashfree" / "openapi-pg-2025-01-01.yaml"
SPEC_PATH = Path(os.environ.get("CASHFREE_OPENAPI_SPEC", str(_DEFAULT)))


@functools.cache
def spec() -> dict[str, Any]:
    with SPEC_PATH.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return loaded


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow one local ``$ref`` (``#/components/...``)."""
    while "$ref" in node:
        target: Any = spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def body_schema_errors(path_template: str, method: str, body: Any) -> list[str]:
    """Why ``body`` does not match the operation's JSON request schema ([] when it does)."""
    operation = spec()["paths"][path_template][method.lower()]
    schema = resolve(operation["requestBody"])["content"]["application/json"]["schema"]
    validator = OAS30Validator(schema | {"components": spec()["components"]})
    return [
        f"{'/'.join(map(str, error.path)) or 'body'}: {error.message}"
        for error in validator.iter_errors(body)
    ]


def contract_problems(sent: SentRequest) -> list[str]:
    """Everything in ``sent`` that SPEC's operation would not accept."""
    operation = spec()["paths"].get(sent.path_template, {}).get(sent.method.lower())
    if operation is None:
        return [f"SPEC has no {sent.method} {sent.path_template}"]
    headers = {name.lower() for name in sent.headers}
    problems = [
        f"missing header {parameter['name']}"
        for parameter in map(resolve, operation.get("parameters", []))
        if parameter["in"] == "header"
        and parameter.get("required")
        and parameter["name"].lower() not in headers
    ]
    problems += _credential_problems(operation, headers)
    if "requestBody" in operation:
        if sent.body is None:
            return [*problems, "no body"]
        body = json.loads(sent.body, parse_float=Decimal)
        # OAS30Validator wants JSON numbers as int/float; Decimal -> float is fine for a type check.
        problems += body_schema_errors(
            sent.path_template, sent.method, json.loads(json.dumps(body, default=float))
        )
    return problems


def _credential_problems(operation: dict[str, Any], headers: set[str]) -> list[str]:
    schemes = spec()["components"]["securitySchemes"]
    if operation.get("security") == []:
        sent = headers & {scheme["name"].lower() for scheme in schemes.values()}
        return [f"credential header {name} sent where SPEC wants none" for name in sorted(sent)]
    # Our alternative is the first one: app id and secret.
    wanted = {schemes[name]["name"].lower() for name in operation["security"][0]}
    return [f"missing credential header {name}" for name in sorted(wanted - headers)]

"""Cashfree's OpenAPI document for contract tests: loaded once, known defects repaired, and adapters
so ``openapi-core`` can validate an exchange recorded from any aiohttp client.

The document lives beside the repository (``shared/cashfree/openapi-pg-2025-01-01.yaml``) or wherever
``CASHFREE_OPENAPI_SPEC`` points; ``requires_spec`` skips a test, naming the path, when it is absent.
Paths are matched against the spec's sandbox server ``https://sandbox.cashfree.com/pg``: record the
path as ``/pg/...`` and it maps one to one (the local sandbox serves the same prefix).

``REPAIRS`` lists every change made to the document before validating, each with its reason; nothing
else is relaxed.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from multidict import CIMultiDict
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters

_DEFAULT = Path(__file__).resolve().parents[3] / "shared" / "cashfree" / "openapi-pg-2025-01-01.yaml"
SPEC_PATH = Path(os.environ.get("CASHFREE_OPENAPI_SPEC", str(_DEFAULT)))
#: The spec's sandbox server, without its ``/pg`` path.
HOST_URL = "https://sandbox.cashfree.com"

requires_spec = pytest.mark.skipif(
    not SPEC_PATH.is_file(), reason=f"Cashfree's OpenAPI document is not at {SPEC_PATH}"
)


class _Loader(yaml.CSafeLoader):
    """YAML 1.1 would turn ``2025-01-01`` into a date; OpenAPI wants the string."""


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_str)


@functools.cache
def raw_spec() -> dict[str, Any]:
    """The document as published (strings stay strings)."""
    with SPEC_PATH.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=_Loader)
    return loaded


def _any_version(spec: dict[str, Any]) -> None:
    spec["components"]["headers"]["x-api-version"]["schema"].pop("enum", None)


def _one_payment_method(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for ref in schemas["PaymentEntity_payment_method"]["oneOf"]:
        variant = schemas[ref["$ref"].rsplit("/", 1)[-1]]
        variant["required"] = list(variant["properties"])


def _nullable(schema: str, prop: str | None = None) -> Callable[[dict[str, Any]], None]:
    """Mark a component schema, or one inline property of it, nullable."""

    def repair(spec: dict[str, Any]) -> None:
        node = spec["components"]["schemas"][schema]
        (node if prop is None else node["properties"][prop])["nullable"] = True

    return repair


#: (why, repair) for each defect of the published document.
REPAIRS: tuple[tuple[str, Callable[[dict[str, Any]], None]], ...] = (
    (
        "the x-api-version response header is an enum of the single value 2022-09-01, although the "
        "document itself is version 2025-01-01 and every answer echoes the version asked for",
        _any_version,
    ),
    (
        "PaymentEntity.payment_method is a oneOf whose eight variants require nothing of their own key "
        "(UPI and netbanking put `required` on fields one level down), so any object matches several "
        "variants and oneOf can never pass; each variant is made to require its own key",
        _one_payment_method,
    ),
    (
        "PaymentEntity.error_details is null on a successful payment (FACTS §4; the spec's own "
        "payments_entity_list_example says so) but its schema (shared only with TerminalPaymentEntity) "
        "is not nullable",
        _nullable("ErrorDetailsInPaymentsEntity"),
    ),
    (
        "the recon reports end with a null cursor (FACTS §6) that the schemas do not mark nullable",
        _nullable("ReconEntity", "cursor"),
    ),
    ("as above, for the settlement recon report", _nullable("SettlementReconEntity", "cursor")),
)


@functools.cache
def openapi() -> OpenAPI:
    """The repaired document, ready to validate (built once per session: it takes a second or two)."""
    spec = copy.deepcopy(raw_spec())
    for _, repair in REPAIRS:
        repair(spec)
    return OpenAPI.from_dict(spec)


@dataclass(frozen=True)
class RecordedRequest:
    """A sent request in the shape ``openapi-core`` reads (its ``Request`` protocol)."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    content_type: str = "application/json"
    host_url: str = HOST_URL

    @functools.cached_property
    def parameters(self) -> RequestParameters:
        return RequestParameters(header=CIMultiDict(self.headers))


@dataclass(frozen=True)
class RecordedResponse:
    """A received answer in the shape ``openapi-core`` reads (its ``Response`` protocol)."""

    status_code: int
    headers: Mapping[str, str]
    data: bytes
    content_type: str = "application/json"


def response_problems(request: RecordedRequest, response: RecordedResponse) -> list[str]:
    """Why the spec would not accept ``response`` to ``request`` ([] when it does)."""
    try:
        openapi().validate_response(request, response)
    except Exception as error:  # every validation failure is a finding to report
        cause = f" ({error.__cause__})" if error.__cause__ else ""
        return [f"{request.method.upper()} {request.path} -> {response.status_code}: {error}{cause}"]
    return []

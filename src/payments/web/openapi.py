"""Our own OpenAPI document (``openapi.yaml`` beside this module), served at ``GET /openapi.json``.

The document describes every route of the API: what it takes, what it answers and which errors it
can give. It holds no data, so it is served without a token, as JSON, parsed once per process.
"""

from __future__ import annotations

import functools
import json
from importlib.resources import files
from typing import Any, Final

import yaml
from aiohttp import web

OPENAPI_PATH: Final = "/openapi.json"


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The document, parsed from the packaged YAML."""
    text = files("payments.web").joinpath("openapi.yaml").read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    if not isinstance(document, dict):
        raise TypeError("openapi.yaml must hold a mapping")
    return document


@functools.cache
def _document_json() -> bytes:
    return json.dumps(openapi_document(), separators=(",", ":")).encode()


def setup_openapi(app: web.Application) -> None:
    app.router.add_get(OPENAPI_PATH, serve_openapi, name="openapi")


async def serve_openapi(request: web.Request) -> web.Response:
    """``GET /openapi.json``: the API's OpenAPI 3.1 document."""
    return web.Response(body=_document_json(), content_type="application/json")

"""Fixtures of the webhook ingest tests; the builders live in ``_ingest``."""

from __future__ import annotations

import pytest

from tests.unit.web_webhooks._ingest import Ingest


@pytest.fixture
def ingest() -> Ingest:
    return Ingest.build()


@pytest.fixture
async def client(aiohttp_client, ingest):
    return await aiohttp_client(ingest.app())

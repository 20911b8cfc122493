"""Fixtures of the refund API tests; the builders and the fake bus live in ``_api``."""

from __future__ import annotations

import pytest

from payments.pipeline.settings import Settings
from tests.unit.web_refunds._api import RefundWorld


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
def world(settings: Settings) -> RefundWorld:
    return RefundWorld(settings)


@pytest.fixture
async def client(aiohttp_client, world):
    return await aiohttp_client(world.app())

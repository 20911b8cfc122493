"""Fixtures of the admin alert route tests; the builders live in ``_alerts``."""

from __future__ import annotations

import pytest

from tests.unit.web_admin_alerts._alerts import AlertsWorld


@pytest.fixture
def world() -> AlertsWorld:
    return AlertsWorld()


@pytest.fixture
async def client(aiohttp_client, world):
    return await aiohttp_client(world.app())

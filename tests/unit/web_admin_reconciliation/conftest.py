"""Fixtures of the reconciliation admin route tests; the builders live in ``_world``."""

from __future__ import annotations

import pytest

from tests.unit.web_admin_reconciliation._world import ReconciliationWorld


@pytest.fixture
def world() -> ReconciliationWorld:
    return ReconciliationWorld()


@pytest.fixture
async def client(aiohttp_client, world):
    return await aiohttp_client(world.app())

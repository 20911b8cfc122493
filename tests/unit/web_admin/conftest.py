"""Fixtures of the admin route tests; the builders live in ``_admin``."""

from __future__ import annotations

import pytest

from tests.unit.web_admin._admin import AdminWorld


@pytest.fixture
def world() -> AdminWorld:
    return AdminWorld()


@pytest.fixture
async def client(aiohttp_client, world):
    return await aiohttp_client(world.app())

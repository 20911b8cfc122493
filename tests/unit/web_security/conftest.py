"""Fixtures of the attack tests: the whole site, without CORS unless a test builds its own."""

from __future__ import annotations

import pytest

from tests.unit.web_security._site import Site, site_settings


@pytest.fixture
def site() -> Site:
    return Site(site_settings())


@pytest.fixture
async def client(aiohttp_client, site):
    return await aiohttp_client(site.app())

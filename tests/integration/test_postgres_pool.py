"""The pool opens with json codecs, reports its health, and says "unavailable" when the server is gone."""

from __future__ import annotations

import pytest

from payments.bridges.postgres.pool import check_database, open_pool
from payments.domain.errors import DependencyUnavailable

pytestmark = pytest.mark.integration

#: Nothing listens on port 1 of the loopback address: connections are refused at once.
UNREACHABLE_DSN = "postgresql://postgres@127.0.0.1:1/payments"


async def test_the_health_check_reports_server_version_and_pool_usage(pg_pool):
    health = await check_database(pg_pool)

    assert health["status"] == "ok"
    assert health["server_version"].split(".")[0].isdigit()
    assert health["pool_size"] >= 1
    assert 0 <= health["pool_idle"] <= health["pool_size"] <= health["pool_max_size"] == 8
    assert health["latency_seconds"] >= 0


async def test_the_health_check_of_an_unreachable_server_is_a_dependency_error():
    # min_size=0 opens no connection up front, so the probe is what meets the dead server.
    async with open_pool(UNREACHABLE_DSN, min_size=0, max_size=1, command_timeout=1.0) as pool:
        with pytest.raises(DependencyUnavailable, match="health check"):
            await check_database(pool, timeout_seconds=2.0)


async def test_opening_a_pool_on_an_unreachable_server_is_a_dependency_error():
    with pytest.raises(DependencyUnavailable, match="connect"):
        async with open_pool(UNREACHABLE_DSN, min_size=1, max_size=1, command_timeout=1.0):
            pass


async def test_tls_options_in_the_dsn_are_honoured(migrated_dsn):
    # The local test server has TLS off: sslmode=require must then fail, where asyncpg's default
    # ("prefer") and an explicit sslmode=disable connect in plain text.
    async with open_pool(
        f"{migrated_dsn}?sslmode=disable", min_size=1, max_size=1, command_timeout=5
    ) as pool:
        uses_tls = await pool.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    with pytest.raises(DependencyUnavailable):
        async with open_pool(f"{migrated_dsn}?sslmode=require", min_size=1, max_size=1, command_timeout=5):
            pass

    assert uses_tls is False

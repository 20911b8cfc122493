"""Opening the process's robust connection: named on the broker, and failures without secrets."""

from __future__ import annotations

import pytest

from payments.bridges.rabbitmq.connection import open_connection
from payments.domain.errors import DependencyUnavailable
from tests.integration.rabbitmq_support import rabbitmqctl_json, unique, vhost_of
from tests.waiting import eventually

pytestmark = pytest.mark.integration


def _connection_names(vhost: str) -> list[str | None]:
    names = []
    for row in rabbitmqctl_json("list_connections", "vhost", "client_properties"):
        properties = {name: value for name, _type, value in row["client_properties"]}
        if row["vhost"] == vhost:
            names.append(properties.get("connection_name"))
    return names


async def test_the_broker_shows_the_connection_under_the_process_name(amqp_url: str) -> None:
    name = unique("test-named-process")

    async with open_connection(amqp_url, name=name) as connection:
        assert not connection.is_closed

        async def listed() -> bool:
            return name in _connection_names(vhost_of(amqp_url))

        await eventually(listed, what=f"connection {name} in rabbitmqctl list_connections")

    assert connection.is_closed


async def test_a_refused_login_raises_dependency_unavailable_without_the_password(amqp_url: str) -> None:
    vhost = vhost_of(amqp_url)

    with pytest.raises(DependencyUnavailable) as raised:
        async with open_connection(
            f"amqp://guest:Wr0ng-S3cret@127.0.0.1:5672/{vhost}", name="test-bad-login"
        ):
            pass

    assert "Wr0ng-S3cret" not in str(raised.value)
    assert "test-bad-login" in str(raised.value)
    assert raised.value.__cause__ is None


async def test_an_unreachable_broker_raises_dependency_unavailable_without_the_password() -> None:
    with pytest.raises(DependencyUnavailable) as raised:
        async with open_connection("amqps://guest:Unreachable-S3cret@127.0.0.1:1/", name="test-unreachable"):
            pass

    assert "Unreachable-S3cret" not in str(raised.value)
    assert "127.0.0.1:1" in str(raised.value)

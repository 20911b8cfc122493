"""RabbitAlertFeed against a real broker: one queue per web process, every alert to every open stream."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from aio_pika.abc import AbstractRobustConnection

from payments.bridges.rabbitmq.alert_feed import QUEUE_PREFIX, RabbitAlertFeed
from payments.bridges.rabbitmq.publisher import RabbitPublisher
from payments.domain.alerts.model import ADMIN_ALERT_ROUTING_KEY, Alert, Severity
from payments.pipeline.topology import Exchange
from payments.web.admin_alerts import AlertFeed
from tests.integration.rabbitmq_support import rabbitmqctl_json, vhost_of
from tests.waiting import eventually

pytestmark = pytest.mark.integration

READ_SECONDS = 10.0


def raised(title: str) -> Alert:
    now = datetime.now(UTC)
    return Alert(
        kind="queues.overload",
        subject=f"queue:{uuid.uuid4().hex[:8]}",
        severity=Severity.CRITICAL,
        title=title,
        details={"depth": 5000, "threshold": 1000},
        since=now,
        raised_at=now,
        source="alerts",
    )


@pytest.fixture
async def feed(connection: AbstractRobustConnection) -> AsyncIterator[RabbitAlertFeed]:
    feed = RabbitAlertFeed(connection, buffer=10)
    await feed.start()
    yield feed
    await feed.close()


@pytest.fixture
async def publisher(connection: AbstractRobustConnection) -> RabbitPublisher:
    return RabbitPublisher(await connection.channel(publisher_confirms=True), timeout=5.0)


async def publish(publisher: RabbitPublisher, body: bytes) -> None:
    await publisher.publish(
        exchange=Exchange.EMAIL.value,
        routing_key=ADMIN_ALERT_ROUTING_KEY,
        body=body,
        message_id=uuid.uuid4().hex,
    )


async def publish_alert(publisher: RabbitPublisher, alert: Alert) -> None:
    await publish(publisher, json.dumps(alert.message()).encode())


async def next_alert(alerts: AsyncIterator[Mapping[str, Any]]) -> dict[str, Any]:
    async with asyncio.timeout(READ_SECONDS):
        return dict(await anext(alerts))


async def test_a_feed_started_before_anyone_watches_gives_later_alerts_to_every_subscriber(
    feed: RabbitAlertFeed, publisher: RabbitPublisher
) -> None:
    typed: AlertFeed = feed
    first, second = raised("Queue payments.commands is overloaded"), raised("Queue emails is overloaded")

    async with typed.subscribe() as one, typed.subscribe() as other:
        await publish_alert(publisher, first)
        await publish_alert(publisher, second)

        assert await next_alert(one) == first.message()
        assert await next_alert(one) == second.message()
        assert await next_alert(other) == first.message()
        assert await next_alert(other) == second.message()


async def test_each_web_process_has_its_own_queue_and_sees_every_alert(
    connection: AbstractRobustConnection, feed: RabbitAlertFeed, publisher: RabbitPublisher
) -> None:
    other_process = RabbitAlertFeed(connection)
    await other_process.start()
    try:
        alert = raised("DLQ growing")
        async with feed.subscribe() as here, other_process.subscribe() as there:
            await publish_alert(publisher, alert)

            assert (await next_alert(here))["alertId"] == alert.alert_id
            assert (await next_alert(there))["alertId"] == alert.alert_id
    finally:
        await other_process.close()
    assert other_process.queue_name != feed.queue_name


async def test_the_queue_is_exclusive_auto_deleted_and_bound_to_admin_alerts_only(
    feed: RabbitAlertFeed, amqp_url: str
) -> None:
    vhost = vhost_of(amqp_url)

    [queue] = [
        row
        for row in rabbitmqctl_json("list_queues", "-p", vhost, "name", "exclusive", "auto_delete", "durable")
        if row["name"] == feed.queue_name
    ]
    bindings = [
        (row["source_name"], row["routing_key"])
        for row in rabbitmqctl_json(
            "list_bindings", "-p", vhost, "source_name", "destination_name", "routing_key"
        )
        if row["destination_name"] == feed.queue_name and row["source_name"]
    ]

    assert feed.queue_name.startswith(QUEUE_PREFIX)
    assert (queue["exclusive"], queue["auto_delete"], queue["durable"]) == (True, True, False)
    assert bindings == [(Exchange.EMAIL.value, ADMIN_ALERT_ROUTING_KEY)]


async def test_a_message_that_is_not_an_alert_is_skipped(
    feed: RabbitAlertFeed, publisher: RabbitPublisher
) -> None:
    alert = raised("Refund spike")
    async with feed.subscribe() as alerts:
        await publish(publisher, b"not json")
        await publish(publisher, b'{"title": "no alert id"}')
        await publish_alert(publisher, alert)

        assert (await next_alert(alerts))["alertId"] == alert.alert_id


async def test_closing_ends_every_subscription_and_removes_the_queue(
    connection: AbstractRobustConnection, amqp_url: str
) -> None:
    feed = RabbitAlertFeed(connection)
    await feed.start()

    async with feed.subscribe() as alerts:
        await feed.close()

        async with asyncio.timeout(READ_SECONDS):
            assert [item async for item in alerts] == []

    def queue_gone() -> bool:
        queues = rabbitmqctl_json("list_queues", "-p", vhost_of(amqp_url), "name")
        return feed.queue_name not in {row["name"] for row in queues}

    await eventually(queue_gone, what="the feed's queue to be deleted")

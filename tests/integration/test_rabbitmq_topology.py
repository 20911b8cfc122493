"""declare_topology against a real broker: DESIGN §3 exactly, and declaring again changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aio_pika.abc import AbstractChannel

from payments.bridges.rabbitmq.connection import open_connection
from payments.bridges.rabbitmq.topology import declare_topology
from payments.pipeline.topology import (
    DEAD_LETTER_EXCHANGE,
    DELIVERY_LIMIT,
    EVENT_LOG_STREAM,
    RETRY_TIERS,
    WORK_QUEUES,
    Exchange,
)
from tests.integration.rabbitmq_support import rabbitmqctl_json, vhost_of

pytestmark = pytest.mark.integration


@pytest.fixture
async def channel(amqp_url: str) -> AsyncIterator[AbstractChannel]:
    async with open_connection(amqp_url, name="test-topology") as connection:
        yield await connection.channel()


def _arguments(row: dict[str, Any]) -> dict[str, Any]:
    # rabbitmqctl prints a field table as [name, type, value] triples; the wire type is irrelevant here.
    return {name: value for name, _type, value in row["arguments"]}


def _snapshot(vhost: str) -> dict[str, Any]:
    queues = {
        row["name"]: (row["type"], _arguments(row))
        for row in rabbitmqctl_json("list_queues", "-p", vhost, "name", "type", "durable", "arguments")
        if row["durable"]
    }
    exchanges = {
        row["name"]: (row["type"], row["durable"])
        for row in rabbitmqctl_json("list_exchanges", "-p", vhost, "name", "type", "durable")
    }
    bindings = sorted(
        (row["source_name"], row["destination_name"], row["destination_kind"], row["routing_key"])
        for row in rabbitmqctl_json(
            "list_bindings", "-p", vhost, "source_name", "destination_name", "destination_kind", "routing_key"
        )
    )
    return {"queues": queues, "exchanges": exchanges, "bindings": bindings}


async def test_declaring_the_topology_twice_leaves_the_broker_unchanged(
    channel: AbstractChannel, amqp_url: str
) -> None:
    vhost = vhost_of(amqp_url)
    await declare_topology(channel, WORK_QUEUES)
    first = _snapshot(vhost)

    await declare_topology(channel, WORK_QUEUES)

    assert _snapshot(vhost) == first


async def test_the_topology_has_every_exchange_queue_retry_tier_dlq_and_the_event_log(
    channel: AbstractChannel, amqp_url: str
) -> None:
    await declare_topology(channel, WORK_QUEUES)
    snapshot = _snapshot(vhost_of(amqp_url))
    queues, exchanges, bindings = snapshot["queues"], snapshot["exchanges"], snapshot["bindings"]

    for exchange in Exchange:
        assert exchanges[exchange.value] == ("topic", True)
        assert (exchange.value, EVENT_LOG_STREAM, "queue", "#") in bindings
    assert exchanges[DEAD_LETTER_EXCHANGE] == ("direct", True)
    assert queues[EVENT_LOG_STREAM][0] == "stream"
    for spec in WORK_QUEUES:
        kind, arguments = queues[spec.name]
        assert kind == "quorum"
        assert arguments["x-delivery-limit"] == DELIVERY_LIMIT
        assert arguments["x-dead-letter-exchange"] == DEAD_LETTER_EXCHANGE
        assert arguments["x-dead-letter-routing-key"] == spec.dead_letter_queue
        for binding in spec.bindings:
            assert (binding.exchange.value, spec.name, "queue", binding.routing_key) in bindings
        assert len(RETRY_TIERS) == 4
        for tier in RETRY_TIERS:
            kind, arguments = queues[spec.retry_queue(tier)]
            assert kind == "quorum"
            assert arguments["x-message-ttl"] == tier.delay_seconds * 1000
            assert arguments["x-dead-letter-exchange"] == ""
            assert arguments["x-dead-letter-routing-key"] == spec.name
        assert queues[spec.dead_letter_queue][0] == "quorum"
        assert (DEAD_LETTER_EXCHANGE, spec.dead_letter_queue, "queue", spec.dead_letter_queue) in bindings

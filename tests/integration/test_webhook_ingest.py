"""Webhook ingest against real Redis and RabbitMQ: the exact bytes reach the queue once, with a confirm.

Each test binds its own exclusive queue to ``webhook.exchange`` / ``webhook.cashfree.received`` and uses
fresh idempotency keys and a unique Redis prefix, so tests never see each other's deliveries. "Nothing
was queued" is shown without waiting: a sentinel delivery sent afterwards must be the next message.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
from aio_pika.abc import AbstractQueue, AbstractRobustConnection
from aiohttp import web
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from payments.bridges.cashfree.intake import CashfreeWebhooks
from payments.bridges.cashfree.signature import WebhookVerifier
from payments.bridges.rabbitmq.publisher import RabbitPublisher
from payments.bridges.redis.client import open_redis
from payments.bridges.redis.webhook_dedup import RedisWebhookDedup
from payments.domain.webhook.dedup import PENDING_TTL_SECONDS
from payments.domain.webhook.intake import ReceivedWebhook
from payments.pipeline import metrics
from payments.pipeline.publishing import Publisher
from payments.pipeline.settings import Settings
from payments.pipeline.topology import Exchange
from payments.web.app import WebDependencies, create_app
from payments.web.webhooks import RECEIVED_ROUTING_KEY, WebhookIngestConfig, webhook_routes
from tests.integration.rabbitmq_support import get_one
from tests.integration.redis_support import delete_prefixed, unique_prefix
from tests.unit._web_support import healthy_probes
from tests.unit.web_webhooks._ingest import BODY, PATH, SECRET, SENT_MS, TOLERANCE_SECONDS, signed

pytestmark = pytest.mark.integration

#: Bytes a re-serialiser would change: odd spacing, a trailing newline and UTF-8 text.
EXACT_BODY = BODY.replace(b'"plan": "team"', '"plan":   "t\u00e9am \u20b9"'.encode()) + b"\n"
CONFIRMED_TTL_SECONDS = 604_800


def delivery(body: bytes = BODY, **kwargs) -> tuple[bytes, dict[str, str], str]:
    """A signed 2025-01-01 delivery with a fresh idempotency key, and its dedup key."""
    idempotency_key = uuid.uuid4().hex
    headers = signed(body, extra={"x-idempotency-key": idempotency_key}, **kwargs)
    return body, headers, f"cashfree:idem:{idempotency_key}"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    async with open_redis(redis_url) as client:
        yield client


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    prefix = unique_prefix("webhook-ingest")
    yield prefix
    await delete_prefixed(redis, prefix)


@pytest.fixture
async def publisher(connection: AbstractRobustConnection) -> RabbitPublisher:
    return RabbitPublisher(await connection.channel(publisher_confirms=True), timeout=5.0)


@pytest.fixture
async def received_queue(connection: AbstractRobustConnection) -> AsyncIterator[AbstractQueue]:
    channel = await connection.channel()
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(Exchange.WEBHOOK.value, RECEIVED_ROUTING_KEY)
    yield queue
    await channel.close()


def ingest_app(redis: Redis, prefix: str, publisher: Publisher) -> web.Application:
    registry = CollectorRegistry()
    verifier = WebhookVerifier([SECRET], tolerance_seconds=TOLERANCE_SECONDS, now_ms=lambda: SENT_MS)
    settings = Settings()
    routes = webhook_routes(
        webhooks=CashfreeWebhooks(verifier),
        dedup=RedisWebhookDedup(
            redis,
            pending_ttl_seconds=PENDING_TTL_SECONDS,
            confirmed_ttl_seconds=CONFIRMED_TTL_SECONDS,
            key_prefix=prefix,
        ),
        publisher=publisher,
        config=WebhookIngestConfig.from_settings(settings.cashfree),
    )
    deps = WebDependencies(
        settings=settings, metrics=metrics.create(registry), registry=registry, probes=healthy_probes()
    )
    return create_app(deps, extra_setups=[routes])


@pytest.fixture
async def client(aiohttp_client, redis, prefix, publisher):
    return await aiohttp_client(ingest_app(redis, prefix, publisher))


async def next_received(queue: AbstractQueue) -> tuple[aio_pika.abc.AbstractIncomingMessage, ReceivedWebhook]:
    message = await get_one(queue)
    await message.ack()
    return message, ReceivedWebhook.model_validate_json(message.body)


async def assert_next_is_sentinel(client, queue: AbstractQueue) -> None:
    """Nothing was queued before now: a fresh delivery sent now is the next message."""
    body, headers, key = delivery()
    assert (await client.post(PATH, data=body, headers=headers)).status == 200
    _, received = await next_received(queue)
    assert received.dedup_key == key


async def test_an_accepted_delivery_reaches_the_queue_with_its_exact_bytes_after_a_confirm(
    client, received_queue, redis, prefix
):
    body, headers, key = delivery(EXACT_BODY)

    response = await client.post(PATH, data=body, headers=headers)

    assert response.status == 200
    assert await response.json() == {"status": "accepted"}
    message, received = await next_received(received_queue)
    assert received.body == EXACT_BODY
    assert received.dedup_key == key
    assert received.headers["x-webhook-signature"] == headers["x-webhook-signature"]
    assert message.message_id == key
    assert message.type == RECEIVED_ROUTING_KEY
    assert message.routing_key == RECEIVED_ROUTING_KEY
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert await redis.get(f"{prefix}webhook:event:{key}") == b"confirmed"
    assert await redis.pttl(f"{prefix}webhook:event:{key}") > (CONFIRMED_TTL_SECONDS - 60) * 1000


async def test_the_same_delivery_again_is_a_duplicate_and_reaches_the_queue_once(client, received_queue):
    body, headers, key = delivery()
    await client.post(PATH, data=body, headers=headers)
    _, first = await next_received(received_queue)

    again = await client.post(PATH, data=body, headers=headers)

    assert first.dedup_key == key
    assert await again.json() == {"status": "duplicate"}
    await assert_next_is_sentinel(client, received_queue)


async def test_tampered_stale_and_wrongly_signed_deliveries_are_refused_and_nothing_is_queued(
    client, received_queue
):
    body, headers, _ = delivery()
    _, stale_headers, _ = delivery(sent_ms=SENT_MS - (TOLERANCE_SECONDS + 1) * 1000)
    _, foreign_headers, _ = delivery(secret="another-merchants-secret")

    statuses = [
        (await client.post(PATH, data=body.replace(b"170.00", b"1.00", 1), headers=headers)).status,
        (await client.post(PATH, data=body, headers=stale_headers)).status,
        (await client.post(PATH, data=body, headers=foreign_headers)).status,
    ]

    assert statuses == [401, 401, 401]
    await assert_next_is_sentinel(client, received_queue)


@pytest.fixture
async def broken_publisher(connection: AbstractRobustConnection) -> RabbitPublisher:
    """A publisher whose channel is closed: every publish fails as in a broker outage."""
    channel = await connection.channel(publisher_confirms=True)
    publisher = RabbitPublisher(channel, timeout=5.0)
    await channel.close()
    return publisher


@pytest.fixture
async def broken_client(aiohttp_client, redis, prefix, broken_publisher):
    """Ingest sharing ``client``'s Redis keys, with a broker that is down."""
    return await aiohttp_client(ingest_app(redis, prefix, broken_publisher))


async def test_a_broker_failure_answers_503_and_releases_the_key_so_the_retry_is_queued(
    broken_client, client, received_queue, redis, prefix
):
    body, headers, key = delivery()

    refused = await broken_client.post(PATH, data=body, headers=headers)
    left_behind = await redis.exists(f"{prefix}webhook:event:{key}")
    retry = await client.post(PATH, data=body, headers=headers)

    assert refused.status == 503
    assert left_behind == 0
    assert await retry.json() == {"status": "accepted"}
    _, received = await next_received(received_queue)
    assert received.dedup_key == key


async def test_a_redis_outage_answers_503_and_queues_nothing(
    aiohttp_client, client, publisher, received_queue
):
    async with open_redis("redis://127.0.0.1:1/0") as unreachable:
        down = await aiohttp_client(ingest_app(unreachable, "unused:", publisher))
        body, headers, _ = delivery()

        response = await down.post(PATH, data=body, headers=headers)

    assert response.status == 503
    await assert_next_is_sentinel(client, received_queue)

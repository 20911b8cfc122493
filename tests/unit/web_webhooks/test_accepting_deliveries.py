"""A genuine delivery is queued once, intact, and answered exactly 200; its redeliveries are not queued."""

from __future__ import annotations

import hashlib
import json

from payments.domain.webhook.intake import ReceivedWebhook
from payments.web.auth import UNAUTHENTICATED_PREFIXES
from payments.web.webhooks import CASHFREE_WEBHOOK_ROUTE
from tests.unit.cashfree_webhooks._samples import PAYMENT_FAILED_2023
from tests.unit.web_webhooks._ingest import (
    BODY,
    DEDUP_KEY,
    PATH,
    RECEIVED_AT,
    SENT_MS,
    signed,
    signed_2023,
)


def received(ingest, index: int = 0) -> ReceivedWebhook:
    return ReceivedWebhook.model_validate_json(ingest.publisher.published[index].body)


async def test_a_valid_signed_delivery_is_answered_200_accepted_and_published_once(client, ingest):
    response = await client.post(PATH, data=BODY, headers=signed())

    assert response.status == 200
    assert await response.json() == {"status": "accepted"}
    [message] = ingest.publisher.published
    assert message.exchange == "webhook.exchange"
    assert message.routing_key == "webhook.cashfree.received"
    assert message.message_id == DEDUP_KEY
    assert message.message_type == "webhook.cashfree.received"


async def test_the_published_message_carries_the_exact_bytes_their_hash_and_the_identity(client, ingest):
    await client.post(PATH, data=BODY, headers=signed())

    message = received(ingest)
    assert message.body == BODY
    assert message.body_hash == hashlib.sha256(BODY).hexdigest()
    assert message.provider == "cashfree"
    assert message.dedup_key == DEDUP_KEY
    assert message.event_type == "PAYMENT_SUCCESS_WEBHOOK"
    assert message.version == "2025-01-01"
    assert message.received_at == RECEIVED_AT


async def test_only_the_delivery_headers_we_keep_travel_with_the_message(client, ingest):
    headers = signed(extra={"Cookie": "session=abc", "X-Forwarded-For": "52.66.25.127"})

    await client.post(PATH, data=BODY, headers=headers)

    assert received(ingest).headers == {
        "x-webhook-signature": headers["x-webhook-signature"],
        "x-webhook-timestamp": str(SENT_MS),
        "x-webhook-version": "2025-01-01",
        "x-webhook-attempt": "1",
        "x-idempotency-key": headers["x-idempotency-key"],
        "content-type": "application/json",
        "user-agent": "ReactorNetty/1.0.39",
    }


async def test_the_dedup_key_is_confirmed_once_the_broker_has_the_message(client, ingest):
    await client.post(PATH, data=BODY, headers=signed())

    assert ingest.dedup.state(DEDUP_KEY) == "confirmed"


async def test_a_redelivery_of_the_same_event_is_answered_200_duplicate_and_not_published_again(
    client, ingest
):
    await client.post(PATH, data=BODY, headers=signed())
    later = signed(sent_ms=SENT_MS + 120_000, extra={"x-webhook-attempt": "2"})

    response = await client.post(PATH, data=BODY, headers=later)

    assert response.status == 200
    assert await response.json() == {"status": "duplicate"}
    assert len(ingest.publisher.published) == 1


async def test_a_replayed_request_with_the_same_signed_bytes_is_a_duplicate(client, ingest):
    headers = signed()
    await client.post(PATH, data=BODY, headers=headers)

    replay = await client.post(PATH, data=BODY, headers=headers)

    assert replay.status == 200
    assert await replay.json() == {"status": "duplicate"}
    assert len(ingest.publisher.published) == 1


async def test_a_2023_redelivery_without_an_idempotency_header_is_a_duplicate_by_its_derived_key(
    client, ingest
):
    first = await client.post(PATH, data=PAYMENT_FAILED_2023, headers=signed_2023(PAYMENT_FAILED_2023))
    again = await client.post(
        PATH, data=PAYMENT_FAILED_2023, headers=signed_2023(PAYMENT_FAILED_2023, sent_ms=SENT_MS + 1)
    )

    assert (await first.json(), await again.json()) == ({"status": "accepted"}, {"status": "duplicate"})
    assert received(ingest).dedup_key == "cashfree:payment:PAYMENT_FAILED_WEBHOOK:885000001:FAILED"


async def test_different_events_are_each_published(client, ingest):
    await client.post(PATH, data=BODY, headers=signed())
    await client.post(PATH, data=PAYMENT_FAILED_2023, headers=signed_2023(PAYMENT_FAILED_2023))

    assert [message.message_id for message in ingest.publisher.published] == [
        DEDUP_KEY,
        "cashfree:payment:PAYMENT_FAILED_WEBHOOK:885000001:FAILED",
    ]


async def test_a_signed_event_of_an_unknown_type_is_still_accepted_for_the_agent_to_park(client, ingest):
    body = b'{"type": "SUBSCRIPTION_STATUS_CHANGED", "data": {"x": 1}, "event_time": "2025-11-26T15:30:00Z"}'

    response = await client.post(PATH, data=body, headers=signed_2023(body))

    assert response.status == 200
    assert await response.json() == {"status": "accepted"}
    message = received(ingest)
    assert message.event_type == "SUBSCRIPTION_STATUS_CHANGED"
    assert message.dedup_key == f"cashfree:body:{hashlib.sha256(body).hexdigest()}"


async def test_text_that_cannot_be_written_as_utf8_is_replaced_rather_than_failing_the_delivery(
    client, ingest
):
    body = json.dumps({"type": "\ud800ODD", "data": {}}).encode("ascii")  # a lone surrogate escape

    response = await client.post(PATH, data=body, headers=signed_2023(body))

    assert response.status == 200
    assert received(ingest).event_type == "\ufffdODD"
    assert received(ingest).body == body


async def test_the_route_needs_no_bearer_token_because_its_template_is_under_the_webhook_prefix(
    client, ingest
):
    route = client.app.router[CASHFREE_WEBHOOK_ROUTE]

    response = await client.post(PATH, data=BODY, headers=signed(extra={"Authorization": "Bearer junk"}))

    assert route.canonical == PATH
    assert route.canonical.startswith(UNAUTHENTICATED_PREFIXES)
    assert response.status == 200

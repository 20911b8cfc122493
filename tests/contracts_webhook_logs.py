"""The webhook log contract, run against the in-memory fake and against PostgreSQL."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest

from payments.domain.errors import ConcurrentTransition, IllegalTransition, NotFound
from payments.domain.webhook.intake import ReceivedWebhook, body_hash
from payments.domain.webhook.log import WebhookStatus

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
BODY = b'{"type":"PAYMENT_SUCCESS_WEBHOOK","data":{"payment":{"payment_amount":2.00}}}'


def delivery(key: str | None = None, *, body: bytes = BODY) -> ReceivedWebhook:
    return ReceivedWebhook(
        provider="cashfree",
        dedup_key=key or f"cashfree:idem:{uuid.uuid4().hex}",
        event_type="PAYMENT_SUCCESS_WEBHOOK",
        version="2025-01-01",
        body_b64=base64.b64encode(body).decode(),
        body_hash=body_hash(body),
        headers={"x-webhook-signature": "sig", "x-webhook-timestamp": "1764151200000"},
        received_at=NOW,
    )


async def a_delivery_is_recorded_once_with_its_exact_body(uow_factory) -> None:
    received = delivery()
    async with uow_factory() as uow:
        first = await uow.webhooks.record(received)
    async with uow_factory() as uow:
        again = await uow.webhooks.record(received)

    assert again.id == first.id
    assert first.status is WebhookStatus.RECEIVED
    assert first.raw_body.encode() == BODY
    assert first.signature == "sig"
    assert first.hash == body_hash(BODY)
    assert first.as_received() == received


async def processing_moves_to_success_with_what_it_learnt(uow_factory) -> None:
    async with uow_factory() as uow:
        log = await uow.webhooks.record(delivery())
        log = await uow.webhooks.move(log, WebhookStatus.PROCESSING, now=NOW)
        log = await uow.webhooks.move(
            log, WebhookStatus.SUCCESS, now=NOW, order_id="ord_1", payload={"type": "PAYMENT_SUCCESS_WEBHOOK"}
        )
    async with uow_factory() as uow:
        stored = await uow.webhooks.get(log.id)

    assert (stored.status, stored.order_id, stored.retry_count) == (WebhookStatus.SUCCESS, "ord_1", 0)
    assert stored.payload == {"type": "PAYMENT_SUCCESS_WEBHOOK"}
    assert stored.processed_at == NOW


async def each_retry_is_counted_and_a_failure_keeps_its_reason(uow_factory) -> None:
    async with uow_factory() as uow:
        log = await uow.webhooks.record(delivery())
        log = await uow.webhooks.move(log, WebhookStatus.PROCESSING, now=NOW)
        log = await uow.webhooks.move(log, WebhookStatus.PROCESSING, now=NOW)
        log = await uow.webhooks.move(log, WebhookStatus.FAILED, now=NOW, reason="gateway down")

    assert (log.retry_count, log.status, log.failure_reason) == (1, WebhookStatus.FAILED, "gateway down")


async def a_processed_webhook_cannot_be_processed_again(uow_factory) -> None:
    async with uow_factory() as uow:
        log = await uow.webhooks.record(delivery())
        log = await uow.webhooks.move(log, WebhookStatus.PROCESSING, now=NOW)
        log = await uow.webhooks.move(log, WebhookStatus.SUCCESS, now=NOW)
        with pytest.raises(IllegalTransition):
            await uow.webhooks.move(log, WebhookStatus.PROCESSING, now=NOW)


async def a_move_from_a_stale_read_is_refused(uow_factory) -> None:
    async with uow_factory() as uow:
        stale = await uow.webhooks.record(delivery())
        await uow.webhooks.move(stale, WebhookStatus.PROCESSING, now=NOW)
        with pytest.raises(ConcurrentTransition):
            await uow.webhooks.move(stale, WebhookStatus.PROCESSING, now=NOW)


async def an_unknown_id_is_not_found_and_a_rollback_keeps_nothing(uow_factory) -> None:
    received = delivery()

    async def record_then_fail() -> None:
        async with uow_factory() as uow:
            await uow.webhooks.record(received)
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        await record_then_fail()
    async with uow_factory() as uow:
        with pytest.raises(NotFound):
            await uow.webhooks.get(10**12)
        log = await uow.webhooks.record(received)
    assert log.status is WebhookStatus.RECEIVED


WEBHOOK_LOG_CONTRACTS = [
    a_delivery_is_recorded_once_with_its_exact_body,
    processing_moves_to_success_with_what_it_learnt,
    each_retry_is_counted_and_a_failure_keeps_its_reason,
    a_processed_webhook_cannot_be_processed_again,
    a_move_from_a_stale_read_is_refused,
    an_unknown_id_is_not_found_and_a_rollback_keeps_nothing,
]

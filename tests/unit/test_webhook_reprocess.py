"""Reprocessing a stored webhook: it goes back through the outbox as the delivery ingest queued."""

from __future__ import annotations

import pytest

from payments.domain.errors import NotFound
from payments.domain.webhook.intake import ReceivedWebhook
from payments.domain.webhook.log import WebhookStatus
from payments.domain.webhook.service import RECEIVED_ROUTING_KEY, reprocess
from tests.contracts_webhook_logs import NOW, delivery
from tests.fakes.storage import InMemoryStore


async def test_a_failed_webhook_is_requeued_intact_and_marked_received():
    store = InMemoryStore()
    received = delivery()
    async with store.unit_of_work() as uow:
        log = await uow.webhooks.record(received)
        log = await uow.webhooks.move(log, WebhookStatus.PROCESSING, now=NOW)
        log = await uow.webhooks.move(log, WebhookStatus.FAILED, now=NOW, reason="gateway down")

    key = await reprocess(store.unit_of_work, log.id, now=NOW)

    assert key == received.dedup_key
    async with store.unit_of_work() as uow:
        assert (await uow.webhooks.get(log.id)).status is WebhookStatus.RECEIVED
    [event] = store.outbox_events.values()
    assert event.routing_key == RECEIVED_ROUTING_KEY
    assert ReceivedWebhook.model_validate(event.payload) == received


async def test_an_unknown_webhook_cannot_be_reprocessed():
    with pytest.raises(NotFound):
        await reprocess(InMemoryStore().unit_of_work, 404, now=NOW)

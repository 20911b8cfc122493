"""Re-processing a stored webhook through the admin API."""

from __future__ import annotations

import pytest

from tests.unit.web_admin._admin import ADMIN, NOW, USER_AGENT


async def test_reprocessing_a_stored_webhook_queues_it_and_audits_the_action(client, world):
    response = await client.post("/api/v1/admin/webhooks/41/reprocess", headers=world.headers())

    assert response.status == 202
    assert await response.json() == {"webhookId": 41, "dedupKey": "cf_evt_41", "status": "queued"}
    assert world.webhooks.calls == [41]
    [entry] = world.audit()
    assert (entry.actor_id, entry.action, entry.resource_type, entry.resource_id) == (
        ADMIN,
        "admin.webhook.reprocess",
        "webhook",
        "41",
    )
    assert entry.before_state == {"webhookId": 41}
    assert entry.after_state == {"webhookId": 41, "dedupKey": "cf_evt_41", "requeued": True}
    assert (entry.ip_address, entry.user_agent, entry.created_at) == ("127.0.0.1", USER_AGENT, NOW)
    assert entry.trace_id == response.headers["traceparent"].split("-")[1]
    assert entry.request_id == response.headers["X-Request-Id"]


async def test_reprocessing_a_webhook_that_is_not_stored_is_not_found_and_not_audited(client, world):
    response = await client.post("/api/v1/admin/webhooks/7/reprocess", headers=world.headers())

    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"
    assert world.webhooks.calls == [7]
    assert world.audit() == []


@pytest.mark.parametrize("webhook_id", ["abc", "-1", "1.0", "9" * 19])
async def test_a_webhook_id_that_is_not_a_row_id_is_not_found_without_asking(client, world, webhook_id):
    response = await client.post(f"/api/v1/admin/webhooks/{webhook_id}/reprocess", headers=world.headers())

    assert response.status == 404
    assert world.webhooks.calls == []

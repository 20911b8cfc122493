"""When Redis or the broker is down, a delivery is answered 503 and leaves nothing that blocks its retry."""

from __future__ import annotations

from payments.domain.errors import DependencyUnavailable
from tests.fakes.webhook_dedup import InMemoryWebhookDedup
from tests.unit.web_webhooks._ingest import BODY, DEDUP_KEY, PATH, SENT_MS, Ingest, signed


class DedupFailingAfterClaim(InMemoryWebhookDedup):
    """Redis answers the claim, then goes away (``fail`` names the calls that fail)."""

    def __init__(self, *fail: str) -> None:
        super().__init__()
        self.fail = set(fail)

    async def confirm(self, key: str) -> None:
        if "confirm" in self.fail:
            raise DependencyUnavailable("Redis is down (fake)")
        await super().confirm(key)

    async def release(self, key: str) -> None:
        if "release" in self.fail:
            raise DependencyUnavailable("Redis is down (fake)")
        await super().release(key)


async def test_a_broker_failure_is_answered_503_with_retry_after_and_nothing_is_published(client, ingest):
    ingest.publisher.fail_next = 1

    response = await client.post(PATH, data=BODY, headers=signed())

    assert response.status == 503
    assert response.headers["Retry-After"] == "60"
    assert (await response.json())["error"]["code"] == "dependency_unavailable"
    assert ingest.publisher.published == []


async def test_a_broker_failure_releases_the_key_so_the_retry_is_accepted_not_taken_for_a_duplicate(
    client, ingest
):
    ingest.publisher.fail_next = 1
    await client.post(PATH, data=BODY, headers=signed())
    released = ingest.dedup.state(DEDUP_KEY)

    retry = await client.post(PATH, data=BODY, headers=signed(sent_ms=SENT_MS + 120_000))

    assert released is None
    assert retry.status == 200
    assert await retry.json() == {"status": "accepted"}
    assert len(ingest.publisher.published) == 1


async def test_a_dedup_store_that_is_down_is_answered_503_and_nothing_is_published(client, ingest):
    ingest.dedup.unavailable = True

    response = await client.post(PATH, data=BODY, headers=signed())

    assert response.status == 503
    assert "Retry-After" in response.headers
    assert ingest.publisher.published == []


async def test_once_the_dedup_store_is_back_the_retry_is_accepted(client, ingest):
    ingest.dedup.unavailable = True
    await client.post(PATH, data=BODY, headers=signed())
    ingest.dedup.unavailable = False

    retry = await client.post(PATH, data=BODY, headers=signed())

    assert await retry.json() == {"status": "accepted"}


async def test_a_confirm_that_fails_after_the_broker_took_the_message_still_answers_200(aiohttp_client):
    ingest = Ingest.build()
    ingest.dedup = DedupFailingAfterClaim("confirm")
    client = await aiohttp_client(ingest.app())

    response = await client.post(PATH, data=BODY, headers=signed())

    assert response.status == 200
    assert await response.json() == {"status": "accepted"}
    assert len(ingest.publisher.published) == 1


async def test_a_release_that_fails_after_a_broker_failure_still_answers_503(aiohttp_client):
    ingest = Ingest.build()
    ingest.dedup = DedupFailingAfterClaim("release")
    ingest.publisher.fail_next = 1
    client = await aiohttp_client(ingest.app())

    response = await client.post(PATH, data=BODY, headers=signed())

    assert response.status == 503
    assert ingest.dedup.state(DEDUP_KEY) == "pending"  # it expires by itself before Cashfree's retry

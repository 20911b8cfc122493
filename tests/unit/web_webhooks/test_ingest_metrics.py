"""Every answer is counted by outcome, and its latency observed, under closed label sets."""

from __future__ import annotations

from payments.web.webhooks import IngestOutcome
from tests.unit.web_webhooks._ingest import BODY, PATH, SENT_MS, Ingest, signed, signed_2023, with_cashfree


async def test_each_outcome_is_counted_once_per_delivery(client, ingest):
    await client.post(PATH, data=BODY, headers=signed())
    await client.post(PATH, data=BODY, headers=signed())
    await client.post(PATH, data=BODY, headers=signed(sent_ms=SENT_MS - 3_600_000))
    await client.post(PATH, data=b"[]", headers=signed_2023(b"[]"))
    ingest.dedup.unavailable = True
    await client.post(PATH, data=BODY, headers=signed())

    counted = {outcome.value: ingest.count(outcome.value) for outcome in IngestOutcome}

    assert counted == {
        "accepted": 1,
        "duplicate": 1,
        "invalid_signature": 1,
        "malformed": 1,
        "forbidden_source": 0,
        "too_large": 0,
        "unavailable": 1,
    }


async def test_refusals_before_the_signature_check_are_counted_too(aiohttp_client):
    ingest = Ingest.build(with_cashfree(webhook_allowed_sources=("10.0.0.0/8",)))
    client = await aiohttp_client(ingest.app())
    small = Ingest.build(with_cashfree(webhook_max_body_bytes=1024))
    small_client = await aiohttp_client(small.app())

    await client.post(PATH, data=BODY, headers=signed())
    await small_client.post(PATH, data=BODY, headers=signed())

    assert ingest.count("forbidden_source") == 1
    assert small.count("too_large") == 1


async def test_the_time_to_answer_is_observed_in_seconds_by_outcome(client, ingest):
    await client.post(PATH, data=BODY, headers=signed())

    labels = {"provider": "cashfree", "outcome": "accepted"}
    observed = ingest.registry.get_sample_value("payments_webhook_ingest_seconds_count", labels)
    total = ingest.registry.get_sample_value("payments_webhook_ingest_seconds_sum", labels)
    assert observed == 1
    assert 0 < total < 5

"""Deliveries that are not genuine, not well formed, too big or from the wrong place are refused, and
nothing of them is queued or remembered."""

from __future__ import annotations

import asyncio
import logging

import pytest

from payments.pipeline.settings import CashfreeSettings, Settings, WebSettings
from payments.web.webhooks import WebhookIngestConfig
from tests.unit.web_webhooks._ingest import (
    BODY,
    DEDUP_KEY,
    PATH,
    SENT_MS,
    Ingest,
    signed,
    signed_2023,
    with_cashfree,
)

STALE = SENT_MS - 301_000
FUTURE = SENT_MS + 301_000


def tampered() -> tuple[bytes, dict[str, str]]:
    return BODY.replace(b"170.00", b"1.00", 1), signed()


def wrong_secret() -> tuple[bytes, dict[str, str]]:
    return BODY, signed(secret="someone-elses-secret")


def stale() -> tuple[bytes, dict[str, str]]:
    return BODY, signed(sent_ms=STALE)


def future() -> tuple[bytes, dict[str, str]]:
    return BODY, signed(sent_ms=FUTURE)


def missing_signature() -> tuple[bytes, dict[str, str]]:
    headers = signed()
    del headers["x-webhook-signature"]
    return BODY, headers


UNAUTHENTIC = [
    pytest.param(tampered, "signature_mismatch", id="tampered body"),
    pytest.param(wrong_secret, "signature_mismatch", id="wrong secret"),
    pytest.param(stale, "stale_timestamp", id="stale timestamp"),
    pytest.param(future, "future_timestamp", id="future timestamp"),
    pytest.param(missing_signature, "missing_signature", id="missing signature"),
]


@pytest.mark.parametrize(("delivery", "reason"), UNAUTHENTIC)
async def test_an_unauthentic_delivery_is_answered_401_and_nothing_is_queued(
    client, ingest, delivery, reason
):
    body, headers = delivery()

    response = await client.post(PATH, data=body, headers=headers)

    assert response.status == 401
    assert (await response.json())["error"]["code"] == "invalid_webhook_signature"
    assert ingest.publisher.published == []
    assert ingest.dedup.state(DEDUP_KEY) is None


@pytest.mark.parametrize(("delivery", "reason"), UNAUTHENTIC)
async def test_a_refusal_is_logged_with_its_reason_and_never_the_signature_or_body(
    client, caplog, delivery, reason
):
    body, headers = delivery()

    with caplog.at_level(logging.INFO, logger="payments.web.webhooks"):
        await client.post(PATH, data=body, headers=headers)

    [record] = [record for record in caplog.records if record.name == "payments.web.webhooks"]
    assert record.reason == reason
    logged = record.getMessage() + repr(record.__dict__)
    assert headers.get("x-webhook-signature", "no signature") not in logged
    assert "order_1001" not in logged


async def test_a_genuinely_signed_body_that_is_not_json_is_answered_400_malformed(client, ingest):
    body = b"{not json"

    response = await client.post(PATH, data=body, headers=signed_2023(body))

    assert response.status == 400
    assert (await response.json())["error"]["code"] == "malformed_webhook"
    assert ingest.publisher.published == []


async def test_a_genuinely_signed_json_object_that_is_not_an_event_is_answered_400_malformed(client, ingest):
    body = b'{"data": {}}'

    response = await client.post(PATH, data=body, headers=signed_2023(body))

    assert response.status == 400
    assert (await response.json())["error"]["code"] == "malformed_webhook"
    assert ingest.publisher.published == []


async def test_a_body_over_the_webhook_limit_is_answered_413(aiohttp_client):
    ingest = Ingest.build(with_cashfree(webhook_max_body_bytes=1024))
    client = await aiohttp_client(ingest.app())
    body = b'{"type": "X", "data": {"pad": "' + b"a" * 1024 + b'"}}'

    response = await client.post(PATH, data=body, headers=signed_2023(body))

    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"
    assert ingest.publisher.published == []


async def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(aiohttp_client):
    ingest = Ingest.build(with_cashfree(webhook_max_body_bytes=1024))
    client = await aiohttp_client(ingest.app())

    async def chunks():
        for _ in range(8):
            yield b"x" * 512

    response = await client.post(PATH, data=chunks(), headers=signed_2023(b"x" * 4096))

    assert response.status == 413
    assert ingest.publisher.published == []


async def test_a_declared_content_length_over_the_limit_is_refused_before_the_body_is_sent(client, ingest):
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(
        f"POST {PATH} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        "Content-Length: 10000000\r\n\r\n{".encode("ascii")
    )
    await writer.drain()

    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()

    assert status_line.startswith(b"HTTP/1.1 413 ")
    assert ingest.count("too_large") == 1


async def test_the_webhook_limit_governs_the_route_not_the_apps_smaller_general_limit(aiohttp_client):
    settings = Settings(web=WebSettings(max_body_bytes=1024), cashfree=CashfreeSettings())
    ingest = Ingest.build(settings)
    client = await aiohttp_client(ingest.app())
    assert len(BODY) > 1024

    response = await client.post(PATH, data=BODY, headers=signed())

    assert response.status == 200


async def test_a_source_outside_the_allow_list_is_answered_403_before_the_body_is_read(aiohttp_client):
    ingest = Ingest.build(with_cashfree(webhook_allowed_sources=("52.66.25.127", "10.0.0.0/8")))
    client = await aiohttp_client(ingest.app())

    response = await client.post(PATH, data=BODY, headers=signed())

    assert response.status == 403
    assert (await response.json())["error"]["code"] == "forbidden_source"
    assert ingest.publisher.published == []


async def test_a_source_inside_the_allow_list_is_accepted(aiohttp_client):
    ingest = Ingest.build(with_cashfree(webhook_allowed_sources=("52.66.25.127", "127.0.0.0/8")))
    client = await aiohttp_client(ingest.app())

    response = await client.post(PATH, data=BODY, headers=signed())

    assert response.status == 200
    assert len(ingest.publisher.published) == 1


async def test_a_forwarded_for_header_cannot_claim_an_allowed_address(aiohttp_client):
    ingest = Ingest.build(with_cashfree(webhook_allowed_sources=("52.66.25.127",)))
    client = await aiohttp_client(ingest.app())
    headers = signed(extra={"X-Forwarded-For": "52.66.25.127", "Forwarded": "for=52.66.25.127"})

    response = await client.post(PATH, data=BODY, headers=headers)

    assert response.status == 403


async def test_behind_a_trusted_proxy_the_forwarded_sender_is_checked(aiohttp_client):
    # The test client connects from 127.0.0.1: that is the proxy here.
    settings = Settings(
        cashfree=CashfreeSettings(webhook_allowed_sources=("52.66.25.127",)),
        web=WebSettings(trusted_proxies=("127.0.0.1/32",)),
    )
    ingest = Ingest.build(settings)
    client = await aiohttp_client(ingest.app())

    from_cashfree = await client.post(
        PATH, data=BODY, headers=signed(extra={"X-Forwarded-For": "52.66.25.127"})
    )
    from_elsewhere = await client.post(
        PATH, data=BODY, headers=signed(extra={"X-Forwarded-For": "52.66.25.127, 203.0.113.9"})
    )

    assert from_cashfree.status == 200
    # The proxy saw 203.0.113.9; what that sender wrote further left is only its own claim.
    assert from_elsewhere.status == 403
    assert len(ingest.publisher.published) == 1


@pytest.mark.parametrize(
    ("remote", "admitted"),
    [
        ("52.66.25.127", True),
        ("10.1.2.3", True),
        ("::ffff:10.1.2.3", True),
        ("2001:db8::1", True),
        ("52.66.25.128", False),
        ("::ffff:52.66.25.128", False),
        ("2001:db9::1", False),
        (None, False),
        ("", False),
        ("not-an-address", False),
    ],
)
def test_the_allow_list_matches_addresses_and_networks_of_either_family(remote, admitted):
    config = WebhookIngestConfig.from_settings(
        CashfreeSettings(webhook_allowed_sources=("52.66.25.127", "10.0.0.0/8", "2001:db8::/32"))
    )

    assert config.admits(remote) is admitted


def test_an_empty_allow_list_admits_any_source():
    config = WebhookIngestConfig.from_settings(CashfreeSettings())

    assert config.admits("203.0.113.9")
    assert config.admits(None)

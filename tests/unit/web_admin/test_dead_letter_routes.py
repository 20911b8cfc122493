"""Listing dead-letter queues and re-driving their messages through the admin API."""

from __future__ import annotations

import pytest

from payments.domain.dead_letters import REDRIVE_COUNT_HEADER
from payments.domain.errors import DependencyUnavailable
from tests.unit.web_admin._admin import ADMIN, EMAILS, NOW, USER_AGENT, WEBHOOKS

DLQ = f"/api/v1/admin/dlq/{WEBHOOKS}"
REDRIVE = f"{DLQ}/redrive"


def trace_id_of(response) -> str:
    return response.headers["traceparent"].split("-")[1]


async def test_the_overview_shows_each_work_queues_dead_letter_depth(client, world):
    world.dead("m1")
    world.dead("m2")
    world.dead("e1", queue=EMAILS)

    response = await client.get("/api/v1/admin/dlq", headers=world.headers())

    assert response.status == 200
    assert await response.json() == {
        "queues": [{"queue": WEBHOOKS, "messages": 2}, {"queue": EMAILS, "messages": 1}]
    }


async def test_a_queue_is_listed_with_each_messages_error_and_history(client, world):
    world.dead("m1", body=b'{"customer_email": "asha@example.com", "order_id": "o-1"}')

    response = await client.get(DLQ, headers=world.headers())

    assert response.status == 200
    body = await response.json()
    assert body["queue"] == WEBHOOKS
    [letter] = body["deadLetters"]
    assert letter == {
        "messageId": "m1",
        "queue": WEBHOOKS,
        "routingKey": "webhook.cashfree.received",
        "bodyPreview": letter["bodyPreview"],
        "bodySize": 57,
        "headers": letter["headers"],
        "failures": 5,
        "firstFailedAt": "2026-11-26T10:00:00Z",
        "lastError": "RuntimeError: downstream is down",
        "reason": "exhausted",
        "deadLetteredBy": "runtime",
    }
    assert '"order_id": "o-1"' in letter["bodyPreview"]
    assert "asha@example.com" not in letter["bodyPreview"], "personal data is masked"
    assert letter["headers"]["x-dead-letter-reason"] == "exhausted"
    assert letter["headers"]["x-retry-count"] == "5"


async def test_listing_leaves_the_messages_in_place_and_is_not_audited(client, world):
    for n in range(3):
        world.dead(f"m{n}")

    first = await client.get(DLQ, headers=world.headers())
    again = await client.get(DLQ, headers=world.headers())

    ids = ["m0", "m1", "m2"]
    assert [letter["messageId"] for letter in (await first.json())["deadLetters"]] == ids
    assert [letter["messageId"] for letter in (await again.json())["deadLetters"]] == ids
    assert await world.dead_letters.count(WEBHOOKS) == 3
    assert world.audit() == []


async def test_the_limit_bounds_the_page_and_defaults_to_fifty(client, world):
    for n in range(60):
        world.dead(f"m{n}")

    default = await client.get(DLQ, headers=world.headers())
    three = await client.get(DLQ, params={"limit": "3"}, headers=world.headers())

    assert len((await default.json())["deadLetters"]) == 50
    assert [letter["messageId"] for letter in (await three.json())["deadLetters"]] == ["m0", "m1", "m2"]


@pytest.mark.parametrize("limit", ["0", "501", "-1", "1.5", "abc", "", "99999"])
async def test_a_limit_outside_one_to_five_hundred_is_refused(client, world, limit):
    response = await client.get(DLQ, params={"limit": limit}, headers=world.headers())

    assert response.status == 400
    assert (await response.json())["error"]["code"] == "limit_invalid"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/admin/dlq/no.such.queue", None),
        ("POST", "/api/v1/admin/dlq/no.such.queue/redrive", {"all": True}),
        ("GET", "/api/v1/admin/dlq/bad%20name", None),
    ],
)
async def test_an_unknown_queue_is_not_found(client, world, method, path, body):
    response = await client.request(method, path, json=body, headers=world.headers())

    assert response.status == 404
    assert (await response.json())["error"]["code"] in {"unknown_queue", "not_found"}
    assert world.audit() == []


async def test_redriving_one_message_moves_only_it_and_audits_who_did_it(client, world):
    for n in range(3):
        world.dead(f"m{n}")

    response = await client.post(REDRIVE, json={"messageId": "m1"}, headers=world.headers())

    assert response.status == 200
    assert await response.json() == {"redriven": 1}
    [moved] = world.dead_letters.work[WEBHOOKS]
    assert moved.message_id == "m1"
    assert moved.headers[REDRIVE_COUNT_HEADER] == 1
    assert [message.message_id for message in world.dead_letters.dead[WEBHOOKS]] == ["m0", "m2"]
    [entry] = world.audit()
    assert (entry.actor_id, entry.action, entry.resource_type, entry.resource_id) == (
        ADMIN,
        "admin.dlq.redrive",
        "queue",
        WEBHOOKS,
    )
    assert entry.before_state == {"deadLetters": 3, "target": "m1"}
    assert entry.after_state == {"redriven": 1}
    assert (entry.ip_address, entry.user_agent, entry.created_at) == ("127.0.0.1", USER_AGENT, NOW)
    assert entry.trace_id == trace_id_of(response)
    assert entry.request_id == response.headers["X-Request-Id"]


async def test_redriving_all_empties_the_queue_and_audits_the_count(client, world):
    for n in range(3):
        world.dead(f"m{n}")

    response = await client.post(REDRIVE, json={"all": True}, headers=world.headers())

    assert await response.json() == {"redriven": 3}
    assert [message.message_id for message in world.dead_letters.work[WEBHOOKS]] == ["m0", "m1", "m2"]
    assert await world.dead_letters.count(WEBHOOKS) == 0
    [entry] = world.audit()
    assert (entry.before_state, entry.after_state) == ({"deadLetters": 3, "target": "all"}, {"redriven": 3})


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"all": False},
        {"all": "true"},
        {"all": 1},
        {"all": True, "messageId": "m0"},
        {"messageId": ""},
        {"messageId": 7},
        {"messageId": "has space"},
        {"messageId": "x" * 256},
        {"messageId": "m0", "extra": 1},
        ["m0"],
    ],
)
async def test_a_redrive_must_name_exactly_one_target(client, world, body):
    world.dead("m0")

    response = await client.post(REDRIVE, json=body, headers=world.headers())

    assert response.status == 400
    assert (await response.json())["error"]["code"] in {"redrive_target_invalid", "validation_failed"}
    assert world.dead_letters.redrive_calls == []
    assert world.audit() == []


async def test_a_redrive_body_that_is_not_json_is_refused(client, world):
    response = await client.post(REDRIVE, data=b"{all: true", headers=world.headers())

    assert response.status == 400
    assert (await response.json())["error"]["code"] == "malformed_json"


async def test_redriving_a_message_that_is_not_there_is_not_found_and_not_audited(client, world):
    world.dead("m0")

    response = await client.post(REDRIVE, json={"messageId": "gone"}, headers=world.headers())

    assert response.status == 404
    assert (await response.json())["error"]["code"] == "dead_letter_not_found"
    assert await world.dead_letters.count(WEBHOOKS) == 1
    assert world.audit() == []


async def test_a_redrive_the_broker_stops_part_way_answers_503_and_audits_what_moved(client, world):
    for n in range(3):
        world.dead(f"m{n}")
    world.dead_letters.accepts = 1

    response = await client.post(REDRIVE, json={"all": True}, headers=world.headers())

    assert response.status == 503
    assert (await response.json())["error"]["code"] == "redrive_interrupted"
    assert [message.message_id for message in world.dead_letters.dead[WEBHOOKS]] == ["m1", "m2"]
    [entry] = world.audit()
    assert entry.after_state == {"redriven": 1, "interrupted": True}


async def test_a_redrive_the_broker_refuses_outright_moves_nothing_and_is_not_audited(client, world):
    world.dead("m0")
    world.dead_letters.accepts = 0

    response = await client.post(REDRIVE, json={"messageId": "m0"}, headers=world.headers())

    assert response.status == 503
    assert await world.dead_letters.count(WEBHOOKS) == 1
    assert world.audit() == []


async def test_a_redrive_whose_audit_row_cannot_be_written_answers_503_and_is_logged(client, world, caplog):
    world.dead("m0")
    world.database_error = DependencyUnavailable("PostgreSQL is down")

    response = await client.post(REDRIVE, json={"all": True}, headers=world.headers())

    assert response.status == 503
    assert "the audit row of admin.dlq.redrive" in caplog.text
    assert world.dead_letters.work[WEBHOOKS], "the move itself happened, and the log line says so"

"""What the client does with answers the sandbox never gives: a scripted HTTP peer on loopback.

Each test lists the answers the peer gives, in order, and checks what the client made of them and
what it sent. Everything the sandbox can do (retries, timeouts, 401, 409...) is tested against the
sandbox itself in tests/integration/cashfree.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from aiohttp import web

from payments.bridges.cashfree.client import CashfreeClient, SentRequest, idempotency_key
from payments.bridges.cashfree.errors import IdempotencyKeyReused, UnreadableResponse
from payments.domain.errors import DependencyUnavailable, GatewayRejected, ValidationFailed

SECRET = "cfsk_ma_test_d5e0f6b7a9c84f2e"
START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2025, 1, 31, tzinfo=UTC)


@dataclass
class Peer:
    """Answers each request with the next scripted ``(status, body)`` and remembers what it got."""

    answers: list[tuple[int, bytes]]
    received: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.received.append((request.method, request.raw_path, headers, await request.read()))
        status, body = self.answers.pop(0)
        return web.Response(status=status, body=body, content_type="application/json")


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(aiohttp_server, sleeps) -> Callable[..., object]:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def make(answers: list[tuple[int, bytes]], **options) -> tuple[CashfreeClient, Peer]:
        peer = Peer(list(answers))
        app = web.Application()
        app.router.add_route("*", "/pg/{tail:.*}", peer.handle)
        server = await aiohttp_server(app)
        settings = {
            "base_url": str(server.make_url("/pg")),
            "app_id": "app_1",
            "secret_key": SECRET,
            "sleep": sleep,
        }
        return CashfreeClient(**(settings | options)), peer

    return make


def page(data: list[dict], cursor: str | None) -> bytes:
    return json.dumps({"cursor": cursor, "limit": 1, "data": data}).encode()


async def test_a_success_answer_that_is_not_json_is_unreadable_and_chains_nothing(make_client):
    client, _ = await make_client([(200, b"<html>gateway</html>")])

    async with client:
        with pytest.raises(UnreadableResponse, match="not JSON") as caught:
            await client.get_order("order_1")

    assert caught.value.__context__ is None
    assert caught.value.__cause__ is None


async def test_a_success_answer_of_the_wrong_shape_is_unreadable(make_client):
    client, _ = await make_client([(200, b'{"cf_payment_id": "1"}')])

    async with client:
        with pytest.raises(UnreadableResponse, match="not a list"):
            await client.list_payments("order_1")


async def test_settlements_in_the_spec_shape_of_one_entity_are_read_as_one_page(make_client):
    client, peer = await make_client(
        [(200, b'{"cf_settlement_id": "55", "order_id": "o1", "settlement_amount": 9.80}')]
    )

    async with client:
        settlements = await client.settlements(START, END)

    assert [s.cf_settlement_id for s in settlements] == ["55"]
    assert len(peer.received) == 1


async def test_settlements_as_a_bare_list_are_read_too(make_client):
    client, _ = await make_client([(200, b'[{"cf_settlement_id": 1}, {"cf_settlement_id": 2}]')])

    async with client:
        settlements = await client.settlements(START, END)

    assert [s.cf_settlement_id for s in settlements] == ["1", "2"]


async def test_pages_are_followed_by_cursor_until_it_is_null(make_client):
    answers = [(200, page([{"event_id": "e1"}], "c1")), (200, page([{"event_id": "e2"}], None))]
    client, peer = await make_client(answers)

    async with client:
        rows = await client.pg_reconciliation(START, END, page_size=1)

    assert [row.event_id for row in rows] == ["e1", "e2"]
    bodies = [json.loads(body) for _, _, _, body in peer.received]
    assert [b["pagination"] for b in bodies] == [{"limit": 1}, {"limit": 1, "cursor": "c1"}]
    assert bodies[0]["filters"] == {"start_date": "2025-01-01T00:00:00Z", "end_date": "2025-01-31T00:00:00Z"}


async def test_a_cursor_that_comes_back_again_stops_the_paging_with_an_error(make_client):
    answers = [(200, page([{"event_id": "e1"}], "c1")), (200, page([{"event_id": "e2"}], "c1"))]
    client, _ = await make_client(answers)

    async with client:
        with pytest.raises(UnreadableResponse, match="repeated a pagination cursor"):
            await client.settlement_reconciliation(START, END)


async def test_a_rejection_is_not_retried(make_client, sleeps):
    client, peer = await make_client(
        [(400, b'{"code": "order_amount_invalid", "type": "invalid_request_error"}')]
    )

    async with client:
        with pytest.raises(GatewayRejected) as caught:
            await client.get_order("order_1")

    assert caught.value.gateway_code == "order_amount_invalid"
    assert len(peer.received) == 1
    assert sleeps == []


async def test_a_400_idempotency_key_mismatch_is_the_reused_key_error(make_client):
    client, peer = await make_client(
        [(400, b'{"code": "idempotency_key_mismatch", "type": "invalid_request_error"}')]
    )

    async with client:
        with pytest.raises(IdempotencyKeyReused):
            await client.terminate_order("order_1")

    assert len(peer.received) == 1


async def test_a_server_that_echoes_the_secret_does_not_get_it_into_our_errors(make_client):
    echo = json.dumps({"code": "request_failed", "message": f"bad secret {SECRET}", "help": SECRET}).encode()
    client, _ = await make_client([(400, echo)])

    async with client:
        with pytest.raises(GatewayRejected) as caught:
            await client.get_order("order_1")

    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)
    assert "bad secret ***" in str(caught.value)


async def test_the_request_id_comes_from_the_callable_and_is_the_same_on_every_retry(make_client):
    answers = [(503, b"{}"), (200, b'{"order_id": "order_1"}')]
    client, peer = await make_client(answers, request_id=lambda: "trace-req-1")

    async with client:
        await client.get_order("order_1")

    assert [headers["x-request-id"] for _, _, headers, _ in peer.received] == ["trace-req-1", "trace-req-1"]


async def test_without_a_request_id_callable_each_call_gets_a_fresh_id(make_client):
    client, peer = await make_client([(200, b'{"order_id": "o"}'), (200, b'{"order_id": "o"}')])

    async with client:
        await client.get_order("order_1")
        await client.get_order("order_1")

    first, second = (headers["x-request-id"] for _, _, headers, _ in peer.received)
    assert len(first) == len(second) == 32
    assert first != second


async def test_ids_are_escaped_so_they_cannot_add_a_path_level(make_client):
    client, peer = await make_client([(200, b'{"refund_id": "r"}')])

    async with client:
        await client.get_refund("order_1", "../../settlements")

    assert peer.received[0][1] == "/pg/orders/order_1/refunds/..%2F..%2Fsettlements"


async def test_recorded_requests_mask_the_secret(make_client):
    sent: list[SentRequest] = []
    client, peer = await make_client([(200, b'{"order_id": "order_1"}')], on_request=sent.append)

    async with client:
        await client.terminate_order("order_1")

    assert peer.received[0][2]["x-client-secret"] == SECRET
    assert sent[0].headers["x-client-secret"] == "***"
    assert sent[0].headers["x-idempotency-key"] == idempotency_key("terminate:order_1")
    assert sent[0].body == b'{"order_status":"TERMINATED"}'
    assert (sent[0].method, sent[0].path_template, sent[0].attempt) == ("PATCH", "/orders/{order_id}", 1)


async def test_a_peer_that_refuses_connections_is_unavailable_after_every_try(sleeps):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = CashfreeClient(
        base_url=f"http://127.0.0.1:{port}/pg",
        app_id="a",
        secret_key=SECRET,
        max_retries=2,
        sleep=_recorder(sleeps),
    )

    async with client:
        with pytest.raises(DependencyUnavailable, match=r"did not answer GET /orders/\{order_id\}") as caught:
            await client.get_order("order_1")

    assert "try 3 of 3" in str(caught.value)
    assert len(sleeps) == 2
    assert caught.value.__context__ is None


async def test_a_client_that_is_not_open_refuses_to_call():
    client = CashfreeClient(base_url="http://127.0.0.1:1/pg", app_id="a", secret_key=SECRET)

    with pytest.raises(RuntimeError, match="not open"):
        await client.get_order("order_1")


async def test_report_dates_without_a_timezone_are_refused(make_client):
    client, peer = await make_client([])

    async with client:
        with pytest.raises(ValidationFailed, match="timezone"):
            await client.settlements(datetime(2025, 1, 1), END)

    assert peer.received == []


def test_the_idempotency_key_is_a_uuid_fixed_by_the_operation():
    assert idempotency_key("order:order_1") == idempotency_key("order:order_1")
    assert idempotency_key("order:order_1") != idempotency_key("order:order_2")
    assert len(idempotency_key("refund:o:r")) == 36


def test_the_client_repr_shows_where_it_points_but_not_the_secret():
    client = CashfreeClient(base_url="http://127.0.0.1:1/pg/", app_id="app_1", secret_key=SECRET)

    assert repr(client) == "CashfreeClient(base_url='http://127.0.0.1:1/pg', app_id='app_1')"


def _recorder(sleeps: list[float]):
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return sleep

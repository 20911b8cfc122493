"""Request/reply on the real broker: direct reply-to, timeouts, and commands that cannot be queued."""

from __future__ import annotations

import pytest

from payments.bridges.rabbitmq.publisher import UnroutableMessage
from payments.bridges.rabbitmq.rpc import RpcClient, RpcReplier
from payments.pipeline.topology import Exchange
from tests.integration.rabbitmq_support import unique


@pytest.fixture
async def rpc(connection):
    client = RpcClient(connection, publish_timeout=5)
    await client.start()
    yield client
    await client.close()


async def serve_with(connection, routing_key: str, answer):
    channel = await connection.channel()
    queue = await channel.declare_queue(unique("test.rpc"), exclusive=True)
    await queue.bind(Exchange.COMMAND.value, routing_key)
    replier = RpcReplier(await connection.channel())

    async def on_request(message):
        async with message.process():
            body = answer(message)
            if body is not None:
                await replier.reply(
                    reply_to=message.reply_to, correlation_id=message.correlation_id, body=body
                )

    await queue.consume(on_request)
    return queue


async def test_a_request_gets_the_reply_meant_for_it(connection, rpc):
    routing_key = unique("command.test")
    seen = []

    def answer(message):
        seen.append((message.message_id, message.headers.get("traceparent"), message.delivery_mode))
        return b"pong:" + message.body

    await serve_with(connection, routing_key, answer)

    reply = await rpc.request(
        exchange=Exchange.COMMAND.value,
        routing_key=routing_key,
        body=b"ping",
        message_id="m-1",
        headers={"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"},
        wait_seconds=10,
    )

    assert reply == b"pong:ping"
    assert seen[0][0] == "m-1"
    assert seen[0][1].startswith("00-aaaa")
    assert int(seen[0][2]) == 2, "commands are persistent"


async def test_no_reply_in_time_is_none_and_the_command_stays_delivered(connection, rpc):
    routing_key = unique("command.test")
    received = []
    await serve_with(connection, routing_key, lambda message: received.append(message.message_id))

    reply = await rpc.request(
        exchange=Exchange.COMMAND.value,
        routing_key=routing_key,
        body=b"{}",
        message_id="m-2",
        wait_seconds=0.3,
    )

    assert reply is None
    assert received == ["m-2"]


async def test_a_command_to_an_exchange_that_does_not_exist_is_refused_at_once(rpc):
    # Every exchange of ours is bound to the events.log stream, so a missing queue is not "unroutable";
    # a missing exchange (topology never declared) is, and the caller must hear of it at once.
    with pytest.raises(UnroutableMessage):
        await rpc.request(
            exchange="no-such.exchange",
            routing_key="command.test",
            body=b"{}",
            message_id="m-3",
            wait_seconds=5,
        )

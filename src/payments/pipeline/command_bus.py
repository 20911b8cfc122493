"""The web layer's ``CommandBus`` over RabbitMQ request/reply (``RpcClient``)."""

from __future__ import annotations

import json

from payments.bridges.rabbitmq.rpc import RpcClient
from payments.domain.errors import InvalidPayload
from payments.pipeline.topology import exchange_for
from payments.pipeline.tracing import current_trace
from payments.web.commands import CommandReply


class RpcCommandBus:
    def __init__(self, rpc: RpcClient) -> None:
        self._rpc = rpc

    async def request(
        self, routing_key: str, body: bytes, *, message_id: str, wait_seconds: float
    ) -> CommandReply | None:
        trace = current_trace()
        reply = await self._rpc.request(
            exchange=exchange_for(routing_key).value,
            routing_key=routing_key,
            body=body,
            message_id=message_id,
            headers=dict(trace.to_message_headers()) if trace else None,
            wait_seconds=wait_seconds,
        )
        return None if reply is None else parse_reply(reply)


def parse_reply(body: bytes) -> CommandReply:
    """An agent's reply (``AgentContext.answer``) as the web layer reads it."""
    try:
        document = json.loads(body)
        return CommandReply(result=document.get("result") or {}, error=document.get("error"))
    except (ValueError, AttributeError):
        raise InvalidPayload("a command reply was not the JSON an agent sends") from None

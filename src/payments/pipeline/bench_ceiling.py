"""The ceiling of ``payments bench``: the least a webhook endpoint can do on this stack::

    python -m payments.pipeline.bench_ceiling --port PORT [--host 127.0.0.1]  < amqp-url

A bare aiohttp handler reads the body, publishes it to ``webhook.exchange`` with ingest's routing key
and answers 200: nothing else (no signature, no Redis, no middlewares, no access log). It publishes the
way ``payments web`` does, so the comparison is fair: one robust aio-pika connection, one channel with
publisher confirms, the same ``RabbitPublisher`` (persistent, mandatory, waiting for the confirm).
Whatever ingest spends beyond this is the price of its own checks.

The first line of stdin is the AMQP URL (it may hold a password, which argv would show to ``ps``).
``GET /health`` answers 200 once it listens; SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from typing import Final

import uvloop
from aiohttp import web

from payments.bridges.rabbitmq.connection import open_connection
from payments.bridges.rabbitmq.publisher import RabbitPublisher
from payments.pipeline.topology import Exchange
from payments.web.webhooks import RECEIVED_ROUTING_KEY

PUBLISHER_KEY: Final = web.AppKey("publisher", RabbitPublisher)
#: The same bound ``payments web`` puts on one publish by default (RABBITMQ_PUBLISH_TIMEOUT_SECONDS).
PUBLISH_TIMEOUT_SECONDS: Final = 10.0


async def accept(request: web.Request) -> web.Response:
    """Publish the raw body with a confirm, then 200."""
    body = await request.read()
    await request.app[PUBLISHER_KEY].publish(
        exchange=Exchange.WEBHOOK.value,
        routing_key=RECEIVED_ROUTING_KEY,
        body=body,
        message_id=request.headers.get("x-idempotency-key", ""),
    )
    return web.Response(status=200)


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def ceiling_app(publisher: RabbitPublisher) -> web.Application:
    app = web.Application()
    app[PUBLISHER_KEY] = publisher
    app.router.add_post("/", accept)
    app.router.add_get("/health", health)
    return app


async def serve(amqp_url: str, *, host: str, port: int) -> None:
    """Serve the ceiling until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with open_connection(amqp_url, name="bench-ceiling") as connection:
        channel = await connection.channel(publisher_confirms=True)
        publisher = RabbitPublisher(channel, timeout=PUBLISH_TIMEOUT_SECONDS)
        runner = web.AppRunner(ceiling_app(publisher), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            await stop.wait()
        finally:
            await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m payments.pipeline.bench_ceiling",
        description="A bare handler that only publishes to RabbitMQ; the AMQP URL is read from stdin.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    arguments = parser.parse_args(argv)
    amqp_url = sys.stdin.readline().strip()
    if not amqp_url:
        print("bench_ceiling: the AMQP URL must be the first line of stdin", file=sys.stderr)
        return 2
    # The same event loop as `payments web`, so the comparison is of the handlers, not the loops.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(amqp_url, host=arguments.host, port=arguments.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The composition root: the only place that reads the environment and opens connections.

Each process (``payments web``, ``payments worker``, the one-shot commands) starts here: settings are
read once, logging is configured, then the pool, Redis client and robust AMQP connection are opened
inside the running loop on one ``AsyncExitStack`` and handed down as typed objects. Closing the stack
closes them in reverse order.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from aio_pika.abc import AbstractRobustConnection
from aiohttp import web
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from payments.agents.alerts import alerts as alerts_flow
from payments.agents.email import emails as email_flow
from payments.agents.fraud import fraud as fraud_flow
from payments.agents.invoices import invoices as invoices_flow
from payments.agents.monitoring import monitoring as monitoring_flow
from payments.agents.payments import payment_service
from payments.agents.payments import payments as payments_flow
from payments.agents.reconciliation import reconciliation as reconciliation_flow
from payments.agents.reconciliation_runs import reconciliation_runs as reconciliation_runs_flow
from payments.agents.reconciliation_runs import reconciliation_service
from payments.agents.refunds import refund_service
from payments.agents.refunds import refunds as refunds_flow
from payments.agents.webhooks import webhooks as webhooks_flow
from payments.bridges.cashfree.client import CashfreeClient
from payments.bridges.cashfree.gateway import CashfreeGateway
from payments.bridges.cashfree.intake import CashfreeWebhooks
from payments.bridges.cashfree.sandbox.app import create_sandbox_app
from payments.bridges.cashfree.sandbox.config import SandboxConfig
from payments.bridges.cashfree.signature import WebhookVerifier, wall_clock_ms
from payments.bridges.documents.invoice_pdf import InvoicePdf
from payments.bridges.postgres.audit import PgAuditLog
from payments.bridges.postgres.migrate import ensure_database, migrate
from payments.bridges.postgres.outbox import PgOutboxRelayStore
from payments.bridges.postgres.pii import PiiCipher
from payments.bridges.postgres.pool import check_database, open_pool
from payments.bridges.postgres.reencrypt import Reencrypted, reencrypt
from payments.bridges.postgres.unit_of_work import pg_unit_of_work
from payments.bridges.rabbitmq.alert_feed import RabbitAlertFeed
from payments.bridges.rabbitmq.connection import open_connection
from payments.bridges.rabbitmq.consumer import QueueConsumer
from payments.bridges.rabbitmq.dead_letters import RabbitDeadLetters
from payments.bridges.rabbitmq.event_log import EventLogReader
from payments.bridges.rabbitmq.inspection import queue_depths
from payments.bridges.rabbitmq.publisher import RabbitPublisher
from payments.bridges.rabbitmq.queue_gauge import RabbitQueueGauge
from payments.bridges.rabbitmq.rpc import RpcClient, RpcReplier
from payments.bridges.rabbitmq.topology import declare_topology
from payments.bridges.redis.client import check_redis, open_redis
from payments.bridges.redis.idempotency import RedisIdempotencyStore
from payments.bridges.redis.lease import RedisLease
from payments.bridges.redis.locks import RedisPaymentLocks
from payments.bridges.redis.rate_limits import redis_rate_limiter
from payments.bridges.redis.tables import RedisWindowStore
from payments.bridges.redis.webhook_dedup import RedisWebhookDedup
from payments.bridges.smtp.sender import SmtpSender
from payments.bridges.templates.renderer import JinjaEmailRenderer
from payments.domain.audit.model import ChainVerification
from payments.domain.clock import SystemClock
from payments.domain.fraud.screen import Digest
from payments.domain.gateway import PaymentGateway
from payments.domain.locks import PaymentLocks
from payments.domain.reconciliation.model import ReconciliationRun, StoredItem
from payments.domain.reconciliation.service import (
    TRIGGER_CLI,
    RangeInvalid,
    ReconciliationFailed,
    RunInProgress,
    failure_text,
)
from payments.domain.unit_of_work import UnitOfWork
from payments.domain.webhook.dedup import PENDING_TTL_SECONDS
from payments.domain.webhook.service import reprocess
from payments.pipeline import metrics as metrics_module
from payments.pipeline.app import App, Worker
from payments.pipeline.blueprint import Blueprint
from payments.pipeline.command_bus import RpcCommandBus
from payments.pipeline.context import AgentContext, UnitOfWorkFactory
from payments.pipeline.logging import configure_logging, register_secret
from payments.pipeline.metrics import Metrics
from payments.pipeline.outbox_relay import OutboxRelay
from payments.pipeline.publishing import Publisher, TracedPublisher
from payments.pipeline.replay import ReplayReport, replay, replay_selection
from payments.pipeline.settings import Settings, load_settings
from payments.pipeline.topology import WORK_QUEUES, QueueSpec
from payments.pipeline.tracing import TraceContext, current_trace
from payments.web.access_log import AccessLogger
from payments.web.admin import ReprocessWebhook, admin_routes
from payments.web.admin_alerts import admin_alert_routes
from payments.web.admin_reconciliation import admin_reconciliation_routes
from payments.web.alertmanager import IntakeOptions, alertmanager_routes
from payments.web.app import WebDependencies, create_app
from payments.web.health import HealthProbes
from payments.web.openapi import setup_openapi
from payments.web.payments import payment_routes
from payments.web.rate_limits import configured_limits, setup_rate_limits
from payments.web.refunds import refund_routes
from payments.web.webhooks import WebhookIngestConfig, webhook_routes

logger = logging.getLogger(__name__)


def configure(environ: Mapping[str, str]) -> Settings:
    """Read and validate the settings, then set up logging so that no secret can reach a log line."""
    settings = load_settings(environ)
    register_secrets(settings)
    configure_logging(
        level=settings.app.log_level, service=settings.app.service_name, environment=settings.app.env.value
    )
    return settings


def register_secrets(settings: Settings) -> None:
    """Mask every secret setting's value in every log line from now on."""
    for secret in _secret_values(settings):
        register_secret(secret)


def _secret_values(settings: Settings) -> Iterable[str]:
    yield settings.cashfree.secret_key.get_secret_value()
    yield settings.security.jwt_secret.get_secret_value()
    yield settings.security.payment_encryption_key.get_secret_value()
    if settings.cashfree.webhook_secret is not None:
        yield settings.cashfree.webhook_secret.get_secret_value()
    if settings.security.payment_encryption_previous_keys is not None:
        yield from (
            key.strip()
            for key in settings.security.payment_encryption_previous_keys.get_secret_value().split(",")
        )
    if settings.security.alertmanager_token is not None:
        yield settings.security.alertmanager_token.get_secret_value()
    # For URLs only the password is masked (register_secret keeps the rest readable).
    yield settings.smtp.url.get_secret_value()
    yield settings.postgres.url.get_secret_value()
    yield settings.rabbitmq.url.get_secret_value()
    yield settings.redis.url.get_secret_value()


def blueprints() -> tuple[Blueprint, ...]:
    """Every flow the product runs; each capability adds its blueprint here."""
    return (
        payments_flow,
        webhooks_flow,
        refunds_flow,
        fraud_flow,
        alerts_flow,
        invoices_flow,
        email_flow,
        reconciliation_flow,
        reconciliation_runs_flow,
        monitoring_flow,
    )


@dataclass(frozen=True)
class Resources:
    """The live connections of one process."""

    settings: Settings
    registry: CollectorRegistry
    metrics: Metrics
    pool: asyncpg.Pool
    redis: Redis
    amqp: AbstractRobustConnection
    publisher: Publisher
    cipher: PiiCipher
    gateway: PaymentGateway
    locks: PaymentLocks
    rpc: RpcClient
    replies: RpcReplier


@asynccontextmanager
async def open_resources(settings: Settings, *, process: str) -> AsyncIterator[Resources]:
    """Open the database pool, Redis and RabbitMQ for one process; close them all on exit."""
    async with AsyncExitStack() as stack:
        pool = await stack.enter_async_context(
            open_pool(
                settings.postgres.url.get_secret_value(),
                min_size=settings.postgres.pool_min_size,
                max_size=settings.postgres.pool_max_size,
                command_timeout=settings.postgres.command_timeout_seconds,
            )
        )
        redis = await stack.enter_async_context(open_redis(settings.redis.url.get_secret_value()))
        amqp = await stack.enter_async_context(
            open_connection(
                settings.rabbitmq.url.get_secret_value(), name=f"{settings.app.service_name}-{process}"
            )
        )
        channel = await amqp.channel(publisher_confirms=True)
        stack.push_async_callback(channel.close)
        rpc = RpcClient(amqp, publish_timeout=settings.rabbitmq.publish_timeout_seconds)
        await rpc.start()
        stack.push_async_callback(rpc.close)
        cashfree = await stack.enter_async_context(cashfree_client(settings))
        registry = CollectorRegistry()
        yield Resources(
            settings=settings,
            registry=registry,
            metrics=metrics_module.create(registry),
            pool=pool,
            redis=redis,
            amqp=amqp,
            publisher=TracedPublisher(
                RabbitPublisher(channel, timeout=settings.rabbitmq.publish_timeout_seconds)
            ),
            cipher=personal_data_cipher(settings),
            gateway=CashfreeGateway(cashfree),
            locks=RedisPaymentLocks(
                redis,
                ttl_seconds=settings.payments.lock_ttl_seconds,
                wait_seconds=settings.payments.lock_wait_seconds,
            ),
            rpc=rpc,
            replies=RpcReplier(channel),
        )


def cashfree_client(settings: Settings) -> CashfreeClient:
    """The Cashfree client (the local sandbox by default); requests carry our trace id."""
    cashfree = settings.cashfree
    return CashfreeClient(
        base_url=cashfree.base_url,
        app_id=cashfree.app_id,
        secret_key=cashfree.secret_key.get_secret_value(),
        api_version=cashfree.api_version,
        timeout_seconds=cashfree.timeout_seconds,
        max_retries=cashfree.max_retries,
        request_id=_current_trace_id,
    )


def _current_trace_id() -> str:
    """Cashfree's ``x-request-id`` is our trace id: the one id that finds a call in every log line of
    the request, webhook or agent that made it."""
    trace = current_trace()
    return trace.trace_id if trace is not None else TraceContext.new().trace_id


def personal_data_cipher(settings: Settings) -> PiiCipher:
    """Seals under ``PAYMENT_ENCRYPTION_KEY``; also opens rows sealed under the previous keys."""
    current, previous = settings.security.encryption_keys()
    return PiiCipher(current, previous_keys=previous)


def unit_of_work_factory(resources: Resources) -> UnitOfWorkFactory:
    """Transactions whose outbox events carry the trace of the code that opened them."""

    def open_unit_of_work() -> AbstractAsyncContextManager[UnitOfWork]:
        trace = current_trace()
        headers = trace.to_message_headers() if trace else {}
        return pg_unit_of_work(
            resources.pool,
            headers=headers,
            cipher=resources.cipher,
            invoice_directory=resources.settings.invoices.directory,
        )

    return open_unit_of_work


def agent_context(resources: Resources, *, mailer: SmtpSender | None = None) -> AgentContext:
    """The context every agent gets; ``mailer`` when the caller closes it (``run_worker``), else a new one."""
    return AgentContext(
        unit_of_work=unit_of_work_factory(resources),
        clock=SystemClock(),
        metrics=resources.metrics,
        settings=resources.settings,
        gateway=resources.gateway,
        webhooks=gateway_webhooks(resources.settings),
        locks=resources.locks,
        replies=resources.replies,
        tables=RedisWindowStore(resources.redis),
        digest=personal_data_digest(resources.cipher),
        queues=RabbitQueueGauge(resources.amqp),
        mailer=mailer or smtp_sender(resources.settings),
        email_renderer=JinjaEmailRenderer(),
        invoice_renderer=InvoicePdf(),
    )


def smtp_sender(settings: Settings) -> SmtpSender:
    """The mail sender of ``SMTP_URL``; it keeps idle connections, which ``close`` ends."""
    return SmtpSender.from_url(
        settings.smtp.url.get_secret_value(), timeout=settings.email.smtp_timeout_seconds
    )


def personal_data_digest(cipher: PiiCipher) -> Digest:
    """Keyed digests of emails and phones (the cipher's look-up hash, as hex) for the fraud tables."""

    def digest(value: str, *, kind: str) -> str:
        return cipher.lookup_hash(value, kind=kind).hex()

    return digest


def gateway_webhooks(settings: Settings) -> CashfreeWebhooks:
    """Cashfree's webhooks, verified with the client secret (and the extra key during a rotation)."""
    secrets = [settings.cashfree.secret_key.get_secret_value()]
    if settings.cashfree.webhook_secret is not None:
        secrets.append(settings.cashfree.webhook_secret.get_secret_value())
    verifier = WebhookVerifier(
        secrets, tolerance_seconds=settings.cashfree.webhook_tolerance_seconds, now_ms=wall_clock_ms
    )
    return CashfreeWebhooks(verifier)


def build_worker(resources: Resources, app: App, *, context: AgentContext | None = None) -> Worker:
    settings = resources.settings
    return Worker(
        app=app,
        context=context or agent_context(resources),
        consumers=lambda queue: QueueConsumer(resources.amqp, queue, prefetch=settings.rabbitmq.prefetch),
        publisher=resources.publisher,
        lease=RedisLease(resources.redis),
        relay=OutboxRelay(
            PgOutboxRelayStore(resources.pool),
            resources.publisher,
            batch_size=settings.worker.outbox_batch_size,
            poll_seconds=settings.worker.outbox_poll_seconds,
            metrics=resources.metrics,
        ),
        metrics=resources.metrics,
        owner=f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}",
        delay_scale=settings.rabbitmq.retry_delay_scale,
        grace_seconds=settings.app.shutdown_grace_seconds,
    )


async def run_worker(
    settings: Settings, *, agents: Iterable[str] | None = None, app: App | None = None
) -> None:
    """``payments worker``: run agents, timers, crontabs and the outbox relay until SIGTERM/SIGINT."""
    selected = (app or App(blueprints())).select(agents)
    stop = _stop_on_signals()
    async with open_resources(settings, process="worker") as resources:
        await _declare(resources, [spec.queue for spec in selected.agents])
        mailer = smtp_sender(settings)
        worker = build_worker(resources, selected, context=agent_context(resources, mailer=mailer))
        async with _serve_metrics(resources):
            logger.info("worker started: %d agents", len(selected.agents))
            try:
                await worker.run(stop)
            finally:
                await mailer.close()  # QUIT on the idle SMTP connections
    logger.info("worker stopped")


async def _declare(resources: Resources, extra: Sequence[QueueSpec] = ()) -> None:
    """Declare the topology (idempotent): harmless after `payments topology`, and it means no process
    can publish a command that no queue would receive, whatever order things were started in."""
    queues = {spec.name: spec for spec in (*WORK_QUEUES, *extra)}
    channel = await resources.amqp.channel()
    await declare_topology(channel, list(queues.values()))
    await channel.close()


async def run_web(settings: Settings) -> None:
    """``payments web``: the HTTP API until SIGTERM/SIGINT."""
    stop = _stop_on_signals()
    async with open_resources(settings, process="web") as resources:
        await _declare(resources)
        async with _serving(
            web_app(resources),
            settings.web.host,
            settings.web.port,
            grace_seconds=settings.app.shutdown_grace_seconds,
        ):
            logger.info("web listening on http://%s:%d", settings.web.host, settings.web.port)
            await stop.wait()
    logger.info("web stopped")


def web_app(resources: Resources) -> web.Application:
    """The HTTP API: health and metrics, payments and refunds over request/reply and PostgreSQL,
    webhook ingest, the admin routes, and the admin page with its live alert stream."""
    settings = resources.settings
    context = agent_context(resources)
    payments, commands = payment_service(context), RpcCommandBus(resources.rpc)
    idempotency = RedisIdempotencyStore(
        resources.redis,
        completed_ttl_seconds=settings.payments.idempotency_ttl_seconds,
        # An in-flight key must outlive the longest wait for a reply, or a retry could slip in.
        in_flight_ttl_seconds=max(60.0, settings.web.command_reply_timeout_seconds + 30),
    )
    payments_api = payment_routes(
        service=payments, commands=commands, idempotency=idempotency, unit_of_work=context.unit_of_work
    )
    refunds_api = refund_routes(
        service=refund_service(context),
        payments=payments,
        commands=commands,
        idempotency=idempotency,
        unit_of_work=context.unit_of_work,
    )
    webhooks_api = webhook_routes(
        webhooks=context.webhooks,
        dedup=RedisWebhookDedup(
            resources.redis,
            pending_ttl_seconds=PENDING_TTL_SECONDS,
            confirmed_ttl_seconds=settings.cashfree.webhook_dedup_ttl_seconds,
        ),
        publisher=resources.publisher,
        config=WebhookIngestConfig.from_settings(settings.cashfree),
    )
    admin_api = admin_routes(
        dead_letters=RabbitDeadLetters(
            resources.amqp, queues=WORK_QUEUES, publish_timeout=settings.rabbitmq.publish_timeout_seconds
        ),
        unit_of_work=context.unit_of_work,
        reprocess_webhook=partial_reprocess(context),
        clock=context.clock,
    )
    deps = WebDependencies(
        settings=settings, metrics=resources.metrics, registry=resources.registry, probes=probes(resources)
    )
    # One broker subscription per web process, fanned out to every open admin alert stream.
    alert_feed = RabbitAlertFeed(resources.amqp)
    alerts_api = admin_alert_routes(feed=alert_feed, unit_of_work=context.unit_of_work)
    reconciliation_api = admin_reconciliation_routes(
        service=reconciliation_service(context), unit_of_work=context.unit_of_work, clock=context.clock
    )
    alertmanager_api = alertmanager_routes(
        unit_of_work=context.unit_of_work,
        options=IntakeOptions(cooldown=timedelta(seconds=settings.alerts.cooldown_seconds)),
    )
    setups = [
        payments_api,
        refunds_api,
        webhooks_api,
        admin_api,
        alerts_api,
        reconciliation_api,
        alertmanager_api,
        setup_openapi,
    ]
    if settings.rate_limits.enabled:
        limiter = redis_rate_limiter(resources.redis, configured_limits(settings.rate_limits))
        setups.append(setup_rate_limits(limiter))
    app = create_app(deps, extra_setups=setups)

    async def alert_feed_running(app: web.Application) -> AsyncIterator[None]:
        await alert_feed.start()
        yield
        await alert_feed.close()

    app.cleanup_ctx.append(alert_feed_running)
    return app


def partial_reprocess(context: AgentContext) -> ReprocessWebhook:
    """Re-queue a stored webhook (admin): through the outbox, like any other event."""

    async def reprocess_webhook(webhook_id: int) -> str:
        return await reprocess(context.unit_of_work, webhook_id, now=context.clock.now())

    return reprocess_webhook


def probes(resources: Resources) -> HealthProbes:
    async def database() -> Mapping[str, Any]:
        return await check_database(resources.pool)

    async def redis() -> Mapping[str, Any]:
        return await check_redis(resources.redis)

    async def queues() -> Mapping[str, Any]:
        names = [name for spec in WORK_QUEUES for name in (spec.name, spec.dead_letter_queue)]
        depths = await queue_depths(resources.amqp, names)
        missing = [depth.name for depth in depths if depth.missing]
        if missing:
            raise RuntimeError(f"queues missing (run `payments topology`): {', '.join(missing)}")
        return {depth.name: {"messages": depth.messages, "consumers": depth.consumers} for depth in depths}

    return HealthProbes(database=database, redis=redis, queues=queues)


def sandbox_config(settings: Settings) -> SandboxConfig:
    """The local Cashfree signs and authenticates with the same credentials the app uses."""
    return SandboxConfig(
        app_id=settings.cashfree.app_id,
        secret_key=settings.cashfree.secret_key.get_secret_value(),
        webhook_url=settings.sandbox.webhook_url,
        clock_speed=settings.sandbox.clock_speed,
        attempt_delay_seconds=settings.sandbox.attempt_delay_seconds,
        enforce_rate_limits=settings.sandbox.enforce_rate_limits,
    )


async def run_sandbox(settings: Settings) -> None:
    """``payments sandbox``: the local Cashfree until SIGTERM/SIGINT."""
    stop = _stop_on_signals()
    async with _serving(
        create_sandbox_app(sandbox_config(settings)), settings.sandbox.host, settings.sandbox.port
    ):
        logger.info(
            "Cashfree sandbox listening on http://%s:%d/pg", settings.sandbox.host, settings.sandbox.port
        )
        await stop.wait()
    logger.info("sandbox stopped")


async def run_migrate(settings: Settings, *, create_database: bool) -> list[str]:
    """``payments migrate``: apply pending SQL migrations; the names applied."""
    dsn = settings.postgres.url.get_secret_value()
    if create_database and await ensure_database(dsn):
        logger.info("created the database")
    return await migrate(dsn)


async def run_reencrypt(settings: Settings, *, batch_size: int) -> Reencrypted:
    """``payments reencrypt``: seal personal data under the current key (after a key rotation)."""
    async with open_pool(
        settings.postgres.url.get_secret_value(),
        min_size=1,
        max_size=1,
        command_timeout=settings.postgres.command_timeout_seconds,
    ) as pool:
        return await reencrypt(pool, personal_data_cipher(settings), batch_size=batch_size)


async def run_audit_verify(settings: Settings) -> ChainVerification:
    """``payments audit-verify``: re-compute the audit log's hash chain from its first row."""
    async with (
        open_pool(
            settings.postgres.url.get_secret_value(),
            min_size=1,
            max_size=1,
            command_timeout=settings.postgres.command_timeout_seconds,
        ) as pool,
        pool.acquire() as connection,
    ):
        return await PgAuditLog(connection).verify_chain()


async def run_topology(settings: Settings) -> None:
    """``payments topology``: declare exchanges, queues, retry tiers, DLQs and the event log."""
    async with open_connection(settings.rabbitmq.url.get_secret_value(), name="topology") as connection:
        channel = await connection.channel()
        await declare_topology(channel, WORK_QUEUES)
        await channel.close()


async def run_replay(
    settings: Settings,
    *,
    start: datetime | int,
    end: datetime | None,
    agents: Sequence[str] | None,
    progress: Callable[[ReplayReport], object],
    app: App | None = None,
) -> ReplayReport:
    """``payments replay``: feed the event log from ``start`` to ``end`` to replayable agents, once.

    The agents get the worker's context, so their tables and inbox-guarded writes go where the live
    run's went; what they put in the outbox is published by the running workers' relays.
    """
    chosen = app or App(blueprints())
    replay_selection(chosen, agents)  # refuse unknown or unreplayable names before connecting
    async with open_resources(settings, process="replay") as resources:
        reader = EventLogReader(resources.amqp, publish_timeout=settings.rabbitmq.publish_timeout_seconds)
        return await replay(
            chosen, agent_context(resources), reader, agents=agents, start=start, end=end, progress=progress
        )


async def run_reconcile(
    settings: Settings, start: datetime, end: datetime
) -> tuple[ReconciliationRun, Sequence[StoredItem]]:
    """``payments reconcile``: reconcile ``[start, end)`` now; the finished run and its items.

    ``RunInProgress`` if a run of the range holds the lock; ``ReconciliationFailed`` (with the text the
    run recorded) if the run failed; ``DependencyUnavailable`` if the services cannot be reached.
    """
    async with open_resources(settings, process="reconcile") as resources:
        context = agent_context(resources)
        try:
            run = await reconciliation_service(context).run(start, end, trigger=TRIGGER_CLI)
        except (RunInProgress, RangeInvalid):
            raise
        except Exception as error:
            raise ReconciliationFailed(failure_text(error)) from error
        async with context.unit_of_work() as uow:
            items = await uow.reconciliation.items(run.run_id)
        return run, items


@asynccontextmanager
async def _serving(
    app: web.Application, host: str, port: int, *, grace_seconds: float = 60.0
) -> AsyncIterator[None]:
    """Serve ``app``; on exit, stop accepting and give requests in progress ``grace_seconds``."""
    runner = web.AppRunner(app, access_log_class=AccessLogger, shutdown_timeout=grace_seconds)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        yield
    finally:
        await runner.cleanup()


@asynccontextmanager
async def _serve_metrics(resources: Resources) -> AsyncIterator[None]:
    """Workers expose /metrics (and /health) on their own port; 0 disables it."""
    port = resources.settings.worker.metrics_port
    if port == 0 or not resources.settings.app.prometheus_enabled:
        yield
        return
    app = create_app(
        WebDependencies(
            settings=resources.settings,
            metrics=resources.metrics,
            registry=resources.registry,
            probes=probes(resources),
        )
    )
    async with _serving(app, resources.settings.web.host, port):
        yield


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop

"""The payments agent over fakes: commands in, answers out, transient failures to the retry tiers."""

from __future__ import annotations

import json

from payments.agents.payments import expire_unpaid_payments, payments
from payments.domain.errors import DependencyUnavailable
from payments.domain.gateway import AttemptStatus
from payments.domain.money import Money
from payments.domain.payment.commands import PAYMENT_COMMANDS, Actor, CreatePayment, VerifyPayment
from payments.domain.payment.model import CustomerDetails
from tests.fakes.agents import run_until_settled
from tests.fakes.broker import FakeMessage, RecordingPublisher
from tests.fakes.context import NOW, fake_context
from tests.fakes.storage import InMemoryStore

ACTOR = Actor(actor_id="user-1", trace_id="a" * 32, request_id="r1")


def create(phone: str = "9876543210") -> CreatePayment:
    return CreatePayment(
        payment_id="pay_1",
        order_id="ord_1",
        user_id="user-1",
        amount=Money.of("100.00", "INR"),
        customer=CustomerDetails(name="Asha", email=None, phone=phone),
        actor=ACTOR,
    )


def request(command, n: int = 1) -> FakeMessage:
    return FakeMessage(
        body=PAYMENT_COMMANDS.dump_json(command),
        message_id=f"cmd-{n}",
        reply_to="amq.rabbitmq.reply-to",
        correlation_id=f"corr-{n}",
    )


async def run_agent(context, *messages: FakeMessage, spec=None) -> RecordingPublisher:
    """Run one agent (the payments agent unless ``spec`` says otherwise) until every command settled."""
    if spec is None:
        [spec] = payments.agents
    return await run_until_settled(spec, context, *messages)


def answers(context) -> list[dict]:
    return [json.loads(body) for _, _, body in context.replies.sent]


async def test_a_create_command_is_answered_with_the_new_payment():
    context = fake_context()

    await run_agent(context, request(create()))

    [answer] = answers(context)
    assert answer == {"result": {"paymentId": "pay_1", "status": "PENDING"}, "error": None}
    assert context.replies.sent[0][:2] == ("amq.rabbitmq.reply-to", "corr-1")


async def test_a_verify_command_settles_the_payment_from_the_gateway():
    store = InMemoryStore()
    context = fake_context(store=store)
    await run_agent(context, request(create()))
    context.gateway.attempt("ord_1", AttemptStatus.SUCCESS)

    await run_agent(context, request(VerifyPayment(payment_id="pay_1", actor=ACTOR), n=2))

    assert answers(context)[-1]["result"] == {"paymentId": "pay_1", "status": "SUCCESS"}


async def test_a_refused_command_is_answered_with_its_error_and_not_retried():
    context = fake_context()
    context.gateway.reject_phone = "0000000000"

    publisher = await run_agent(context, request(create(phone="0000000000")))

    [answer] = answers(context)
    assert answer["error"]["code"] == "gateway_rejected"
    assert answer["error"]["status"] == 400
    assert publisher.published == []


async def test_a_transient_failure_sends_the_command_to_a_retry_tier_without_an_answer():
    context = fake_context()
    context.gateway.fail_next = [DependencyUnavailable("gateway down")]

    publisher = await run_agent(context, request(create()))

    assert context.replies.sent == []
    [retried] = publisher.published
    assert retried.routing_key == "payments.commands.retry.30s"


async def test_the_expiry_job_expires_unpaid_payments():
    store = InMemoryStore()
    context = fake_context(store=store)
    await run_agent(context, request(create()))
    context.gateway.expire("ord_1")
    context.clock.current = NOW.replace(year=NOW.year + 1)

    await expire_unpaid_payments(context)

    async with store.unit_of_work() as uow:
        assert (await uow.payments.get("pay_1")).status.value == "EXPIRED"


def test_the_payments_agent_consumes_the_payment_commands_queue():
    [spec] = payments.agents

    assert spec.queue.name == "payments.commands"
    assert spec.concurrency == 8
    assert [cron.expression for cron in payments.crontabs] == ["*/5 * * * *"]

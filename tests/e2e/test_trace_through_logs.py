"""One webhook's trace id, followed through the JSON logs of ingest, every agent and the Cashfree call.

The stack logs at DEBUG into a buffer: ingest writes "webhook ... queued" under the delivery's trace,
each agent writes "<agent> took <routing key> <message id>" when its stream hands it a message, and
the Cashfree client writes one line per call with the ``x-request-id`` it sent and the one Cashfree
echoed. The sandbox's success webhook alone pays the payment (nobody calls verify), so everything
that follows from it belongs to the webhook's trace.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from payments.pipeline.logging import ID_FIELDS, configure_logging
from tests.waiting import eventually

USER = "user-trace"
#: Every agent that handles an event the success webhook causes, with the queue that feeds it:
#: webhooks.received and reconciliation.settlements get the delivery itself; fraud, alerts and
#: invoices get payment.success; monitoring gets analytics.payment.success; email gets the invoice's
#: emails.
AGENTS = {
    "webhooks.process_webhooks",
    "reconciliation.match_settlements",
    "fraud.watch_payments",
    "alerts.watch_failures",
    "invoices.invoice_payments",
    "monitoring.count_facts",
    "email.send_emails",
}


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Every log record of the test as the service writes it (JSON, masked), at DEBUG."""
    buffer = io.StringIO()
    root = logging.getLogger()
    level, before = root.level, set(root.handlers)
    configure_logging(level="DEBUG", service="payments-e2e", environment="test", stream=buffer)
    yield buffer
    for handler in set(root.handlers) - before:
        root.removeHandler(handler)
    root.setLevel(level)


def records(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def webhook_trace(lines: list[dict[str, Any]]) -> str | None:
    """The trace id ingest logged for the payment's success webhook."""
    queued = [line for line in lines if line["message"] == "webhook PAYMENT_SUCCESS_WEBHOOK queued"]
    return queued[0]["traceId"] if queued else None


def agents_in(lines: list[dict[str, Any]], trace_id: str) -> set[str]:
    return {
        line["message"].split(" took ")[0]
        for line in lines
        if line["traceId"] == trace_id and " took " in line["message"]
    }


async def test_a_webhooks_trace_id_is_on_every_line_of_ingest_each_agent_and_the_cashfree_call(
    stack, json_logs
):
    payment = await (await stack.create(USER)).json()
    await stack.pay(payment["paymentSessionId"], "testsuccess@gocash")

    def followed() -> bool:
        lines = records(json_logs)
        trace_id = webhook_trace(lines)
        return trace_id is not None and agents_in(lines, trace_id) >= AGENTS

    await eventually(followed, timeout=60, what="every agent to take an event of the webhook's trace")

    lines = records(json_logs)
    trace_id = webhook_trace(lines)
    assert trace_id is not None
    traced = [line for line in lines if line["traceId"] == trace_id]
    assert agents_in(lines, trace_id) >= AGENTS
    # Every line of the trace carries the full set of fields, and the payment it is about.
    for line in traced:
        assert set(ID_FIELDS) | {"service", "environment", "module", "timestamp", "level"} <= set(line)
        assert (line["service"], line["environment"]) == ("payments-e2e", "test")
    # The webhook agent asked Cashfree about the order under the trace, with the trace id as its
    # x-request-id; the sandbox echoing it back proves it was sent.
    calls = [line for line in traced if "sentRequestId" in line]
    assert calls, "no Cashfree call was logged under the webhook's trace"
    assert {(call["sentRequestId"], call["cashfreeRequestId"]) for call in calls} == {(trace_id, trace_id)}
    # The create request's own Cashfree call (the order) ran under another trace.
    assert any(line["traceId"] != trace_id for line in lines if "sentRequestId" in line)

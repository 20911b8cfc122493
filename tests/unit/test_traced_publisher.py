from __future__ import annotations

from payments.pipeline.publishing import TracedPublisher
from payments.pipeline.tracing import TraceContext, use_trace
from tests.fakes.broker import RecordingPublisher


async def test_a_message_published_inside_a_trace_carries_its_ids():
    inner = RecordingPublisher()
    trace = TraceContext.new()

    with use_trace(trace):
        await TracedPublisher(inner).publish(exchange="x", routing_key="k", body=b"{}", message_id="m1")

    assert inner.published[0].headers == trace.to_message_headers()


async def test_a_message_keeps_the_trace_it_already_carries():
    inner = RecordingPublisher()
    original = TraceContext.new().to_message_headers()

    with use_trace(TraceContext.new()):
        await TracedPublisher(inner).publish(
            exchange="",
            routing_key="q.retry.30s",
            body=b"{}",
            message_id="m1",
            headers={**original, "x-n": 1},
        )

    assert inner.published[0].headers == {**original, "x-n": 1}


async def test_outside_a_trace_the_headers_are_unchanged():
    inner = RecordingPublisher()

    await TracedPublisher(inner).publish(
        exchange="x", routing_key="k", body=b"{}", message_id="m1", headers={"a": "b"}
    )

    assert inner.published[0].headers == {"a": "b"}

from __future__ import annotations

import time

from payments.pipeline.publishing import PUBLISHED_AT_HEADER, TracedPublisher
from payments.pipeline.tracing import TraceContext, use_trace
from tests.fakes.broker import RecordingPublisher


def _without_publication_time(headers: object) -> dict[str, object]:
    assert isinstance(headers, dict)
    return {name: value for name, value in headers.items() if name != PUBLISHED_AT_HEADER}


async def test_a_message_published_inside_a_trace_carries_its_ids():
    inner = RecordingPublisher()
    trace = TraceContext.new()

    with use_trace(trace):
        await TracedPublisher(inner).publish(exchange="x", routing_key="k", body=b"{}", message_id="m1")

    assert _without_publication_time(inner.published[0].headers) == trace.to_message_headers()


async def test_a_message_keeps_the_trace_and_publication_time_it_already_carries():
    inner = RecordingPublisher()
    original = {**TraceContext.new().to_message_headers(), PUBLISHED_AT_HEADER: 1_700_000_000.25}

    with use_trace(TraceContext.new()):
        await TracedPublisher(inner).publish(
            exchange="",
            routing_key="q.retry.30s",
            body=b"{}",
            message_id="m1",
            headers={**original, "x-n": 1},
        )

    assert inner.published[0].headers == {**original, "x-n": 1}


async def test_outside_a_trace_only_the_publication_time_is_added():
    inner = RecordingPublisher()
    before = time.time()

    await TracedPublisher(inner).publish(
        exchange="x", routing_key="k", body=b"{}", message_id="m1", headers={"a": "b"}
    )

    headers = inner.published[0].headers
    assert _without_publication_time(headers) == {"a": "b"}
    assert before <= headers[PUBLISHED_AT_HEADER] <= time.time()

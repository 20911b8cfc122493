from __future__ import annotations

import asyncio
import re

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from payments.pipeline.tracing import TraceContext, activate_trace, current_trace, use_trace

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
VALID_TRACEPARENT = f"00-{TRACE_ID}-{SPAN_ID}-01"
TRACEPARENT_FORMAT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01")


def test_a_new_context_has_valid_w3c_ids_and_correlation_defaults_to_request_id():
    ctx = TraceContext.new()

    assert TRACEPARENT_FORMAT.fullmatch(ctx.traceparent)
    assert ctx.traceparent == f"00-{ctx.trace_id}-{ctx.span_id}-01"
    assert ctx.correlation_id == ctx.request_id


def test_new_contexts_never_share_ids():
    first, second = TraceContext.new(), TraceContext.new()

    assert first.trace_id != second.trace_id
    assert first.span_id != second.span_id
    assert first.request_id != second.request_id


def test_a_valid_traceparent_keeps_the_callers_trace_id_with_a_new_span():
    ctx = TraceContext.from_http_headers({"traceparent": VALID_TRACEPARENT})

    assert ctx.trace_id == TRACE_ID
    assert ctx.span_id != SPAN_ID
    assert TRACEPARENT_FORMAT.fullmatch(ctx.traceparent)


def test_a_later_traceparent_version_with_extra_fields_is_still_read():
    ctx = TraceContext.from_http_headers({"traceparent": f"01-{TRACE_ID}-{SPAN_ID}-01-future-field"})

    assert ctx.trace_id == TRACE_ID


@pytest.mark.parametrize(
    "traceparent",
    [
        pytest.param(f"00-{TRACE_ID.upper()}-{SPAN_ID}-01", id="uppercase"),
        pytest.param(f"00-{'0' * 32}-{SPAN_ID}-01", id="all-zero-trace-id"),
        pytest.param(f"00-{TRACE_ID}-{'0' * 16}-01", id="all-zero-span-id"),
        pytest.param(f"ff-{TRACE_ID}-{SPAN_ID}-01", id="forbidden-version"),
        pytest.param(f"00-{TRACE_ID}-{SPAN_ID}-01-extra", id="version-00-with-extra-field"),
        pytest.param(f"01-{TRACE_ID}-{SPAN_ID}-01x", id="later-version-without-dash"),
        pytest.param(f"00-{TRACE_ID[:-1]}-{SPAN_ID}-01", id="short-trace-id"),
        pytest.param(f"00-{TRACE_ID}-{SPAN_ID}0-01", id="long-span-id"),
        pytest.param(f"00-{TRACE_ID}-{SPAN_ID}-1", id="short-flags"),
        pytest.param(f"0-{TRACE_ID}-{SPAN_ID}-01", id="short-version"),
        pytest.param(f"00_{TRACE_ID}_{SPAN_ID}_01", id="wrong-separator"),
        pytest.param(f"00-{TRACE_ID[:-1]}g-{SPAN_ID}-01", id="not-hex"),
        pytest.param("", id="empty"),
        pytest.param("garbage", id="garbage"),
    ],
)
def test_an_invalid_traceparent_is_ignored_and_a_fresh_trace_started(traceparent: str):
    ctx = TraceContext.from_http_headers({"traceparent": traceparent})

    assert ctx.trace_id != TRACE_ID.upper()
    assert ctx.trace_id != TRACE_ID
    assert TRACEPARENT_FORMAT.fullmatch(ctx.traceparent)


def test_safe_request_and_correlation_ids_are_kept():
    ctx = TraceContext.from_http_headers({"X-Request-Id": "req-1.a:b_C", "X-Correlation-Id": "flow-42"})

    assert ctx.request_id == "req-1.a:b_C"
    assert ctx.correlation_id == "flow-42"


@pytest.mark.parametrize(
    "unsafe",
    [
        pytest.param("", id="empty"),
        pytest.param("a" * 129, id="too-long"),
        pytest.param("id with spaces", id="spaces"),
        pytest.param("id\r\nSet-Cookie: x=1", id="header-injection"),
        pytest.param('id"}', id="json-breaking"),
        pytest.param("é", id="non-ascii"),
    ],
)
def test_unsafe_request_and_correlation_ids_are_replaced_with_generated_ones(unsafe: str):
    ctx = TraceContext.from_http_headers({"X-Request-Id": unsafe, "X-Correlation-Id": unsafe})

    assert ctx.request_id != unsafe
    assert ctx.correlation_id == ctx.request_id
    assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", ctx.request_id)


def test_the_longest_safe_request_id_is_kept():
    longest = "a" * 128

    assert TraceContext.from_http_headers({"X-Request-Id": longest}).request_id == longest


def test_correlation_id_defaults_to_the_callers_request_id():
    ctx = TraceContext.from_http_headers({"x-request-id": "req-7"})

    assert ctx.correlation_id == "req-7"


def test_header_names_match_case_insensitively_in_plain_mappings():
    ctx = TraceContext.from_http_headers(
        {"TraceParent": VALID_TRACEPARENT, "X-REQUEST-ID": "req-9", "x-correlation-ID": "corr-9"}
    )

    assert (ctx.trace_id, ctx.request_id, ctx.correlation_id) == (TRACE_ID, "req-9", "corr-9")


def test_header_names_match_case_insensitively_in_aiohttp_headers():
    headers = CIMultiDictProxy(
        CIMultiDict({"TraceParent": VALID_TRACEPARENT, "X-REQUEST-ID": "req-9", "x-correlation-ID": "corr-9"})
    )

    ctx = TraceContext.from_http_headers(headers)

    assert (ctx.trace_id, ctx.request_id, ctx.correlation_id) == (TRACE_ID, "req-9", "corr-9")


def test_absent_aiohttp_headers_start_a_fresh_trace():
    ctx = TraceContext.from_http_headers(CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"})))

    assert TRACEPARENT_FORMAT.fullmatch(ctx.traceparent)
    assert ctx.correlation_id == ctx.request_id


def test_message_headers_round_trip_keeps_trace_request_and_correlation_ids():
    original = TraceContext.from_http_headers({"X-Request-Id": "req-1", "X-Correlation-Id": "corr-1"})

    received = TraceContext.from_message_headers(original.to_message_headers())

    assert original.to_message_headers() == {
        "traceparent": original.traceparent,
        "x-request-id": "req-1",
        "x-correlation-id": "corr-1",
    }
    assert received.trace_id == original.trace_id
    assert received.span_id != original.span_id
    assert (received.request_id, received.correlation_id) == ("req-1", "corr-1")


def test_message_headers_accept_bytes_values():
    headers = {
        "traceparent": VALID_TRACEPARENT.encode(),
        "x-request-id": b"req-2",
        "x-correlation-id": b"corr-2",
    }

    ctx = TraceContext.from_message_headers(headers)

    assert (ctx.trace_id, ctx.request_id, ctx.correlation_id) == (TRACE_ID, "req-2", "corr-2")


def test_message_header_values_that_are_not_ascii_text_are_ignored():
    headers = {"traceparent": 42, "x-request-id": b"\xff\xfe", "x-correlation-id": None}

    ctx = TraceContext.from_message_headers(headers)

    assert TRACEPARENT_FORMAT.fullmatch(ctx.traceparent)
    assert ctx.request_id != "\xff\xfe"
    assert ctx.correlation_id == ctx.request_id


def test_a_child_keeps_the_trace_and_ids_with_a_new_span():
    parent = TraceContext.from_http_headers({"traceparent": VALID_TRACEPARENT, "X-Request-Id": "req-3"})

    child = parent.child()

    assert (child.trace_id, child.request_id, child.correlation_id) == (TRACE_ID, "req-3", "req-3")
    assert child.span_id != parent.span_id


@pytest.mark.parametrize(
    ("trace_id", "span_id", "request_id"),
    [
        pytest.param("0" * 32, SPAN_ID, "r", id="zero-trace-id"),
        pytest.param(TRACE_ID, "0" * 16, "r", id="zero-span-id"),
        pytest.param(TRACE_ID.upper(), SPAN_ID, "r", id="uppercase-trace-id"),
        pytest.param(TRACE_ID, SPAN_ID, "bad id", id="unsafe-request-id"),
    ],
)
def test_the_constructor_refuses_invalid_ids(trace_id: str, span_id: str, request_id: str):
    with pytest.raises(ValueError, match="must be"):
        TraceContext(trace_id, span_id, request_id, "corr")


def test_use_trace_sets_the_current_context_and_restores_the_previous_one():
    outer, inner = TraceContext.new(), TraceContext.new()

    assert current_trace() is None
    with use_trace(outer):
        assert current_trace() is outer
        with use_trace(inner):
            assert current_trace() is inner
        assert current_trace() is outer
    assert current_trace() is None


def test_use_trace_restores_the_previous_context_when_the_block_raises():
    with pytest.raises(RuntimeError), use_trace(TraceContext.new()):
        raise RuntimeError("boom")

    assert current_trace() is None


async def test_tasks_started_inside_use_trace_inherit_it_without_leaking_back():
    ctx = TraceContext.new()
    with use_trace(ctx):
        seen = await asyncio.create_task(_current_in_task())
    task_local = asyncio.create_task(_activate_and_read(TraceContext.new()))

    assert seen is ctx
    assert (await task_local) is not None
    assert current_trace() is None


def test_activate_trace_holds_until_its_token_is_reset():
    ctx = TraceContext.new()

    token = activate_trace(ctx)
    try:
        assert current_trace() is ctx
    finally:
        token.var.reset(token)
    assert current_trace() is None


async def _current_in_task() -> TraceContext | None:
    return current_trace()


async def _activate_and_read(ctx: TraceContext) -> TraceContext | None:
    activate_trace(ctx)
    return current_trace()

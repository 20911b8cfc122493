"""Window maths at the edges: pure functions of milliseconds, no store and no event loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from payments.tables.windows import Hopping, Sliding, Span, Tumbling, epoch_ms, from_epoch_ms, is_live

MS = timedelta(milliseconds=1)
SECOND = timedelta(seconds=1)


def test_epoch_ms_is_exact_and_inverts_from_epoch_ms():
    moment = datetime(2030, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC)

    assert epoch_ms(moment) == 1_893_456_000_999
    assert from_epoch_ms(1_893_456_000_999) == moment - timedelta(microseconds=999)
    assert epoch_ms(datetime(1969, 12, 31, 23, 59, 59, 999_500, tzinfo=UTC)) == -1


def test_epoch_ms_reads_any_timezone_as_the_same_instant():
    india = timezone(timedelta(hours=5, minutes=30))

    assert epoch_ms(datetime(2030, 1, 1, 5, 30, tzinfo=india)) == epoch_ms(datetime(2030, 1, 1, tzinfo=UTC))


def test_epoch_ms_refuses_a_naive_datetime():
    with pytest.raises(ValueError, match="timezone-aware"):
        epoch_ms(datetime(2030, 1, 1))


@pytest.mark.parametrize(
    ("at_ms", "span"),
    [
        (0, Span(0, 1_000)),
        (999, Span(0, 1_000)),
        (1_000, Span(1_000, 2_000)),
        (-1, Span(-1_000, 0)),
        (-1_000, Span(-1_000, 0)),
    ],
)
def test_a_tumbling_window_holds_its_start_and_not_its_end(at_ms, span):
    window = Tumbling(SECOND)

    assert window.spans_for(at_ms) == (span,)
    assert window.span_at(at_ms) == span


def test_a_hopping_event_is_in_size_over_step_windows_oldest_first():
    window = Hopping(3 * SECOND, SECOND)

    assert window.spans_for(2_500) == (Span(0, 3_000), Span(1_000, 4_000), Span(2_000, 5_000))
    assert window.spans_for(3_000) == (Span(1_000, 4_000), Span(2_000, 5_000), Span(3_000, 6_000))
    assert all(2_999 in span for span in window.spans_for(2_999))


def test_a_hopping_read_means_the_most_recently_started_window_holding_the_time():
    window = Hopping(10 * SECOND, 5 * SECOND)

    assert window.span_at(4_999) == Span(0, 10_000)
    assert window.span_at(5_000) == Span(5_000, 15_000)


def test_a_hopping_window_whose_size_equals_its_step_is_tumbling():
    hopping, tumbling = Hopping(SECOND, SECOND), Tumbling(SECOND)

    assert [hopping.spans_for(t) for t in (-1, 0, 999, 1_000)] == [
        tumbling.spans_for(t) for t in (-1, 0, 999, 1_000)
    ]


def test_a_sliding_read_at_t_holds_the_size_before_t_and_t_itself():
    window = Sliding(10 * SECOND)
    span = window.span_at(20_000)

    assert span == Span(10_001, 20_001)
    assert (10_000 in span, 10_001 in span, 20_000 in span, 20_001 in span) == (False, True, True, False)


def test_a_sliding_event_is_kept_as_its_last_window_the_read_size_later_less_a_millisecond():
    window = Sliding(10 * SECOND)

    (last,) = window.spans_for(5_000)

    assert last == Span(5_000, 15_000)
    assert last == window.span_at(14_999)
    assert 5_000 not in window.span_at(15_000)


@pytest.mark.parametrize("window", [Tumbling(SECOND), Hopping(2 * SECOND, SECOND), Sliding(SECOND)])
def test_retention_defaults_to_the_size(window):
    span = window.span_at(0)

    assert window.retention_ms == window.size_ms
    assert window.expires_at_ms(span) == span.end_ms + window.size_ms


def test_a_window_is_live_until_the_millisecond_its_retention_ends():
    window = Tumbling(SECOND, retention=500 * MS)
    span = window.span_at(0)

    assert window.expires_at_ms(span) == 1_500
    assert (is_live(window, span, 1_499), is_live(window, span, 1_500)) == (True, False)


def test_a_retention_of_zero_expires_a_window_at_its_end():
    window = Tumbling(SECOND, retention=timedelta(0))

    assert (is_live(window, Span(0, 1_000), 999), is_live(window, Span(0, 1_000), 1_000)) == (True, False)


def test_a_late_hopping_event_keeps_only_its_windows_still_live():
    window = Hopping(3 * SECOND, SECOND, retention=timedelta(0))

    live = [span for span in window.spans_for(2_500) if is_live(window, span, 3_500)]
    none = [span for span in window.spans_for(2_500) if is_live(window, span, 5_000)]

    assert live == [Span(1_000, 4_000), Span(2_000, 5_000)]
    assert none == []


def test_tumbling_history_is_the_windows_before_the_current_one_oldest_first():
    window = Tumbling(SECOND)

    assert window.history(2_500, 3) == (Span(-1_000, 0), Span(0, 1_000), Span(1_000, 2_000))
    assert window.history(2_000, 1) == (Span(1_000, 2_000),)
    assert window.history(2_500, 0) == ()


def test_hopping_history_steps_back_one_step_at_a_time():
    window = Hopping(2 * SECOND, SECOND)

    assert window.history(2_500, 2) == (Span(0, 2_000), Span(1_000, 3_000))


@pytest.mark.parametrize("window", [Tumbling(SECOND), Hopping(2 * SECOND, SECOND)])
def test_a_history_of_negative_length_is_refused(window):
    with pytest.raises(ValueError, match="zero or more"):
        window.history(0, -1)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Tumbling(timedelta(0)), "size must be positive"),
        (lambda: Sliding(-SECOND), "size must be positive"),
        (lambda: Tumbling(timedelta(microseconds=1_500)), "whole number of milliseconds"),
        (lambda: Tumbling(SECOND, retention=-SECOND), "retention must be zero or more"),
        (lambda: Hopping(SECOND, timedelta(0)), "step must be positive"),
        (lambda: Hopping(5 * SECOND, 2 * SECOND), "multiple of its step"),
    ],
)
def test_impossible_windows_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_windows_are_values():
    assert Tumbling(SECOND) == Tumbling(SECOND, retention=None)
    assert Hopping(2 * SECOND, SECOND) != Hopping(2 * SECOND, SECOND, retention=SECOND)

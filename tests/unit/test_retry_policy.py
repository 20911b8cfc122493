from __future__ import annotations

import pytest

from payments.domain.errors import DependencyUnavailable, IllegalTransition, InvalidPayload, Retry
from payments.pipeline.retry import Action, decide
from payments.pipeline.topology import RETRY_TIERS


@pytest.mark.parametrize(
    ("previous_failures", "tier_label", "delay"),
    [(0, "30s", 30.0), (1, "2m", 120.0), (2, "10m", 600.0), (3, "30m", 1800.0)],
)
def test_failures_one_to_four_wait_in_the_tier_of_their_number(previous_failures, tier_label, delay):
    decision = decide(RuntimeError("boom"), previous_failures=previous_failures, delay_scale=1.0)

    assert decision.action is Action.RETRY
    assert decision.tier is not None
    assert decision.tier.label == tier_label
    assert decision.delay_seconds == delay
    assert decision.failures == previous_failures + 1


def test_the_fifth_failure_goes_to_the_dead_letter_queue():
    decision = decide(DependencyUnavailable(), previous_failures=len(RETRY_TIERS), delay_scale=1.0)

    assert decision.action is Action.DEAD_LETTER
    assert decision.reason == "exhausted"
    assert decision.failures == 5


@pytest.mark.parametrize("error", [InvalidPayload(), IllegalTransition(), InvalidPayload(reason="bad_json")])
def test_errors_retrying_cannot_fix_skip_the_tiers(error):
    decision = decide(error, previous_failures=0, delay_scale=1.0)

    assert decision.action is Action.DEAD_LETTER
    assert decision.reason == error.reason
    assert decision.failures == 1


def test_delay_scale_shrinks_the_wait_without_changing_the_tier():
    decision = decide(RuntimeError(), previous_failures=1, delay_scale=0.001)

    assert decision.tier is not None
    assert decision.tier.label == "2m"
    assert decision.delay_seconds == pytest.approx(0.12)


def test_a_retry_that_asks_to_wait_longer_moves_to_a_later_tier():
    decision = decide(Retry(defer=300), previous_failures=0, delay_scale=1.0)

    assert decision.tier is not None
    assert decision.tier.label == "10m"
    assert decision.failures == 1


def test_a_defer_longer_than_every_tier_uses_the_last_tier():
    decision = decide(Retry(defer=86_400), previous_failures=0, delay_scale=1.0)

    assert decision.tier == RETRY_TIERS[-1]

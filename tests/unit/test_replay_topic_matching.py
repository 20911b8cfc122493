"""Topic matching as RabbitMQ does it: ``*`` is exactly one word, ``#`` zero or more."""

from __future__ import annotations

import pytest

from payments.pipeline.replay import binding_matches, topic_matches
from payments.pipeline.topology import Binding, Exchange


@pytest.mark.parametrize(
    ("pattern", "routing_key"),
    [
        ("payment.created", "payment.created"),
        ("payment.*", "payment.created"),
        ("*.created", "payment.created"),
        ("*.*", "payment.created"),
        ("#", "payment.created"),
        ("#", ""),
        ("email.#", "email.payment.success"),
        ("email.#", "email"),
        ("#.success", "email.payment.success"),
        ("#.success", "success"),
        ("email.#.success", "email.success"),
        ("email.#.success", "email.payment.x.success"),
        ("*.#", "payment"),
        ("#.#", "a.b.c"),
        ("a.*.#.d", "a.b.d"),
        ("a.*.#.d", "a.b.c.c.d"),
        ("", ""),
        ("a..b", "a..b"),
        ("a.*.b", "a..b"),
    ],
)
def test_a_routing_key_matches_the_patterns_rabbitmq_would_route_it_by(pattern, routing_key):
    assert topic_matches(pattern, routing_key)


@pytest.mark.parametrize(
    ("pattern", "routing_key"),
    [
        ("payment.created", "payment.success"),
        ("payment.created", "payment.created.again"),
        ("payment.*", "payment"),
        ("payment.*", "payment.created.again"),
        ("*", ""),
        ("*.created", "created"),
        ("email.#", "emails.payment"),
        ("#.success", "email.payment.successful"),
        ("email.#.success", "email.payment.failed"),
        ("a.*.#.d", "a.d"),
        ("", "a"),
        ("a.*.b", "a.b"),
    ],
)
def test_a_routing_key_does_not_match_patterns_rabbitmq_would_not_route_it_by(pattern, routing_key):
    assert not topic_matches(pattern, routing_key)


def test_a_binding_matches_only_messages_published_on_its_own_exchange():
    binding = Binding(Exchange.PAYMENT, "payment.*")

    assert binding_matches(binding, exchange="payment.exchange", routing_key="payment.success")
    assert not binding_matches(binding, exchange="analytics.exchange", routing_key="payment.success")
    assert not binding_matches(binding, exchange="", routing_key="payment.success")
    assert not binding_matches(binding, exchange="payment.exchange", routing_key="payment.a.b")

"""Broker URLs and failures are reported without the password."""

from __future__ import annotations

from payments.bridges.rabbitmq.connection import describe_failure, redact_url


def test_a_redacted_url_hides_the_password_and_keeps_where_it_points() -> None:
    redacted = redact_url("amqps://payments:hunter2@broker.internal:5671/prod")

    assert "hunter2" not in redacted
    assert redacted == "amqps://payments:******@broker.internal:5671/prod"


def test_a_url_without_a_password_is_shown_as_it_is() -> None:
    assert redact_url("amqp://127.0.0.1:5672/") == "amqp://127.0.0.1:5672/"


def test_a_failure_description_blanks_the_password_wherever_it_appears() -> None:
    error = ConnectionError("login hunter2 refused")

    described = describe_failure(error, "amqp://payments:hunter2@127.0.0.1/")

    assert described == "ConnectionError: login ****** refused"

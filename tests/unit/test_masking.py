from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from payments.pipeline.bootstrap import register_secrets
from payments.pipeline.logging import clear_secrets, is_sensitive_key, mask_text, mask_value, register_secret
from payments.pipeline.settings import load_settings

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTEifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    yield
    clear_secrets()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("mail john.doe@example.com now", "mail j***@example.com now", id="email"),
        pytest.param("to A+tag@mail.example.co.in.", "to A***@mail.example.co.in.", id="email-subdomains"),
        pytest.param("call 9876543210", "call *******210", id="indian-mobile"),
        pytest.param("call 098765 43210", "call ****** **210", id="indian-mobile-trunk-prefix"),
        pytest.param("call +91 98765 43210", "call +** ***** **210", id="indian-mobile-international"),
        pytest.param("call 919876543210", "call *********210", id="indian-mobile-country-code"),
        pytest.param("call +1 415-555-2671", "call +* ***-***-*671", id="international-phone"),
        pytest.param("card 4111111111111111", "card ************1111", id="card-luhn-valid"),
        pytest.param("card 4111111111111112", "card ************1112", id="card-luhn-invalid"),
        pytest.param("card 4111 1111 1111 1111", "card **** **** **** 1111", id="card-spaced"),
        pytest.param("card 5500-0000-0000-0004", "card ****-****-****-0004", id="card-dashed"),
        pytest.param("pan=378282246310005;", "pan=***********0005;", id="card-15-digits"),
        pytest.param("card 6011000990139424123", "card ***************4123", id="card-19-digits"),
        pytest.param("amex 3782 822463 10005", "amex **** ****** *0005", id="card-amex-grouping"),
        pytest.param("Authorization: Bearer abc.def-123456", "Authorization: Bearer ***", id="bearer-token"),
        pytest.param("authorization: basic dXNlcjpwYXNz", "authorization: basic ***", id="basic-credentials"),
        pytest.param(f"token {JWT} end", "token eyJ*** end", id="jwt"),
        pytest.param(
            "amqp://payments:s3cret@rabbit:5672/vhost",
            "amqp://payments:***@rabbit:5672/vhost",
            id="url-password",
        ),
        pytest.param(
            "redis://:p4ss@cache:6379/0", "redis://:***@cache:6379/0", id="url-password-without-user"
        ),
        pytest.param('{"password": "hunter2"}', '{"password": "***"}', id="json-password"),
        pytest.param("x-client-secret: abc123", "x-client-secret: ***", id="client-secret-header"),
        pytest.param("GET /cb?access_token=abc&x=1", "GET /cb?access_token=***&x=1", id="query-token"),
    ],
)
def test_mask_text_masks_personal_data_and_credentials(text: str, expected: str):
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("payment 550e8400-e29b-41d4-a716-446655440000 captured", id="uuid"),
        pytest.param("trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7", id="w3c-ids"),
        pytest.param("at 2025-01-31T10:15:00Z for INR 1500.00", id="timestamp-and-amount"),
        pytest.param("order order_9876543210 attempt 3", id="id-with-digits"),
        pytest.param(
            "epoch 1700000000 on http://127.0.0.1:8090/pg/orders", id="epoch-and-url-without-password"
        ),
        pytest.param("the secretary token count is 3", id="secret-words-without-value"),
        pytest.param("user@localhost", id="address-without-domain-dot"),
        pytest.param("scores 1 2 3 4 5 6 7 8 9 1 2 3 4 5", id="spaced-single-digits"),
    ],
)
def test_mask_text_leaves_ordinary_identifiers_and_numbers_alone(text: str):
    assert mask_text(text) == text


def test_masking_is_idempotent():
    once = mask_text("j.doe@example.com 4111111111111111 +91 98765 43210 amqp://u:p4ss@h/")

    assert mask_text(once) == once


def test_mask_text_handles_long_adversarial_input():
    # Patterns with nested or unbounded repeats would take minutes here; ours stay linear.
    near_misses = "a" * 50_000 + "@" + "1 " * 20_000 + "http://" + "x" * 5_000 + ":" + "y" * 5_000

    assert mask_text(near_misses) == near_misses


def test_registered_secrets_are_masked_wherever_they_appear():
    register_secret("cf-secret-value-123")

    assert mask_text("sig key=cf-secret-value-123, again cf-secret-value-123!") == "sig key=***, again ***!"


def test_registering_a_url_masks_its_password_in_any_form_but_not_its_host():
    register_secret("postgresql://app:p%40ssw0rd@db.internal:5432/payments")

    assert mask_text("auth failed for 'p@ssw0rd' and p%40ssw0rd") == "auth failed for '***' and ***"
    assert mask_text("connecting to db.internal:5432") == "connecting to db.internal:5432"


def test_registering_a_url_without_a_password_masks_nothing():
    register_secret("redis://127.0.0.1:6379/0")

    assert mask_text("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_a_secret_containing_another_is_masked_whole():
    register_secret("abcd")
    register_secret("abcdefgh")

    assert mask_text("x abcdefgh y") == "x *** y"


def test_secrets_too_short_to_be_real_are_ignored():
    register_secret("abc")

    assert mask_text("abc abc") == "abc abc"


def test_clear_secrets_forgets_registered_secrets():
    register_secret("forget-me-please")
    clear_secrets()

    assert mask_text("forget-me-please") == "forget-me-please"


def test_mask_value_hides_secret_named_keys_and_masks_strings_recursively():
    value = {
        "Authorization": "Bearer abcdefgh",
        "headers": {"x-client-secret": "s", "X-Api-Key": "k", "accept": "application/json"},
        "customer": [{"email": "asha@example.in", "phone": "+91 98765 43210", "db_password": "pw"}],
        "card": ("4111111111111111", 3),
        "amount": 1500.5,
        "ok": True,
        "missing": None,
    }

    assert mask_value(value) == {
        "Authorization": "***",
        "headers": {"x-client-secret": "***", "X-Api-Key": "***", "accept": "application/json"},
        "customer": [{"email": "a***@example.in", "phone": "+** ***** **210", "db_password": "***"}],
        "card": ("************1111", 3),
        "amount": 1500.5,
        "ok": True,
        "missing": None,
    }


def test_mask_value_masks_numbers_that_look_like_cards_and_keeps_other_numbers():
    assert mask_value(4111111111111111) == "************1111"
    assert mask_value(1500) == 1500


def test_mask_value_masks_objects_through_their_text():
    error = ConnectionError("cannot reach amqp://svc:hunter22@mq/")

    assert mask_value(error) == "cannot reach amqp://svc:***@mq/"


def test_mask_value_stops_at_a_bounded_depth_on_cycles():
    cyclic: list[object] = []
    cyclic.append(cyclic)

    masked = mask_value(cyclic)

    for _ in range(7):
        masked = masked[0]
    assert masked == ["[too deep]"]


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("Authorization", True),
        ("x-client-secret", True),
        ("password", True),
        ("refresh_token", True),
        ("Cookie", True),
        ("email", False),
        ("idempotency_key", False),
        (42, False),
    ],
)
def test_is_sensitive_key_recognises_credential_names(key: object, sensitive: bool):
    assert is_sensitive_key(key) is sensitive


def test_configuring_the_service_masks_every_secret_setting_previous_keys_included():
    previous = base64.b64encode(b"an-older-personal-data-key-32-by").decode()
    token = "alertmanager-token-for-the-masking-test-000"
    try:
        register_secrets(
            load_settings({"PAYMENT_ENCRYPTION_PREVIOUS_KEYS": f" {previous} ", "ALERTMANAGER_TOKEN": token})
        )

        assert mask_text(f"key={previous} then {token}") == "key=*** then ***"
    finally:
        clear_secrets()

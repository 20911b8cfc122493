"""``payments webhook-verify`` as an operator runs it: no PostgreSQL, Redis or RabbitMQ involved."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from payments.bridges.cashfree.signature import sign

from ._shared import load_vectors, vectors_dir

PAYMENT = next(
    vector for vector in load_vectors() if vector.valid and vector.body_name == "payment_success.body"
)
NEAR_SENT_MS = str(PAYMENT.sent_ms + 1_000)
DEVELOPMENT_SECRET = "insecure-development-cashfree-secret"


def environment(**extra: str) -> dict[str, str]:
    """The caller's environment without Cashfree secrets, with services pointed at closed ports."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CASHFREE_")}
    env.update(
        APP_ENV="test",
        LOG_LEVEL="WARNING",
        DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
        REDIS_URL="redis://127.0.0.1:1/0",
        RABBITMQ_URL="amqp://nobody:nothing@127.0.0.1:1/",
    )
    env.update(extra)
    return env


def webhook_verify(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "payments", "webhook-verify", *arguments],
        env=env or environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_text(PAYMENT.secret + "\n", encoding="utf-8")
    return path


def test_a_valid_vector_prints_valid_and_exits_zero(secret_file: Path):
    result = webhook_verify(
        "--body-file", str(vectors_dir() / PAYMENT.body_name),
        "--timestamp", PAYMENT.timestamp,
        "--signature", PAYMENT.signature,
        "--secret-file", str(secret_file),
        "--now-ms", NEAR_SENT_MS,
    )  # fmt: skip

    assert (result.returncode, result.stdout) == (0, "valid\n"), result.stderr
    assert PAYMENT.secret not in result.stdout + result.stderr


def test_a_tampered_body_prints_the_reason_and_exits_one(secret_file: Path, tmp_path: Path):
    tampered = tmp_path / "tampered.body"
    tampered.write_bytes(PAYMENT.body.replace(b'"payment_amount":1.00', b'"payment_amount":9.00'))

    result = webhook_verify(
        "--body-file", str(tampered),
        "--timestamp", PAYMENT.timestamp,
        "--signature", PAYMENT.signature,
        "--secret-file", str(secret_file),
        "--now-ms", NEAR_SENT_MS,
    )  # fmt: skip

    assert (result.returncode, result.stdout) == (1, "invalid: signature_mismatch\n"), result.stderr
    shown = result.stdout + result.stderr
    assert PAYMENT.secret not in shown
    assert sign(PAYMENT.secret, PAYMENT.timestamp, tampered.read_bytes()) not in shown


def test_without_now_ms_the_real_clock_judges_freshness(secret_file: Path):
    result = webhook_verify(
        "--body-file", str(vectors_dir() / PAYMENT.body_name),
        "--timestamp", PAYMENT.timestamp,
        "--signature", PAYMENT.signature,
        "--secret-file", str(secret_file),
    )  # fmt: skip

    assert (result.returncode, result.stdout) == (1, "invalid: stale_timestamp\n"), result.stderr


def test_without_a_secret_file_or_secrets_in_the_environment_the_development_default_is_used(tmp_path: Path):
    body = tmp_path / "body"
    body.write_bytes(PAYMENT.body)
    signed_with_default = sign(DEVELOPMENT_SECRET, PAYMENT.timestamp, PAYMENT.body)
    common = ("--body-file", str(body), "--timestamp", PAYMENT.timestamp, "--now-ms", NEAR_SENT_MS)

    by_default = webhook_verify(*common, "--signature", signed_with_default)
    by_vector_secret = webhook_verify(*common, "--signature", PAYMENT.signature)

    assert (by_default.returncode, by_default.stdout) == (0, "valid\n"), by_default.stderr
    assert (by_vector_secret.returncode, by_vector_secret.stdout) == (1, "invalid: signature_mismatch\n")
    assert DEVELOPMENT_SECRET not in by_default.stdout + by_default.stderr


def test_the_extra_webhook_secret_from_the_environment_is_accepted_too(tmp_path: Path):
    body = tmp_path / "body"
    body.write_bytes(PAYMENT.body)
    env = environment(
        CASHFREE_SECRET_KEY="cf_test_current_secret_000", CASHFREE_WEBHOOK_SECRET=PAYMENT.secret
    )

    result = webhook_verify(
        "--body-file", str(body),
        "--timestamp", PAYMENT.timestamp,
        "--signature", PAYMENT.signature,
        "--now-ms", NEAR_SENT_MS,
        env=env,
    )  # fmt: skip

    assert (result.returncode, result.stdout) == (0, "valid\n"), result.stderr
    assert PAYMENT.secret not in result.stdout + result.stderr


def test_an_unreadable_body_file_is_a_usage_error_not_a_verdict(secret_file: Path, tmp_path: Path):
    result = webhook_verify(
        "--body-file", str(tmp_path / "missing.body"),
        "--timestamp", PAYMENT.timestamp,
        "--signature", PAYMENT.signature,
        "--secret-file", str(secret_file),
    )  # fmt: skip

    assert result.returncode == 2
    assert result.stdout == ""
    assert "missing.body" in result.stderr

"""Settings: every environment variable the service reads, validated once at start.

``load_settings(environ)`` is called by the composition root (``pipeline/bootstrap.py``) and nowhere else.
The variable names are the requirement's (``NODE_ENV`` became ``APP_ENV``; ``MONGO_URI`` became
``DATABASE_URL``). Each secret may instead be given as ``NAME_FILE``, a path whose contents are the value
(Docker and Kubernetes secrets). Errors name the variable and never echo its value.

We group the flat variables into one section per outside system (STYLE §10). pydantic-settings reads
nested sections only from delimited names (``POSTGRES__URL``), which would break the required variable
names, so the mapping below is written out and validated with plain pydantic models.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import limits
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from payments.bridges.smtp.url import SmtpUrl
from payments.domain.fraud.rules import DEFAULT_RULES, FraudRules

#: An email address as we accept it in configuration (one @, no spaces).
_EMAIL: Final = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
#: A browser origin: scheme, host and an optional port; nothing else (CORS compares them exactly).
_ORIGIN: Final = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?")


def _split_list(value: object) -> object:
    """A comma-separated variable (networks, addresses) as a tuple of its non-empty parts."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _check_networks(value: tuple[str, ...]) -> tuple[str, ...]:
    for network in value:
        ipaddress.ip_network(network, strict=False)  # raises ValueError naming the bad entry
    return value


class AppEnv(StrEnum):
    DEVELOPMENT = "development"  #: laptops and `make demo`: built-in development secrets allowed
    TEST = "test"  #: the test suite: as development
    PRODUCTION = "production"  #: every secret must be supplied; development values are refused


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AppSettings(_Section):
    env: AppEnv = AppEnv.DEVELOPMENT
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    service_name: Annotated[str, Field(min_length=1, max_length=64)] = "commdesk-payments"
    prometheus_enabled: bool = True
    #: Read by nothing: the app validates it, and docker/compose.yaml starts Grafana with the compose
    #: profile ``grafana`` (``COMPOSE_PROFILES=grafana``).
    grafana_enabled: bool = False
    #: How long a stopping process waits for in-flight work before closing connections.
    shutdown_grace_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0


class WebSettings(_Section):
    #: Loopback by default; containers set 0.0.0.0.
    host: Annotated[str, Field(min_length=1, max_length=255)] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    #: Upper bound for any request body; the webhook route has its own, smaller limit.
    max_body_bytes: Annotated[int, Field(ge=1024, le=10_485_760)] = 1_048_576
    #: How the outside world reaches this service (Cashfree's notify_url is built from it).
    public_base_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(:\d+)?$")] = "http://127.0.0.1:8080"
    #: How long a write waits for its agent's reply before answering 202 with a status URL.
    command_reply_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10.0
    #: Proxies (IPs or CIDR networks) whose X-Forwarded-For is believed; empty believes no one.
    trusted_proxies: tuple[str, ...] = ()
    #: Browser origins (``https://app.example.com``) allowed to call the API cross-origin; empty: none.
    cors_allowed_origins: tuple[str, ...] = ()

    @field_validator("trusted_proxies", "cors_allowed_origins", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("cors_allowed_origins")
    @classmethod
    def _origins_are_exact(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if _ORIGIN.fullmatch(origin) is None:
                raise ValueError(f"{origin!r} is not an origin: scheme://host[:port], no path or wildcard")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_networks(value)


class PaymentSettings(_Section):
    #: The largest amount one payment may ask for, in the currency's major unit.
    max_amount: Annotated[Decimal, Field(gt=0, le=Decimal("100000000"))] = Decimal("500000")
    #: Currencies a payment may be in (Cashfree enables INR by default).
    currencies: frozenset[str] = frozenset({"INR"})
    #: Size bound of a payment's metadata object, as JSON.
    max_metadata_bytes: Annotated[int, Field(ge=0, le=65_536)] = 4096
    #: How long an Idempotency-Key and its stored response are kept.
    idempotency_ttl_seconds: Annotated[int, Field(ge=60, le=604_800)] = 86_400
    #: How long one gateway call may hold ``lock:payment:{id}``; must exceed a call with its retries.
    lock_ttl_seconds: Annotated[float, Field(gt=0, le=600)] = 120.0
    #: How long a caller queues for that lock before it is told to retry.
    lock_wait_seconds: Annotated[float, Field(ge=0, le=120)] = 15.0

    @field_validator("currencies", mode="before")
    @classmethod
    def _split_currencies(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(part.strip().upper() for part in value.split(",") if part.strip())
        return value


class PostgresSettings(_Section):
    url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/payments")
    pool_min_size: Annotated[int, Field(ge=1, le=100)] = 2
    pool_max_size: Annotated[int, Field(ge=1, le=200)] = 10
    command_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 30.0


class RabbitMQSettings(_Section):
    url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    #: Unacked messages a consumer may hold; small enough that a crash redelivers little work.
    prefetch: Annotated[int, Field(ge=1, le=1000)] = 16
    #: Multiplies every retry-tier delay (30 s, 2 min, 10 min, 30 min); tests use ~0.001.
    retry_delay_scale: Annotated[float, Field(gt=0, le=1)] = 1.0
    publish_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10.0


class RedisSettings(_Section):
    url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")


class CashfreeSettings(_Section):
    app_id: Annotated[str, Field(min_length=1, max_length=128)] = "commdesk-sandbox-app"
    secret_key: SecretStr = SecretStr("insecure-development-cashfree-secret")
    #: PG webhooks are signed with the client secret; set this only for a different (e.g. previous) key.
    webhook_secret: SecretStr | None = None
    base_url: Annotated[str, Field(pattern=r"^https?://")] = "http://127.0.0.1:8090/pg"
    api_version: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")] = "2025-01-01"
    timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 15.0
    #: Retries of one API call after a network error, 5xx or 429 (so up to 1 + this many tries).
    max_retries: Annotated[int, Field(ge=0, le=10)] = 3
    #: Webhooks whose x-webhook-timestamp is further than this from our clock are refused (replay guard).
    webhook_tolerance_seconds: Annotated[int, Field(ge=1, le=86_400)] = 300
    #: Largest webhook body we read; Cashfree's are a few kilobytes.
    webhook_max_body_bytes: Annotated[int, Field(ge=1024, le=1_048_576)] = 65_536
    #: Source addresses (IPs or CIDR networks) allowed to deliver webhooks; empty allows any (the
    #: signature is the real check). Cashfree's: FACTS §7.
    webhook_allowed_sources: tuple[str, ...] = ()
    #: How long a delivered event's key is remembered, so a redelivery is answered without re-queueing.
    webhook_dedup_ttl_seconds: Annotated[int, Field(ge=60, le=2_592_000)] = 604_800

    @field_validator("webhook_allowed_sources", mode="before")
    @classmethod
    def _split_sources(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("webhook_allowed_sources")
    @classmethod
    def _sources_are_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_networks(value)


class SandboxSettings(_Section):
    """The local Cashfree simulator (`payments sandbox`); it signs with ``CASHFREE_SECRET_KEY``."""

    host: Annotated[str, Field(min_length=1, max_length=255)] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8090
    #: Where webhooks go when an order has no ``order_meta.notify_url``.
    webhook_url: Annotated[str, Field(pattern=r"^https?://")] = (
        "http://127.0.0.1:8080/api/v1/webhooks/cashfree"
    )
    #: Sandbox time runs this many times faster than real time (webhook retries, settlements, expiry).
    clock_speed: Annotated[float, Field(gt=0, le=1_000_000)] = 1.0
    #: Sandbox seconds between Order Pay with a test instrument and the attempt's outcome.
    attempt_delay_seconds: Annotated[float, Field(ge=0, le=3600)] = 0.0
    #: Cashfree's sandbox per-minute rate limits (30 orders a minute...); benchmarks switch them off.
    enforce_rate_limits: bool = True


class SecuritySettings(_Section):
    jwt_secret: SecretStr = SecretStr("insecure-development-jwt-secret-change-me-0000")
    #: Tokens must name this issuer and audience; the algorithm is pinned to HS256.
    jwt_issuer: Annotated[str, Field(min_length=1, max_length=200)] = "commdesk"
    jwt_audience: Annotated[str, Field(min_length=1, max_length=200)] = "commdesk-payments"
    #: Lifetime of tokens minted by `payments token`.
    jwt_ttl_seconds: Annotated[int, Field(ge=60, le=2_592_000)] = 3600
    #: base64 of 32 random bytes (AES-256-GCM).
    payment_encryption_key: SecretStr = SecretStr(
        base64.b64encode(b"insecure-development-aes-key-32b").decode()
    )

    #: Keys replaced by a rotation (comma-separated, base64 of 32 bytes each): rows sealed under them
    #: still open until ``payments reencrypt`` has sealed them again under the current key.
    payment_encryption_previous_keys: SecretStr | None = None
    #: The bearer token Alertmanager sends to ``POST /api/v1/admin/alerts/alertmanager``; unset, the
    #: intake refuses every call.
    alertmanager_token: SecretStr | None = None

    @field_validator("jwt_secret", "alertmanager_token")
    @classmethod
    def _secret_is_long(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    @field_validator("payment_encryption_key")
    @classmethod
    def _encryption_key_is_32_bytes(cls, value: SecretStr) -> SecretStr:
        _aes_key(value.get_secret_value())
        return value

    @field_validator("payment_encryption_previous_keys")
    @classmethod
    def _previous_keys_are_32_bytes(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            for part in value.get_secret_value().split(","):
                _aes_key(part.strip())
        return value

    def encryption_keys(self) -> tuple[bytes, tuple[bytes, ...]]:
        """The current personal-data key and the previous ones, decoded."""
        previous = self.payment_encryption_previous_keys
        parts = previous.get_secret_value().split(",") if previous is not None else []
        return _aes_key(self.payment_encryption_key.get_secret_value()), tuple(
            _aes_key(part.strip()) for part in parts if part.strip()
        )


def _aes_key(text: str) -> bytes:
    """An AES-256 key from its base64; the error never repeats the value."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64") from None
    if len(raw) != 32:
        raise ValueError("must decode to exactly 32 bytes")
    return raw


class RateLimitSettings(_Section):
    """Request limits kept in Redis (``limits`` notation: "600/minute", "20 per 10 seconds")."""

    enabled: bool = True
    #: Every API request from one client address (webhooks, health and metrics are not counted).
    per_ip: str = "600/minute"
    #: Every API request of one authenticated user.
    per_user: str = "300/minute"
    #: Money-moving writes of one user: payment create and verify, refund initiate.
    writes: str = "30/minute"

    @field_validator("per_ip", "per_user", "writes")
    @classmethod
    def _is_a_limit(cls, value: str) -> str:
        try:
            limits.parse(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate limit such as '30/minute'") from None
        return value


class SmtpSettings(_Section):
    #: smtp://[user:password@]host[:port][?starttls=auto|required] or smtps://... (bridges/smtp/url.py).
    url: SecretStr = SecretStr("smtp://127.0.0.1:8025")

    @field_validator("url")
    @classmethod
    def _url_parses(cls, value: SecretStr) -> SecretStr:
        SmtpUrl.parse(value.get_secret_value())  # raises ValueError; its message never repeats the URL
        return value


class EmailSettings(_Section):
    """Who emails come from, and the contacts and links they carry (``agents/email.py``)."""

    sender: Annotated[str, Field(min_length=3, max_length=200)] = (
        "CommDesk Payments <payments@commdesk.example>"
    )
    support_email: Annotated[str, Field(pattern=_EMAIL)] = "support@commdesk.example"
    support_phone: Annotated[str, Field(min_length=3, max_length=40)] = "+91 80 4000 0000"
    #: Who receives admin alerts.
    admin_emails: tuple[str, ...] = ("ops@commdesk.example",)
    #: Who receives a copy of every invoice issued (email.invoice.generated), for the books.
    billing_email: Annotated[str, Field(pattern=_EMAIL)] = "billing@commdesk.example"
    #: Where a customer retries a failed payment; ``{paymentId}`` is replaced.
    payment_retry_url: Annotated[str, Field(pattern=r"^https?://\S*\{paymentId\}\S*$")] = (
        "https://app.commdesk.example/billing/payments/{paymentId}/pay"
    )
    smtp_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 15.0

    @field_validator("admin_emails", mode="before")
    @classmethod
    def _split_admins(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("admin_emails")
    @classmethod
    def _admins_are_addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [address for address in value if re.fullmatch(_EMAIL, address) is None]
        if bad or not value:
            raise ValueError("must be one or more email addresses, comma-separated")
        return value


class InvoiceSettings(_Section):
    """What invoices say about their issuer, and where their PDFs are kept."""

    prefix: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]{0,9}$")] = "INV"
    issuer: Annotated[str, Field(min_length=1, max_length=200)] = "CommDesk Technologies Pvt. Ltd."
    issuer_address: Annotated[str, Field(min_length=1, max_length=300)] = "Bengaluru, Karnataka, India"
    #: The issuer's tax registration (GSTIN in India), printed when set.
    issuer_tax_id: Annotated[str, Field(max_length=40)] | None = None
    #: A directory for the PDFs; unset keeps them in PostgreSQL.
    directory: Path | None = None


class ReconciliationSettings(_Section):
    """How reconciliation judges timing (``domain/reconciliation``)."""

    #: A SUCCESS payment should be settled within this long; later is delayed, never is missing.
    #: Fractions allowed: the local sandbox settles at once, so the demo and tests use seconds.
    settlement_sla_hours: Annotated[float, Field(gt=0, le=24 * 60)] = 72.0
    #: A webhook still unprocessed this long after it arrived is reported.
    webhook_grace_minutes: Annotated[int, Field(ge=1, le=10_080)] = 30
    #: The scheduled run covers this many days up to the start of today (IST). Keep it a day longer
    #: than the settlement SLA, or a payment's last nightly run comes before its settlement is due.
    lookback_days: Annotated[int, Field(ge=1, le=90)] = 4


class WorkerSettings(_Section):
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9101
    outbox_batch_size: Annotated[int, Field(ge=1, le=10_000)] = 200
    #: The relay is woken by NOTIFY; this poll is only the safety net for a missed notification.
    outbox_poll_seconds: Annotated[float, Field(gt=0, le=60)] = 2.0


class FraudSettings(_Section):
    enabled: bool = True
    #: The rule set (``domain/fraud/rules.py``); JSON in ``FRAUD_RULES`` replaces the defaults whole.
    rules: FraudRules = DEFAULT_RULES
    #: A fraud alert about one rule and subject is raised at most once per cooldown.
    alert_cooldown_seconds: Annotated[int, Field(ge=0, le=604_800)] = 900

    @field_validator("rules", mode="before")
    @classmethod
    def _rules_from_json(cls, value: object) -> object:
        return FraudRules.model_validate_json(value) if isinstance(value, str) else value


class AlertSettings(_Section):
    """Thresholds of the operational alerts (``agents/alerts.py``)."""

    #: The window failure rates, webhook failures and refund spikes are counted in.
    window_seconds: Annotated[int, Field(ge=10, le=86_400)] = 300
    #: Failed / (failed + succeeded) above this, per payment method or overall, raises an alert ...
    failure_rate_threshold: Annotated[Decimal, Field(gt=0, le=1)] = Decimal("0.5")
    #: ... once the window holds at least this many finished payments.
    min_volume: Annotated[int, Field(ge=1, le=1_000_000)] = 20
    #: Webhooks that failed processing in one window.
    webhook_failures: Annotated[int, Field(ge=1, le=1_000_000)] = 10
    #: Refunds requested in one window.
    refund_spike: Annotated[int, Field(ge=1, le=1_000_000)] = 50
    #: Messages added to dead-letter queues between two polls.
    dlq_growth: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    #: Messages waiting in one work queue.
    queue_depth: Annotated[int, Field(ge=1, le=100_000_000)] = 10_000
    #: How often the broker's queues are polled for DLQ growth and overload.
    poll_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    #: An alert of one kind and subject is raised at most once per cooldown.
    cooldown_seconds: Annotated[int, Field(ge=0, le=604_800)] = 900


class Settings(_Section):
    app: AppSettings = AppSettings()
    web: WebSettings = WebSettings()
    postgres: PostgresSettings = PostgresSettings()
    rabbitmq: RabbitMQSettings = RabbitMQSettings()
    redis: RedisSettings = RedisSettings()
    cashfree: CashfreeSettings = CashfreeSettings()
    security: SecuritySettings = SecuritySettings()
    smtp: SmtpSettings = SmtpSettings()
    worker: WorkerSettings = WorkerSettings()
    email: EmailSettings = EmailSettings()
    invoices: InvoiceSettings = InvoiceSettings()
    reconciliation: ReconciliationSettings = ReconciliationSettings()
    sandbox: SandboxSettings = SandboxSettings()
    payments: PaymentSettings = PaymentSettings()
    fraud: FraudSettings = FraudSettings()
    alerts: AlertSettings = AlertSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()


#: Environment variable -> (section, field). Also the list `.env.example` documents.
VARIABLES: Final[Mapping[str, tuple[str, str]]] = {
    "APP_ENV": ("app", "env"),
    "LOG_LEVEL": ("app", "log_level"),
    "SERVICE_NAME": ("app", "service_name"),
    "PROMETHEUS_ENABLED": ("app", "prometheus_enabled"),
    "GRAFANA_ENABLED": ("app", "grafana_enabled"),
    "SHUTDOWN_GRACE_SECONDS": ("app", "shutdown_grace_seconds"),
    "HOST": ("web", "host"),
    "PORT": ("web", "port"),
    "MAX_BODY_BYTES": ("web", "max_body_bytes"),
    "PUBLIC_BASE_URL": ("web", "public_base_url"),
    "COMMAND_REPLY_TIMEOUT_SECONDS": ("web", "command_reply_timeout_seconds"),
    "TRUSTED_PROXIES": ("web", "trusted_proxies"),
    "CORS_ALLOWED_ORIGINS": ("web", "cors_allowed_origins"),
    "RATE_LIMITS_ENABLED": ("rate_limits", "enabled"),
    "RATE_LIMIT_PER_IP": ("rate_limits", "per_ip"),
    "RATE_LIMIT_PER_USER": ("rate_limits", "per_user"),
    "RATE_LIMIT_WRITES": ("rate_limits", "writes"),
    "PAYMENT_MAX_AMOUNT": ("payments", "max_amount"),
    "PAYMENT_CURRENCIES": ("payments", "currencies"),
    "PAYMENT_MAX_METADATA_BYTES": ("payments", "max_metadata_bytes"),
    "IDEMPOTENCY_TTL_SECONDS": ("payments", "idempotency_ttl_seconds"),
    "PAYMENT_LOCK_TTL_SECONDS": ("payments", "lock_ttl_seconds"),
    "PAYMENT_LOCK_WAIT_SECONDS": ("payments", "lock_wait_seconds"),
    "DATABASE_URL": ("postgres", "url"),
    "DATABASE_POOL_MIN_SIZE": ("postgres", "pool_min_size"),
    "DATABASE_POOL_MAX_SIZE": ("postgres", "pool_max_size"),
    "DATABASE_COMMAND_TIMEOUT_SECONDS": ("postgres", "command_timeout_seconds"),
    "RABBITMQ_URL": ("rabbitmq", "url"),
    "RABBITMQ_PREFETCH": ("rabbitmq", "prefetch"),
    "RETRY_DELAY_SCALE": ("rabbitmq", "retry_delay_scale"),
    "RABBITMQ_PUBLISH_TIMEOUT_SECONDS": ("rabbitmq", "publish_timeout_seconds"),
    "REDIS_URL": ("redis", "url"),
    "CASHFREE_APP_ID": ("cashfree", "app_id"),
    "CASHFREE_SECRET_KEY": ("cashfree", "secret_key"),
    "CASHFREE_WEBHOOK_SECRET": ("cashfree", "webhook_secret"),
    "CASHFREE_BASE_URL": ("cashfree", "base_url"),
    "CASHFREE_API_VERSION": ("cashfree", "api_version"),
    "CASHFREE_TIMEOUT_SECONDS": ("cashfree", "timeout_seconds"),
    "CASHFREE_MAX_RETRIES": ("cashfree", "max_retries"),
    "CASHFREE_WEBHOOK_TOLERANCE_SECONDS": ("cashfree", "webhook_tolerance_seconds"),
    "WEBHOOK_MAX_BODY_BYTES": ("cashfree", "webhook_max_body_bytes"),
    "WEBHOOK_ALLOWED_SOURCES": ("cashfree", "webhook_allowed_sources"),
    "WEBHOOK_DEDUP_TTL_SECONDS": ("cashfree", "webhook_dedup_ttl_seconds"),
    "SANDBOX_HOST": ("sandbox", "host"),
    "SANDBOX_PORT": ("sandbox", "port"),
    "SANDBOX_WEBHOOK_URL": ("sandbox", "webhook_url"),
    "SANDBOX_CLOCK_SPEED": ("sandbox", "clock_speed"),
    "SANDBOX_ATTEMPT_DELAY_SECONDS": ("sandbox", "attempt_delay_seconds"),
    "SANDBOX_ENFORCE_RATE_LIMITS": ("sandbox", "enforce_rate_limits"),
    "JWT_SECRET": ("security", "jwt_secret"),
    "JWT_ISSUER": ("security", "jwt_issuer"),
    "JWT_AUDIENCE": ("security", "jwt_audience"),
    "JWT_TTL_SECONDS": ("security", "jwt_ttl_seconds"),
    "PAYMENT_ENCRYPTION_KEY": ("security", "payment_encryption_key"),
    "PAYMENT_ENCRYPTION_PREVIOUS_KEYS": ("security", "payment_encryption_previous_keys"),
    "ALERTMANAGER_TOKEN": ("security", "alertmanager_token"),
    "SMTP_URL": ("smtp", "url"),
    "SMTP_TIMEOUT_SECONDS": ("email", "smtp_timeout_seconds"),
    "EMAIL_FROM": ("email", "sender"),
    "SUPPORT_EMAIL": ("email", "support_email"),
    "SUPPORT_PHONE": ("email", "support_phone"),
    "ADMIN_EMAILS": ("email", "admin_emails"),
    "BILLING_EMAIL": ("email", "billing_email"),
    "PAYMENT_RETRY_URL": ("email", "payment_retry_url"),
    "INVOICE_PREFIX": ("invoices", "prefix"),
    "INVOICE_ISSUER": ("invoices", "issuer"),
    "INVOICE_ISSUER_ADDRESS": ("invoices", "issuer_address"),
    "INVOICE_ISSUER_TAX_ID": ("invoices", "issuer_tax_id"),
    "INVOICE_DIRECTORY": ("invoices", "directory"),
    "RECONCILIATION_SETTLEMENT_SLA_HOURS": ("reconciliation", "settlement_sla_hours"),
    "RECONCILIATION_WEBHOOK_GRACE_MINUTES": ("reconciliation", "webhook_grace_minutes"),
    "RECONCILIATION_LOOKBACK_DAYS": ("reconciliation", "lookback_days"),
    "WORKER_METRICS_PORT": ("worker", "metrics_port"),
    "OUTBOX_BATCH_SIZE": ("worker", "outbox_batch_size"),
    "OUTBOX_POLL_SECONDS": ("worker", "outbox_poll_seconds"),
    "FRAUD_ENABLED": ("fraud", "enabled"),
    "FRAUD_RULES": ("fraud", "rules"),
    "FRAUD_ALERT_COOLDOWN_SECONDS": ("fraud", "alert_cooldown_seconds"),
    "ALERT_WINDOW_SECONDS": ("alerts", "window_seconds"),
    "ALERT_FAILURE_RATE_THRESHOLD": ("alerts", "failure_rate_threshold"),
    "ALERT_MIN_VOLUME": ("alerts", "min_volume"),
    "ALERT_WEBHOOK_FAILURES": ("alerts", "webhook_failures"),
    "ALERT_REFUND_SPIKE": ("alerts", "refund_spike"),
    "ALERT_DLQ_GROWTH": ("alerts", "dlq_growth"),
    "ALERT_QUEUE_DEPTH": ("alerts", "queue_depth"),
    "ALERT_POLL_SECONDS": ("alerts", "poll_seconds"),
    "ALERT_COOLDOWN_SECONDS": ("alerts", "cooldown_seconds"),
}

#: Variables whose value is a secret (or a URL that may embed a password): also read from NAME_FILE.
SECRET_VARIABLES: Final[frozenset[str]] = frozenset(
    {
        "DATABASE_URL",
        "RABBITMQ_URL",
        "REDIS_URL",
        "CASHFREE_SECRET_KEY",
        "CASHFREE_WEBHOOK_SECRET",
        "JWT_SECRET",
        "PAYMENT_ENCRYPTION_KEY",
        "PAYMENT_ENCRYPTION_PREVIOUS_KEYS",
        "ALERTMANAGER_TOKEN",
        "SMTP_URL",
    }
)

#: Secrets that production must set itself: the built-in development values are public.
_REQUIRED_IN_PRODUCTION: Final = ("CASHFREE_SECRET_KEY", "JWT_SECRET", "PAYMENT_ENCRYPTION_KEY")


class SettingsError(Exception):
    """The configuration is invalid; the message names the variables and never their values."""


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build the settings from an environment mapping, or raise ``SettingsError``."""
    sections: dict[str, dict[str, Any]] = {}
    for variable, (section, field) in VARIABLES.items():
        value = _read_variable(environ, variable)
        if value is not None:
            sections.setdefault(section, {})[field] = value
    try:
        settings = Settings.model_validate(sections)
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None
    _refuse_development_secrets_in_production(settings, environ)
    return settings


def _read_variable(environ: Mapping[str, str], variable: str) -> str | None:
    file_variable = f"{variable}_FILE"
    if variable in SECRET_VARIABLES and environ.get(file_variable):
        if environ.get(variable):
            raise SettingsError(f"set either {variable} or {file_variable}, not both")
        path = Path(environ[file_variable])
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise SettingsError(f"{file_variable}: cannot read {path} ({error.strerror})") from None
    value = environ.get(variable)
    return value if value not in (None, "") else None


def _describe(error: ValidationError) -> str:
    names = {location: variable for variable, location in VARIABLES.items()}
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        location = tuple(str(part) for part in item["loc"][:2])
        variable = names.get(
            (location[0], location[1]) if len(location) == 2 else ("", ""), ".".join(location)
        )
        problems.append(f"{variable}: {item['msg']}")
    return "invalid configuration: " + "; ".join(problems)


def _refuse_development_secrets_in_production(settings: Settings, environ: Mapping[str, str]) -> None:
    if settings.app.env is not AppEnv.PRODUCTION:
        return
    missing = [name for name in _REQUIRED_IN_PRODUCTION if _read_variable(environ, name) is None]
    if missing:
        raise SettingsError("invalid configuration: required in production: " + ", ".join(missing))
    # Given, but copied from the development defaults (which are public, in this repository).
    public = [
        name for name in _REQUIRED_IN_PRODUCTION if _secret_of(settings, name) == _secret_of(Settings(), name)
    ]
    if public:
        raise SettingsError(
            "invalid configuration: the development value in production: " + ", ".join(public)
        )


def _secret_of(settings: Settings, variable: str) -> str:
    section, field = VARIABLES[variable]
    secret: SecretStr = getattr(getattr(settings, section), field)
    return secret.get_secret_value()

"""Alertmanager's intake: Prometheus alerts become admin alerts (stored, mailed and streamed live).

``POST /api/v1/admin/alerts/alertmanager`` takes Alertmanager's webhook notification (version 4: a
group of alerts, each ``firing`` or ``resolved``). Alertmanager cannot mint our JWTs, so this route
takes its own bearer token, ``ALERTMANAGER_TOKEN`` (compared in constant time), instead; without the
setting every call is refused.

Each alert becomes an ``Alert`` raised through ``raise_alert``, all in one transaction: stored, then
``email.admin.alert`` from the same outbox, which the email agent mails to ``ADMIN_EMAILS`` and the
admin page shows live. A firing alert is raised at its ``startsAt`` and a resolved one at its
``endsAt``, under the kind ``<alertname>.resolved``: Alertmanager's retries and repeat notifications of
one episode name the same instant, so they store nothing new; the cooldown of ``ALERT_COOLDOWN_SECONDS``
keeps a flapping rule from mailing on every flap.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final

from aiohttp import hdrs, web
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from payments.domain.alerts.model import Alert, Severity
from payments.domain.alerts.service import raise_alert
from payments.domain.errors import Unauthenticated
from payments.domain.unit_of_work import UnitOfWorkFactory
from payments.web.auth import ALERTMANAGER_PATH
from payments.web.keys import METRICS_KEY, SETTINGS_KEY
from payments.web.payment_requests import parse_json, refusal

#: Alert times outside these are not times at all (Go's zero time is year 1).
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(9000, 1, 1, tzinfo=UTC)
#: Where every stored alert of this intake says it came from.
SOURCE: Final = "alertmanager"
#: Labels that say how to route an alert rather than what it is about: not part of its subject.
_ROUTING_LABELS: Final = frozenset({"alertname", "severity", "team"})
_SEVERITIES: Final = {severity.value: severity for severity in Severity}
_MAX_SUBJECT: Final = 200

LabelName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
#: Any text but NUL, which PostgreSQL cannot store in text or jsonb.
LabelText = Annotated[str, StringConstraints(max_length=2048, pattern=r"^[^\x00]*$")]


class _Document(BaseModel):
    # Alertmanager adds fields between releases; the ones we read are checked, the rest ignored.
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class PrometheusAlert(_Document):
    status: Annotated[str, StringConstraints(pattern=r"^(firing|resolved)$")]
    labels: dict[LabelName, LabelText] = Field(max_length=64)
    annotations: dict[LabelName, LabelText] = Field(default_factory=dict, max_length=64)
    starts_at: AwareDatetime = Field(alias="startsAt")
    ends_at: AwareDatetime | None = Field(default=None, alias="endsAt")
    generator_url: LabelText = Field(default="", alias="generatorURL")
    fingerprint: Annotated[str, StringConstraints(max_length=64, pattern=r"^[^\x00]*$")] = ""

    @field_validator("starts_at")
    @classmethod
    def _is_a_real_time(cls, value: datetime) -> datetime:
        moment = _in_utc(value)
        if moment is None:
            raise ValueError(f"must fall in the years {EARLIEST.year} to {LATEST.year - 1}")
        return moment

    @field_validator("ends_at")
    @classmethod
    def _is_a_real_time_or_none(cls, value: datetime | None) -> datetime | None:
        # A firing alert's endsAt is Go's zero time (year 1): "no end yet", not a time.
        return None if value is None else _in_utc(value)

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "unnamed")

    @property
    def resolved(self) -> bool:
        return self.status == "resolved"


def _in_utc(moment: datetime) -> datetime | None:
    """``moment`` in UTC if it is a time an alert can have; None for one outside ``EARLIEST``-``LATEST``
    (which the database could not store, or would return as an infinity)."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        return None
    return utc if EARLIEST <= utc < LATEST else None


class Notification(_Document):
    """Alertmanager's webhook body (``version`` "4"); only its alerts are read."""

    version: Annotated[str, StringConstraints(pattern=r"^4$")]
    alerts: list[PrometheusAlert] = Field(min_length=1, max_length=1000)


class InvalidIntakeToken(Unauthenticated):
    """The intake needs ``Authorization: Bearer <ALERTMANAGER_TOKEN>``."""

    code = "invalid_token"


@dataclass(frozen=True)
class IntakeOptions:
    #: Alerts of one rule and subject are stored at most once per cooldown.
    cooldown: timedelta


_UNIT_OF_WORK_KEY: Final[web.AppKey[UnitOfWorkFactory]] = web.AppKey("alertmanager_unit_of_work")
_OPTIONS_KEY: Final[web.AppKey[IntakeOptions]] = web.AppKey("alertmanager_options")


def alertmanager_routes(
    *, unit_of_work: UnitOfWorkFactory, options: IntakeOptions
) -> Callable[[web.Application], None]:
    """A route setup for ``create_app(extra_setups=...)``: stores the dependencies, adds the route."""

    def setup(app: web.Application) -> None:
        app[_UNIT_OF_WORK_KEY] = unit_of_work
        app[_OPTIONS_KEY] = options
        app.router.add_post(ALERTMANAGER_PATH, receive_alerts, name="admin.alerts.alertmanager")

    return setup


async def receive_alerts(request: web.Request) -> web.Response:
    """``POST /api/v1/admin/alerts/alertmanager``: raise an admin alert for each alert of the group."""
    token = request.config_dict[SETTINGS_KEY].security.alertmanager_token
    authenticate(token.get_secret_value() if token else None, request.headers.get(hdrs.AUTHORIZATION))
    notification = parse_notification(await request.read())
    alerts = sorted((admin_alert(alert) for alert in notification.alerts), key=lambda a: a.dedup_key)
    cooldown = request.config_dict[_OPTIONS_KEY].cooldown
    raised: list[bool] = []
    # One transaction: a failure stores none, Alertmanager retries, and those stored before are not
    # stored twice. Raised in key order: the alert repository locks each key, and one order cannot deadlock.
    async with request.config_dict[_UNIT_OF_WORK_KEY]() as uow:
        for alert in alerts:
            raised.append(await raise_alert(uow, alert, cooldown=cooldown))
    counter = request.config_dict[METRICS_KEY].alertmanager_notifications
    for alert, was_raised in zip(alerts, raised, strict=True):
        status = "resolved" if alert.kind.endswith(".resolved") else "firing"
        counter.labels(status, "raised" if was_raised else "cooled_down").inc()
    return web.json_response({"received": len(alerts), "raised": sum(raised)})


def authenticate(expected: str | None, authorization: str | None) -> None:
    """Pass only ``Bearer <expected>``; compared in constant time, and nothing passes without a token."""
    scheme, _, presented = (authorization or "").strip().partition(" ")
    if expected is None or scheme.lower() != "bearer":
        raise InvalidIntakeToken("the Alertmanager intake needs its bearer token")
    if not hmac.compare_digest(presented.strip().encode(), expected.encode()):
        raise InvalidIntakeToken("the Alertmanager intake needs its bearer token")


def parse_notification(raw: bytes) -> Notification:
    """A valid notification, or the ``ValidationFailed`` naming its first problem."""
    try:
        return Notification.model_validate(parse_json(raw))
    except ValidationError as error:
        raise refusal(error) from None


def admin_alert(alert: PrometheusAlert) -> Alert:
    """The admin alert telling of one Prometheus alert (or of its end)."""
    labels, annotations = alert.labels, alert.annotations
    at = alert.ends_at if alert.resolved and alert.ends_at is not None else alert.starts_at
    summary = annotations.get("summary") or alert.name
    return Alert(
        kind=f"{alert.name}.resolved" if alert.resolved else alert.name,
        subject=subject_of(labels),
        severity=Severity.INFO
        if alert.resolved
        else _SEVERITIES.get(labels.get("severity", ""), Severity.WARNING),
        title=f"Resolved: {summary}" if alert.resolved else summary,
        details=_details(alert),
        since=alert.starts_at,
        raised_at=at,
        source=SOURCE,
    )


def subject_of(labels: Mapping[str, str]) -> str:
    """What the alert is about: its identifying labels as ``name=value``, sorted ("all" when none)."""
    pairs = [f"{name}={value}" for name, value in sorted(labels.items()) if name not in _ROUTING_LABELS]
    return ",".join(pairs)[:_MAX_SUBJECT] or "all"


def _details(alert: PrometheusAlert) -> dict[str, str]:
    details = {
        "status": alert.status,
        "description": alert.annotations.get("description", ""),
        "runbook": alert.annotations.get("runbook_url", ""),
        "startsAt": _iso(alert.starts_at),
        "prometheus": alert.generator_url,
        "fingerprint": alert.fingerprint,
    }
    if alert.resolved and alert.ends_at is not None:
        details["endsAt"] = _iso(alert.ends_at)
    return {name: value for name, value in details.items() if value}


def _iso(moment: datetime) -> str:
    return moment.isoformat()

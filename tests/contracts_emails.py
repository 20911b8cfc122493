"""The ``EmailLog`` contract, run against the in-memory fake and PostgreSQL.

Each contract takes a unit-of-work factory (one that can reach ``uow.emails``). The PostgreSQL database
is shared by the whole run, so every contract works under event ids of its own.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from payments.domain.errors import NotFound
from payments.domain.notification.model import EmailKind, EmailRecord, EmailStatus

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=2)


class Boom(Exception):
    """Raised inside a unit of work to roll it back."""


def an_email(
    *,
    event_id: str | None = None,
    kind: EmailKind = EmailKind.PAYMENT_FAILED,
    recipient: str = "asha@example.com",
    at: datetime = NOW,
) -> EmailRecord:
    return EmailRecord.pending(
        event_id=event_id or f"evt_{uuid.uuid4().hex[:12]}",
        kind=kind,
        recipient=recipient,
        recipient_digest=f"digest:{recipient.strip().lower()}",
        subject="Your payment of INR 499.00 did not go through",
        now=at,
    )


async def begun(uow_factory, record: EmailRecord) -> EmailRecord:
    async with uow_factory() as uow:
        return await uow.emails.begin(record)


async def the_emails_of(uow_factory, event_id: str) -> list[EmailRecord]:
    async with uow_factory() as uow:
        return list(await uow.emails.for_event(event_id))


async def a_new_email_is_recorded_pending_and_read_back_whole(uow_factory) -> None:
    record = an_email()

    stored = await begun(uow_factory, record)

    assert stored == record
    assert stored.status is EmailStatus.PENDING
    assert (stored.attempts, stored.provider_message_id, stored.sent_at) == (0, None, None)
    assert await the_emails_of(uow_factory, record.event_id) == [record]


async def beginning_again_returns_the_stored_email_and_changes_nothing(uow_factory) -> None:
    record = an_email()
    await begun(uow_factory, record)
    async with uow_factory() as uow:
        assert await uow.emails.sent(record.email_id, provider_message_id="q1", now=LATER)

    again = await begun(uow_factory, replace(record, subject="another subject", created_at=LATER))

    assert again.status is EmailStatus.SENT
    assert again.subject == record.subject
    assert again.created_at == NOW
    assert len(await the_emails_of(uow_factory, record.event_id)) == 1


async def one_event_kind_and_recipient_is_one_email_whatever_the_case_of_the_address(uow_factory) -> None:
    record = an_email(recipient="Asha@Example.com")
    await begun(uow_factory, record)
    # Another id for the same key (a digest made another way): the stored email is still the one.
    other = replace(record, email_id=f"eml_{uuid.uuid4().hex}", recipient=" asha@example.com ")

    stored = await begun(uow_factory, other)

    assert stored.email_id == record.email_id
    assert len(await the_emails_of(uow_factory, record.event_id)) == 1


async def other_kinds_and_recipients_of_one_event_are_other_emails(uow_factory) -> None:
    event_id = f"evt_{uuid.uuid4().hex[:12]}"
    records = [
        an_email(event_id=event_id, kind=EmailKind.ADMIN_ALERT, recipient="ops@example.com", at=NOW),
        an_email(event_id=event_id, kind=EmailKind.ADMIN_ALERT, recipient="cto@example.com", at=LATER),
        an_email(event_id=event_id, kind=EmailKind.PAYMENT_FAILED, recipient="ops@example.com", at=LATER),
    ]
    for record in records:
        await begun(uow_factory, record)

    stored = await the_emails_of(uow_factory, event_id)

    assert len({record.email_id for record in records}) == 3
    assert stored[0] == records[0]  # oldest first
    assert sorted(r.email_id for r in stored) == sorted(r.email_id for r in records)
    assert {r.recipient for r in stored} == {"ops@example.com", "cto@example.com"}


async def a_failed_attempt_is_counted_and_the_email_stays_pending(uow_factory) -> None:
    record = an_email()
    await begun(uow_factory, record)

    async with uow_factory() as uow:
        assert await uow.emails.attempt_failed(record.email_id, error="451 try later", now=LATER)
        assert await uow.emails.attempt_failed(record.email_id, error="timed out", now=LATER)

    [stored] = await the_emails_of(uow_factory, record.event_id)
    assert (stored.status, stored.attempts, stored.last_error) == (EmailStatus.PENDING, 2, "timed out")
    assert stored.updated_at == LATER


async def a_sent_email_keeps_its_server_id_and_time_and_nothing_moves_it_again(uow_factory) -> None:
    record = an_email()
    await begun(uow_factory, record)
    async with uow_factory() as uow:
        await uow.emails.attempt_failed(record.email_id, error="451 try later", now=NOW)
        assert await uow.emails.sent(record.email_id, provider_message_id="OK queued as q1", now=LATER)

    async with uow_factory() as uow:
        assert not await uow.emails.sent(record.email_id, provider_message_id="q2", now=LATER)
        assert not await uow.emails.attempt_failed(record.email_id, error="late", now=LATER)
        assert not await uow.emails.gave_up(record.email_id, error="late", now=LATER)

    [stored] = await the_emails_of(uow_factory, record.event_id)
    assert stored.status is EmailStatus.SENT
    assert (stored.attempts, stored.provider_message_id, stored.sent_at) == (2, "OK queued as q1", LATER)


async def giving_up_marks_the_email_failed_and_a_later_try_may_still_send_it(uow_factory) -> None:
    record = an_email()
    await begun(uow_factory, record)
    async with uow_factory() as uow:
        assert await uow.emails.gave_up(record.email_id, error="550 refused", now=LATER)
    [failed] = await the_emails_of(uow_factory, record.event_id)

    # An operator re-drives the message from the DLQ: begin finds it FAILED, and it can still go out.
    assert (await begun(uow_factory, record)).status is EmailStatus.FAILED
    async with uow_factory() as uow:
        assert await uow.emails.sent(record.email_id, provider_message_id="q1", now=LATER)

    assert (failed.status, failed.attempts, failed.last_error) == (EmailStatus.FAILED, 1, "550 refused")
    [sent] = await the_emails_of(uow_factory, record.event_id)
    assert (sent.status, sent.attempts) == (EmailStatus.SENT, 2)


async def an_unknown_email_is_not_found(uow_factory) -> None:
    missing = f"eml_{uuid.uuid4().hex}"
    async with uow_factory() as uow:
        with pytest.raises(NotFound):
            await uow.emails.sent(missing, provider_message_id="q1", now=NOW)
        with pytest.raises(NotFound):
            await uow.emails.attempt_failed(missing, error="x", now=NOW)
        with pytest.raises(NotFound):
            await uow.emails.gave_up(missing, error="x", now=NOW)


async def a_rolled_back_email_leaves_nothing(uow_factory) -> None:
    record = an_email()

    async def begin_then_fail() -> None:
        async with uow_factory() as uow:
            await uow.emails.begin(record)
            raise Boom

    with pytest.raises(Boom):
        await begin_then_fail()

    assert await the_emails_of(uow_factory, record.event_id) == []


async def concurrent_begins_of_one_email_store_it_once(uow_factory) -> None:
    record = an_email()

    results = await asyncio.gather(*(begun(uow_factory, record) for _ in range(8)))

    assert {stored.email_id for stored in results} == {record.email_id}
    assert len(await the_emails_of(uow_factory, record.event_id)) == 1


async def a_long_error_is_cut_to_what_the_record_keeps(uow_factory) -> None:
    record = an_email()
    await begun(uow_factory, record)

    async with uow_factory() as uow:
        await uow.emails.attempt_failed(record.email_id, error="x" * 5000, now=LATER)

    [stored] = await the_emails_of(uow_factory, record.event_id)
    assert stored.last_error == "x" * 1000


EMAIL_CONTRACTS = (
    a_new_email_is_recorded_pending_and_read_back_whole,
    beginning_again_returns_the_stored_email_and_changes_nothing,
    one_event_kind_and_recipient_is_one_email_whatever_the_case_of_the_address,
    other_kinds_and_recipients_of_one_event_are_other_emails,
    a_failed_attempt_is_counted_and_the_email_stays_pending,
    a_sent_email_keeps_its_server_id_and_time_and_nothing_moves_it_again,
    giving_up_marks_the_email_failed_and_a_later_try_may_still_send_it,
    an_unknown_email_is_not_found,
    a_rolled_back_email_leaves_nothing,
    concurrent_begins_of_one_email_store_it_once,
    a_long_error_is_cut_to_what_the_record_keeps,
)

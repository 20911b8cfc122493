"""The storage contract: what every inbox, outbox, audit log and unit of work must do.

Written once, run twice: against the in-memory fakes (tests/unit/test_storage_fakes.py) and against
PostgreSQL (tests/integration/test_storage_contract.py). Each contract is an async function taking a
``StorageHarness``; it uses fresh ids, so it never depends on what else the store holds.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

import pytest

from payments.domain.audit.model import AuditEntry
from payments.domain.errors import Conflict, InvalidPayload
from payments.domain.events import OutgoingEvent
from payments.domain.unit_of_work import UnitOfWork
from payments.pipeline.topology import UnknownRoutingKey

#: Headers every harness gives its units of work, as bootstrap gives trace headers.
CONTRACT_HEADERS: Mapping[str, str] = {"x-request-id": "req-from-unit-of-work", "x-service": "contract"}


@dataclass(frozen=True)
class StoredEvent:
    exchange: str
    routing_key: str
    payload: dict[str, Any]
    headers: dict[str, str]


class StorageHarness(Protocol):
    def unit_of_work(self) -> AbstractAsyncContextManager[UnitOfWork]: ...
    async def inbox_holds(self, consumer: str, event_id: str) -> bool: ...
    async def stored_event(self, event_id: str) -> StoredEvent | None: ...
    async def audit_ids(self, resource_id: str) -> list[int]: ...
    def tampered_audit_row(self, row_id: int) -> AbstractAsyncContextManager[None]:
        """Change one committed row's ``action`` bypassing the log, and put it back on exit."""
        ...


class Abort(Exception):
    """Raised inside a unit of work to make it roll back."""


async def fail_after(storage: StorageHarness, work: Callable[[UnitOfWork], Awaitable[object]]) -> None:
    """Do ``work`` in a unit of work, then raise ``Abort`` so that it rolls back."""
    async with storage.unit_of_work() as uow:
        await work(uow)
        raise Abort


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def an_event(event_id: str, **overrides: Any) -> OutgoingEvent:
    fields: dict[str, Any] = {
        "event_id": event_id,
        "routing_key": "payment.success",
        "payload": {"payment_id": "pay_1"},
        "occurred_at": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    }
    return OutgoingEvent(**(fields | overrides))


def an_entry(resource_id: str, action: str = "payment.captured", **overrides: Any) -> AuditEntry:
    fields: dict[str, Any] = {
        "actor_id": "user_1",
        "action": action,
        "resource_type": "payment",
        "resource_id": resource_id,
        "before_state": {"status": "PROCESSING"},
        "after_state": {"status": "SUCCESS", "amount": Decimal("499.00")},
        "ip_address": "203.0.113.7",
        "user_agent": "pytest",
        "trace_id": "trace-1",
        "request_id": "req-1",
        "created_at": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    }
    return AuditEntry(**(fields | overrides))


async def an_inbox_claim_is_true_once_then_false(storage: StorageHarness) -> None:
    event_id = unique("evt")
    async with storage.unit_of_work() as uow:
        first = await uow.inbox.claim(consumer="payments", event_id=event_id)
        again_in_same_transaction = await uow.inbox.claim(consumer="payments", event_id=event_id)
    async with storage.unit_of_work() as uow:
        again_later = await uow.inbox.claim(consumer="payments", event_id=event_id)
        other_consumer = await uow.inbox.claim(consumer="emails", event_id=event_id)

    assert (first, again_in_same_transaction, again_later, other_consumer) == (True, False, False, True)


async def an_inbox_claim_in_a_rolled_back_unit_of_work_does_not_count(storage: StorageHarness) -> None:
    event_id = unique("evt")
    claims: list[bool] = []

    async def claim(uow: UnitOfWork) -> None:
        claims.append(await uow.inbox.claim(consumer="payments", event_id=event_id))

    with pytest.raises(Abort):
        await fail_after(storage, claim)

    assert claims == [True]
    assert not await storage.inbox_holds("payments", event_id)
    async with storage.unit_of_work() as uow:
        assert await uow.inbox.claim(consumer="payments", event_id=event_id)
    assert await storage.inbox_holds("payments", event_id)


async def a_committed_outbox_event_is_stored_with_its_exchange_and_merged_headers(
    storage: StorageHarness,
) -> None:
    event_id = unique("evt")
    event = an_event(event_id, headers={"x-request-id": "req-from-event", "x-extra": "1"})
    async with storage.unit_of_work() as uow:
        await uow.outbox.add(event)

    assert await storage.stored_event(event_id) == StoredEvent(
        exchange="payment.exchange",
        routing_key="payment.success",
        payload={"payment_id": "pay_1"},
        headers={"x-request-id": "req-from-event", "x-service": "contract", "x-extra": "1"},
    )


async def a_rolled_back_outbox_event_is_never_stored(storage: StorageHarness) -> None:
    event_id = unique("evt")
    with pytest.raises(Abort):
        await fail_after(storage, lambda uow: uow.outbox.add(an_event(event_id)))

    assert await storage.stored_event(event_id) is None


async def a_duplicate_outbox_event_id_is_a_conflict_that_leaves_the_transaction_usable(
    storage: StorageHarness,
) -> None:
    event_id, later_id = unique("evt"), unique("evt")
    async with storage.unit_of_work() as uow:
        await uow.outbox.add(an_event(event_id))
        with pytest.raises(Conflict):
            await uow.outbox.add(an_event(event_id, routing_key="payment.failed"))
        await uow.outbox.add(an_event(later_id))
    with pytest.raises(Conflict):
        async with storage.unit_of_work() as uow:
            await uow.outbox.add(an_event(event_id))

    first, later = await storage.stored_event(event_id), await storage.stored_event(later_id)
    assert first is not None
    assert first.routing_key == "payment.success"
    assert later is not None


async def outbox_events_added_together_are_each_stored_and_one_already_there_is_a_conflict(
    storage: StorageHarness,
) -> None:
    first, second, later = unique("evt"), unique("evt"), unique("evt")
    async with storage.unit_of_work() as uow:
        await uow.outbox.add_all([an_event(first), an_event(second, routing_key="payment.failed")])
    with pytest.raises(Conflict):
        async with storage.unit_of_work() as uow:
            await uow.outbox.add_all([an_event(later), an_event(second)])

    stored = [await storage.stored_event(event_id) for event_id in (first, second, later)]
    assert [event.routing_key if event else None for event in stored] == [
        "payment.success",
        "payment.failed",
        None,  # its transaction failed with the conflict
    ]


async def decimal_and_datetime_payload_values_are_stored_as_strings(storage: StorageHarness) -> None:
    event_id = unique("evt")
    paid_at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    async with storage.unit_of_work() as uow:
        await uow.outbox.add(an_event(event_id, payload={"amount": Decimal("12.50"), "paid_at": paid_at}))

    stored = await storage.stored_event(event_id)
    assert stored is not None
    assert stored.payload == {"amount": "12.50", "paid_at": "2026-03-04T05:06:07+00:00"}


async def an_outbox_payload_that_is_not_json_is_invalid(storage: StorageHarness) -> None:
    event_id = unique("evt")
    async with storage.unit_of_work() as uow:
        with pytest.raises(InvalidPayload):
            await uow.outbox.add(an_event(event_id, payload={"handle": object()}))
        with pytest.raises(InvalidPayload):
            await uow.outbox.add(an_event(event_id, payload={"ratio": float("nan")}))

    assert await storage.stored_event(event_id) is None


async def an_unknown_routing_key_is_refused(storage: StorageHarness) -> None:
    async with storage.unit_of_work() as uow:
        with pytest.raises(UnknownRoutingKey):
            await uow.outbox.add(an_event(unique("evt"), routing_key="invoice.sent"))


async def appended_audit_entries_form_an_intact_chain(storage: StorageHarness) -> None:
    resource = unique("pay")
    async with storage.unit_of_work() as uow:
        for action in ("payment.created", "payment.processing", "payment.captured"):
            await uow.audit.append(an_entry(resource, action))
        within = await uow.audit.verify_chain()
    async with storage.unit_of_work() as uow:
        after_commit = await uow.audit.verify_chain()

    ids = await storage.audit_ids(resource)
    assert len(ids) == 3
    assert ids == sorted(ids)
    assert within.intact
    assert after_commit.intact
    assert after_commit.checked >= 3


async def audit_states_verify_after_storage_whatever_their_key_order_and_numbers(
    storage: StorageHarness,
) -> None:
    resource = unique("pay")
    awkward = {
        "z": {"b": [1, 2.5, "x", None, True], "a": Decimal("10.10")},
        "a": 'नमस्ते "quoted" \n',
        "n": 10**20,
    }
    async with storage.unit_of_work() as uow:
        await uow.audit.append(an_entry(resource, before_state=awkward, after_state=None, actor_id=None))
    async with storage.unit_of_work() as uow:
        result = await uow.audit.verify_chain()

    assert result.intact
    assert len(await storage.audit_ids(resource)) == 1


async def audit_entries_of_a_rolled_back_unit_of_work_leave_no_rows(storage: StorageHarness) -> None:
    resource = unique("pay")
    with pytest.raises(Abort):
        await fail_after(storage, lambda uow: uow.audit.append(an_entry(resource)))
    async with storage.unit_of_work() as uow:
        result = await uow.audit.verify_chain()

    assert await storage.audit_ids(resource) == []
    assert result.intact


async def a_tampered_audit_row_is_reported_by_its_id(storage: StorageHarness) -> None:
    resource = unique("pay")
    async with storage.unit_of_work() as uow:
        for action in ("refund.requested", "refund.approved", "refund.sent"):
            await uow.audit.append(an_entry(resource, action))
    ids = await storage.audit_ids(resource)

    async with storage.tampered_audit_row(ids[1]), storage.unit_of_work() as uow:
        tampered = await uow.audit.verify_chain()
    async with storage.unit_of_work() as uow:
        restored = await uow.audit.verify_chain()

    assert tampered.first_broken_id == ids[1]
    assert not tampered.intact
    assert restored.intact


async def an_audit_entry_with_a_naive_timestamp_is_refused(storage: StorageHarness) -> None:
    resource = unique("pay")
    async with storage.unit_of_work() as uow:
        with pytest.raises(ValueError, match="timezone-aware"):
            await uow.audit.append(an_entry(resource, created_at=datetime(2026, 1, 1, 12, 0)))

    assert await storage.audit_ids(resource) == []


async def concurrent_appenders_form_one_linear_chain(storage: StorageHarness) -> None:
    resource = unique("pay")
    appenders = 4
    # Every unit of work is open before any appends, so the appends really overlap.
    all_open = asyncio.Barrier(appenders)

    async def append_twice(n: int) -> None:
        async with storage.unit_of_work() as uow:
            await all_open.wait()
            await uow.audit.append(an_entry(resource, f"step.{n}.a"))
            await uow.audit.append(an_entry(resource, f"step.{n}.b"))

    await asyncio.gather(*(append_twice(n) for n in range(appenders)))
    async with storage.unit_of_work() as uow:
        result = await uow.audit.verify_chain()

    assert len(await storage.audit_ids(resource)) == 2 * appenders
    assert result.intact, f"chain forks or breaks at row {result.first_broken_id}"


#: Every contract, in the order they read best in a test report.
STORAGE_CONTRACTS: list[Callable[[StorageHarness], Awaitable[None]]] = [
    an_inbox_claim_is_true_once_then_false,
    an_inbox_claim_in_a_rolled_back_unit_of_work_does_not_count,
    a_committed_outbox_event_is_stored_with_its_exchange_and_merged_headers,
    a_rolled_back_outbox_event_is_never_stored,
    a_duplicate_outbox_event_id_is_a_conflict_that_leaves_the_transaction_usable,
    outbox_events_added_together_are_each_stored_and_one_already_there_is_a_conflict,
    decimal_and_datetime_payload_values_are_stored_as_strings,
    an_outbox_payload_that_is_not_json_is_invalid,
    an_unknown_routing_key_is_refused,
    appended_audit_entries_form_an_intact_chain,
    audit_states_verify_after_storage_whatever_their_key_order_and_numbers,
    audit_entries_of_a_rolled_back_unit_of_work_leave_no_rows,
    a_tampered_audit_row_is_reported_by_its_id,
    an_audit_entry_with_a_naive_timestamp_is_refused,
    concurrent_appenders_form_one_linear_chain,
]


def contract_id(contract: Callable[..., object]) -> str:
    return getattr(contract, "__name__", repr(contract))

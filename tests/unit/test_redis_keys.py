"""Redis key names are exactly those of DESIGN §6."""

from __future__ import annotations

from payments.bridges.redis import keys


def test_payment_keys_follow_the_design_names() -> None:
    assert keys.idempotency_payment("idem-1") == "idempotency:payment:idem-1"
    assert keys.payment_lock("pay_42") == "lock:payment:pay_42"


def test_webhook_and_refund_keys_follow_the_design_names() -> None:
    assert keys.webhook_event("evt_7") == "webhook:event:evt_7"
    assert keys.refund_request("rf_9") == "refund:request:rf_9"


def test_each_firing_of_a_scheduled_job_has_its_own_lease_key() -> None:
    assert keys.schedule_lease("reconcile", 28_000_000) == "lease:schedule:reconcile:28000000"
    assert keys.schedule_lease("reconcile", 1) != keys.schedule_lease("reconcile", 2)

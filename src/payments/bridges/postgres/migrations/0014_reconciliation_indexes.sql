-- The reads of a reconciliation run (bridges/postgres/reconciliation.py), bounded by index ranges
-- rather than scans of whole tables: payments created in the range, successful attempts completed in
-- it, and webhooks received in it that did not end SUCCESS.

CREATE INDEX payments_created_at_idx ON payments (created_at);

CREATE INDEX transactions_success_completed_idx ON transactions ((COALESCE(completed_at, updated_at)))
    WHERE status = 'SUCCESS';

CREATE INDEX webhook_logs_unprocessed_received_at_idx ON webhook_logs (received_at)
    WHERE processing_status <> 'SUCCESS';

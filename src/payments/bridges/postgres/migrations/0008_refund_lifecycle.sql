-- The refund lifecycle (domain/refund): the gateway's order id and speed, its status words, an optimistic
-- version for guarded transitions, when the refund settled, and an index for the status poll.
-- provider_refund_id keeps its name; it is the model's gateway_refund_id.

ALTER TABLE refunds
    -- Cashfree refunds are addressed by order (/orders/{order_id}/refunds); nullable for rows written
    -- before this migration, which the UPDATE below fills from their payment.
    ADD COLUMN order_id           text,
    ADD COLUMN speed              text NOT NULL DEFAULT 'STANDARD',
    -- Why the gateway holds or failed the refund, in its own words.
    ADD COLUMN status_description text,
    -- Bumped by every write; a guarded UPDATE names the version it read.
    ADD COLUMN version            integer NOT NULL DEFAULT 1,
    -- When the refund reached SUCCESS, FAILED or REVERSED.
    ADD COLUMN processed_at       timestamptz,
    ADD CONSTRAINT refunds_speed_known CHECK (speed IN ('STANDARD', 'INSTANT')),
    ADD CONSTRAINT refunds_version_positive CHECK (version >= 1);

UPDATE refunds r SET order_id = p.order_id FROM payments p WHERE p.payment_id = r.payment_id;

-- The poll for refunds the gateway has not settled yet, oldest untouched first; settled rows stay out.
CREATE INDEX refunds_unsettled_updated_at_idx ON refunds (updated_at)
    WHERE status IN ('INITIATED', 'PROCESSING');

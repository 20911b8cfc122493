-- Refunds (REQUIREMENTS §14 "refunds"); the states are DESIGN §6's refund machine.

CREATE TABLE refunds (
    refund_id          text PRIMARY KEY,
    payment_id         text NOT NULL REFERENCES payments (payment_id),
    amount             numeric(18, 2) NOT NULL,
    currency           char(3) NOT NULL,
    reason             text,
    status             text NOT NULL DEFAULT 'INITIATED',
    -- Cashfree's cf_refund_id, known once the gateway accepted the refund.
    provider_refund_id text,
    idempotency_key    text,
    retry_count        integer NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT refunds_payment_idempotency_key UNIQUE (payment_id, idempotency_key),
    CONSTRAINT refunds_amount_positive CHECK (amount > 0),
    CONSTRAINT refunds_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT refunds_status_known CHECK (status IN ('INITIATED', 'PROCESSING', 'SUCCESS', 'FAILED', 'REVERSED')),
    CONSTRAINT refunds_retry_count_not_negative CHECK (retry_count >= 0)
);

-- Refunds of one payment: summed under a row lock so refunds never exceed the captured amount.
CREATE INDEX refunds_payment_id_idx ON refunds (payment_id);

-- What a payment needs for checkout and expiry, beyond the requirement's columns.

ALTER TABLE payments
    -- Cashfree's payment_session_id: the customer's checkout opens the order with it.
    ADD COLUMN payment_session_id       text,
    -- When the gateway order stops accepting attempts; the expiry job looks here.
    ADD COLUMN order_expires_at         timestamptz,
    ADD COLUMN description              text,
    ADD COLUMN return_url               text,
    -- The customer's name is personal data too: encrypted like email and phone.
    ADD COLUMN customer_name_ciphertext bytea,
    ADD CONSTRAINT payments_description_length CHECK (char_length(description) <= 500),
    ADD CONSTRAINT payments_return_url_length CHECK (char_length(return_url) <= 250);

-- The expiry job: unpaid payments whose order expired, oldest first.
CREATE INDEX payments_unpaid_expiry_idx ON payments (order_expires_at)
    WHERE status IN ('CREATED', 'PENDING', 'FAILED');

-- A gateway may report an attempt status we do not know yet; we keep it as UNKNOWN, never guess.
ALTER TABLE transactions DROP CONSTRAINT transactions_status_known;
ALTER TABLE transactions ADD CONSTRAINT transactions_status_known CHECK (status IN (
    'SUCCESS', 'NOT_ATTEMPTED', 'FAILED', 'USER_DROPPED', 'VOID', 'CANCELLED', 'PENDING', 'UNKNOWN'
));
-- The attempt's own fields that the payment needs back (method, error, times).
ALTER TABLE transactions
    ADD COLUMN payment_method text,
    ADD COLUMN error_code     text,
    ADD COLUMN error_reason   text,
    ADD COLUMN message        text,
    ADD COLUMN started_at     timestamptz,
    ADD COLUMN completed_at   timestamptz;

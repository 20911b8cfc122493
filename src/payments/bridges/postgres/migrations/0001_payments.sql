-- Payments and their gateway attempts (REQUIREMENTS §14 "payments" and "transactions", in snake_case).
-- Money is NUMERIC(18, 2): Cashfree amounts carry at most two decimals, and a float never holds money.

CREATE TABLE payments (
    payment_id                text PRIMARY KEY,
    order_id                  text NOT NULL,
    user_id                   text NOT NULL,
    gateway                   text NOT NULL DEFAULT 'cashfree',
    gateway_order_id          text,
    gateway_payment_id        text,
    amount                    numeric(18, 2) NOT NULL,
    currency                  char(3) NOT NULL,
    status                    text NOT NULL DEFAULT 'CREATED',
    payment_method            text,
    -- PII is stored only encrypted (AES-GCM) with a keyed hash for look-ups (DESIGN §8).
    customer_email_ciphertext bytea,
    customer_email_hash       bytea,
    customer_phone_ciphertext bytea,
    customer_phone_hash       bytea,
    encryption_key_id         text,
    metadata                  jsonb NOT NULL DEFAULT '{}',
    purpose                   text NOT NULL DEFAULT 'one_time',
    failure_reason            text,
    settlement_status         text,
    settlement_amount         numeric(18, 2),
    is_reconciled             boolean NOT NULL DEFAULT false,
    retry_count               integer NOT NULL DEFAULT 0,
    idempotency_key           text,
    -- Hash of the request body that first used idempotency_key: same key, other body -> refused.
    request_hash              text,
    -- Optimistic concurrency: guarded UPDATEs bump it.
    version                   integer NOT NULL DEFAULT 1,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payments_order_id_key UNIQUE (order_id),
    CONSTRAINT payments_gateway_order_id_key UNIQUE (gateway_order_id),
    CONSTRAINT payments_gateway_payment_id_key UNIQUE (gateway_payment_id),
    CONSTRAINT payments_user_idempotency_key UNIQUE (user_id, idempotency_key),
    CONSTRAINT payments_amount_positive CHECK (amount > 0),
    CONSTRAINT payments_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT payments_status_known CHECK (status IN (
        'CREATED', 'PENDING', 'AUTHORIZING', 'PROCESSING', 'SUCCESS', 'FAILED',
        'EXPIRED', 'CANCELLED', 'REFUNDED', 'PARTIALLY_REFUNDED', 'SETTLED'
    )),
    -- Our own settlement vocabulary; Cashfree's INITIATED/PENDING_WITH_* map to PENDING, SUCCESS to SETTLED.
    CONSTRAINT payments_settlement_status_known CHECK (
        settlement_status IN ('PENDING', 'SETTLED', 'FAILED', 'REVERSED')
    ),
    CONSTRAINT payments_settlement_amount_not_negative CHECK (settlement_amount >= 0),
    CONSTRAINT payments_retry_count_not_negative CHECK (retry_count >= 0),
    CONSTRAINT payments_version_positive CHECK (version >= 1)
);

-- "My payments, newest first" (GET /api/v1/payments/history).
CREATE INDEX payments_user_created_at_idx ON payments (user_id, created_at DESC);
-- Look-ups by a customer's email or phone go through the keyed hash, never the ciphertext.
CREATE INDEX payments_customer_email_hash_idx ON payments (customer_email_hash);
CREATE INDEX payments_customer_phone_hash_idx ON payments (customer_phone_hash);

-- One row per gateway payment attempt: an order may fail, then succeed, with different attempt ids.
CREATE TABLE transactions (
    transaction_id          text PRIMARY KEY,
    payment_id              text NOT NULL REFERENCES payments (payment_id),
    gateway                 text NOT NULL DEFAULT 'cashfree',
    -- Cashfree's cf_payment_id; unique per gateway, so a redelivered webhook cannot add a second row.
    provider_transaction_id text NOT NULL,
    bank_reference          text,
    gateway_response        jsonb NOT NULL DEFAULT '{}',
    amount                  numeric(18, 2) NOT NULL,
    currency                char(3) NOT NULL,
    -- The gateway's attempt status (Cashfree payment_status), not the payment's lifecycle state.
    status                  text NOT NULL,
    settlement_amount       numeric(18, 2),
    settlement_date         timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT transactions_gateway_provider_transaction_id_key UNIQUE (gateway, provider_transaction_id),
    CONSTRAINT transactions_amount_positive CHECK (amount > 0),
    CONSTRAINT transactions_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT transactions_status_known CHECK (status IN (
        'SUCCESS', 'NOT_ATTEMPTED', 'FAILED', 'USER_DROPPED', 'VOID', 'CANCELLED', 'PENDING'
    )),
    CONSTRAINT transactions_settlement_amount_not_negative CHECK (settlement_amount >= 0)
);

CREATE INDEX transactions_payment_id_idx ON transactions (payment_id);

-- Every webhook as received (REQUIREMENTS §14 "webhook_logs"), kept so it can be verified and replayed.

CREATE TABLE webhook_logs (
    id                bigserial PRIMARY KEY,
    -- The dedup key: Cashfree's x-idempotency-key, or one derived from the body (FACTS §7).
    event_id          text NOT NULL,
    event_type        text,
    -- NULL when the body is not JSON; raw_body still holds it.
    payload           jsonb,
    -- The exact bytes as received (UTF-8), because the signature covers the raw body, not its parse.
    raw_body          text NOT NULL,
    headers           jsonb NOT NULL,
    signature         text,
    -- SHA-256 of raw_body, lower-case hex.
    hash              text NOT NULL,
    retry_count       integer NOT NULL DEFAULT 0,
    processing_status text NOT NULL DEFAULT 'RECEIVED',
    failure_reason    text,
    received_at       timestamptz NOT NULL DEFAULT now(),
    processed_at      timestamptz,
    CONSTRAINT webhook_logs_event_id_key UNIQUE (event_id),
    CONSTRAINT webhook_logs_hash_sha256 CHECK (hash ~ '^[0-9a-f]{64}$'),
    CONSTRAINT webhook_logs_retry_count_not_negative CHECK (retry_count >= 0),
    CONSTRAINT webhook_logs_processing_status_known CHECK (
        processing_status IN ('RECEIVED', 'PROCESSING', 'SUCCESS', 'FAILED')
    )
);

-- "Webhooks stuck in RECEIVED for more than N minutes" and the admin failure list.
CREATE INDEX webhook_logs_status_received_at_idx ON webhook_logs (processing_status, received_at);

-- Cashfree's webhook bodies carry the customer's name, email and phone (data.customer_details). From
-- now on the body is kept sealed with the personal-data cipher (AES-256-GCM, the column name as
-- associated data, the key id beside it), like every other personal data; `payments reencrypt` seals
-- the bodies of older rows, which this migration cannot do without the key.
ALTER TABLE webhook_logs
    ALTER COLUMN raw_body DROP NOT NULL,
    ADD COLUMN raw_body_sealed bytea,
    ADD COLUMN raw_body_key_id text,
    ADD CONSTRAINT webhook_logs_body_kept CHECK (
        raw_body IS NOT NULL OR (raw_body_sealed IS NOT NULL AND raw_body_key_id IS NOT NULL)
    );

-- The parsed payload keeps what processing and reconciliation read, not who the customer is.
UPDATE webhook_logs
   SET payload = payload #- '{data,customer_details,customer_name}'
                         #- '{data,customer_details,customer_email}'
                         #- '{data,customer_details,customer_phone}'
 WHERE payload #> '{data,customer_details}' IS NOT NULL;

-- Rows whose body is still in plain text, for `payments reencrypt` to find.
CREATE INDEX webhook_logs_plain_body_idx ON webhook_logs (id) WHERE raw_body IS NOT NULL;

-- Which gateway sent a webhook and in which payload version: needed to read it again (reprocess) and
-- to park versions the code does not know yet.

ALTER TABLE webhook_logs
    ADD COLUMN provider    text NOT NULL DEFAULT 'cashfree',
    ADD COLUMN api_version text,
    -- The gateway's id of the order the event is about, once read: the payment's webhook history.
    ADD COLUMN order_id    text;

CREATE INDEX webhook_logs_order_id_idx ON webhook_logs (order_id) WHERE order_id IS NOT NULL;

-- Every email we send (domain/notification): one row per message, kind and recipient, so a message
-- delivered twice finds its row and sends nothing the second time.

CREATE TABLE emails (
    -- Derived from the event id, the kind and the recipient's keyed hash (domain email_id_for).
    email_id            text PRIMARY KEY,
    -- The message that asked for it (its message id on email.exchange).
    event_id            text NOT NULL,
    kind                text NOT NULL,
    template            text NOT NULL,
    -- The recipient is personal data: AES-GCM ciphertext with its key id, and a keyed hash to match
    -- on (bridges/postgres/pii.py). No plaintext address is stored.
    recipient_sealed    bytea NOT NULL,
    recipient_key_id    text NOT NULL,
    recipient_hash      bytea NOT NULL,
    subject             text NOT NULL,
    status              text NOT NULL DEFAULT 'PENDING',
    -- Tries so far, failed or not.
    attempts            integer NOT NULL DEFAULT 0,
    -- What the mail server answered when it took the message (its queue id).
    provider_message_id text,
    -- The last failure, masked.
    last_error          text,
    created_at          timestamptz NOT NULL,
    -- The last change: the last try, failed or not.
    updated_at          timestamptz NOT NULL,
    sent_at             timestamptz,
    CONSTRAINT emails_event_kind_recipient_key UNIQUE (event_id, kind, recipient_hash),
    CONSTRAINT emails_kind_known CHECK (kind IN (
        'payment_success', 'payment_failed', 'payment_refund', 'invoice_generated', 'admin_alert'
    )),
    CONSTRAINT emails_status_known CHECK (status IN ('PENDING', 'SENT', 'FAILED')),
    CONSTRAINT emails_attempts_not_negative CHECK (attempts >= 0),
    -- A sent email says when, and what the server called it.
    CONSTRAINT emails_sent_has_time CHECK (status <> 'SENT' OR sent_at IS NOT NULL),
    CONSTRAINT emails_last_error_length CHECK (char_length(last_error) <= 1000)
);

-- "Emails still pending or failed", oldest first: what an operator looks at after an SMTP outage.
CREATE INDEX emails_status_created_at_idx ON emails (status, created_at) WHERE status <> 'SENT';
-- "Emails sent to this address" without decrypting: through the keyed hash.
CREATE INDEX emails_recipient_hash_idx ON emails (recipient_hash);

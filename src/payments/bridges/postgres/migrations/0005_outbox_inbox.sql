-- The transactional outbox and the consumer inbox (DESIGN §5.2 and §5.3).

CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    -- Consumers deduplicate on it, so a re-publish after a relay crash is harmless.
    event_id     text NOT NULL,
    exchange     text NOT NULL,
    routing_key  text NOT NULL,
    payload      jsonb NOT NULL,
    headers      jsonb NOT NULL DEFAULT '{}',
    occurred_at  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    CONSTRAINT outbox_event_id_key UNIQUE (event_id)
);

-- The relay's work list: only unpublished rows, in insertion order; stays small however old the table is.
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
-- Pruning published rows by age.
CREATE INDEX outbox_published_at_idx ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Wakes the relay (LISTEN outbox_events). NOTIFY is delivered at commit, and identical notifications
-- of one transaction are folded into one, so a statement-level trigger costs one message per commit.
CREATE FUNCTION outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_events', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_notify_after_insert
    AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- Events each consumer has handled, written in the same transaction as the handling's effects.
CREATE TABLE inbox (
    consumer     text NOT NULL,
    event_id     text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Pruning old claims once redelivery of their events is no longer possible.
CREATE INDEX inbox_processed_at_idx ON inbox (processed_at);

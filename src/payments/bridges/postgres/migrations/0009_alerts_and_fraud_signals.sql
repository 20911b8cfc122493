-- Admin alerts (domain/alerts) and fraud signals (domain/fraud/signals.py).

CREATE TABLE alerts (
    alert_id   text PRIMARY KEY,
    -- Orders alerts for the live stream; a client resumes after the last one it saw (Last-Event-ID).
    sequence   bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    kind       text NOT NULL,
    subject    text NOT NULL,
    -- kind:subject; alerts with one key share a cooldown.
    dedup_key  text NOT NULL,
    severity   text NOT NULL,
    title      text NOT NULL,
    details    jsonb NOT NULL DEFAULT '{}',
    since      timestamptz NOT NULL,
    raised_at  timestamptz NOT NULL,
    source     text NOT NULL,
    CONSTRAINT alerts_severity_known CHECK (severity IN ('info', 'warning', 'critical'))
);

-- The cooldown check: the latest alert of one key.
CREATE INDEX alerts_dedup_key_raised_at_idx ON alerts (dedup_key, raised_at DESC);

CREATE TABLE fraud_signals (
    signal_id      text PRIMARY KEY,
    rule           text NOT NULL,
    verdict        text NOT NULL,
    score          integer NOT NULL,
    subject_kind   text NOT NULL,
    -- Never personal data: emails and phones are keyed digests here.
    subject        text NOT NULL,
    -- No foreign key: a signal about the traffic as a whole has no payment, and signals are evidence
    -- that must outlive whatever they point at.
    payment_id     text,
    user_id        text,
    observed       bigint NOT NULL,
    threshold      bigint NOT NULL,
    window_seconds integer NOT NULL,
    details        jsonb NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL,
    CONSTRAINT fraud_signals_verdict_known CHECK (verdict IN ('allow', 'review', 'block')),
    CONSTRAINT fraud_signals_score_range CHECK (score BETWEEN 0 AND 100)
);

CREATE INDEX fraud_signals_payment_id_idx ON fraud_signals (payment_id) WHERE payment_id IS NOT NULL;
CREATE INDEX fraud_signals_created_at_idx ON fraud_signals (created_at DESC);

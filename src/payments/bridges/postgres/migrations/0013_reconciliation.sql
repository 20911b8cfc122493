-- Reconciliation (domain/reconciliation): the gateway's settlements as we received them, each run of the
-- reconciliation engine, and the discrepancies it found. Items are resolved by later evidence, never deleted.

CREATE TABLE settlements (
    -- The gateway's id of the payout (Cashfree's cf_settlement_id); one payout covers many orders.
    settlement_id     text NOT NULL,
    -- The gateway's id of the attempt that was settled (Cashfree's cf_payment_id).
    attempt_id        text,
    order_id          text NOT NULL,
    -- NULL when no payment of ours has this order id: an orphan the reconciliation run reports.
    payment_id        text REFERENCES payments (payment_id),
    order_amount      numeric(18, 2) NOT NULL,
    service_charge    numeric(18, 2) NOT NULL,
    service_tax       numeric(18, 2) NOT NULL,
    -- order_amount - service_charge - service_tax, as the gateway paid it out.
    settlement_amount numeric(18, 2) NOT NULL,
    currency          char(3) NOT NULL,
    -- The bank UTR of the payout.
    utr               text,
    paid_at           timestamptz,
    settled_at        timestamptz,
    recorded_at       timestamptz NOT NULL,
    -- A settlement reported twice (webhook, then the scheduled pull) is one row.
    CONSTRAINT settlements_settlement_order_key UNIQUE (settlement_id, order_id),
    CONSTRAINT settlements_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT settlements_amounts_not_negative CHECK (
        order_amount >= 0 AND service_charge >= 0 AND service_tax >= 0
    )
);

-- "The settlements of this payment" (reconciliation's view of our records).
CREATE INDEX settlements_payment_id_idx ON settlements (payment_id) WHERE payment_id IS NOT NULL;
CREATE INDEX settlements_order_id_idx ON settlements (order_id);

CREATE TABLE reconciliation_runs (
    run_id        text PRIMARY KEY,
    -- The half-open range [range_start, range_end) of payment creation times the run compared.
    range_start   timestamptz NOT NULL,
    range_end     timestamptz NOT NULL,
    status        text NOT NULL,
    -- Who started it: the crontab, the CLI, an admin.
    trigger       text NOT NULL,
    -- The version of the matching rules: same inputs and rule version give the same report.
    rule_version  text NOT NULL,
    -- SHA-256 of the run's canonical inputs (ours and theirs), once read.
    input_digest  text,
    -- Findings per kind.
    counts        jsonb NOT NULL DEFAULT '{}',
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    error         text,
    -- The failed run this one re-runs.
    rerun_of      text REFERENCES reconciliation_runs (run_id),
    CONSTRAINT reconciliation_runs_status_known CHECK (status IN ('running', 'succeeded', 'failed')),
    CONSTRAINT reconciliation_runs_range_ordered CHECK (range_start < range_end)
);

-- Run history, newest first.
CREATE INDEX reconciliation_runs_started_at_idx ON reconciliation_runs (started_at DESC);

CREATE TABLE reconciliation_items (
    item_id         text PRIMARY KEY,
    kind            text NOT NULL,
    -- Identifies the discrepancy across runs (kind and the records it is about).
    key             text NOT NULL,
    payment_id      text,
    ours            jsonb,
    theirs          jsonb,
    difference      jsonb NOT NULL,
    resolution      text NOT NULL DEFAULT 'open',
    -- The run that first found it, and the latest run that found it again.
    first_run_id    text NOT NULL REFERENCES reconciliation_runs (run_id),
    last_run_id     text NOT NULL REFERENCES reconciliation_runs (run_id),
    -- The range of the run that last found it: a later run whose range contains it may resolve it.
    range_start     timestamptz NOT NULL,
    range_end       timestamptz NOT NULL,
    resolved_by_run text REFERENCES reconciliation_runs (run_id),
    resolved_at     timestamptz,
    created_at      timestamptz NOT NULL,
    CONSTRAINT reconciliation_items_resolution_known CHECK (resolution IN ('open', 'resolved')),
    CONSTRAINT reconciliation_items_resolved_has_run CHECK (
        resolution = 'open' OR (resolved_by_run IS NOT NULL AND resolved_at IS NOT NULL)
    )
);

-- One open item per discrepancy: a run that finds it again updates that item.
CREATE UNIQUE INDEX reconciliation_items_open_key_idx ON reconciliation_items (key) WHERE resolution = 'open';
-- A run's report: what it found and what it resolved.
CREATE INDEX reconciliation_items_last_run_idx ON reconciliation_items (last_run_id);
CREATE INDEX reconciliation_items_resolved_by_run_idx ON reconciliation_items (resolved_by_run)
    WHERE resolved_by_run IS NOT NULL;

-- Which run found which item, with the finding as that run saw it: a run's report stays exactly what it
-- found after later runs see the item again (and rewrite the item's latest view) or resolve it.
CREATE TABLE reconciliation_run_items (
    run_id     text NOT NULL REFERENCES reconciliation_runs (run_id),
    item_id    text NOT NULL REFERENCES reconciliation_items (item_id),
    ours       jsonb,
    theirs     jsonb,
    difference jsonb NOT NULL,
    PRIMARY KEY (run_id, item_id)
);

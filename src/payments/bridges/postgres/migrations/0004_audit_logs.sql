-- The financial audit trail (REQUIREMENTS §14 "audit_logs"): append-only and hash-chained (DESIGN §5.6).
-- Rows are written only by PgAuditLog.append, which links each row to the previous row's hash.

CREATE TABLE audit_logs (
    id            bigserial PRIMARY KEY,
    actor_id      text,
    action        text NOT NULL,
    resource_type text NOT NULL,
    resource_id   text NOT NULL,
    before_state  jsonb,
    after_state   jsonb,
    ip_address    text,
    user_agent    text,
    trace_id      text NOT NULL,
    request_id    text NOT NULL,
    created_at    timestamptz NOT NULL,
    -- NULL only for the first row of the chain.
    prev_hash     text,
    -- SHA-256 (lower-case hex) over prev_hash and this row's canonical fields.
    hash          text NOT NULL,
    CONSTRAINT audit_logs_hash_key UNIQUE (hash),
    CONSTRAINT audit_logs_hash_sha256 CHECK (hash ~ '^[0-9a-f]{64}$')
);

-- "Everything that happened to this payment/refund", for admins and investigations.
CREATE INDEX audit_logs_resource_idx ON audit_logs (resource_type, resource_id, id);

CREATE FUNCTION audit_logs_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_logs is append-only: % is not allowed', TG_OP
        USING HINT = 'Record a correction as a new audit entry instead.';
END;
$$;

CREATE TRIGGER audit_logs_append_only
    BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_logs_refuse_change();

CREATE TRIGGER audit_logs_no_truncate
    BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_refuse_change();

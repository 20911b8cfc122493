-- Invoices (issue 8): one per successful payment, numbered without gaps per year.
--
-- Gap-free, not merely unique: a SEQUENCE hands out numbers outside transactions and never takes one
-- back, so a rolled-back issue would leave a hole. Instead each year has one counter row, bumped with
-- INSERT ... ON CONFLICT DO UPDATE (PgInvoiceRepository.next_sequence) inside the issuing transaction:
-- the row stays locked until that transaction ends, and a rollback undoes the bump.

CREATE TABLE invoice_sequences (
    year          integer PRIMARY KEY,
    -- The last number handed out in the year; the next issue takes last_sequence + 1.
    last_sequence integer NOT NULL,
    CONSTRAINT invoice_sequences_year_range CHECK (year BETWEEN 2000 AND 9999),
    CONSTRAINT invoice_sequences_last_sequence_positive CHECK (last_sequence >= 1)
);

CREATE TABLE invoices (
    invoice_id text PRIMARY KEY,
    -- PREFIX-YEAR-SEQUENCE, e.g. INV-2026-000042 (domain/invoice/model.py invoice_number).
    number     text NOT NULL,
    -- Numbers are taken from the year's counter, so a year without a counter row has no invoices.
    year       integer NOT NULL REFERENCES invoice_sequences (year),
    sequence   integer NOT NULL,
    payment_id text NOT NULL REFERENCES payments (payment_id),
    user_id    text NOT NULL,
    amount     numeric(18, 2) NOT NULL,
    currency   char(3) NOT NULL,
    issued_at  timestamptz NOT NULL,
    -- SHA-256 (lower-case hex) of the PDF, wherever it is kept: reads check the document against it.
    sha256     text NOT NULL,
    -- The PDF; NULL when it is kept in a directory (settings.invoices.directory) as YEAR/NUMBER.pdf.
    pdf        bytea,
    CONSTRAINT invoices_number_key UNIQUE (number),
    CONSTRAINT invoices_year_sequence_key UNIQUE (year, sequence),
    -- One invoice per payment, however often its success is delivered.
    CONSTRAINT invoices_payment_id_key UNIQUE (payment_id),
    CONSTRAINT invoices_sequence_positive CHECK (sequence >= 1),
    -- The number spells out its own year and sequence (the prefix has no hyphen).
    CONSTRAINT invoices_number_format CHECK (
        number ~ ('^[A-Z][A-Z0-9]{0,9}-' || year::text || '-0*' || sequence::text || '$')
    ),
    CONSTRAINT invoices_amount_positive CHECK (amount > 0),
    CONSTRAINT invoices_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT invoices_sha256_hex CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    CONSTRAINT invoices_pdf_matches_sha256 CHECK (pdf IS NULL OR encode(sha256(pdf), 'hex') = sha256)
);

-- "My invoices": a user's documents, newest first.
CREATE INDEX invoices_user_issued_at_idx ON invoices (user_id, issued_at DESC);

-- An issued invoice is a tax document: it is never edited or removed. A correction would be a credit
-- note, a document of its own.
CREATE FUNCTION invoices_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'invoices are immutable: % is not allowed', TG_OP
        USING HINT = 'Issue a credit note instead.';
END;
$$;

CREATE TRIGGER invoices_immutable
    BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoices_refuse_change();

CREATE TRIGGER invoices_no_truncate
    BEFORE TRUNCATE ON invoices
    FOR EACH STATEMENT EXECUTE FUNCTION invoices_refuse_change();

-- Where a payment was created from, for fraud screening (domain/fraud) and as evidence afterwards.
-- Both are optional: payments created before this migration, or without the header, have neither.

ALTER TABLE payments
    -- The client's IP address as the web layer saw it (text: kept exactly as screened and counted).
    ADD COLUMN client_ip          text,
    -- The client's X-Device-Fingerprint header, validated at the edge (1-128 of [A-Za-z0-9._:-]).
    ADD COLUMN device_fingerprint text,
    ADD CONSTRAINT payments_client_ip_length CHECK (char_length(client_ip) <= 128),
    ADD CONSTRAINT payments_device_fingerprint_format CHECK (device_fingerprint ~ '^[A-Za-z0-9._:-]{1,128}$');

-- "Payments from this IP" and "from this device", for investigating a fraud alert.
CREATE INDEX payments_client_ip_created_at_idx ON payments (client_ip, created_at DESC)
    WHERE client_ip IS NOT NULL;
CREATE INDEX payments_device_fingerprint_created_at_idx ON payments (device_fingerprint, created_at DESC)
    WHERE device_fingerprint IS NOT NULL;

-- What ingest keeps per device besides its readings: online state from the status
-- topic, and the last message sequence number seen (gaps show lost or skipped sends).

ALTER TABLE devices
    ADD COLUMN online            boolean,
    ADD COLUMN online_changed_at timestamptz,
    ADD COLUMN last_seq          bigint;

CREATE INDEX dead_letters_device_idx ON dead_letters (device_id, received_at);

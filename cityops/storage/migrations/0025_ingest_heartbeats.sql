-- Each ingest consumer's heartbeat (issue 28, part 4; docs/ingest.md "The stall alert"): one
-- row per consumer (its client id), rewritten every few seconds with what ingest/health.py
-- judges of its own metrics. The alerts rule ingest_stalled (alerts/ingest_stall.py) reads it:
-- a consumer that says it has been reconnecting or stalled for longer than its stall_after_s,
-- or that has not written for that long (killed, host down, no database), opens an alert.

CREATE TABLE ingest_heartbeats (
    client_id     text PRIMARY KEY,
    share_group   text NOT NULL,
    condition     text NOT NULL CHECK (condition IN ('connected', 'reconnecting', 'stalled', 'stopped')),
    alarms        text[] NOT NULL DEFAULT '{}',   -- what has lasted longer than stall_after_s
    state         text NOT NULL DEFAULT '',       -- the one line `cityops ingest --check` prints
    stall_after_s double precision NOT NULL CHECK (stall_after_s > 0),
    started_at    timestamptz NOT NULL,           -- this process's start
    beat_at       timestamptz NOT NULL            -- the database's clock at the last write
);

SELECT cityops_grant('ingest', 'SELECT, INSERT, UPDATE', 'ingest_heartbeats');
SELECT cityops_grant('alerts', 'SELECT', 'ingest_heartbeats');

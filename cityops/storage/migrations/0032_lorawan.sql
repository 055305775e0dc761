-- LoRaWAN end devices behind a network server (issue 22; docs/lorawan.md).
--
-- A device may be a LoRaWAN device: its DevEUI, the network server it is heard through and
-- the codec that reads its bytes. Such a device has no broker secret: it never talks to our
-- broker; its uplinks come through the integration (`cityops lorawan run`).

-- The reporting interval a council asks of a device (seconds; NULL: the device's own default).
-- Native agents read it from their retained config; LoRaWAN devices get it as a downlink.
ALTER TABLE devices ADD COLUMN sample_interval_s integer
    CHECK (sample_interval_s BETWEEN 10 AND 86400);

-- Where a reading's timestamp came from. NULL: the device's own clock (the native agents);
-- 'network': the LoRaWAN network server's receive time (the device sent none);
-- 'device': a LoRaWAN device's own timestamp (datalog entries).
ALTER TABLE frog_readings ADD COLUMN IF NOT EXISTS time_source text;
ALTER TABLE road_readings ADD COLUMN IF NOT EXISTS time_source text;
ALTER TABLE bin_readings ADD COLUMN IF NOT EXISTS time_source text;

CREATE TABLE lorawan_devices (
    device_id          text PRIMARY KEY REFERENCES devices (device_id),
    dev_eui            text NOT NULL UNIQUE CHECK (dev_eui ~ '^[0-9a-f]{16}$'),
    network_server     text CHECK (network_server ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),  -- NULL: any configured
    codec              text NOT NULL CHECK (codec ~ '^(map:)?[a-z0-9][a-z0-9._-]{0,63}$'),
    -- learnt from uplinks, written when they change: where a downlink goes
    heard_via          text,           -- the network server of the last uplink
    application_id     text,
    ns_device_id       text,           -- The Things Stack's device id (its downlink topic names it)
    rejoined_at        timestamptz,    -- a join not yet followed by an uplink (a new session)
    -- from the network server's status events, or the device's own battery channel
    battery_pct        real CHECK (battery_pct BETWEEN 0 AND 100),
    external_power     boolean,
    status_at          timestamptz,
    -- the reporting interval last sent as a downlink (compared with devices.sample_interval_s)
    interval_sent_s    integer
);
-- (A device's session, its frame counter and address, is its latest row in lorawan_uplinks.)

-- Every uplink stored, kept for a while (CITYOPS_LORAWAN__KEEP_UPLINKS_FOR): duplicates are judged
-- against it (the same frame counter within the window, or the same deduplicationId: a redelivery
-- carries its original time, so it is within the window too), a device's latest row is its session
-- (frame counter, address), and health sums its gaps. One index, the key, serves all three.
CREATE TABLE lorawan_uplinks (
    device_id      text NOT NULL,    -- a registered device (no foreign key: a check per row on the hot
                                     -- path, like the readings tables; devices are retired, never deleted)
    received_at    timestamptz NOT NULL,          -- the network server's time
    f_cnt          bigint NOT NULL CHECK (f_cnt >= 0),
    dedup_id       text,
    network_server text NOT NULL,
    dev_addr       text,
    f_port         integer,
    gateways       integer,
    rssi           real,
    snr            real,
    gap            integer NOT NULL DEFAULT 0,    -- frames missed just before this one; -1: a late frame
                                                  -- that filled an earlier gap
    new_session    boolean NOT NULL DEFAULT false,
    readings       integer NOT NULL DEFAULT 0,    -- rows it gave
    stored_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, received_at, f_cnt)
);

-- Decoded JSON from the network server mapped to readings without code, per device profile
-- (ChirpStack's deviceProfileName, The Things Stack's brand/model) or named by a device's codec map:<name>.
CREATE TABLE lorawan_mappings (
    profile    text PRIMARY KEY CHECK (length(profile) BETWEEN 1 AND 128),
    mapping    jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Downlinks the platform sent, and what the network server said of them.
CREATE TABLE lorawan_downlinks (
    id          uuid PRIMARY KEY,              -- ChirpStack's queue item id; acks name it
    device_id   text NOT NULL REFERENCES devices (device_id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    purpose     text NOT NULL CHECK (purpose IN ('sample_interval')),
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    f_port      integer NOT NULL CHECK (f_port BETWEEN 1 AND 223),
    payload     bytea NOT NULL,
    state       text NOT NULL DEFAULT 'sent' CHECK (state IN ('sent', 'transmitted', 'acknowledged', 'refused')),
    settled_at  timestamptz
);
CREATE INDEX lorawan_downlinks_device_idx ON lorawan_downlinks (device_id, created_at);

-- A device's history shows its config changes and the downlinks that carried them.
ALTER TABLE device_events DROP CONSTRAINT device_events_action_check;
ALTER TABLE device_events ADD CONSTRAINT device_events_action_check
    CHECK (action IN ('added', 'updated', 'moved', 'rotated', 'retired', 'downlink'));

-- ingest runs the integration (`cityops lorawan run`, the ingest role): the log, the state, the
-- downlinks and their history; the API registers LoRaWAN devices; rules and alerts read health.
SELECT cityops_grant('ingest', 'SELECT, UPDATE', 'lorawan_devices');
SELECT cityops_grant('ingest', 'SELECT, INSERT, DELETE', 'lorawan_uplinks');
SELECT cityops_grant('ingest', 'SELECT', 'lorawan_mappings');
SELECT cityops_grant('ingest', 'SELECT, INSERT, UPDATE', 'lorawan_downlinks');
SELECT cityops_grant('ingest', 'INSERT', 'device_events');
SELECT cityops_grant('api', 'SELECT, INSERT, UPDATE', 'lorawan_devices');
SELECT cityops_grant('api', 'SELECT', 'lorawan_uplinks, lorawan_downlinks, lorawan_mappings');
SELECT cityops_grant('alerts', 'SELECT', 'lorawan_devices, lorawan_uplinks');
SELECT cityops_grant('rules', 'SELECT', 'lorawan_devices');

-- The device registry and the dead-letter store.

CREATE TABLE devices (
    device_id        text PRIMARY KEY CHECK (device_id ~ '^[a-z0-9][a-z0-9_-]{1,63}$'),
    kind             text NOT NULL CHECK (kind IN ('frog', 'road', 'bin')),
    lon              double precision CHECK (lon BETWEEN -180 AND 180),
    lat              double precision CHECK (lat BETWEEN -90 AND 90),
    household_id     text,              -- frog boxes: the home they are in
    road_segment_id  text,              -- road sensors: the segment they watch
    mobile           boolean NOT NULL DEFAULT false,   -- a gritter-mounted road sensor
    bin_depth_mm     integer CHECK (bin_depth_mm > 0),
    sensor_height_mm integer CHECK (sensor_height_mm >= 0),
    sensor_type      text,              -- e.g. sht31, ds18b20, jsn-sr04t
    calibration      jsonb NOT NULL DEFAULT '{}'::jsonb,
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired')),
    registered_at    timestamptz NOT NULL DEFAULT now(),
    last_seen        timestamptz,
    battery_v        real,
    firmware_version text
);
CREATE INDEX devices_kind_idx ON devices (kind) WHERE status = 'active';

CREATE TABLE dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text NOT NULL,
    device_id   text,                   -- when it could be read from the topic or payload
    reason      text NOT NULL,
    payload     bytea NOT NULL
);
CREATE INDEX dead_letters_received_idx ON dead_letters (received_at);

-- One readings table per device kind, keyed by (device, device timestamp) so that a
-- replayed reading is a duplicate and is ignored by the write path.

CREATE TABLE frog_readings (
    device_id   text NOT NULL,
    ts          timestamptz NOT NULL,
    air_temp_c  real NOT NULL,
    rh_pct      real NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, ts)
);

CREATE TABLE road_readings (
    device_id      text NOT NULL,
    ts             timestamptz NOT NULL,
    surface_temp_c real,
    air_temp_c     real,
    surface_state  text CHECK (surface_state IN ('dry', 'damp', 'wet', 'ice')),
    lat            double precision,    -- mobile (gritter) sensors only
    lon            double precision,
    received_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, ts)
);

CREATE TABLE bin_readings (
    device_id     text NOT NULL,
    ts            timestamptz NOT NULL,
    distance_mm   real,
    fill_fraction real CHECK (fill_fraction BETWEEN 0 AND 1),
    temp_c        real,
    tilt_deg      real,
    received_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, ts)
);

CREATE INDEX frog_readings_ts_idx ON frog_readings (ts);
CREATE INDEX road_readings_ts_idx ON road_readings (ts);
CREATE INDEX bin_readings_ts_idx ON bin_readings (ts);

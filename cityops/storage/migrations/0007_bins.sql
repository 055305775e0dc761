-- Bins (rules/bins, rules/routing): per-bin settings, complaints, the depots and fleets,
-- and what the bins runner writes: priorities (with the time computed), fire/tilt events
-- for alerts, and collection plans with their ordered stops. Plain tables on both back ends.

CREATE TABLE bin_settings (
    device_id           text PRIMARY KEY,
    bin_type            text NOT NULL DEFAULT 'general' CHECK (bin_type IN ('general', 'recycling', 'food')),
    place               text NOT NULL DEFAULT '' CHECK (place IN ('', 'town_centre', 'school')),
    volume_l            integer NOT NULL DEFAULT 240 CHECK (volume_l > 0),
    collection_weekdays smallint[] NOT NULL DEFAULT '{0}',  -- the fixed schedule, Monday = 0
    depot_id            text,                               -- NULL: the first depot
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bin_complaints (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id   text NOT NULL,
    reported_at timestamptz NOT NULL DEFAULT now(),
    note        text
);
CREATE INDEX bin_complaints_device_idx ON bin_complaints (device_id, reported_at);

CREATE TABLE bin_depots (
    depot_id    text PRIMARY KEY,
    lon         double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    lat         double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    trucks      integer NOT NULL CHECK (trucks > 0),
    capacity_l  integer NOT NULL CHECK (capacity_l > 0),
    shift_start time NOT NULL DEFAULT '06:00',             -- UTC
    shift_h     real NOT NULL DEFAULT 8 CHECK (shift_h > 0),
    break_min   real NOT NULL DEFAULT 30 CHECK (break_min >= 0),
    speed_kmh   real NOT NULL DEFAULT 25 CHECK (speed_kmh > 0),
    max_trips   integer NOT NULL DEFAULT 1 CHECK (max_trips >= 1)   -- >1: tip at the depot and go out again
);

CREATE TABLE bin_priorities (
    device_id          text NOT NULL,
    data_until         timestamptz NOT NULL,
    computed_at        timestamptz NOT NULL DEFAULT now(),
    status             text NOT NULL CHECK (status IN ('ok', 'learning', 'unknown')),
    fill               real,
    hours_to_threshold real,             -- NULL unknown; 'Infinity' not filling
    hours_low          real,
    hours_high         real,
    overflow_risk      real,
    score              real NOT NULL,
    mandatory          boolean NOT NULL,
    reasons            text NOT NULL,
    PRIMARY KEY (device_id, data_until)
);
CREATE INDEX bin_priorities_until_idx ON bin_priorities (data_until);

CREATE TABLE bin_events (
    device_id   text NOT NULL,
    ts          timestamptz NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('fire', 'tilt')),
    value       real NOT NULL,
    message     text NOT NULL,
    detected_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, ts, kind)
);

CREATE TABLE bin_plans (
    plan_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    depot_id    text NOT NULL,
    shift_start timestamptz NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    feasible    boolean NOT NULL,
    distance_m  bigint NOT NULL,
    solve_s     real NOT NULL,
    skipped     jsonb NOT NULL,            -- optional bins left for another day
    missed      jsonb NOT NULL,            -- mandatory bins that did not fit
    notes       jsonb NOT NULL,
    geojson     jsonb NOT NULL             -- one FeatureCollection per truck
);
CREATE INDEX bin_plans_shift_idx ON bin_plans (depot_id, shift_start);

CREATE TABLE bin_plan_stops (
    plan_id      bigint NOT NULL REFERENCES bin_plans (plan_id) ON DELETE CASCADE,
    truck        integer NOT NULL,
    seq          integer NOT NULL,
    device_id    text NOT NULL,
    arrive       timestamptz NOT NULL,
    depart       timestamptz NOT NULL,
    trip         integer NOT NULL DEFAULT 1,   -- the truck's trip out from the depot
    load_after_l integer NOT NULL,                -- on this trip
    PRIMARY KEY (plan_id, truck, seq)
);

-- Gritting (rules/gritting, rules/gritting_runner.py, docs/gritting.md): the road network
-- (`cityops roads import`), bought road-weather forecasts (`cityops roads forecast import`),
-- and what each gritting run decided: per segment, per route, and the route plans.
-- The latest run is max(run_id). Plain tables on both back ends.

-- Road sensors may report the air's relative humidity, for the frost point.
ALTER TABLE road_readings ADD COLUMN IF NOT EXISTS rh_pct real;

CREATE TABLE road_depots (
    depot_id   text PRIMARY KEY,
    name       text NOT NULL DEFAULT '',
    lon        double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    lat        double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE gritting_routes (
    route_id         text PRIMARY KEY,
    name             text NOT NULL DEFAULT '',
    depot_id         text NOT NULL REFERENCES road_depots (depot_id),
    vehicles         integer NOT NULL DEFAULT 1 CHECK (vehicles >= 1),
    salt_capacity_kg real NOT NULL CHECK (salt_capacity_kg > 0),
    max_trips        integer NOT NULL DEFAULT 4 CHECK (max_trips >= 1),   -- per vehicle: reloads at the depot
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE road_segments (
    segment_id       text PRIMARY KEY,
    name             text NOT NULL DEFAULT '',
    route_id         text REFERENCES gritting_routes (route_id),   -- NULL: network only (deadheading)
    priority         smallint NOT NULL CHECK (priority BETWEEN 1 AND 3),
    length_m         real NOT NULL CHECK (length_m > 0),
    width_m          real NOT NULL CHECK (width_m > 0),
    thermal_offset_c real NOT NULL DEFAULT 0,            -- against the route average, degC
    thermal_offsets  jsonb,                              -- per weather class: {"extreme": .., "intermediate": .., "damped": ..}
    bridge           boolean NOT NULL DEFAULT false,
    geometry         jsonb NOT NULL,                     -- GeoJSON LineString, lon/lat
    mid_lon          double precision NOT NULL,
    mid_lat          double precision NOT NULL,
    start_node       text NOT NULL,                      -- rounded endpoint coordinates: the graph's nodes
    end_node         text NOT NULL,
    oneway           boolean NOT NULL DEFAULT false,     -- true: only start_node -> end_node
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX road_segments_route_idx ON road_segments (route_id);

-- A bought forecast, per sensor (device_id) or per segment; re-importing the same target
-- and time replaces the value.
CREATE TABLE road_forecasts (
    target_kind text NOT NULL CHECK (target_kind IN ('sensor', 'segment')),
    target_id   text NOT NULL,
    valid_at    timestamptz NOT NULL,
    rst_c       real,
    air_temp_c  real,
    dew_point_c real,
    rh_pct      real CHECK (rh_pct BETWEEN 0 AND 100),
    precip      text NOT NULL DEFAULT 'none'
                CHECK (precip IN ('none', 'rain', 'light_snow', 'heavy_snow', 'freezing_rain')),
    source      text NOT NULL,
    imported_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target_kind, target_id, valid_at)
);
CREATE INDEX road_forecasts_valid_idx ON road_forecasts (valid_at);

CREATE TABLE gritting_runs (
    run_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    computed_at  timestamptz NOT NULL DEFAULT now(),
    as_of        timestamptz NOT NULL,                  -- the "now" of the run (may be simulated)
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    inputs       jsonb NOT NULL,    -- sensors used, dead sensors and why, forecast source, settings
    warnings     jsonb NOT NULL
);

CREATE TABLE gritting_segment_decisions (
    run_id           bigint NOT NULL REFERENCES gritting_runs (run_id) ON DELETE CASCADE,
    segment_id       text NOT NULL,
    route_id         text,
    rst_now_c        real,
    rst_min_c        real,
    rst_min_at       timestamptz,
    frost_point_c    real,
    surface_state    text,
    source           text NOT NULL,
    action           text NOT NULL CHECK (action IN ('treat', 'monitor', 'none')),
    reason           text NOT NULL,
    spread_rate_g_m2 real,
    treatments       smallint NOT NULL DEFAULT 0,
    salt_kg          real,
    hazard_at        timestamptz,                      -- when the road first needs the salt
    PRIMARY KEY (run_id, segment_id)
);

CREATE TABLE gritting_route_decisions (
    run_id         bigint NOT NULL REFERENCES gritting_runs (run_id) ON DELETE CASCADE,
    route_id       text NOT NULL,
    send           boolean NOT NULL,
    reason         text NOT NULL,
    treat_segments integer NOT NULL,
    salt_kg        real NOT NULL,
    freeze_at      timestamptz,
    latest_start   timestamptz,
    treat_km       real,
    duration_min   real,
    PRIMARY KEY (run_id, route_id)
);

CREATE TABLE gritting_plans (
    plan_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id       bigint NOT NULL REFERENCES gritting_runs (run_id) ON DELETE CASCADE,
    route_id     text NOT NULL,
    computed_at  timestamptz NOT NULL DEFAULT now(),
    feasible     boolean NOT NULL,
    distance_m   double precision NOT NULL,
    trips        integer NOT NULL,
    geojson      jsonb NOT NULL,          -- FeatureCollection: one LineString per traversal, in order
    instructions jsonb NOT NULL,          -- [{"trip", "step", "text"}] for the crew
    notes        jsonb NOT NULL DEFAULT '[]'::jsonb,
    solve_s      real,
    seed         integer
);
CREATE INDEX gritting_plans_run_idx ON gritting_plans (run_id, route_id);

-- Damp and mould (rules/damp): per-home settings, the mould index state carried hour by
-- hour, the assessments the runner writes (with the time they were computed), and the
-- householders' activity diary. Plain tables on both back ends.

CREATE TABLE damp_home_settings (
    household_id       text PRIMARY KEY,
    f_rsi              real NOT NULL DEFAULT 0.75 CHECK (f_rsi > 0 AND f_rsi <= 1),
    sensitivity        text NOT NULL DEFAULT 'sensitive'
                       CHECK (sensitivity IN ('very_sensitive', 'sensitive', 'medium_resistant', 'resistant')),
    outdoor_fallback_c real,            -- used when no outdoor sensor is near; NULL: the runner's default
    area               text,            -- ward or area name for council statistics
    social_landlord    boolean NOT NULL DEFAULT false,   -- Awaab's Law timelines apply
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE damp_mould_state (
    device_id    text PRIMARY KEY,
    mould_index  double precision NOT NULL CHECK (mould_index BETWEEN 0 AND 6),
    dry_hours    double precision NOT NULL CHECK (dry_hours >= 0),
    through_hour timestamptz NOT NULL,  -- start of the last hour applied
    sensitivity  text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE damp_assessments (
    device_id             text NOT NULL,
    data_until            timestamptz NOT NULL,   -- end of the last hour the assessment covers
    computed_at           timestamptz NOT NULL DEFAULT now(),
    household_id          text,
    level                 text NOT NULL
                          CHECK (level IN ('none', 'low', 'medium', 'high', 'severe', 'unknown')),
    mould_index           double precision NOT NULL,
    damp_hours_7d         integer NOT NULL,
    condensation_hours_7d integer NOT NULL,
    surface_rh_30d        real,
    surface_t_30d         real,
    reasons               jsonb NOT NULL,
    changes               jsonb NOT NULL,
    faults                jsonb NOT NULL,
    metrics               jsonb NOT NULL,
    PRIMARY KEY (device_id, data_until)
);
CREATE INDEX damp_assessments_household_idx ON damp_assessments (household_id, data_until);

CREATE TABLE damp_diary (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    household_id text NOT NULL,
    ts           timestamptz NOT NULL,
    activity     text NOT NULL CHECK (activity IN ('shower', 'cooking', 'drying_clothes', 'windows_opened',
                                                   'heating_on', 'heating_off')),
    minutes      integer CHECK (minutes > 0),
    note         text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX damp_diary_household_idx ON damp_diary (household_id, ts);

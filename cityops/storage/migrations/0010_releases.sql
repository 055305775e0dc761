-- Fleet releases of the device agent (devices/releases, docs/releases.md): the signed
-- releases, the staged rollouts, which devices each rollout has offered the release to
-- (and in which stage), and every update step the devices reported.

CREATE TABLE releases (
    version      text PRIMARY KEY CHECK (version ~ '^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$'),
    sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    signature    text NOT NULL,
    size_bytes   bigint NOT NULL CHECK (size_bytes > 0),
    path         text NOT NULL,          -- the archive in the release store, served by the API
    manifest     jsonb NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE release_rollouts (
    rollout_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version          text NOT NULL REFERENCES releases (version),
    cohort           jsonb NOT NULL,     -- percent, kinds, area, area_wkt, devices
    stages           jsonb NOT NULL,     -- percentages of the cohort, e.g. [5, 25, 100]
    stage_index      integer NOT NULL DEFAULT 0 CHECK (stage_index >= 0),
    max_failure_rate real NOT NULL CHECK (max_failure_rate >= 0 AND max_failure_rate < 1),
    min_healthy      integer NOT NULL CHECK (min_healthy >= 1),
    state            text NOT NULL DEFAULT 'active'
                     CHECK (state IN ('active', 'paused', 'completed', 'cancelled')),
    reason           text,               -- the last decision, e.g. why it paused
    created_by       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- one open rollout at a time: two would fight over the same devices' config
CREATE UNIQUE INDEX release_rollouts_one_open ON release_rollouts ((state IN ('active', 'paused')))
    WHERE state IN ('active', 'paused');

CREATE TABLE release_targets (
    rollout_id  bigint NOT NULL REFERENCES release_rollouts (rollout_id),
    device_id   text NOT NULL,
    stage_index integer NOT NULL,
    targeted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rollout_id, device_id)
);

CREATE TABLE release_reports (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id    text NOT NULL,
    version      text NOT NULL,
    step         text NOT NULL
                 CHECK (step IN ('downloading', 'verified', 'installed', 'healthy', 'rolled_back', 'failed')),
    from_version text,
    reason       text,
    rollout_id   bigint,
    reported_at  timestamptz NOT NULL,   -- the device's clock
    received_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device_id, version, step, reported_at)  -- a report sent twice is stored once
);
CREATE INDEX release_reports_version_idx ON release_reports (version, device_id, received_at);

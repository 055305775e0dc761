-- Crew jobs (ops_api/routes/jobs.py, docs/api.md): an operator assigns a gritting route to
-- send (from a run's plan) or one truck of a bin collection plan to a crew member, who
-- starts and completes it with a note. Completing feeds back: a bins job records its bins
-- as collected (bin_collections, which the bins runner reads as an emptying), a gritting
-- job records the route as treated (gritting_treatments). Plain tables on both back ends.

CREATE TABLE jobs (
    job_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('gritting', 'bins')),
    state            text NOT NULL DEFAULT 'assigned' CHECK (state IN ('assigned', 'started', 'completed')),
    title            text NOT NULL,
    route_id         text,               -- gritting: the route
    run_id           bigint,             -- gritting: the run that decided to send it
    gritting_plan_id bigint,             -- gritting: gritting_plans.plan_id (NULL: the run made no plan)
    plan_id          bigint REFERENCES bin_plans (plan_id),   -- bins: the collection plan
    truck            integer,            -- bins: the plan's truck
    assigned_to      text NOT NULL REFERENCES users (user_id),
    assigned_by      text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    completed_at     timestamptz,
    completed_by     text,
    note             text,
    skipped          text[] NOT NULL DEFAULT '{}',   -- bins the crew could not empty
    CHECK (kind <> 'gritting' OR route_id IS NOT NULL),
    CHECK (kind <> 'bins' OR (plan_id IS NOT NULL AND truck IS NOT NULL)),
    CHECK ((state = 'completed') = (completed_at IS NOT NULL))
);
CREATE INDEX jobs_assigned_idx ON jobs (assigned_to, created_at DESC);
-- one job per truck of a plan; one unfinished job per gritting route
CREATE UNIQUE INDEX jobs_one_per_truck ON jobs (plan_id, truck) WHERE kind = 'bins';
CREATE UNIQUE INDEX jobs_one_open_per_route ON jobs (route_id) WHERE kind = 'gritting' AND state <> 'completed';

-- A bin emptied by a crew: the bins runner starts the bin's fill cycle here (fill 0).
CREATE TABLE bin_collections (
    device_id    text NOT NULL,
    collected_at timestamptz NOT NULL,
    job_id       bigint REFERENCES jobs (job_id),
    recorded_by  text,
    PRIMARY KEY (device_id, collected_at)
);

-- A gritting route treated by a crew, with the segments the plan spread.
CREATE TABLE gritting_treatments (
    treatment_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    route_id     text NOT NULL,
    treated_at   timestamptz NOT NULL,
    job_id       bigint UNIQUE REFERENCES jobs (job_id),
    run_id       bigint,
    segments     text[] NOT NULL DEFAULT '{}',
    salt_kg      real,
    recorded_by  text
);
CREATE INDEX gritting_treatments_route_idx ON gritting_treatments (route_id, treated_at DESC);

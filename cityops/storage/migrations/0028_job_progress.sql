-- Per-stop progress, cancel and reassign for crew jobs (issue 20; docs/api.md, "Jobs").
--
-- A job gains a crew (extra members of the assignee's role: a bin lorry's loaders) and a
-- `cancelled` state. A crew's phone marks each stop (a bin, a gritting plan's step) done,
-- skipped or pending again, or sends a note, possibly hours later from an offline queue:
-- job_marks keeps every mark once (mark_id is made by the phone: a resent batch stores
-- nothing new); per stop the mark with the latest marked_at wins (jobs/progress.py).
-- job_events is the job's history: assigned, reassigned, started, completed, cancelled.

ALTER TABLE jobs DROP CONSTRAINT jobs_state_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_state_check
    CHECK (state IN ('assigned', 'started', 'completed', 'cancelled'));
ALTER TABLE jobs
    ADD COLUMN crew          text[] NOT NULL DEFAULT '{}',   -- users besides the assignee, same role
    ADD COLUMN cancelled_at  timestamptz,
    ADD COLUMN cancelled_by  text,
    ADD COLUMN cancel_reason text,
    ADD CONSTRAINT jobs_cancelled_check CHECK ((state = 'cancelled') = (cancelled_at IS NOT NULL));
CREATE INDEX jobs_crew_idx ON jobs USING gin (crew);

-- A cancelled job frees its truck or route for a new job.
DROP INDEX jobs_one_per_truck;
CREATE UNIQUE INDEX jobs_one_per_truck ON jobs (plan_id, truck) WHERE kind = 'bins' AND state <> 'cancelled';
DROP INDEX jobs_one_open_per_route;
CREATE UNIQUE INDEX jobs_one_open_per_route ON jobs (route_id)
    WHERE kind = 'gritting' AND state NOT IN ('completed', 'cancelled');

CREATE TABLE job_marks (
    mark_id     uuid PRIMARY KEY,                 -- made by the phone: idempotency
    job_id      bigint NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
    stop        text,                             -- NULL: a note on the whole job
    status      text NOT NULL CHECK (status IN ('done', 'skipped', 'pending', 'note')),
    reason      text CHECK (reason IN ('blocked', 'contaminated', 'not_out', 'damaged', 'other')),
    note        text NOT NULL DEFAULT '' CHECK (length(note) <= 500),
    marked_at   timestamptz NOT NULL,             -- the phone's time of the tap, at most received_at
    received_at timestamptz NOT NULL,
    received    bigint GENERATED ALWAYS AS IDENTITY,   -- order of receipt: breaks marked_at ties
    marked_by   text NOT NULL REFERENCES users (user_id),
    CHECK (status <> 'skipped' OR reason IS NOT NULL),
    CHECK (status = 'note' OR stop IS NOT NULL),
    CHECK (marked_at <= received_at)
);
CREATE INDEX job_marks_job_idx ON job_marks (job_id, stop);

CREATE TABLE job_events (
    event_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id    bigint NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
    at        timestamptz NOT NULL,
    by_user   text,
    what      text NOT NULL CHECK (what IN ('assigned', 'reassigned', 'started', 'completed', 'cancelled')),
    reason    text,
    from_user text,                               -- reassigned: the assignee before
    to_user   text,                               -- assigned, reassigned: the assignee after
    members   text[] NOT NULL DEFAULT '{}'        -- assigned, reassigned: assignee and crew after
);
CREATE INDEX job_events_job_idx ON job_events (job_id, at, event_id);

-- The history of the jobs made before this migration, as far as the jobs table tells it.
INSERT INTO job_events (job_id, at, by_user, what, to_user, members)
SELECT job_id, created_at, assigned_by, 'assigned', assigned_to, ARRAY[assigned_to] FROM jobs;
INSERT INTO job_events (job_id, at, by_user, what)
SELECT job_id, started_at, assigned_to, 'started' FROM jobs WHERE started_at IS NOT NULL;
INSERT INTO job_events (job_id, at, by_user, what)
SELECT job_id, completed_at, completed_by, 'completed' FROM jobs WHERE completed_at IS NOT NULL;

-- The API writes them (0023_roles.sql's rule); the rules read the jobs' history.
SELECT cityops_grant('api', 'SELECT, INSERT, UPDATE, DELETE', 'job_marks, job_events');
SELECT cityops_grant('rules', 'SELECT', 'job_marks, job_events');

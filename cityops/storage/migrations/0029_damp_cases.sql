-- Damp and mould cases (issue 21; cases/, docs/api.md "Cases"): landlord organisations own
-- homes; a home has at most one suggested or open case at a time; every step of a case is
-- one row of its timeline (case_events), whose `milestone` feeds the Awaab's Law clocks
-- (rules/cases/clocks.py); a householder's photos are files outside the rows, recorded
-- here with their checksums (cases/photos.py). Plain tables on both back ends.

CREATE TABLE landlords (
    landlord_id text PRIMARY KEY CHECK (landlord_id ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind        text NOT NULL CHECK (kind IN ('council', 'housing_association', 'private')),
    social      boolean NOT NULL,              -- a social landlord: Awaab's Law applies to its homes
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A household id was a bare id until now (devices.household_id, household_members); a home
-- gives it a landlord and a label. Every household id known today gets a row (no landlord:
-- only council officers see it until an admin sets one with PUT /homes/{household_id}).
CREATE TABLE homes (
    household_id   text PRIMARY KEY,
    landlord_id    text REFERENCES landlords (landlord_id),
    label          text NOT NULL DEFAULT '',   -- an address line or a name the officers know it by
    social_housing boolean NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX homes_landlord_idx ON homes (landlord_id);

INSERT INTO homes (household_id, social_housing)
SELECT h, bool_or(s) FROM (
    SELECT household_id AS h, false AS s FROM devices WHERE household_id IS NOT NULL
    UNION ALL SELECT household_id, false FROM household_members
    UNION ALL SELECT household_id, false FROM users WHERE household_id IS NOT NULL
    UNION ALL SELECT household_id, social_landlord FROM damp_home_settings
) known GROUP BY h
ON CONFLICT DO NOTHING;

-- The landlord role: a housing officer of one landlord organisation (users.landlord_id).
-- Only a landlord officer has one (a user who changes role leaves it); one without it sees
-- no home (the API fails closed).
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('operator', 'gritting_crew', 'waste_crew', 'householder', 'admin', 'landlord'));
ALTER TABLE users ADD COLUMN landlord_id text REFERENCES landlords (landlord_id);
ALTER TABLE users ADD CONSTRAINT users_landlord_check CHECK (landlord_id IS NULL OR role = 'landlord');

CREATE FUNCTION users_leave_landlord() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.role <> 'landlord' THEN
        NEW.landlord_id := NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER users_leave_landlord BEFORE UPDATE OF role ON users
    FOR EACH ROW EXECUTE FUNCTION users_leave_landlord();

CREATE TABLE damp_cases (
    case_id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    household_id       text NOT NULL REFERENCES homes (household_id),
    state              text NOT NULL CHECK (state IN ('suggested', 'open', 'closed', 'dismissed')),
    category           text CHECK (category IN ('emergency', 'significant')),
    category_reason    text,
    created_at         timestamptz NOT NULL,   -- suggested or opened
    opened_at          timestamptz,            -- became an open case (NULL while suggested)
    aware_at           timestamptz,            -- the landlord became aware: the clocks run from here
    aware_how          text CHECK (aware_how IN ('sensor', 'householder', 'officer', 'other')),
    opened_by          text,                   -- a user id, or 'sensor' for a suggestion
    suggestion         jsonb,                  -- a sensor suggestion's evidence (days, levels)
    vulnerabilities    text[] NOT NULL DEFAULT '{}'
                       CHECK (vulnerabilities <@ ARRAY['child_under_5', 'over_65', 'respiratory_condition',
                                                       'disability', 'pregnancy', 'other']::text[]),
    vulnerability_note text,
    vulnerabilities_by text,                   -- who recorded them last
    alt_accommodation  text CHECK (alt_accommodation IN ('not_needed', 'offered', 'accepted', 'declined',
                                                         'in_place', 'ended')),
    alt_accommodation_at   timestamptz,
    alt_accommodation_note text,
    closed_at          timestamptz,            -- closed or dismissed
    closed_by          text,
    closed_reason      text,
    CHECK (state NOT IN ('open', 'closed') OR (category IS NOT NULL AND aware_at IS NOT NULL
                                                AND opened_at IS NOT NULL)),
    CHECK ((state IN ('closed', 'dismissed')) = (closed_at IS NOT NULL))
);
-- one suggested or open case per home at a time
CREATE UNIQUE INDEX damp_cases_one_open_idx ON damp_cases (household_id) WHERE state IN ('suggested', 'open');
CREATE INDEX damp_cases_household_idx ON damp_cases (household_id, created_at DESC);

-- The one timeline: what happened (at), who recorded it, whether the tenant may see it, and
-- the clock milestone it reached, if any (the earliest `at` per milestone counts).
CREATE TABLE case_events (
    event_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id           bigint NOT NULL REFERENCES damp_cases (case_id),
    kind              text NOT NULL CHECK (kind IN ('suggested', 'opened', 'report', 'contact', 'triage',
                          'dismissed', 'investigation', 'summary_sent', 'made_safe', 'safety_works',
                          'further_works', 'alternative_accommodation', 'vulnerability', 'note', 'photo',
                          'closed')),
    at                timestamptz NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    by_user           text,
    visible_to_tenant boolean NOT NULL,
    milestone         text CHECK (milestone IN ('aware', 'investigated', 'summary_sent', 'made_safe',
                          'safety_works_done', 'further_works_begun', 'further_works_started')),
    summary           text NOT NULL,            -- one line in plain words
    details           jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX case_events_case_idx ON case_events (case_id, at, event_id);

CREATE TABLE case_photos (
    photo_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id     bigint NOT NULL REFERENCES damp_cases (case_id),
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    media_type  text NOT NULL,
    bytes       integer NOT NULL CHECK (bytes > 0),
    path        text NOT NULL,                  -- relative to the photo folder (CITYOPS_CASES__PHOTO_DIR)
    uploaded_by text,
    uploaded_at timestamptz NOT NULL
);
CREATE INDEX case_photos_case_idx ON case_photos (case_id, uploaded_at);

-- api: the officers and householders work the cases; rules: the sensor suggester reads the
-- homes and their cases and writes suggestions (never a running clock unless configured)
SELECT cityops_grant('api', 'SELECT, INSERT, UPDATE', 'landlords, homes, damp_cases');
SELECT cityops_grant('api', 'SELECT, INSERT', 'case_events, case_photos');
SELECT cityops_grant('rules', 'SELECT', 'landlords, homes, case_photos');
SELECT cityops_grant('rules', 'SELECT, INSERT', 'damp_cases, case_events');
SELECT cityops_grant('rules', 'INSERT', 'homes');

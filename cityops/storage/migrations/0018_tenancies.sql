-- Tenancies (issue 18, part 6): a home is a tenancy, not an address. A householder sees
-- their household's readings, diary and reports only from the start of their membership,
-- and only while it is open (ops_api/accounts/tenancies.py, docs/api.md).

CREATE TABLE household_members (
    membership_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    household_id  text NOT NULL,
    starts_at     timestamptz NOT NULL DEFAULT now(),
    ends_at       timestamptz,             -- exclusive; NULL while they live there
    ended_by      text,                    -- a user id, 'cli', or the invitation that ended it
    end_reason    text,
    CHECK (ends_at IS NULL OR ends_at >= starts_at),
    CHECK ((ends_at IS NULL) = (end_reason IS NULL))
);
CREATE UNIQUE INDEX household_members_open_idx ON household_members (user_id) WHERE ends_at IS NULL;
CREATE INDEX household_members_household_idx ON household_members (household_id, starts_at);

-- Existing householders: a membership from their account's creation, still open. Not from
-- the household's earliest reading: nothing says the account holder lived there before
-- they signed up, and a previous tenant's readings must not become theirs.
INSERT INTO household_members (user_id, household_id, starts_at)
SELECT user_id, household_id, created_at FROM users WHERE role = 'householder';

-- An invitation starts a new tenancy (ending the current members' access when it is issued)
-- or adds a member to the current one; a new tenancy withdraws the household's other links.
ALTER TABLE invitations ADD COLUMN new_tenancy boolean NOT NULL DEFAULT true;
ALTER TABLE invitations ADD COLUMN revoked_at timestamptz;

-- A diary entry belongs to the membership that wrote it (NULL: written by staff or the CLI).
ALTER TABLE damp_diary ADD COLUMN membership_id bigint REFERENCES household_members (membership_id)
    ON DELETE SET NULL;
UPDATE damp_diary d SET membership_id = (
    SELECT m.membership_id FROM household_members m
    WHERE m.household_id = d.household_id AND m.starts_at <= d.created_at
    ORDER BY m.starts_at DESC LIMIT 1);

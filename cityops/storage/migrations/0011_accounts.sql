-- Accounts of the operations API (ops_api/accounts, docs/api.md): people and their roles,
-- server-side sessions (only the SHA-256 of a token is stored), single-use invitations
-- for householders, and failed logins for the rate limit that every API process shares.

CREATE TABLE users (
    user_id       text PRIMARY KEY,
    username      text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._@-]{1,63}$'),  -- lower case
    display_name  text NOT NULL DEFAULT '',
    email         text,
    role          text NOT NULL
                  CHECK (role IN ('operator', 'gritting_crew', 'waste_crew', 'householder', 'admin')),
    household_id  text,                 -- a householder's household; NULL for staff
    password_hash text,                 -- argon2id; NULL: cannot log in with a password
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text,
    CHECK ((role = 'householder') = (household_id IS NOT NULL))
);
CREATE INDEX users_household_idx ON users (household_id) WHERE household_id IS NOT NULL;

CREATE TABLE sessions (
    token_hash   bytea PRIMARY KEY,     -- sha256 of the bearer token / cookie value
    user_id      text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

CREATE TABLE invitations (
    token_hash   bytea PRIMARY KEY,
    role         text NOT NULL DEFAULT 'householder'
                 CHECK (role IN ('operator', 'gritting_crew', 'waste_crew', 'householder', 'admin')),
    household_id text,
    created_by   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    used_by      text,
    CHECK ((role = 'householder') = (household_id IS NOT NULL)),
    CHECK ((used_at IS NULL) = (used_by IS NULL))
);
CREATE INDEX invitations_household_idx ON invitations (household_id);

CREATE TABLE login_attempts (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    username  text NOT NULL,            -- as typed, lower-cased (may name nobody)
    client    text NOT NULL,            -- the client address
    succeeded boolean NOT NULL
);
CREATE INDEX login_attempts_username_idx ON login_attempts (username, at);
CREATE INDEX login_attempts_client_idx ON login_attempts (client, at);

-- Signed update offers (issue 18, docs/releases.md): the operator signs each rollout's offer
-- (version, digest, size, rollout id, expiry, optional minimum version) with the fleet's key
-- when starting it; the platform only relays it. A rollout without a signature (started
-- before this migration) offers nothing: cancel it and start it again with --key.
ALTER TABLE release_rollouts ADD COLUMN IF NOT EXISTS expires_at timestamptz;
ALTER TABLE release_rollouts ADD COLUMN IF NOT EXISTS min_version text
    CHECK (min_version ~ '^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$');
ALTER TABLE release_rollouts ADD COLUMN IF NOT EXISTS offer_signature text;

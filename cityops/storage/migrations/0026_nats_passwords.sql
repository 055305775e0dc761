-- A second hash of every device and service secret, for the NATS cluster (issue 26, part 3;
-- docs/nats.md, "Passwords"). NATS 2.9 reads bcrypt hashes ($2a$...) in its config, never
-- Mosquitto's PBKDF2 ($7$...), and one hash cannot be made from the other: so the registry
-- writes this one beside the $7$ hash whenever it issues a secret (add, import, rotate, a
-- service's rotate), in the same transaction.
--
-- Keyed by the $7$ hash it goes with, not by device: a bcrypt hash here is always of the same
-- secret as its $7$ partner, so a rotation the admin API undoes (docs/devices.md, "The admin
-- API") brings back the old $7$ hash and with it its own bcrypt hash, and a writer that knows
-- nothing of NATS can never leave a stale one behind (the device is then missing from the
-- cluster's users, and `cityops nats users` says so). Secrets issued before this migration
-- have none: such a device joins the cluster after one `cityops device rotate`.
CREATE TABLE secret_bcrypt_hashes (
    secret_hash text PRIMARY KEY CHECK (secret_hash LIKE '$7$%'),
    bcrypt_hash text NOT NULL CHECK (bcrypt_hash LIKE '$2a$%'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Partners of secrets no longer held (rotated away, retired) go a day later: long enough for
-- an undo, short enough that a dump does not keep a history of old secrets' hashes.
CREATE FUNCTION secret_bcrypt_hashes_prune() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM secret_bcrypt_hashes b
    WHERE b.created_at < now() - interval '1 day'
      AND NOT EXISTS (SELECT 1 FROM device_secrets d WHERE d.secret_hash = b.secret_hash)
      AND NOT EXISTS (SELECT 1 FROM service_accounts s WHERE s.secret_hash = b.secret_hash);
    RETURN NULL;
END
$$;
CREATE TRIGGER device_secrets_prune_bcrypt AFTER UPDATE OR DELETE ON device_secrets
    FOR EACH STATEMENT EXECUTE FUNCTION secret_bcrypt_hashes_prune();
CREATE TRIGGER service_accounts_prune_bcrypt AFTER UPDATE OR DELETE ON service_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION secret_bcrypt_hashes_prune();

-- the API adds, rotates and retires devices (the prune runs with its rights)
SELECT cityops_grant('api', 'SELECT, INSERT, DELETE', 'secret_bcrypt_hashes');

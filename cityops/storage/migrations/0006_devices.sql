-- Provisioning: device and service-account secrets (hashes only, in Mosquitto's
-- PBKDF2-SHA512 format), an audit of what was done to each device, and battery history
-- (ingest updates devices.battery_v in place; a trigger keeps each new value).

CREATE TABLE device_secrets (
    device_id   text PRIMARY KEY REFERENCES devices (device_id),
    secret_hash text NOT NULL CHECK (secret_hash LIKE '$7$%'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE service_accounts (
    name        text PRIMARY KEY CHECK (name IN ('ingest', 'api')),
    secret_hash text NOT NULL CHECK (secret_hash LIKE '$7$%'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE device_events (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id text NOT NULL,
    at        timestamptz NOT NULL DEFAULT now(),
    action    text NOT NULL CHECK (action IN ('added', 'updated', 'moved', 'rotated', 'retired')),
    detail    jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX device_events_device_idx ON device_events (device_id, at);

CREATE TABLE device_battery (
    device_id text NOT NULL,
    ts        timestamptz NOT NULL,
    battery_v real NOT NULL,
    PRIMARY KEY (device_id, ts)
);

CREATE FUNCTION devices_record_battery() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.battery_v IS NOT NULL AND NEW.last_seen IS NOT NULL
       AND NEW.last_seen IS DISTINCT FROM OLD.last_seen THEN
        INSERT INTO device_battery (device_id, ts, battery_v)
        VALUES (NEW.device_id, NEW.last_seen, NEW.battery_v) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER devices_battery_history AFTER UPDATE OF battery_v, last_seen ON devices
    FOR EACH ROW EXECUTE FUNCTION devices_record_battery();

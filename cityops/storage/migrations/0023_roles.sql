-- Least-privilege database roles (issue 18, part 7; docs/operations.md, "Database roles").
--
-- One NOLOGIN role per service, named <prefix><service> (the runner's
-- CITYOPS_STORAGE__ROLE_PREFIX, default cityops_), created here if the cluster lacks it:
-- roles are cluster-wide, grants are per database. `cityops db roles` gives them LOGIN and
-- passwords. The migration runner keeps running as the schema's owner.
--
-- THE RULE FOR LATER MIGRATIONS: a migration that creates a table grants it in the same
-- file, e.g. SELECT cityops_grant('api', 'SELECT, INSERT', 'my_table'); and Grafana reads
-- only views in the `reporting` schema. tests/test_security_database.py fails for a table
-- no service role may use, and for any table Grafana may read.

CREATE TABLE db_roles (
    service   text PRIMARY KEY,
    role_name text NOT NULL UNIQUE
);
INSERT INTO db_roles (service, role_name)
SELECT s, coalesce(nullif(current_setting('cityops.role_prefix', true), ''), 'cityops_') || s
FROM unnest(ARRAY['ingest', 'api', 'rules', 'alerts', 'releases', 'grafana']) AS s;

DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT role_name FROM db_roles LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.role_name);
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r.role_name);
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;  -- another database's migration made it
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'may not create role %: ask an administrator to CREATE ROLE % NOLOGIN, then migrate',
                    r.role_name, r.role_name;
        END;
    END LOOP;
END
$$;

-- GRANT privileges ON objects (a comma list) TO the service's role. Objects that do not exist
-- (yet) and roles that could not be created are skipped with a notice.
CREATE FUNCTION cityops_grant(service text, privileges text, objects text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    grantee text := (SELECT r.role_name FROM db_roles r WHERE r.service = cityops_grant.service);
    object text;
BEGIN
    IF grantee IS NULL THEN
        RAISE EXCEPTION 'cityops_grant: no service %', service;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = grantee) THEN
        RAISE NOTICE 'role % does not exist: % on % not granted', grantee, privileges, objects;
        RETURN;
    END IF;
    FOREACH object IN ARRAY string_to_array(replace(objects, ' ', ''), ',') LOOP
        IF to_regclass(object) IS NULL THEN
            RAISE NOTICE 'no table %: not granted to %', object, grantee;
        ELSE
            EXECUTE format('GRANT %s ON %s TO %I', privileges, object, grantee);
        END IF;
    END LOOP;
END
$$;

-- What everyone may read: the schema's version (services check it at start-up).
SELECT cityops_grant(s, 'SELECT', 'schema_migrations, db_roles')
FROM unnest(ARRAY['ingest', 'api', 'rules', 'alerts', 'releases']) AS s;

-- ingest: readings and dead letters in, devices' news (the battery trigger writes device_battery)
SELECT cityops_grant('ingest', 'INSERT', 'frog_readings, road_readings, bin_readings, dead_letters, device_battery');
SELECT cityops_grant('ingest', 'SELECT, UPDATE', 'devices');

-- rules: readings and settings in; assessments, priorities, plans and decisions out
SELECT cityops_grant('rules', 'SELECT',
    'frog_readings, road_readings, bin_readings, frog_hourly, road_hourly, bin_hourly, devices, device_battery,
     damp_home_settings, damp_diary, bin_settings, bin_depots, bin_collections, bin_complaints,
     road_forecasts, gritting_treatments, jobs, users, alerts, household_members');
SELECT cityops_grant('rules', 'SELECT, INSERT, UPDATE, DELETE',
    'damp_assessments, damp_mould_state, bin_priorities, bin_plans, bin_plan_stops, bin_events,
     gritting_runs, gritting_plans, gritting_route_decisions, gritting_segment_decisions,
     road_segments, gritting_routes, road_depots, open_damp_periods, open_damp_areas, open_damp_members');
SELECT cityops_grant('rules', 'SELECT, INSERT', 'gritting_decision_log, damp_diary, road_forecasts');

-- alerts: facts in; alerts, their history, the outbox and the feed out
SELECT cityops_grant('alerts', 'SELECT',
    'devices, dead_letters, damp_assessments, damp_home_settings, frog_readings, road_readings, bin_readings,
     bin_priorities, bin_settings, bin_depots, bin_plans, bin_plan_stops, bin_events, gritting_runs,
     gritting_route_decisions, gritting_segment_decisions, gritting_routes, road_segments, users');
SELECT cityops_grant('alerts', 'SELECT, INSERT, UPDATE', 'alerts, alert_events, alert_outbox, notifications');
SELECT cityops_grant('alerts', 'SELECT, UPDATE', 'alert_subscriptions');

-- releases: the rollouts and the devices' reports
SELECT cityops_grant('releases', 'SELECT', 'devices');
SELECT cityops_grant('releases', 'SELECT, INSERT, UPDATE',
    'releases, release_rollouts, release_targets, release_reports');

-- api: accounts, sessions and the householders' and crews' own tables; the rest to read
SELECT cityops_grant('api', 'SELECT, INSERT, UPDATE, DELETE',
    'users, sessions, invitations, login_attempts, service_accounts, household_members, damp_diary, jobs,
     gritting_treatments, bin_collections, bin_complaints, devices, device_secrets, damp_home_settings,
     bin_settings, notifications, alert_subscriptions');
SELECT cityops_grant('api', 'SELECT, INSERT', 'device_events, alert_events, gritting_decision_log');
SELECT cityops_grant('api', 'SELECT, UPDATE', 'alerts');
SELECT cityops_grant('api', 'SELECT',
    'frog_readings, road_readings, bin_readings, frog_hourly, road_hourly, bin_hourly, device_battery,
     dead_letters, damp_assessments, damp_mould_state, bin_priorities, bin_plans, bin_plan_stops, bin_events,
     bin_depots, gritting_runs, gritting_plans, gritting_route_decisions, gritting_segment_decisions,
     gritting_routes, road_segments, road_depots, road_forecasts, releases, release_rollouts, release_targets,
     release_reports, alert_outbox, open_damp_periods, open_damp_areas, open_damp_members');

-- Grafana: nothing in public; the reporting views below only. A deployment's older
-- `grafana_reader` (deploy/timescaledb/init before this migration) loses its blanket read.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'grafana_reader') THEN
        REVOKE ALL ON ALL TABLES IN SCHEMA public FROM grafana_reader;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON TABLES FROM grafana_reader;
    END IF;
END
$$;

-- The reporting views: aggregate or non-personal data, run with the owner's rights.
-- No secrets, no diaries, no accounts, no per-home readings; a home appears only as its
-- household id with its area and risk assessment (no address, no position finer than
-- about a kilometre). docs/operations.md, "What Grafana can see".
CREATE SCHEMA reporting;

CREATE VIEW reporting.devices AS
SELECT device_id, kind, status, online, last_seen, battery_v, firmware_version, mobile, road_segment_id,
       CASE WHEN kind = 'frog' THEN NULL ELSE lat END AS lat,   -- a frog box's position is a home's
       CASE WHEN kind = 'frog' THEN NULL ELSE lon END AS lon
FROM devices;

-- ingest health: when each reading was measured and committed, never what it measured
CREATE VIEW reporting.ingest_readings AS
SELECT 'frog'::text AS kind, device_id, ts, received_at FROM frog_readings
UNION ALL SELECT 'road', device_id, ts, received_at FROM road_readings
UNION ALL SELECT 'bin', device_id, ts, received_at FROM bin_readings;

CREATE VIEW reporting.dead_letters AS
SELECT received_at, device_id, topic, reason, octet_length(payload) AS bytes FROM dead_letters;

CREATE VIEW reporting.readings_per_hour AS
SELECT bucket, 'frog'::text AS kind, sum(readings)::bigint AS readings FROM frog_hourly GROUP BY bucket
UNION ALL SELECT bucket, 'road', sum(readings)::bigint FROM road_hourly GROUP BY bucket
UNION ALL SELECT bucket, 'bin', sum(readings)::bigint FROM bin_hourly GROUP BY bucket;

-- damp: by area only (homes counted; NULL area is 'unassigned')
CREATE VIEW reporting.damp_areas AS
SELECT DISTINCT coalesce(area, 'unassigned') AS area FROM damp_home_settings;

CREATE VIEW reporting.damp_area_hourly AS
SELECT h.bucket, coalesce(s.area, 'unassigned') AS area, count(DISTINCT h.device_id) AS homes,
       avg(h.rh_avg) AS rh_avg, min(h.air_temp_min) AS air_temp_min
FROM frog_hourly h
JOIN devices d ON d.device_id = h.device_id
LEFT JOIN damp_home_settings s ON s.household_id = d.household_id
GROUP BY 1, 2;

-- each assessment with its home's area and a position rounded to about a kilometre
CREATE VIEW reporting.damp_assessments AS
SELECT a.device_id, coalesce(a.household_id, d.household_id) AS household_id,
       coalesce(s.area, 'unassigned') AS area, s.social_landlord,
       round(d.lat::numeric, 2)::float8 AS approx_lat, round(d.lon::numeric, 2)::float8 AS approx_lon,
       a.data_until, a.level, a.mould_index, a.damp_hours_7d, a.condensation_hours_7d, a.surface_rh_30d,
       a.reasons
FROM damp_assessments a
JOIN devices d ON d.device_id = a.device_id
LEFT JOIN damp_home_settings s ON s.household_id = coalesce(a.household_id, d.household_id);

-- roads: sensors on the road and the gritter (no homes)
CREATE VIEW reporting.road_readings AS
SELECT device_id, ts, surface_temp_c, air_temp_c, surface_state, lat, lon, received_at FROM road_readings;
CREATE VIEW reporting.road_hourly AS SELECT * FROM road_hourly;
CREATE VIEW reporting.road_segments AS
SELECT segment_id, name, route_id, priority, length_m, mid_lat, mid_lon FROM road_segments;
CREATE VIEW reporting.gritting_routes AS SELECT route_id, name, depot_id FROM gritting_routes;
CREATE VIEW reporting.gritting_runs AS SELECT run_id, computed_at, as_of FROM gritting_runs;
CREATE VIEW reporting.gritting_route_decisions AS SELECT * FROM gritting_route_decisions;
CREATE VIEW reporting.gritting_segment_decisions AS SELECT * FROM gritting_segment_decisions;

-- bins: street bins, their forecasts and the rounds
CREATE VIEW reporting.bin_readings AS SELECT device_id, ts, fill_fraction, received_at FROM bin_readings;
CREATE VIEW reporting.bin_hourly AS SELECT * FROM bin_hourly;
CREATE VIEW reporting.bin_priorities AS SELECT * FROM bin_priorities;
CREATE VIEW reporting.bin_settings AS SELECT device_id, bin_type, place FROM bin_settings;
CREATE VIEW reporting.bin_plans AS
SELECT plan_id, depot_id, shift_start, computed_at, feasible, distance_m, missed FROM bin_plans;
CREATE VIEW reporting.bin_plan_stops AS SELECT * FROM bin_plan_stops;
CREATE VIEW reporting.bin_events AS SELECT device_id, ts, kind, value, message FROM bin_events;

-- alerts: what is open and who acknowledged it (subscriptions, targets and secrets stay out)
CREATE VIEW reporting.alerts AS
SELECT alert_id, rule, severity, state, title, device_id, household_id, route_id, area, opened_at,
       escalation_level, acknowledged_by, resolved_at
FROM alerts;

DO $$
DECLARE grafana text := (SELECT role_name FROM db_roles WHERE service = 'grafana');
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = grafana) THEN
        EXECUTE format('GRANT USAGE ON SCHEMA reporting TO %I', grafana);
        EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO %I', grafana);
        EXECUTE format('ALTER ROLE %I IN DATABASE %I SET default_transaction_read_only = on',
                       grafana, current_database());
        EXECUTE format('ALTER ROLE %I IN DATABASE %I SET statement_timeout = %L',
                       grafana, current_database(), '30s');
    END IF;
END
$$;

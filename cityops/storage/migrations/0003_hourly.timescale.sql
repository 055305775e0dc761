-- Hourly statistics per device as continuous aggregates. Real-time (materialized_only
-- = false) so the newest, not yet materialized hour is included when read.

CREATE MATERIALIZED VIEW frog_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT device_id,
       time_bucket(INTERVAL '1 hour', ts) AS bucket,
       count(*)        AS readings,
       avg(air_temp_c) AS air_temp_avg, min(air_temp_c) AS air_temp_min, max(air_temp_c) AS air_temp_max,
       avg(rh_pct)     AS rh_avg,       min(rh_pct)     AS rh_min,       max(rh_pct)     AS rh_max
FROM frog_readings
GROUP BY device_id, time_bucket(INTERVAL '1 hour', ts)
WITH NO DATA;

CREATE MATERIALIZED VIEW road_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT device_id,
       time_bucket(INTERVAL '1 hour', ts) AS bucket,
       count(*)            AS readings,
       avg(surface_temp_c) AS surface_temp_avg, min(surface_temp_c) AS surface_temp_min,
       max(surface_temp_c) AS surface_temp_max,
       avg(air_temp_c)     AS air_temp_avg,     min(air_temp_c)     AS air_temp_min,
       max(air_temp_c)     AS air_temp_max
FROM road_readings
GROUP BY device_id, time_bucket(INTERVAL '1 hour', ts)
WITH NO DATA;

CREATE MATERIALIZED VIEW bin_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT device_id,
       time_bucket(INTERVAL '1 hour', ts) AS bucket,
       count(*)           AS readings,
       avg(fill_fraction) AS fill_avg,    max(fill_fraction) AS fill_max,
       min(distance_mm)   AS distance_min,
       max(temp_c)        AS temp_max,    max(tilt_deg)      AS tilt_max
FROM bin_readings
GROUP BY device_id, time_bucket(INTERVAL '1 hour', ts)
WITH NO DATA;

SELECT add_continuous_aggregate_policy('frog_hourly', start_offset => INTERVAL '3 days',
       end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '30 minutes');
SELECT add_continuous_aggregate_policy('road_hourly', start_offset => INTERVAL '3 days',
       end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '30 minutes');
SELECT add_continuous_aggregate_policy('bin_hourly', start_offset => INTERVAL '3 days',
       end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '30 minutes');

-- Hourly statistics per device on plain PostgreSQL: live views with the same names and
-- columns as the TimescaleDB continuous aggregates, for boards and ad-hoc queries.
-- (The storage layer's own reads filter on ts before bucketing; see storage/readings.py.)

CREATE VIEW frog_hourly AS
SELECT device_id,
       date_bin(INTERVAL '1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
       count(*)        AS readings,
       avg(air_temp_c) AS air_temp_avg, min(air_temp_c) AS air_temp_min, max(air_temp_c) AS air_temp_max,
       avg(rh_pct)     AS rh_avg,       min(rh_pct)     AS rh_min,       max(rh_pct)     AS rh_max
FROM frog_readings
GROUP BY 1, 2;

CREATE VIEW road_hourly AS
SELECT device_id,
       date_bin(INTERVAL '1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
       count(*)            AS readings,
       avg(surface_temp_c) AS surface_temp_avg, min(surface_temp_c) AS surface_temp_min,
       max(surface_temp_c) AS surface_temp_max,
       avg(air_temp_c)     AS air_temp_avg,     min(air_temp_c)     AS air_temp_min,
       max(air_temp_c)     AS air_temp_max
FROM road_readings
GROUP BY 1, 2;

CREATE VIEW bin_hourly AS
SELECT device_id,
       date_bin(INTERVAL '1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
       count(*)           AS readings,
       avg(fill_fraction) AS fill_avg,    max(fill_fraction) AS fill_max,
       min(distance_mm)   AS distance_min,
       max(temp_c)        AS temp_max,    max(tilt_deg)      AS tilt_max
FROM bin_readings
GROUP BY 1, 2;

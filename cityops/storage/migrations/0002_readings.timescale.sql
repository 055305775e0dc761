-- Hypertables, chunked by day, compressed per device. The compression and retention
-- policies' intervals are settings, applied after migrating (cityops.storage.policies).

SELECT create_hypertable('frog_readings', by_range('ts', INTERVAL '1 day'), migrate_data => true,
                         create_default_indexes => false);
SELECT create_hypertable('road_readings', by_range('ts', INTERVAL '1 day'), migrate_data => true,
                         create_default_indexes => false);
SELECT create_hypertable('bin_readings', by_range('ts', INTERVAL '1 day'), migrate_data => true,
                         create_default_indexes => false);

ALTER TABLE frog_readings SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id',
                               timescaledb.compress_orderby = 'ts DESC');
ALTER TABLE road_readings SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id',
                               timescaledb.compress_orderby = 'ts DESC');
ALTER TABLE bin_readings SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id',
                              timescaledb.compress_orderby = 'ts DESC');

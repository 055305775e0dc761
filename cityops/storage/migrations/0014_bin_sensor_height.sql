-- One meaning for a bin's geometry (issue 17), the one rules.bins.fill, the agent and the
-- simulator use:
--     sensor_height_mm  the sensor's height above the bottom of the empty bin (H_empty)
--     bin_depth_mm      the depth the bin holds, from the full line down to the bottom
-- so sensor_height_mm >= bin_depth_mm, and full reads sensor_height_mm - bin_depth_mm.
--
-- Until now `cityops device add` and `device import` took the pair the other way round:
-- bin_depth_mm was "depth from the sensor to the bottom" and sensor_height_mm "height of
-- the sensor above the rim", which had to be below bin_depth_mm. Such a row (a bin with
-- sensor_height_mm < bin_depth_mm) is converted, keeping the same physical bin:
--     new sensor_height_mm = old bin_depth_mm                        (sensor to the bottom)
--     new bin_depth_mm     = old bin_depth_mm - old sensor_height_mm  (rim to the bottom)
-- e.g. old (bin_depth_mm 1300, sensor_height_mm 300) -> new (1000, 1300): a distance of
-- 800 mm reads (1300 - 800) / 1000 = 50 % both ways. Each conversion is audited in
-- device_events. Rows already at sensor_height_mm >= bin_depth_mm (the demo town, rows
-- written by SQL) and rows without a sensor height are left as they are.

WITH converted AS (
    UPDATE devices
       SET sensor_height_mm = bin_depth_mm,
           bin_depth_mm = bin_depth_mm - sensor_height_mm
     WHERE kind = 'bin' AND sensor_height_mm < bin_depth_mm
 RETURNING device_id, sensor_height_mm, bin_depth_mm
)
INSERT INTO device_events (device_id, action, detail)
SELECT device_id, 'updated', jsonb_build_object(
           'migration', '0014_bin_sensor_height',
           'sensor_height_mm', sensor_height_mm,
           'bin_depth_mm', bin_depth_mm,
           'was', jsonb_build_object('bin_depth_mm', sensor_height_mm,
                                     'sensor_height_mm', sensor_height_mm - bin_depth_mm))
FROM converted;

ALTER TABLE devices ADD CONSTRAINT devices_sensor_height_above_bottom_check
    CHECK (sensor_height_mm IS NULL OR bin_depth_mm IS NULL OR sensor_height_mm >= bin_depth_mm);

-- Gritting that fails safe (issue 17, docs/gritting.md):
-- * a route's decision has three outcomes: send, not_needed, or unknown (its priority-1
--   segments have no usable road temperature in the winter season: the duty officer decides);
-- * a bought forecast may be attached to an area (a gritting route's id, or 'all' for the
--   whole network) as well as to a sensor or a segment.

ALTER TABLE gritting_route_decisions
    ADD COLUMN IF NOT EXISTS decision text NOT NULL DEFAULT 'not_needed'
        CHECK (decision IN ('send', 'not_needed', 'unknown'));
UPDATE gritting_route_decisions SET decision = CASE WHEN send THEN 'send' ELSE 'not_needed' END;
ALTER TABLE gritting_route_decisions ALTER COLUMN decision DROP DEFAULT;

ALTER TABLE road_forecasts DROP CONSTRAINT IF EXISTS road_forecasts_target_kind_check;
ALTER TABLE road_forecasts ADD CONSTRAINT road_forecasts_target_kind_check
    CHECK (target_kind IN ('sensor', 'segment', 'area'));

-- Bin rounds on the road network (docs/bins.md, "Rounds on the roads"): each stop names the
-- street its bin was snapped to (NULL: no road network, or the bin is far from every street)
-- and carries the turn-by-turn directions from the stop before (empty without a network).
-- The table's grants (0023_roles.sql) cover the new columns; the reporting view, whose
-- `SELECT *` was expanded when 0023 created it, is redefined with the street appended (the
-- directions stay out: long text no dashboard needs). CREATE OR REPLACE keeps its grants.
ALTER TABLE bin_plan_stops
    ADD COLUMN street     text,
    ADD COLUMN directions jsonb NOT NULL DEFAULT '[]';

CREATE OR REPLACE VIEW reporting.bin_plan_stops AS
SELECT plan_id, truck, seq, device_id, arrive, depart, trip, load_after_l, street FROM bin_plan_stops;

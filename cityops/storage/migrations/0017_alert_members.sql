-- Grouped alerts (issue 17, docs/alerts.md): an alert about a group (a gritting route and
-- cause, a bins round) lists what is in it, and a change of membership is in its history
-- as an `updated` event (not notified). Plain tables on both back ends.

-- [{"id": "seg-12", "name": "Cumberland Bridge", "value": -2.5, "at": "2026-01-06T03:00:00+00:00",
--   "note": "priority 1, lowest -2.5 °C at 03:00 UTC, treat from 21:30 UTC"}, ...]
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS members jsonb NOT NULL DEFAULT '[]'::jsonb;

ALTER TABLE alert_events DROP CONSTRAINT IF EXISTS alert_events_kind_check;
ALTER TABLE alert_events ADD CONSTRAINT alert_events_kind_check
    CHECK (kind IN ('opened', 'worsened', 'updated', 'acknowledged', 'escalated', 'resolved',
                    'held', 'sent', 'failed', 'dead_lettered'));

-- Alerts on Awaab's Law clocks (issue 21; docs/alerts.md, "Case clocks"): the alerts service
-- reads the open damp cases, their timelines, homes and landlords (alerts/facts.py). An alert
-- about a case names the home's landlord organisation, and a landlord officer's subscription
-- names theirs, so an officer hears only of their own homes' cases (alerts/preferences.py).

ALTER TABLE alerts ADD COLUMN landlord_id text;
ALTER TABLE alert_subscriptions ADD COLUMN landlord_id text;

SELECT cityops_grant('alerts', 'SELECT', 'damp_cases, case_events, homes, landlords');

-- Damp and mould cases for Grafana (issue 21; dashboards/boards/cases.py): counts only, per
-- landlord organisation, category, London month and state or milestone. No household id, no
-- home label, no text, no officer or tenant name: a landlord is an organisation.
-- Whether a working-day clock was met needs England's bank holidays (rules/cases/clocks.py),
-- which SQL does not have: those counts are GET /cases/stats and the landlord's dashboard;
-- here the elapsed time from awareness to each milestone stands in for them.

-- cases by the month they were suggested or opened, and their state now
CREATE VIEW reporting.damp_cases_monthly AS
SELECT date_trunc('month', c.created_at AT TIME ZONE 'Europe/London')::date AS month,
       coalesce(h.landlord_id, 'none') AS landlord_id, coalesce(c.category, 'untriaged') AS category,
       c.state, coalesce(c.aware_how, 'sensor') AS aware_how, count(*) AS cases
FROM damp_cases c JOIN homes h USING (household_id)
GROUP BY 1, 2, 3, 4, 5;

-- each milestone the first time a case reached it, by the month it was reached: how many, and
-- the median and slowest hours since the landlord became aware
CREATE VIEW reporting.damp_case_milestones AS
WITH firsts AS (
    SELECT e.case_id, e.milestone, min(e.at) AS at
    FROM case_events e
    WHERE e.milestone IS NOT NULL AND e.milestone <> 'aware'
    GROUP BY 1, 2)
SELECT date_trunc('month', f.at AT TIME ZONE 'Europe/London')::date AS month,
       coalesce(h.landlord_id, 'none') AS landlord_id, c.category, f.milestone, count(*) AS reached,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM f.at - c.aware_at)) / 3600)::numeric, 1)
           AS median_hours_from_aware,
       round((max(extract(epoch FROM f.at - c.aware_at)) / 3600)::numeric, 1) AS max_hours_from_aware
FROM firsts f JOIN damp_cases c USING (case_id) JOIN homes h USING (household_id)
WHERE c.aware_at IS NOT NULL AND c.category IS NOT NULL
GROUP BY 1, 2, 3, 4;

SELECT cityops_grant('grafana', 'SELECT', 'reporting.damp_cases_monthly, reporting.damp_case_milestones');

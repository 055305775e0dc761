"""Damp and mould cases (Awaab's Law): how many are waiting, opened per month, per landlord,
and how long each step took from awareness. Reporting views only (migration 0030): counts per
landlord organisation, category, month and state or milestone; no household, text or name.

Whether each working-day clock was met needs England's bank holidays (rules/cases/clocks.py):
those counts are the landlord's dashboard (/landlord/dashboard, GET /cases/stats), not SQL."""

from __future__ import annotations

from dashboards.model import Board, Sql, barchart, stat, table

# the months the time range touches (London months, as the views count them)
IN_RANGE = ("month >= date_trunc('month', $__timeFrom()::timestamptz AT TIME ZONE 'Europe/London')::date "
            "AND month <= $__timeTo()::timestamptz AT TIME ZONE 'Europe/London'")

WAITING = Sql("""
SELECT coalesce(sum(cases) FILTER (WHERE state = 'suggested'), 0) AS "suggestions to triage",
       coalesce(sum(cases) FILTER (WHERE state = 'open'), 0) AS "open cases",
       coalesce(sum(cases) FILTER (WHERE state = 'open' AND category = 'emergency'), 0) AS "open emergencies"
FROM reporting.damp_cases_monthly
""")

PER_MONTH = Sql(f"""
SELECT to_char(month, 'YYYY-MM') AS month,
       sum(cases) FILTER (WHERE category = 'emergency') AS emergency,
       sum(cases) FILTER (WHERE category = 'significant') AS significant,
       sum(cases) FILTER (WHERE category = 'untriaged') AS "not triaged"
FROM reporting.damp_cases_monthly
WHERE {IN_RANGE}
GROUP BY 1
ORDER BY 1
""")

PER_LANDLORD = Sql(f"""
SELECT landlord_id AS landlord, category,
       sum(cases) FILTER (WHERE state = 'suggested') AS suggested,
       sum(cases) FILTER (WHERE state = 'open') AS open,
       sum(cases) FILTER (WHERE state = 'closed') AS closed,
       sum(cases) FILTER (WHERE state = 'dismissed') AS dismissed,
       sum(cases) FILTER (WHERE aware_how = 'sensor') AS "from the sensors"
FROM reporting.damp_cases_monthly
WHERE {IN_RANGE}
GROUP BY 1, 2
ORDER BY 1, 2
""")

MILESTONES = Sql(f"""
SELECT to_char(month, 'YYYY-MM') AS month, landlord_id AS landlord, category, milestone, reached,
       median_hours_from_aware AS "median hours from awareness",
       max_hours_from_aware AS "slowest, hours"
FROM reporting.damp_case_milestones
WHERE {IN_RANGE}
ORDER BY month DESC, landlord, category,
         array_position(ARRAY['investigated', 'summary_sent', 'made_safe', 'safety_works_done',
                              'further_works_begun', 'further_works_started'], milestone)
""")


def board() -> Board:
    return Board(
        uid="cityops-cases",
        title="CityOps: damp and mould cases",
        description="Awaab's Law cases per landlord: waiting, opened per month, and the time from awareness "
                    "to each step. Counts only: no household, text or name.",
        time_from="now-1y",
        refresh="15m",
        panels=(
            stat("Cases waiting", WAITING, width=24, height=5,
                 description="Suggestions from the sensors not triaged yet, and open cases (every landlord)."),
            barchart("Cases per month by category", PER_MONTH, x_field="month", width=12, height=10,
                     description="By the month each case was suggested or opened (London time)."),
            table("Cases per landlord", PER_LANDLORD, width=12, height=10,
                  description="Cases suggested or opened in the time range, by their state now."),
            table("Steps and the time they took from awareness", MILESTONES, width=24, height=10,
                  description="Each step the first time a case reached it, by the month reached. Investigate within "
                              "24 hours for an emergency; the working-day clocks' outcomes are on the landlord's "
                              "dashboard (/landlord/dashboard)."),
        ),
    )

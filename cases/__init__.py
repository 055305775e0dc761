"""Damp and mould cases under Awaab's Law (issue 21): a case per home, suggested by the
sensors, reported by the householder or opened by an officer; triaged, each step recorded
in one timeline, the clocks computed from its milestones; landlords own the homes.

    lifecycle  suggest_from_sensors, open_case, triage, record_step, close_case,
               householder_report, household_case, add_photos, case_view, list_cases,
               add_landlord, put_home; the orchestrator
    store      the landlords, homes, damp_cases, case_events and case_photos SQL
    photos     the householders' photos on disk: checked, stripped, content-addressed
    errors     the tree: CaseNotFound, CaseConflict, InvalidCase (InvalidPhoto), PhotoDamaged

The clocks are rules.cases.clocks' (pure). The API (ops_api/routes/cases.py) scopes a
landlord officer to their organisation's homes; `cityops cases suggest` runs the suggester.
"""

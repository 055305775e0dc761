"""What several boards share: the template variables and a few SQL fragments."""

from __future__ import annotations

from dashboards.model import CustomVariable, QueryVariable

AREA = QueryVariable(
    "area", "Area",
    "SELECT area FROM reporting.damp_areas ORDER BY 1")  # 'unassigned' for homes without one
KIND = CustomVariable("kind", "Device kind", ("frog", "road", "bin"))

# a home's area ('unassigned' when not set), for a query over reporting.damp_assessments as `l`
IN_AREA = "l.area IN (${area:sqlstring})"

LEVEL_RANK = ("CASE {col} WHEN 'severe' THEN 5 WHEN 'high' THEN 4 WHEN 'medium' THEN 3 "
              "WHEN 'low' THEN 2 WHEN 'none' THEN 1 ELSE 0 END")

LATEST_GRITTING_RUN = "(SELECT max(run_id) FROM reporting.gritting_runs)"

